/* The ASGI bridge's C side (asgi.c): the worker's event-loop consumer of the request queue, and
 * _core.AsgiRequest, one HTTP request/response exchange driven by ASGI messages (meltemi/asgi/). */
#ifndef MT_PY_ASGI_H
#define MT_PY_ASGI_H

#include <pthread.h>

#include "worker.h"
#include "ws_handshake.h"

/* The keys of an HTTP scope that build_scope sets per request (interned once). */
enum {
    MT_ASGI_METHOD,
    MT_ASGI_HTTP_VERSION,
    MT_ASGI_SERVER,
    MT_ASGI_CLIENT,
    MT_ASGI_SCHEME,
    MT_ASGI_HEADERS,
    MT_ASGI_EXTENSIONS,
    MT_ASGI_QUERY_STRING,
    MT_ASGI_RAW_PATH,
    MT_ASGI_PATH,
    MT_ASGI_NKEYS
};

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
    PyObject *scope_template;      /* the keys every HTTP scope has alike */
    PyObject *extensions_trailers; /* the scope's extensions when the client accepts trailers */
    /* Made once, so that a request's scope and head allocate no string they share with every other. */
    PyObject *keys[MT_ASGI_NKEYS]; /* interned */
    PyObject *http_versions[2];    /* "1.0", "1.1" */
    PyObject *schemes[2];          /* "http", "https" (what trusted proxies said) */
    PyObject *status_lines[500];   /* "200 OK" by status code - 100, made on first use */
    /* WebSocket options (asgi_ws_configure; defaults from asgi_enable): what
     * a handshake may negotiate, and the largest frame or message (1009 beyond). */
    mt_ws_handshake_config_t ws_handshake;
    uint64_t ws_max_size;
    struct {
        PyObject *type, *receive, *send, *text, *bytes; /* interned keys and values of websocket messages */
    } ws_keys;
    /* api_only: the loop serves only the typed API's async routes (api_loop_enable); the
     * server's queue stays the handler threads'. Those routes come through `pending`
     * (asgi_api.c), guarded by `lock`. */
    bool api_only;
    struct mt_asgi_pending **pending;
    size_t npending, pending_cap;
    /* Write batching (asgi_loop.c, "held responses"): from an asgi_take that brought two or more requests
     * until asgi_flush (or batch_deadline_ns), a complete response that is still all in its exchange's
     * buffer is held there instead of written; the flush writes the held ones back to back. Loop
     * thread only, GIL held. `ready`: next pipelined requests found while flushing, for asgi_flush. */
    bool batching;
    uint64_t batch_deadline_ns;
    struct AsgiRequestObject **held;
    size_t nheld, held_cap;
    PyObject *ready;
} mt_asgi_t;

/* Frees what asgi_enable set up; the I/O thread must have exited. GIL held. */
void mt_asgi_free(mt_asgi_t *asgi);

/* Handler thread, no GIL: hands the request on c, routed to an async API route
 * (handler->route, ->match), to the loop; the handler is free at once. 0, or
 * -ENOMEM (c is still the caller's). */
int mt_asgi_api_push(WorkerObject *w, mt_conn_t *c, const mt_handler_t *handler);

extern PyType_Spec AsgiRequest_Spec;
/* asgi_enable(worker), api_loop_enable(worker), asgi_take(worker), asgi_ws_configure(worker, max_size, deflate). */
extern PyMethodDef mt_asgi_methods[];

#endif
