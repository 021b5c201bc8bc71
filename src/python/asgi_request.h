/* Inside the ASGI bridge: the AsgiRequest object shared by its HTTP half
 * (asgi.c: the queue, the scope, the HTTP exchange) and its WebSocket half
 * (asgi_ws.c: accept, frames in and out, close). Not for other files.
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
    /* A close (the client's, or a protocol error) parsed after messages of
     * the same read: acted on at the next ws_read, once the application has
     * had the messages that came before it (their echo precedes the close). */
    bool pending;
    uint16_t pending_send, pending_code; /* the code our close frame carries; the one the app sees */
    bool pending_send_reason;            /* our close frame repeats the reason */
    uint8_t pending_len;
    char pending_reason[MT_WS_MAX_CONTROL];
} asgi_ws_t;

typedef struct AsgiRequestObject {
    PyObject_HEAD WorkerObject *worker;
    mt_conn_t *conn; /* NULL once handed back */
    mt_handler_t handler;
    mt_exchange_t ex;
    PyObject *scope;
    int error_status;      /* the body could not be read: the answer the client gets if nothing was sent */
    bool started;          /* http.response.start came */
    bool complete;         /* the response's last message came */
    bool websocket;        /* a valid WebSocket handshake: the scope is "websocket" */
    bool api;              /* a typed API async route (asgi_api.c): no scope; handler holds the route match */
    mt_ws_handshake_t *hs; /* until the accept */
    asgi_ws_t *ws;         /* after the accept */
} AsgiRequestObject;

/* What a WebSocket handshake may negotiate (permessage-deflate's window bits and memory level). */
extern const mt_ws_handshake_config_t mt_asgi_ws_handshake_config;

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

/* Raises RuntimeError if the exchange has ended; otherwise marks this thread's writes as never waiting. */
int mt_asgi_check_open(AsgiRequestObject *self);

/* Frees an accepted WebSocket's buffers and compression state. */
void mt_asgi_ws_free(asgi_ws_t *ws);

/* The WebSocket methods of AsgiRequest (asgi_ws.c). */
PyObject *AsgiRequest_ws_accept(AsgiRequestObject *self, PyObject *args);
PyObject *AsgiRequest_ws_read(AsgiRequestObject *self, PyObject *unused);
PyObject *AsgiRequest_ws_send(AsgiRequestObject *self, PyObject *data);
PyObject *AsgiRequest_ws_close(AsgiRequestObject *self, PyObject *args);
PyObject *AsgiRequest_deny(AsgiRequestObject *self, PyObject *unused);

#endif
