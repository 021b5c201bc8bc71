/* The CORS policies' glue: a tuple from meltemi/cors.py into the C policy
 * (src/core/http1/cors.c), once, when a worker or an API is created. */
#include "cors_config.h"

#include <errno.h>

/* The str items of a tuple as UTF-8 C strings, borrowed from the tuple (it
 * outlives the call). Returns the array (PyMem) or NULL with an exception. */
static const char **texts(PyObject *tuple, const char *what, size_t *n) {
    if (!PyTuple_Check(tuple)) {
        PyErr_Format(PyExc_TypeError, "CORS spec: %s is a tuple of str", what);
        return NULL;
    }
    *n = (size_t)PyTuple_GET_SIZE(tuple);
    const char **items = PyMem_Calloc(*n ? *n : 1, sizeof *items);
    if (items == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    for (size_t i = 0; i < *n; i++) {
        if ((items[i] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(tuple, (Py_ssize_t)i))) == NULL) {
            PyMem_Free(items);
            return NULL;
        }
    }
    return items;
}

int mt_cors_from_py(PyObject *spec, mt_cors_t **out) {
    *out = NULL;
    if (spec == Py_None)
        return 0;
    PyObject *origins, *regexes, *urls;
    int allow_all, credentials, private_network;
    const char *methods, *headers, *expose;
    long long max_age;
    if (!PyArg_ParseTuple(spec, "OOOpppsssL:CORS spec", &origins, &regexes, &urls, &allow_all, &credentials,
                          &private_network, &methods, &headers, &expose, &max_age))
        return -1;
    mt_cors_config_t config = {
        .allow_all = allow_all,
        .credentials = credentials,
        .private_network = private_network,
        .methods = methods,
        .headers = headers,
        .expose = expose,
        .max_age = max_age,
    };
    if (urls != Py_None && (config.urls_regex = PyUnicode_AsUTF8(urls)) == NULL)
        return -1;
    int rc = -1;
    const char **o = texts(origins, "origins", &config.norigins);
    const char **r = o ? texts(regexes, "origin_regexes", &config.nregexes) : NULL;
    if (r) {
        config.origins = o;
        config.origin_regexes = r;
        char err[256] = "";
        int crc = mt_cors_create(out, &config, err, sizeof err);
        if (crc == -ENOMEM)
            PyErr_NoMemory();
        else if (crc < 0)
            PyErr_SetString(PyExc_ValueError, err);
        else
            rc = 0;
    }
    PyMem_Free(o);
    PyMem_Free(r);
    return rc;
}
