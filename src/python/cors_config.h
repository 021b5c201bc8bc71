/* The CORS policies' glue (cors_config.c): a policy of meltemi/cors.py
 * (CORS.c_spec()) made into the C policy of src/core/http1/cors.h. */
#ifndef MT_PY_CORS_CONFIG_H
#define MT_PY_CORS_CONFIG_H

#include <Python.h>

#include "cors.h"

/* From `spec` (GIL held): None gives *out = NULL; a tuple (origins,
 * origin_regexes, urls_regex or None, allow_all, credentials,
 * private_network, methods, headers, expose, max_age) a new policy, which
 * the caller destroys with mt_cors_destroy. Returns 0, or -1 with an
 * exception (ValueError naming a pattern PCRE2 refuses). */
int mt_cors_from_py(PyObject *spec, mt_cors_t **out);

#endif
