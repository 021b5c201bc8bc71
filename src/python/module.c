/* meltemi._core: module initialization, multi-phase (PEP 489).
 *
 * The module's Python objects (interned strings, the four types, the two
 * exceptions) live in its state (mt_state_t in module.h), not in C globals, so
 * each interpreter that imports the module gets its own; the types are heap
 * types made from specs, and reach the state through PyType_GetModuleState.
 * What the C core keeps process-wide (the object counters, buffer free
 * lists) holds no Python object. */
#include "api.h"
#include "environ.h"
#include "auth.h"
#include "module.h"

/* The state's objects as an array: every member of mt_state_t is a PyObject * it owns. */
static PyObject **state_objects(PyObject *module, size_t *count) {
    *count = sizeof(mt_state_t) / sizeof(PyObject *);
    return (PyObject **)PyModule_GetState(module);
}

static int core_traverse(PyObject *module, visitproc visit, void *arg) {
    size_t count;
    PyObject **objects = state_objects(module, &count);
    for (size_t i = 0; objects && i < count; i++)
        Py_VISIT(objects[i]);
    return 0;
}

static int core_clear(PyObject *module) {
    size_t count;
    PyObject **objects = state_objects(module, &count);
    for (size_t i = 0; objects && i < count; i++)
        Py_CLEAR(objects[i]);
    return 0;
}

static void core_free(void *module) {
    core_clear((PyObject *)module);
}

static PyTypeObject *add_type(PyObject *module, PyType_Spec *spec, const char *public_name) {
    PyTypeObject *type = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    if (type != NULL && public_name != NULL && PyModule_AddObjectRef(module, public_name, (PyObject *)type) < 0)
        Py_CLEAR(type);
    return type;
}

static int core_exec(PyObject *m) {
    mt_state_t *st = PyModule_GetState(m);
    if (mt_environ_init_strings(&st->str) < 0)
        return -1;
    if ((st->Worker_Type = add_type(m, &Worker_Spec, "Worker")) == NULL ||
        (st->FileWrapper_Type = add_type(m, &FileWrapper_Spec, "FileWrapper")) == NULL ||
        (st->Input_Type = add_type(m, &Input_Spec, NULL)) == NULL ||
        (st->StartResponse_Type = add_type(m, &StartResponse_Spec, NULL)) == NULL ||
        (st->JWTVerifier_Type = add_type(m, &JWTVerifier_Spec, "JWTVerifier")) == NULL ||
        (st->AsgiRequest_Type = add_type(m, &AsgiRequest_Spec, NULL)) == NULL)
        return -1;
    st->ClientDisconnected =
        PyErr_NewExceptionWithDoc("meltemi._core.ClientDisconnected",
                                  "The client closed the connection before the exchange ended.", PyExc_OSError, NULL);
    st->RequestBodyError = PyErr_NewExceptionWithDoc(
        "meltemi._core.RequestBodyError", "The request body could not be read: too slow, too large or malformed.",
        PyExc_OSError, NULL);
    if (st->ClientDisconnected == NULL || st->RequestBodyError == NULL ||
        PyModule_AddFunctions(m, mt_precompress_methods) < 0 || PyModule_AddFunctions(m, mt_api_methods) < 0 ||
        PyModule_AddFunctions(m, mt_metrics_methods) < 0 || PyModule_AddFunctions(m, mt_asgi_methods) < 0 ||
        mt_api_add_constants(m) < 0 || PyModule_AddObjectRef(m, "ClientDisconnected", st->ClientDisconnected) < 0 ||
        PyModule_AddObjectRef(m, "RequestBodyError", st->RequestBodyError) < 0)
        return -1;
    PyObject *version =
        PyUnicode_FromFormat("%d.%d.%d", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
    if (version == NULL || PyModule_AddObjectRef(m, "llhttp_version", version) < 0) {
        Py_XDECREF(version);
        return -1;
    }
    Py_DECREF(version);
    return 0;
}

static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
#ifdef Py_mod_gil
    /* Free-threaded CPython: the glue keeps the thread rules of module.h (docs/design.md,
     * "Free-threaded CPython"), so importing it leaves the GIL off. */
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "meltemi._core",
    .m_doc = "The C core of meltemi: an HTTP/1.1 server with a WSGI bridge.",
    .m_size = sizeof(mt_state_t),
    .m_methods = mt_codec_methods,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

PyMODINIT_FUNC PyInit__core(void) {
    return PyModuleDef_Init(&core_module);
}
