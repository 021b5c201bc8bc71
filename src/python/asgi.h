/* The ASGI bridge's C side (asgi.c): the worker's event-loop consumer of the request queue, and
 * _core.AsgiRequest, one HTTP request/response exchange driven by ASGI messages (meltemi/asgi/). */
#ifndef MT_PY_ASGI_H
#define MT_PY_ASGI_H

#include <pthread.h>

#include "worker.h"
#include "ws_handshake.h"

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
    /* WebSocket options (asgi_ws_configure; defaults from asgi_enable): what
     * a handshake may negotiate, and the largest frame or message (1009 beyond). */
    mt_ws_handshake_config_t ws_handshake;
    uint64_t ws_max_size;
    struct {
        PyObject *type, *receive, *send, *text, *bytes; /* interned keys and values of websocket messages */
    } ws_keys;
} mt_asgi_t;

/* Frees what asgi_enable set up; the I/O thread must have exited. GIL held. */
void mt_asgi_free(mt_asgi_t *asgi);

extern PyType_Spec AsgiRequest_Spec;
/* asgi_enable(worker), asgi_take(worker), asgi_ws_configure(worker, max_size, deflate). */
extern PyMethodDef mt_asgi_methods[];

#endif
