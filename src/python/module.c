/* meltemi._core: module initialization. */
#include "glue.h"

extern PyMethodDef mt_codec_methods[];       /* codec.c */
extern PyMethodDef mt_precompress_methods[]; /* precompress.c */
extern PyMethodDef mt_api_methods[];         /* api.c */

static PyModuleDef core_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "meltemi._core",
    .m_doc = "The C core of meltemi: an HTTP/1.1 server with a WSGI bridge.",
    .m_size = -1,
    .m_methods = mt_codec_methods,
};

PyMODINIT_FUNC PyInit__core(void) {
    if (mt_environ_init_strings() < 0)
        return NULL;
    PyTypeObject *types[] = {&Worker_Type, &Input_Type, &StartResponse_Type, &FileWrapper_Type};
    for (size_t i = 0; i < MT_ARRAY_SIZE(types); i++)
        if (PyType_Ready(types[i]) < 0)
            return NULL;
    PyObject *m = PyModule_Create(&core_module);
    if (m == NULL)
        return NULL;
    mt_ClientDisconnected =
        PyErr_NewExceptionWithDoc("meltemi._core.ClientDisconnected",
                                  "The client closed the connection before the exchange ended.", PyExc_OSError, NULL);
    mt_RequestBodyError = PyErr_NewExceptionWithDoc(
        "meltemi._core.RequestBodyError", "The request body could not be read: too slow, too large or malformed.",
        PyExc_OSError, NULL);
    if (mt_ClientDisconnected == NULL || mt_RequestBodyError == NULL ||
        PyModule_AddFunctions(m, mt_precompress_methods) < 0 || PyModule_AddFunctions(m, mt_api_methods) < 0 ||
        mt_api_add_constants(m) < 0 || PyModule_AddObjectRef(m, "ClientDisconnected", mt_ClientDisconnected) < 0 ||
        PyModule_AddObjectRef(m, "RequestBodyError", mt_RequestBodyError) < 0 ||
        PyModule_AddObjectRef(m, "Worker", (PyObject *)&Worker_Type) < 0 ||
        PyModule_AddObjectRef(m, "FileWrapper", (PyObject *)&FileWrapper_Type) < 0)
        goto error;
    PyObject *version =
        PyUnicode_FromFormat("%d.%d.%d", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR, LLHTTP_VERSION_PATCH);
    if (version == NULL || PyModule_AddObject(m, "llhttp_version", version) < 0) {
        Py_XDECREF(version);
        goto error;
    }
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
