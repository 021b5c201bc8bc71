/* Inside the ASGI bridge: the AsgiRequest object shared by its files: the
 * loop's side of the queue and the held responses (asgi_loop.c), the scope
 * (asgi_scope.c), the HTTP exchange (asgi.c), the WebSocket half (asgi_ws.c:
 * accept, frames in and out, close) and the API's async routes (asgi_api.c).
 * Not for other files.
 *
 * Thread: an AsgiRequest and everything it points to are the loop thread's,
 * used with the GIL held (see asgi.c). */
#ifndef MT_PY_ASGI_REQUEST_H
#define MT_PY_ASGI_REQUEST_H

#include "asgi.h"
#include "response.h"
#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_handshake.h"

/* A WebSocket after its accept: owned by the loop, like the exchange. */
typedef struct asgi_ws {
    mt_ws_parser_t parser;
    bool deflate;
    mt_ws_deflate_t z;
    mt_buf_t message; /* the message being received (inflated if compressed) */
    mt_buf_t zout;    /* a compressed message being sent */
    bool close_sent, close_received;
    size_t rpos; /* how much of the connection's rbuf is parsed (ws_receive) */
    /* The idle keepalive (ws_keepalive, called by the runtime's periodic
     * sweep with the loop's clock): rx is set by every read that got bytes. */
    bool rx;
    bool pinging;               /* a ping went out at ping_at and nothing came since */
    double idle_since, ping_at; /* the loop's clock */
} asgi_ws_t;

typedef struct AsgiRequestObject {
    PyObject_HEAD WorkerObject *worker;
    mt_conn_t *conn; /* NULL once handed back */
    mt_handler_t handler;
    mt_exchange_t ex;
    PyObject *scope;
    int error_status;         /* the request could not be read: the answer the client gets if nothing was sent */
    const char *error_detail; /* its detail (static), or NULL: the body could not be read */
    bool started;             /* http.response.start came */
    bool complete;            /* the response's last message came */
    bool trailers_due;        /* http.response.start said "trailers": http.response.trailers ends the response */
    bool body_ended;          /* the last http.response.body came (with trailers due: the response waits for them) */
    bool te_trailers;         /* the client accepts trailer fields ("TE: trailers", HTTP/1.1) */
    bool websocket;           /* a valid WebSocket handshake: the scope is "websocket" */
    bool api;                 /* a typed API async route (asgi_api.c): no scope; handler holds the route match */
    bool held;                /* the complete response waits in ex.out for the batch's flush (mt_asgi_hold) */
    bool end_due;             /* end() came while held: the flush ends the exchange, with end_failed */
    bool end_failed;          /* end()'s argument, kept for the flush */
    mt_ws_handshake_t *hs;    /* until the accept */
    asgi_ws_t *ws;            /* after the accept */
} AsgiRequestObject;

/* What a WebSocket handshake may negotiate by default (permessage-deflate's window bits and memory level), and
 * the default largest frame or message; asgi_ws_configure changes them per worker (mt_asgi_t). */
extern const mt_ws_handshake_config_t mt_asgi_ws_handshake_config;
#define MT_ASGI_WS_MAX_SIZE (16u << 20)

/* Sets a worker's WebSocket defaults and interned keys (asgi_enable); 0, or -1 with an exception. */
int mt_asgi_ws_init(mt_asgi_t *a);
/* Releases what mt_asgi_ws_init made. */
void mt_asgi_ws_dispose(mt_asgi_t *a);

/* asgi_ws_configure(worker, max_size, deflate): the worker's WebSocket options, before it starts. */
PyObject *mt_asgi_ws_configure(PyObject *module, PyObject *args);

/* What every scope of the worker shares (asgi_scope.c), made when its loop is
 * enabled. 0, or -1 with an exception. */
int mt_asgi_scope_setup(WorkerObject *w, mt_asgi_t *a);

/* A new exchange for c with its scope (asgi_scope.c), or NULL with an exception
 * (c then handed back, closed). GIL held. */
PyObject *mt_asgi_request_new(WorkerObject *w, mt_conn_t *c);

/* Ends the exchange (asgi.c): sends what is due and hands the connection back;
 * the next pipelined request's AsgiRequest, or None. AsgiRequest.end() calls
 * it, or the batch's flush when the response was held. */
PyObject *mt_asgi_end_exchange(AsgiRequestObject *self, int failed);

/* A new exchange for c (its scope not built), or NULL with an exception
 * (c then handed back, closed). GIL held. */
AsgiRequestObject *mt_asgi_request_create(WorkerObject *w, mt_conn_t *c);

/* Builds self->scope (http, or websocket after a valid handshake; None when
 * C refused the handshake with 400/426). 0, or -1 with an exception. */
int mt_asgi_request_scope(AsgiRequestObject *self);

/* Takes the API requests handed over by mt_asgi_api_push and appends their
 * AsgiRequests to `requests`. 0, or -1 with an exception. */
int mt_asgi_api_take(WorkerObject *w, PyObject *requests);

/* The typed API's methods of AsgiRequest (asgi_api.c). */
PyObject *AsgiRequest_api_args(AsgiRequestObject *self, PyObject *unused);
PyObject *AsgiRequest_respond(AsgiRequestObject *self, PyObject *args);

/* A complete response: holds it for the batch's flush (true) when the loop is running a batch and the
 * whole response is still in ex.out; else (false) the caller writes it now. */
bool mt_asgi_hold(AsgiRequestObject *self);
/* As an exchange of the batch begins: past the batch's deadline, writes what is held. */
void mt_asgi_batch_checkpoint(mt_asgi_t *a);

/* Raises RuntimeError if the exchange has ended; otherwise marks this thread's writes as never waiting. */
int mt_asgi_check_open(AsgiRequestObject *self);

/* Records an answer on the exchange's connection c: its access log line and its metrics, under the API route's label or
 * the ASGI application's. */
void mt_asgi_record(AsgiRequestObject *self, mt_conn_t *c, int status, unsigned long long bytes);

/* Frees an accepted WebSocket's buffers and compression state. */
void mt_asgi_ws_free(asgi_ws_t *ws);

/* The WebSocket methods of AsgiRequest (asgi_ws.c). */
PyObject *AsgiRequest_ws_accept(AsgiRequestObject *self, PyObject *args);
PyObject *AsgiRequest_ws_receive(AsgiRequestObject *self, PyObject *may_read);
PyObject *AsgiRequest_ws_send(AsgiRequestObject *self, PyObject *data);
PyObject *AsgiRequest_ws_send_message(AsgiRequestObject *self, PyObject *message);
PyObject *AsgiRequest_ws_close(AsgiRequestObject *self, PyObject *args);
PyObject *AsgiRequest_ws_keepalive(AsgiRequestObject *self, PyObject *args);
PyObject *AsgiRequest_deny(AsgiRequestObject *self, PyObject *unused);

#endif
