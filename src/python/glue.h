/* The CPython glue of meltemi._core: the only code that includes Python.h and
 * knows the GIL. Shared declarations of the glue's files. */
#ifndef MT_GLUE_H
#define MT_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdbool.h>

#include "buf.h"
#include "common.h"
#include "compress.h"
#include "conn.h"
#include "router.h"
#include "server.h"

/* Interned strings, created once per module (bjoern's prebuilt keys,
 * msgspec's module state). Every member is a PyObject * the state owns, so
 * the struct can be visited and cleared as an array. */
#define MT_COMMON_FIELDS_MAX 32
typedef struct mt_py_strings {
    PyObject *REQUEST_METHOD, *SCRIPT_NAME, *PATH_INFO, *QUERY_STRING, *REQUEST_URI, *RAW_URI, *SERVER_PROTOCOL,
        *SERVER_NAME, *SERVER_PORT, *REMOTE_ADDR, *REMOTE_PORT, *CONTENT_TYPE, *CONTENT_LENGTH;
    PyObject *wsgi_input, *wsgi_version, *wsgi_url_scheme, *wsgi_errors, *wsgi_multithread, *wsgi_multiprocess,
        *wsgi_run_once, *wsgi_file_wrapper, *wsgi_input_terminated;
    PyObject *HTTP_1_0, *HTTP_1_1, *empty, *close, *fileno, *read;
    PyObject *methods[64];                      /* REQUEST_METHOD values by llhttp method id */
    PyObject *field_keys[MT_COMMON_FIELDS_MAX]; /* environ keys of common header fields (environ.c) */
} mt_py_strings_t;

/* The module's state (multi-phase init, PEP 489): one per module object, so
 * one per interpreter. Objects reach it through their heap type
 * (mt_state_of); a Worker keeps a pointer to it, valid as long as the Worker
 * lives (an instance holds its type, the type its module). */
typedef struct mt_state {
    mt_py_strings_t str;
    PyTypeObject *Worker_Type, *Input_Type, *StartResponse_Type, *FileWrapper_Type;
    PyObject *ClientDisconnected; /* OSError subclass raised by wsgi.input */
    PyObject *RequestBodyError;   /* OSError subclass: the body timed out, was too large or malformed */
} mt_state_t;

/* The heap types, made from these specs by the module's exec function. */
extern PyType_Spec Worker_Spec, Input_Spec, StartResponse_Spec, FileWrapper_Spec;

/* The state of the module that defined obj's type (one of the types above). */
static inline mt_state_t *mt_state_of(PyObject *obj) {
    return (mt_state_t *)PyType_GetModuleState(Py_TYPE(obj));
}

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
    PyObject *access_log;   /* callable(str) or NULL */
    PyObject *error_log;    /* callable(str, BaseException) or NULL */
    unsigned compress_mask; /* MT_CODING_MASK bits of the codings offered */
    unsigned long long compress_min_size;
    bool breach_padding;       /* pad compressed HTML with a random-length comment */
    int compress_level[4];     /* by mt_coding_t */
    struct mt_static *statics; /* NULL when no directory is mounted */
    struct mt_api *api;        /* NULL without a typed API */
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
} mt_handler_t;

/* wsgi.input: reads the request body of one request. */
typedef struct InputObject {
    PyObject_HEAD mt_conn_t *conn; /* NULL once the request is over */
    int error_status;              /* set when reading failed: the status to answer with (408, 413, 400) */
} InputObject;

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
    bool no_body;              /* HEAD, 1xx, 204, 304 */
    long long declared_length; /* the application's Content-Length, or -1 */
    unsigned long long body_sent;
    int status_code;
} mt_exchange_t;

typedef struct StartResponseObject {
    PyObject_HEAD mt_exchange_t *exchange; /* NULL once the request is over */
} StartResponseObject;

typedef struct FileWrapperObject {
    PyObject_HEAD PyObject *filelike;
    Py_ssize_t blksize;
} FileWrapperObject;

/* environ.c: builds the environ dict of the request on `conn` (GIL held).
 * Returns a new reference or NULL with an exception set. */
