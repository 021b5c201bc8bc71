/* The ASGI bridge's C side (asgi.c): the worker's event-loop consumer of the request queue, and
 * _core.AsgiRequest, one HTTP request/response exchange driven by ASGI messages (meltemi/asgi/). */
#ifndef MT_PY_ASGI_H
#define MT_PY_ASGI_H

#include <pthread.h>

#include "worker.h"

/* What a worker serving an ASGI application keeps (WorkerObject.asgi): the
 * eventfd its loop reads (written by the queue when a request arrives on an
 * empty queue, and when the queue closes; and by on_drained), and the
 * connections whose output queue drained since the loop last looked. */
typedef struct mt_asgi {
    int efd;
    pthread_mutex_t lock; /* guards drained; taken under a connection's out_lock, never around it */
    mt_conn_t **drained;
    size_t ndrained, cap;
    PyObject **servers; /* the scope's "server" per listener: (host, port) or (path, None) */
    int nservers;
    PyObject *scope_template; /* the keys every HTTP scope has alike */
    /* api_only: the loop serves only the typed API's async routes (api_loop_enable); the
     * server's queue stays the handler threads'. Those routes come through `pending`
     * (asgi_api.c), guarded by `lock`. */
    bool api_only;
    struct mt_asgi_pending **pending;
    size_t npending, pending_cap;
} mt_asgi_t;

/* Frees what asgi_enable set up; the I/O thread must have exited. GIL held. */
void mt_asgi_free(mt_asgi_t *asgi);

/* Handler thread, no GIL: hands the request on c, routed to an async API route
 * (handler->route, ->match), to the loop; the handler is free at once. 0, or
 * -ENOMEM (c is still the caller's). */
int mt_asgi_api_push(WorkerObject *w, mt_conn_t *c, const mt_handler_t *handler);

extern PyType_Spec AsgiRequest_Spec;
/* asgi_enable(worker), api_loop_enable(worker), asgi_take(worker). */
extern PyMethodDef mt_asgi_methods[];

#endif
