/* wsgi.input (input.c): the body of one request, read on demand without the GIL. */
#ifndef MT_PY_INPUT_H
#define MT_PY_INPUT_H

#include "conn.h"
#include "module.h"

/* wsgi.input: reads the request body of one request. `lock` serializes the
 * reads (which release the GIL) of threads sharing it, and the end of the
 * request, which clears `conn`. */
typedef struct InputObject {
    PyObject_HEAD mt_conn_t *conn; /* NULL once the request is over */
    int error_status;              /* set when reading failed: the status to answer with (408, 413, 400) */
    pthread_mutex_t lock;
} InputObject;

/* A new wsgi.input over the body of the request on conn (GIL held). NULL with an exception. */
InputObject *mt_input_create(mt_state_t *st, mt_conn_t *conn);
/* Detaches it from its connection at the end of the request (GIL held): a
 * reader in another thread finishes first, a later read raises. */
void mt_input_detach(InputObject *self);

#endif