PyObject *mt_environ_build(WorkerObject *worker, mt_conn_t *conn, PyObject *input, PyObject **uri);
int mt_environ_init_strings(mt_py_strings_t *s);
PyObject *mt_environ_template(WorkerObject *worker, PyObject *url_scheme, int multithread, int multiprocess);

/* input.c */
InputObject *mt_input_create(mt_state_t *st, mt_conn_t *conn);

/* response.c: runs the application for the request on `conn` and sends its
 * response (GIL held on entry and exit; released around blocking I/O). Leaves
 * a final write in handler->out for the caller to send without the GIL.
 * Returns whether the connection may be kept alive. */
bool mt_response_run(WorkerObject *worker, mt_conn_t *conn, mt_handler_t *handler);

/* codec.c: parses a list of content codings ("zstd, br,gzip"; case and
 * spaces free; identity allowed and ignored) into a mask of MT_CODING_MASK
 * bits, and, when `order` is given (room for 3), the codings in the order named, without
 * repeats (*count of them). Returns -1 with ValueError for an unknown name. */
long mt_codec_parse_list(const char *s, Py_ssize_t n, mt_coding_t *order, int *count);

/* encoding.c: response compression. */
/* The coding the request accepts among those offered (from its
 * Accept-Encoding field; call before the head's bytes are reused). */
mt_coding_t mt_encoding_negotiate(const WorkerObject *worker, const mt_conn_t *conn);
/* Decides, from the application's status and headers and the body's length
 * (-1 when unknown), whether the response varies by Accept-Encoding
 * (ex->vary) and is compressed (ex->compressing). */
void mt_encoding_decide(mt_exchange_t *ex, long long body_length);
/* Compresses data, appending to handler->zbuf; mode is
 * MT_COMPRESS_CONTINUE, MT_COMPRESS_FLUSH or MT_COMPRESS_END. Returns 0, or -1 with an exception. */
int mt_encoding_compress(mt_exchange_t *ex, const char *data, size_t len, int mode);

/* api.c: the typed API (meltemi.api). */
typedef struct mt_api mt_api_t;
typedef enum mt_api_result {
    MT_API_NONE,     /* no route: the WSGI application answers */
    MT_API_PYTHON,   /* a Python route: handler->route and ->match say which */
    MT_API_ANSWERED, /* answered in C (405, OPTIONS, 422, 308, a constant route) */
} mt_api_result_t;
/* From API.c_routes() (GIL held). NULL with an exception. */
mt_api_t *mt_api_create(PyObject *spec);
void mt_api_destroy(mt_api_t *api);
/* Adds API_METHODS and API_PARAM_TYPES (tuples of str: the methods and the
 * path parameter types the router knows) to the module. 0, or -1 with an
 * exception. */
int mt_api_add_constants(PyObject *module);
/* Matches the request on c, without the GIL; answers it when C can. */
mt_api_result_t mt_api_route_request(WorkerObject *worker, mt_conn_t *c, mt_handler_t *handler, bool *keep_alive);
/* Calls the matched route's endpoint like a WSGI application (GIL held).
 * NULL with an exception, or with *bad_status set and no exception when the
 * request itself is at fault. */
PyObject *mt_api_call(mt_exchange_t *ex, PyObject *start_response, mt_handler_t *handler, int *bad_status);

/* CPython 3.13 took these private helpers out of its headers: the public
 * PyObject_GetOptionalAttr (3.13) and a positional-count check of our own. */
#if PY_VERSION_HEX < 0x030D0000
#define PyObject_GetOptionalAttr _PyObject_LookupAttr
#endif

static inline bool mt_check_positional(const char *name, Py_ssize_t nargs, Py_ssize_t min, Py_ssize_t max) {
    if (nargs < min || nargs > max) {
        PyErr_Format(PyExc_TypeError, "%s() takes from %zd to %zd positional arguments (%zd given)", name, min, max,
                     nargs);
        return false;
    }
    return true;
}

/* Calls the worker's error_log with the current exception (and clears it). */
void mt_log_exception(WorkerObject *worker, const char *message);

#endif
