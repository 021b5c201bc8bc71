/* Running a WSGI application or API endpoint and sending its response (response.c): the exchange
 * between start_response, the body iterator and the response writer. */
#ifndef MT_PY_RESPONSE_H
#define MT_PY_RESPONSE_H

#include "cors.h"
#include "input.h"
#include "worker.h"

/* The state of one request/response exchange, on the handler thread's stack. */
typedef struct mt_exchange {
    WorkerObject *worker;
    mt_conn_t *conn;
    InputObject *input;
    PyObject *status;  /* from start_response */
    PyObject *headers; /* from start_response */
    PyObject *method;  /* for HEAD and the access log (borrowed from the module state) */
    PyObject *uri;     /* the request target, for the access log */
    mt_buf_t *out;     /* the response head (and small bodies), written in one go */
    mt_handler_t *handler;
    mt_coding_t coding; /* what the request's Accept-Encoding allows us (identity for HEAD) */
    bool decided;       /* the compression decision below is made */
    bool compressing;   /* the body goes out compressed with `coding` */
    bool vary;          /* the response depends on Accept-Encoding: say so in Vary */
    bool compress_started;
    bool compress_ended;
    bool pad;        /* BREACH mitigation: random-length padding before the end of the stream */
    bool head_built; /* the head is in `out` (or was sent) */
    bool head_sent;  /* bytes of the response went on the wire */
    bool failed;     /* the client went away: nothing more can be sent */
    bool keep_alive;
    bool chunked;              /* the body goes out with chunked framing */
    bool trailers;             /* trailer fields follow the body (ASGI: the client sent "TE: trailers") */
    bool no_body;              /* HEAD, 1xx, 204, 304 */
    long long declared_length; /* the application's Content-Length, or -1 */
    unsigned long long body_sent;
    int status_code;
    mt_cors_decision_t cors; /* decided before the application runs, while the head is intact */
} mt_exchange_t;

/* start_response (and its write()): may be called from a thread of the
 * application's other than the handler's; `lock` serializes those calls with
 * each other and with the end of the request, which clears `exchange`. */
typedef struct StartResponseObject {
    PyObject_HEAD mt_exchange_t *exchange; /* NULL once the request is over */
    pthread_mutex_t lock;
} StartResponseObject;

/* response.c: runs the application for the request on `conn` and sends its
 * response (GIL held on entry and exit; released around blocking I/O). Leaves
 * a final write in handler->out for the caller to send without the GIL.
 * Returns whether the connection may be kept alive. */
bool mt_response_run(WorkerObject *worker, mt_conn_t *conn, mt_handler_t *handler);

/* The steps of mt_response_run, for the ASGI glue (asgi.c), which sets ex->status
 * ("200 OK") and ex->headers (a list of (str, str)) from http.response.start.
 * Each returns 0, or -1 with an exception set (ClientDisconnected when the
 * client went away: ex->failed). */
int mt_response_head(mt_exchange_t *ex, long long known_length);                     /* the head into ex->out */
int mt_response_known(mt_exchange_t *ex, PyObject *const *chunks, Py_ssize_t count); /* a whole body of bytes */
int mt_response_chunk(mt_exchange_t *ex, const char *data, size_t len);              /* a part of a streamed body */
int mt_response_end(mt_exchange_t *ex); /* the end of the body, into ex->out */
/* The last part of a streamed body (its compressed stream ends here; small
 * bytes wait in ex->out with the head). */
int mt_response_last(mt_exchange_t *ex, const char *data, size_t len);
/* One trailer field after mt_response_end, validated as a header field and
 * against the fields a trailer section may not carry (ValueError naming the
 * rule); written into ex->out only when ex->trailers and the body is chunked,
 * else checked and dropped. mt_response_trailers_end closes the section. */
int mt_response_trailer(mt_exchange_t *ex, const char *name, size_t nlen, const char *value, size_t vlen);
int mt_response_trailers_end(mt_exchange_t *ex);
int mt_response_flush(mt_exchange_t *ex); /* sends what ex->out holds */
/* Replaces what was prepared and not sent by the server's error answer. */
void mt_response_error(mt_exchange_t *ex, int status, const char *detail, bool keep_alive);

#endif
