/* _core.Worker (worker.c): a worker process's server, the Python side of an mt_server_t, and what a
 * handler thread keeps between requests. */
#ifndef MT_PY_WORKER_H
#define MT_PY_WORKER_H

#include "accesslog.h"
#include "buf.h"
#include "compress.h"
#include "conn.h"
#include "metrics.h"
#include "module.h"
#include "router.h"
#include "server.h"

/* One listening socket's SERVER_NAME and SERVER_PORT. */
typedef struct mt_py_listener {
    PyObject *server_name;
    PyObject *server_port;
} mt_py_listener_t;

typedef struct WorkerObject {
    PyObject_HEAD mt_server_t server;
    mt_state_t *st; /* its module's state */
    bool server_ready;
    PyObject *app;
    PyObject *environ_template; /* the keys that are the same for every request */
    mt_py_listener_t *listeners;
    int nlisteners;
    mt_accesslog_t access_log; /* fd < 3: off; else the worker's own duplicate, closed with it */
    char request_id_name[65];  /* the request id's field as configured ("" none), and lowercase */
    char request_id_lower[65];
    PyObject *request_id_environ_key; /* "HTTP_X_REQUEST_ID" (NULL: no request ids) */
    PyObject *request_id_header_key;  /* "x-request-id", for the API's request.headers */
    PyObject *error_log;              /* callable(str, BaseException) or NULL */
    unsigned compress_mask;           /* MT_CODING_MASK bits of the codings offered */
    unsigned long long compress_min_size;
    bool breach_padding;       /* pad compressed HTML with a random-length comment */
    int compress_level[4];     /* by mt_coding_t */
    struct mt_static *statics; /* NULL when no directory is mounted */
    struct mt_api *api;        /* NULL without a typed API */
    Py_buffer metrics_view;    /* the shared metrics region, held while metrics_attached */
    bool metrics_attached;
    struct mt_cors *cors; /* the project-wide CORS policy (WorkerConfig.cors), or NULL */
    mt_trust_t trust;     /* the trusted proxies (config.forwarded_allow_ips) */
    struct mt_asgi *asgi; /* NULL unless an ASGI loop takes the requests (asgi.c) */
} WorkerObject;

/* What a handler thread keeps from one request to the next. */
typedef struct mt_handler {
    mt_buf_t out;       /* the response head and small bodies */
    mt_buf_t zbuf;      /* compressed output of the current chunk */
    mt_compressor_t *z; /* created on first use, reset per response */
    /* The API route of the current request (route < 0: none, the WSGI application's). */
    int route;
    mt_route_match_t match;
    char *scratch; /* the router's decoded values; 6 * max_request_line + 8 bytes */
    size_t scratch_size;
    const char *path; /* the target's path (in the connection's buffer) */
    size_t path_len;
    mt_span_t query;
    /* The API route's authentication (auth.c), decided in C: the index of the
     * scheme that accepted the request (-1: none), the verified subject (a
     * JWT's sub, an API key's name; what a rate limit keyed on "sub" counts;
     * NULL/0 when no authentication ran) and a JWT's claims (JSON), in auth_buf. */
    int auth_scheme;
    const char *auth_subject;
    size_t auth_subject_len;
    const char *auth_claims;
    size_t auth_claims_len;
    char *auth_buf; /* allocated on first use, freed with the handler */
    size_t auth_buf_size;
} mt_handler_t;

/* response.c: calls the worker's error_log with the current exception (and clears it). */
void mt_log_exception(WorkerObject *worker, const char *message);

#endif
