/* The WSGI environ (environ.c). */
#ifndef MT_PY_ENVIRON_H
#define MT_PY_ENVIRON_H

#include "conn.h"
#include "worker.h"

/* environ.c: builds the environ dict of the request on `conn` (GIL held).
 * Returns a new reference or NULL with an exception set. */
PyObject *mt_environ_build(WorkerObject *worker, mt_conn_t *conn, PyObject *input, PyObject **uri);
int mt_environ_init_strings(mt_py_strings_t *s);
PyObject *mt_environ_template(WorkerObject *worker, PyObject *url_scheme, int multithread, int multiprocess);

#endif
