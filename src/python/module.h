/* meltemi._core's module (module.c): the module state every object of the glue reaches, and the
 * CPython compatibility helpers. The glue (src/python) is the only code that includes Python.h and knows the GIL. */
#ifndef MT_PY_MODULE_H
#define MT_PY_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <pthread.h>
#include <stdbool.h>

#include "common.h"

/* Interned strings, created once per module (bjoern's prebuilt keys,
 * msgspec's module state). Every member is a PyObject * the state owns, so
 * the struct can be visited and cleared as an array. */
#define MT_COMMON_FIELDS_MAX 32
typedef struct mt_py_strings {
    PyObject *REQUEST_METHOD, *SCRIPT_NAME, *PATH_INFO, *QUERY_STRING, *REQUEST_URI, *RAW_URI, *SERVER_PROTOCOL,
        *SERVER_NAME, *SERVER_PORT, *REMOTE_ADDR, *REMOTE_PORT, *CONTENT_TYPE, *CONTENT_LENGTH;
    PyObject *wsgi_input, *wsgi_version, *wsgi_url_scheme, *wsgi_errors, *wsgi_multithread, *wsgi_multiprocess,
        *wsgi_run_once, *wsgi_file_wrapper, *wsgi_input_terminated;
    PyObject *HTTP_1_0, *HTTP_1_1, *empty, *close, *fileno, *read;
    PyObject *methods[64];                      /* REQUEST_METHOD values by llhttp method id */
    PyObject *field_keys[MT_COMMON_FIELDS_MAX]; /* environ keys of common header fields (environ.c) */
} mt_py_strings_t;

/* The module's state (multi-phase init, PEP 489): one per module object, so
 * one per interpreter. Objects reach it through their heap type
 * (mt_state_of); a Worker keeps a pointer to it, valid as long as the Worker
 * lives (an instance holds its type, the type its module). */
typedef struct mt_state {
    mt_py_strings_t str;
    PyTypeObject *Worker_Type, *Input_Type, *StartResponse_Type, *FileWrapper_Type, *JWTVerifier_Type,
        *AsgiRequest_Type;
    PyObject *ClientDisconnected; /* OSError subclass raised by wsgi.input */
    PyObject *RequestBodyError;   /* OSError subclass: the body timed out, was too large or malformed */
} mt_state_t;

/* The heap types, made from these specs by the module's exec function. */
extern PyType_Spec Worker_Spec, Input_Spec, StartResponse_Spec, FileWrapper_Spec, AsgiRequest_Spec;

/* The state of the module that defined obj's type (one of the types above). */
static inline mt_state_t *mt_state_of(PyObject *obj) {
    return (mt_state_t *)PyType_GetModuleState(Py_TYPE(obj));
}

/* CPython 3.13 took these private helpers out of its headers: the public
 * PyObject_GetOptionalAttr (3.13) and a positional-count check of our own. */
#if PY_VERSION_HEX < 0x030D0000
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
#endif

/* ---- Thread rules (free-threaded CPython, Py_GIL_DISABLED; docs/design.md
 * "Free-threaded CPython") ----
 * The module declares Py_MOD_GIL_NOT_USED: handler threads run the glue at
 * the same time. So the glue keeps to these rules, which cost nothing on a
 * GIL build (the helpers below are the 3.13 API, shimmed for 3.11 and 3.12):
 *   - no borrowed reference out of a container another thread can reach:
 *     PyDict_GetItemRef / PyList_GetItemRef, or a snapshot (PyList_AsTuple);
 *   - iteration of a dict or list the application handed us (response
 *     headers, precompress levels) inside Py_BEGIN_CRITICAL_SECTION(container),
 *     with no early return out of the section;
 *   - C state shared by handler threads is either read-only after
 *     Worker.__init__ (the Worker's fields, the router, the API's routes, the
 *     static mounts) or has its own lock (the open-file cache, the compressed-
 *     file cache, the buffer pool, a connection's output queue, the request
 *     queue, an Input's body: mt_py_mutex_lock) or is atomic (the counters);
 *   - state a handler thread uses per request is its own (mt_handler_t: output
 *     buffers, compressor, router scratch; thread-locals of the core). */
#if PY_VERSION_HEX < 0x030D0000
static inline int PyDict_GetItemRef(PyObject *d, PyObject *key, PyObject **result) {
    PyObject *item = PyDict_GetItemWithError(d, key);
    *result = Py_XNewRef(item);
    return item ? 1 : PyErr_Occurred() ? -1 : 0;
}

static inline PyObject *PyList_GetItemRef(PyObject *list, Py_ssize_t i) {
    return Py_XNewRef(PyList_GetItem(list, i));
}
#endif
#if PY_VERSION_HEX < 0x030C0000
/* 3.12 replaced PyErr_Fetch/PyErr_Restore/PyErr_NormalizeException (deprecated) with these. */
static inline PyObject *PyErr_GetRaisedException(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return NULL;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb)
        PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    return value;
}

static inline void PyErr_SetRaisedException(PyObject *exc) {
    if (exc)
        PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
}
#endif
#ifndef Py_BEGIN_CRITICAL_SECTION /* 3.13 defines them (no-ops with the GIL) */
#define Py_BEGIN_CRITICAL_SECTION(op) {
#define Py_END_CRITICAL_SECTION() }
#endif

/* A lock held across a blocking call without the GIL (a critical section is
 * suspended while its thread is detached): taken without waiting when free,
 * else waited for with the GIL released, so a holder that needs the GIL back
 * cannot deadlock with the waiter. */
static inline void mt_py_mutex_lock(pthread_mutex_t *m) {
    if (pthread_mutex_trylock(m) != 0) {
        Py_BEGIN_ALLOW_THREADS
            pthread_mutex_lock(m);
        Py_END_ALLOW_THREADS
    }
}

static inline bool mt_check_positional(const char *name, Py_ssize_t nargs, Py_ssize_t min, Py_ssize_t max) {
    if (nargs < min || nargs > max) {
        PyErr_Format(PyExc_TypeError, "%s() takes from %zd to %zd positional arguments (%zd given)", name, min, max,
                     nargs);
        return false;
    }
    return true;
}

/* The module-level functions of codec.c, precompress.c, api.c, region.c and asgi.c. */
extern PyMethodDef mt_codec_methods[], mt_precompress_methods[], mt_api_methods[], mt_metrics_methods[],
    mt_asgi_methods[];

#endif
