/* The ASGI bridge: a worker's asyncio loop (meltemi/asgi/) takes requests off
 * the server's queue with asgi_take() when the queue's eventfd wakes it, and
 * drives each exchange through an AsgiRequest: the HTTP scope (built here
 * from the parsed head), the body read without blocking (None: wait until
 * the socket is readable), and the response through the same steps as WSGI
 * (response.c: the response writer, compression, the output queue). The
 * WebSocket half of AsgiRequest (after a valid handshake) is asgi_ws.c.
 *
 * Thread: everything here runs on the loop's thread with the GIL held; its
 * writes never wait (mt_conn_never_wait): what the socket does not take is
 * queued, and body() reports when the queue is over the high-water mark, so
 * that send() awaits the I/O thread's on_drained wake-up. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "asgi.h"
#include "asgi_request.h"
#include "auth.h"
#include "forwarded.h"
#include "encoding.h"
#include "http1_write.h"
#include "respond.h"
#include "response.h"
#include "ws_handshake.h"

/* ---- the loop's side of the queue ---- */

/* I/O thread (or a producer), out_lock held: notes c and wakes the loop. */
static void on_drained(void *ctx, mt_conn_t *c) {
    mt_asgi_t *a = ctx;
    pthread_mutex_lock(&a->lock);
    if (a->ndrained == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        mt_conn_t **grown = realloc(a->drained, cap * sizeof *grown);
        if (grown) {
            a->drained = grown;
            a->cap = cap;
        }
    }
    if (a->ndrained < a->cap)
        a->drained[a->ndrained++] = c;
    pthread_mutex_unlock(&a->lock);
    uint64_t one = 1;
    while (write(a->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void mt_asgi_free(mt_asgi_t *a) {
    if (a == NULL)
        return;
    if (a->efd >= 0)
        close(a->efd);
    pthread_mutex_destroy(&a->lock);
    free(a->drained);
    free(a->pending); /* empty: the I/O thread exited, so every connection was handed back */
    for (int i = 0; i < a->nservers; i++)
        Py_XDECREF(a->servers[i]);
    PyMem_Free(a->servers);
    Py_XDECREF(a->scope_template);
    Py_XDECREF(a->extensions_trailers);
    for (int i = 0; i < MT_ASGI_NKEYS; i++)
        Py_XDECREF(a->keys[i]);
    for (int i = 0; i < 2; i++) {
        Py_XDECREF(a->http_versions[i]);
        Py_XDECREF(a->schemes[i]);
    }
    for (size_t i = 0; i < MT_ARRAY_SIZE(a->status_lines); i++)
        Py_XDECREF(a->status_lines[i]);
    mt_asgi_ws_dispose(a);
    for (size_t i = 0; i < a->nheld; i++)
        Py_DECREF(a->held[i]);
    PyMem_Free(a->held);
    Py_XDECREF(a->ready);
    PyMem_Free(a);
}

static WorkerObject *as_worker(PyObject *obj) {
    return (WorkerObject *)obj;
}

static int check_worker(PyObject *module, PyObject *obj) {
    mt_state_t *st = PyModule_GetState(module);
    if (!Py_IS_TYPE(obj, st->Worker_Type)) {
        PyErr_SetString(PyExc_TypeError, "expected a meltemi._core.Worker");
        return -1;
    }
    return 0;
}

static PyObject *server_tuple(mt_py_listener_t *l) {
    PyObject *port = PyUnicode_GET_LENGTH(l->server_port) ? PyLong_FromUnicodeObject(l->server_port, 10) : NULL;
    if (port == NULL) {
        PyErr_Clear();
        port = Py_NewRef(Py_None);
    }
    PyObject *t = PyTuple_Pack(2, l->server_name, port);
    Py_DECREF(port);
    return t;
}

/* What every scope of the worker shares: the "server" per listener, the template. */
static int scope_setup(WorkerObject *w, mt_asgi_t *a) {
    a->servers = PyMem_Calloc((size_t)(w->nlisteners ? w->nlisteners : 1), sizeof *a->servers);
    if (a->servers == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < w->nlisteners; i++) {
        if ((a->servers[i] = server_tuple(&w->listeners[i])) == NULL)
            return -1;
        a->nservers = i + 1;
    }
    const mt_py_strings_t *S = &w->st->str;
    PyObject *scheme = PyDict_GetItemWithError(w->environ_template, S->wsgi_url_scheme);
    if (scheme == NULL) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_RuntimeError, "no url scheme");
        return -1;
    }
    a->scope_template =
        Py_BuildValue("{s:s,s:{s:s,s:s},s:O,s:s,s:{s:{}}}", "type", "http", "asgi", "version", "3.0", "spec_version",
                      "2.4", "scheme", scheme, "root_path", "", "extensions", "http.response.pathsend");
    if (a->scope_template == NULL)
        return -1;
    a->extensions_trailers = Py_BuildValue("{s:{},s:{}}", "http.response.pathsend", "http.response.trailers");
    if (a->extensions_trailers == NULL)
        return -1;
    static const char *const key_names[MT_ASGI_NKEYS] = {
        [MT_ASGI_METHOD] = "method",         [MT_ASGI_HTTP_VERSION] = "http_version",
        [MT_ASGI_SERVER] = "server",         [MT_ASGI_CLIENT] = "client",
        [MT_ASGI_SCHEME] = "scheme",         [MT_ASGI_HEADERS] = "headers",
        [MT_ASGI_EXTENSIONS] = "extensions", [MT_ASGI_QUERY_STRING] = "query_string",
        [MT_ASGI_RAW_PATH] = "raw_path",     [MT_ASGI_PATH] = "path",
    };
    for (int i = 0; i < MT_ASGI_NKEYS; i++)
        if ((a->keys[i] = PyUnicode_InternFromString(key_names[i])) == NULL)
            return -1;
    if ((a->http_versions[0] = PyUnicode_InternFromString("1.0")) == NULL ||
        (a->http_versions[1] = PyUnicode_InternFromString("1.1")) == NULL ||
        (a->schemes[0] = PyUnicode_InternFromString("http")) == NULL ||
        (a->schemes[1] = PyUnicode_InternFromString("https")) == NULL)
        return -1;
    if (mt_asgi_ws_init(a) < 0)
        return -1;
    if ((a->ready = PyList_New(0)) == NULL)
        return -1;
    return 0;
}

/* asgi_enable(worker): the worker's requests go to an event loop instead of
 * handler threads. Before start(). Returns the eventfd the loop watches. */
static PyObject *asgi_enable(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    WorkerObject *w = as_worker(arg);
    if (!w->server_ready || w->asgi) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_enable: a new Worker, once");
        return NULL;
    }
    mt_asgi_t *a = PyMem_Calloc(1, sizeof *a);
    if (a == NULL)
        return PyErr_NoMemory();
    pthread_mutex_init(&a->lock, NULL);
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->asgi = a;
    if (a->efd < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (scope_setup(w, a) < 0)
        return NULL;
    w->server.queue.notify_fd = a->efd;
    w->server.config.on_drained = on_drained;
    w->server.config.drained_ctx = a;
    return PyLong_FromLong(a->efd);
}

/* api_loop_enable(worker): the typed API's async routes go to an event loop
 * (asgi_api.c); everything else stays the handler threads'. Before start().
 * Returns the eventfd the loop watches. */
static PyObject *api_loop_enable(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    WorkerObject *w = as_worker(arg);
    if (!w->server_ready || w->asgi || w->api == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "api_loop_enable: a new Worker with an API, once");
        return NULL;
    }
    mt_asgi_t *a = PyMem_Calloc(1, sizeof *a);
    if (a == NULL)
        return PyErr_NoMemory();
    pthread_mutex_init(&a->lock, NULL);
    a->api_only = true;
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (a->efd < 0) {
        mt_asgi_free(a);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    w->asgi = a;
    if (scope_setup(w, a) < 0) /* a WebSocket route's scope */
        return NULL;
    w->server.config.on_drained = on_drained;
    w->server.config.drained_ctx = a;
    return PyLong_FromLong(a->efd);
}

static PyObject *request_new(WorkerObject *w, mt_conn_t *c);
static PyObject *end_exchange(AsgiRequestObject *self, int failed);

/* ---- held responses (write batching) ----
 *
 * One wake-up of the loop brings every request queued since the last, and the
 * loop runs them one after another. Written one by one, each response would
 * reach a client that went back to waiting after the previous one: on a
 * loopback peer (nginx in front, a load generator) every write then pays the
 * peer's wake-up, on this worker's CPU. So while the loop runs a batch (from an
 * asgi_take that brought two or more requests until asgi_flush, which the
 * runtime calls once the batch's requests ran or suspended), a complete response
 * that is still all in its exchange's buffer (a head and a body of at most
 * response.c's SMALL_BODY) waits there, and the flush writes the held responses
 * back to back. What a response waits is bounded: past HOLD_MAX_NS after the
 * batch began, the held ones are written at once and nothing more is held.
 * Streamed responses, files, WebSockets and answers after the batch are never
 * held. The deadline is checked at each hold and as each exchange of the batch
 * begins (mt_asgi_batch_checkpoint), so a held response waits at most
 * HOLD_MAX_NS and the run of one request. An exchange whose end() came while held is ended by the flush (its
 * access log line, the connection handed back; a pipelined request found then
 * is returned by asgi_flush). */
#define HOLD_MAX_NS 500000ULL /* 0.5 ms */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Writes every held response; ends those whose end() came. */
static void flush_held(mt_asgi_t *a) {
    /* Taken out first: a finalizer run by a Py_DECREF below may start another exchange. */
    AsgiRequestObject **held = a->held;
    size_t n = a->nheld, cap = a->held_cap;
    a->held = NULL;
    a->nheld = a->held_cap = 0;
    for (size_t i = 0; i < n; i++) {
        AsgiRequestObject *r = held[i];
        r->held = false;
        if (r->conn && r->ex.out->len && !r->ex.failed && mt_response_flush(&r->ex) < 0)
            PyErr_Clear(); /* the client went away: the exchange has failed, end() closes */
    }
    for (size_t i = 0; i < n; i++) {
        AsgiRequestObject *r = held[i];
        if (r->end_due) {
            r->end_due = false;
            PyObject *next = end_exchange(r, r->end_failed);
            if (next == NULL || (next != Py_None && PyList_Append(a->ready, next) < 0))
                PyErr_WriteUnraisable((PyObject *)r);
            Py_XDECREF(next);
        }
    }
    for (size_t i = 0; i < n; i++)
        Py_DECREF(held[i]);
    if (a->held == NULL) {
        a->held = held; /* keep the array for the next batch */
        a->held_cap = cap;
    } else {
        PyMem_Free(held);
    }
}

/* Past the batch's deadline: writes what is held, and holds nothing more. */
static bool batch_expired(mt_asgi_t *a) {
    if (now_ns() <= a->batch_deadline_ns)
        return false;
    a->batching = false;
    if (a->nheld)
        flush_held(a);
    return true;
}

void mt_asgi_batch_checkpoint(mt_asgi_t *a) {
    if (a->batching && a->nheld)
        batch_expired(a);
}

bool mt_asgi_hold(AsgiRequestObject *self) {
    mt_asgi_t *a = self->worker->asgi;
    mt_exchange_t *ex = &self->ex;
    if (!a->batching || self->websocket || ex->head_sent || ex->failed || ex->out->len == 0 || batch_expired(a))
        return false;
    if (a->nheld == a->held_cap) {
        size_t cap = a->held_cap ? a->held_cap * 2 : 64;
        AsgiRequestObject **grown = PyMem_Realloc(a->held, cap * sizeof *grown);
        if (grown == NULL)
            return false; /* written now */
        a->held = grown;
        a->held_cap = cap;
    }
    a->held[a->nheld++] = (AsgiRequestObject *)Py_NewRef(self);
    self->held = true;
    return true;
}

/* asgi_flush(worker) -> [AsgiRequest]: ends the batch: writes the held
 * responses; returns the pipelined requests found while ending them. */
static PyObject *asgi_flush(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    mt_asgi_t *a = as_worker(arg)->asgi;
    if (a == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_flush: asgi_enable first");
        return NULL;
    }
    mt_conn_never_wait = true;
    a->batching = false;
    if (a->nheld)
        flush_held(a);
    if (PyList_GET_SIZE(a->ready) == 0)
        return Py_NewRef(a->ready); /* empty; the caller only iterates it */
    PyObject *ready = a->ready;
    if ((a->ready = PyList_New(0)) == NULL) {
        a->ready = ready;
        return NULL;
    }
    return ready;
}

/* asgi_take(worker) -> (requests, drained connection ids, closed): what
 * woke the loop. */
static PyObject *asgi_take(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    WorkerObject *w = as_worker(arg);
    mt_asgi_t *a = w->asgi;
    if (a == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_take: asgi_enable first");
        return NULL;
    }
    mt_conn_never_wait = true;
    uint64_t counter;
    while (read(a->efd, &counter, sizeof counter) < 0 && errno == EINTR) {
    }
    PyObject *requests = PyList_New(0), *drained = NULL, *result = NULL;
    if (requests == NULL)
        return NULL;
    bool closed = false;
    mt_queue_item_t *item;
    if (a->api_only && mt_asgi_api_take(w, requests) < 0)
        goto done;
    while (!a->api_only && (item = mt_queue_trypop(&w->server.queue, &closed)) != NULL) {
        PyObject *r = request_new(w, mt_conn_from_item(item));
        if (r == NULL || PyList_Append(requests, r) < 0) {
            Py_XDECREF(r);
            goto done;
        }
        Py_DECREF(r);
    }
    if (PyList_GET_SIZE(requests) >= 2 && !a->batching) {
        a->batching = true;
        a->batch_deadline_ns = now_ns() + HOLD_MAX_NS;
    }
    pthread_mutex_lock(&a->lock);
    drained = PyList_New((Py_ssize_t)a->ndrained);
    for (size_t i = 0; drained && i < a->ndrained; i++) {
        PyObject *id = PyLong_FromVoidPtr(a->drained[i]);
        if (id == NULL) {
            Py_CLEAR(drained);
            break;
        }
        PyList_SET_ITEM(drained, (Py_ssize_t)i, id);
    }
    a->ndrained = 0;
    pthread_mutex_unlock(&a->lock);
    if (drained)
        result = Py_BuildValue("(OOO)", requests, drained, closed ? Py_True : Py_False);
done:
    Py_DECREF(requests);
    Py_XDECREF(drained);
    return result;
}

PyMethodDef mt_asgi_methods[] = {
    {"asgi_enable", asgi_enable, METH_O,
     "asgi_enable(worker, /)\n--\n\nHands the worker's requests to an event loop; returns the eventfd it watches."},
    {"api_loop_enable", api_loop_enable, METH_O,
     "api_loop_enable(worker, /)\n--\n\nHands the typed API's async routes to an event loop; returns the eventfd it "
     "watches."},
    {"asgi_take", asgi_take, METH_O,
     "asgi_take(worker, /)\n--\n\n(requests, drained connection ids, closed): what woke the loop; two or more "
     "requests begin a batch (held responses)."},
    {"asgi_flush", asgi_flush, METH_O,
     "asgi_flush(worker, /)\n--\n\nEnds the batch: writes the held responses; returns the pipelined requests found "
     "while ending them."},
    {"asgi_ws_configure", mt_asgi_ws_configure, METH_VARARGS,
     "asgi_ws_configure(worker, max_size, deflate, /)\n--\n\nThe WebSocket limits: the largest frame or message (1009 "
     "beyond), whether permessage-deflate is negotiated."},
    {NULL, NULL, 0, NULL},
};

/* ---- the scope ---- */

static int set_bytes(PyObject *d, PyObject *key, const char *s, size_t n) {
    PyObject *v = PyBytes_FromStringAndSize(s, (Py_ssize_t)n);
    int rc = v ? PyDict_SetItem(d, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

/* Sets d[key] = v and drops the reference to v (NULL: an error already set). */
static int set_steal(PyObject *d, PyObject *key, PyObject *v) {
    int rc = v ? PyDict_SetItem(d, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

static int set_new(PyObject *d, const char *key, PyObject *v) {
    int rc = v ? PyDict_SetItemString(d, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

/* One (name, value) pair of bytes, the name lowercased. */
static PyObject *header_pair(const char *name, size_t nlen, const char *value, size_t vlen) {
    PyObject *n = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)nlen);
    if (n == NULL)
        return NULL;
    char *p = PyBytes_AS_STRING(n);
    for (size_t i = 0; i < nlen; i++)
        p[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    PyObject *v = PyBytes_FromStringAndSize(value, (Py_ssize_t)vlen);
    PyObject *t = v ? PyTuple_Pack(2, n, v) : NULL;
    Py_DECREF(n);
    Py_XDECREF(v);
    return t;
}

/* Whether the client said it accepts trailer fields: "trailers" among the
 * elements of TE (RFC 9110 10.1.4), over HTTP/1.1 (chunked framing). */
static bool accepts_trailers(const mt_conn_t *c) {
    char buf[MT_REQUEST_FIELD_MAX];
    const char *value;
    size_t len;
    if (!c->req.http_minor || mt_request_header(&c->req, c->rbuf.data, "te", 2, buf, &value, &len) != 1)
        return false;
    size_t i = 0;
    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',' && value[i] != ';')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == 8 && strncasecmp(value + start, "trailers", 8) == 0)
            return true;
        while (i < len && value[i] != ',')
            i++; /* a weight or parameters of a transfer coding */
    }
    return false;
}

static PyObject *build_scope(WorkerObject *w, mt_conn_t *c, bool te_trailers, PyObject **uri) {
    mt_asgi_t *a = w->asgi;
    const mt_py_strings_t *S = &w->st->str;
    mt_request_t *req = &c->req;
    char *base = c->rbuf.data;
    PyObject *scope = PyDict_Copy(a->scope_template), *headers = NULL;
    if (scope == NULL)
        return NULL;
    PyObject *method = S->methods[req->method_id < MT_ARRAY_SIZE(S->methods) ? req->method_id : 0];
    PyObject *const *K = a->keys;
    if (PyDict_SetItem(scope, K[MT_ASGI_METHOD], method) < 0 ||
        PyDict_SetItem(scope, K[MT_ASGI_HTTP_VERSION], a->http_versions[req->http_minor ? 1 : 0]) < 0)
        goto error;
    if (c->listener >= 0 && c->listener < a->nservers &&
        PyDict_SetItem(scope, K[MT_ASGI_SERVER], a->servers[c->listener]) < 0)
        goto error;
    /* What trusted proxies said (forwarded.h): their client and scheme, as for WSGI. */
    char host[64];
    int port;
    mt_sock_peer_format(mt_forwarded_client(&c->fwd, &c->peer), host, sizeof host, &port);
    if (set_steal(scope, K[MT_ASGI_CLIENT], host[0] ? Py_BuildValue("(si)", host, port) : Py_NewRef(Py_None)) < 0)
        goto error;
    if (c->fwd.https >= 0 && PyDict_SetItem(scope, K[MT_ASGI_SCHEME], a->schemes[c->fwd.https ? 1 : 0]) < 0)
        goto error;
    headers = PyList_New(0);
    if (headers == NULL)
        goto error;
    size_t id_len = c->request_id_len ? strlen(w->request_id_lower) : 0;
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const mt_header_t *h = &req->headers[i];
        if (id_len && h->name.len == id_len && strncasecmp(base + h->name.off, w->request_id_lower, id_len) == 0)
            continue; /* replaced by the request id below */
        PyObject *pair = header_pair(base + h->name.off, h->name.len, base + h->value.off, h->value.len);
        if (pair == NULL || PyList_Append(headers, pair) < 0) {
            Py_XDECREF(pair);
            goto error;
        }
        Py_DECREF(pair);
    }
    if (id_len) {
        PyObject *pair = header_pair(w->request_id_lower, id_len, c->request_id, c->request_id_len);
        if (pair == NULL || PyList_Append(headers, pair) < 0) {
            Py_XDECREF(pair);
            goto error;
        }
        Py_DECREF(pair);
    }
    if (PyDict_SetItem(scope, K[MT_ASGI_HEADERS], headers) < 0)
        goto error;
    if (te_trailers && PyDict_SetItem(scope, K[MT_ASGI_EXTENSIONS], a->extensions_trailers) < 0)
        goto error;
    /* The target, as environ.c reads it: origin form, absolute form (whose
     * authority the Host field already carries), or "*". */
    char *target = base + req->target.off;
    size_t tlen = req->target.len;
    *uri = PyUnicode_DecodeLatin1(target, (Py_ssize_t)tlen, NULL);
    if (*uri == NULL)
        goto error;
    if (target[0] != '/' && tlen > 1) {
        size_t skip = target[4] == ':' ? 7 : 8;
        size_t alen = 0;
        while (skip + alen < tlen && target[skip + alen] != '/' && target[skip + alen] != '?')
            alen++;
        target += skip + alen;
        tlen -= skip + alen;
    }
    char *hash = memchr(target, '#', tlen);
    if (hash)
        tlen = (size_t)(hash - target);
    char *query = memchr(target, '?', tlen);
    size_t plen = query ? (size_t)(query - target) : tlen;
    if (set_bytes(scope, K[MT_ASGI_QUERY_STRING], query ? query + 1 : "", query ? tlen - plen - 1 : 0) < 0)
        goto error;
    if (plen == 0) {
        target = "/";
        plen = 1;
    }
    if (set_bytes(scope, K[MT_ASGI_RAW_PATH], target, plen) < 0)
        goto error;
    /* Decoded in place: the raw path was copied above. */
    size_t dlen = mt_http1_percent_decode(target, target, plen);
    if (set_steal(scope, K[MT_ASGI_PATH], PyUnicode_DecodeUTF8(target, (Py_ssize_t)dlen, "replace")) < 0)
        goto error;
    Py_DECREF(headers);
    return scope;
error:
    Py_XDECREF(headers);
    Py_DECREF(scope);
    return NULL;
}

/* An upgrade to WebSocket: a valid handshake makes the scope a websocket
 * scope; an invalid one is refused here (400/426) without the application
 * (its scope stays None and the connection closes). */
static int websocket_scope(AsgiRequestObject *self) {
    mt_conn_t *c = self->conn;
    mt_ws_handshake_t hs;
    mt_ws_handshake_result_t r = mt_ws_handshake_parse(&hs, &c->req, c->rbuf.data, &self->worker->asgi->ws_handshake);
    if (r == MT_WS_HANDSHAKE_NOT_WEBSOCKET)
        return 0;
    self->ex.keep_alive = false; /* a denial response, if any, ends the connection */
    if (r != MT_WS_HANDSHAKE_OK) {
        char head[512];
        int n = mt_ws_handshake_refuse(r, &hs, head, sizeof head);
        if (n > 0) {
            struct iovec iov = {head, (size_t)n};
            mt_conn_never_wait = true;
            mt_conn_writev(c, &iov, 1);
            self->ex.status_code = r == MT_WS_HANDSHAKE_BAD_VERSION ? 426 : 400;
        }
        self->complete = true;
        Py_CLEAR(self->scope);
        return 0;
    }
    self->hs = PyMem_Malloc(sizeof *self->hs);
    if (self->hs == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *self->hs = hs;
    self->websocket = true;
    PyObject *protocols = PyList_New((Py_ssize_t)hs.nprotocols);
    if (protocols == NULL)
        return -1;
    for (uint32_t i = 0; i < hs.nprotocols; i++) {
        PyObject *p = PyUnicode_DecodeLatin1(c->rbuf.data + hs.protocols[i].off, (Py_ssize_t)hs.protocols[i].len, NULL);
        if (p == NULL) {
            Py_DECREF(protocols);
            return -1;
        }
        PyList_SET_ITEM(protocols, (Py_ssize_t)i, p);
    }
    PyObject *scheme = PyDict_GetItemString(self->scope, "scheme");
    bool secure = scheme && PyUnicode_Check(scheme) && PyUnicode_CompareWithASCIIString(scheme, "https") == 0;
    PyObject *ext = Py_BuildValue("{s:{}}", "websocket.http.response");
    if (set_new(self->scope, "subprotocols", protocols) < 0 ||
        set_new(self->scope, "type", PyUnicode_FromString("websocket")) < 0 ||
        set_new(self->scope, "scheme", PyUnicode_FromString(secure ? "wss" : "ws")) < 0 ||
        set_new(self->scope, "extensions", ext) < 0 || PyDict_DelItemString(self->scope, "method") < 0)
        return -1;
    return 0;
}

AsgiRequestObject *mt_asgi_request_create(WorkerObject *w, mt_conn_t *c) {
    mt_state_t *st = w->st;
    AsgiRequestObject *self = PyObject_New(AsgiRequestObject, st->AsgiRequest_Type);
    if (self == NULL) {
        mt_server_finish(&w->server, c, false);
        return NULL;
    }
    self->worker = (WorkerObject *)Py_NewRef(w);
    self->conn = c;
    self->handler = (mt_handler_t){.z = NULL, .route = -1};
    mt_buf_init(&self->handler.out);
    mt_buf_init(&self->handler.zbuf);
    self->error_status = 0;
    self->error_detail = NULL;
    self->started = self->complete = false;
    self->trailers_due = self->body_ended = false;
    self->scope = NULL;
    self->websocket = self->api = false;
    self->held = self->end_due = self->end_failed = false;
    self->hs = NULL;
    self->ws = NULL;
    const mt_py_strings_t *S = &st->str;
    self->ex = (mt_exchange_t){
        .worker = w,
        .conn = c,
        .out = &self->handler.out,
        .handler = &self->handler,
        .coding = mt_encoding_negotiate(w, c),
        .keep_alive = c->req.keep_alive && !mt_server_draining(&w->server),
        .no_body = c->req.method_id == HTTP_HEAD,
        .declared_length = -1,
        .status_code = 500,
        .method = S->methods[c->req.method_id < MT_ARRAY_SIZE(S->methods) ? c->req.method_id : 0],
    };
    self->te_trailers = accepts_trailers(c);
    return self;
}

static PyObject *request_new(WorkerObject *w, mt_conn_t *c) {
    AsgiRequestObject *self = mt_asgi_request_create(w, c);
    if (self == NULL)
        return NULL;
    if (mt_asgi_request_scope(self) < 0) {
        Py_DECREF(self); /* hands the connection back, closing it */
        return NULL;
    }
    return (PyObject *)self;
}

int mt_asgi_request_scope(AsgiRequestObject *self) {
    mt_conn_t *c = self->conn;
    self->scope = build_scope(self->worker, c, self->te_trailers, &self->ex.uri);
    if (self->scope == NULL || websocket_scope(self) < 0) {
        c->head_consumed = true;
        return -1;
    }
    if (!self->websocket)
        c->head_consumed = true; /* a handshake's spans are read again by the accept */
    return 0;
}

/* ---- the exchange ---- */

int mt_asgi_check_open(AsgiRequestObject *self) {
    if (self->conn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: the request has ended");
        return -1;
    }
    mt_conn_never_wait = true;
    return 0;
}

/* read() -> (bytes, more_body), or None when no byte is there yet (wait for
 * the socket to be readable). Raises RequestBodyError/ClientDisconnected. */
static PyObject *AsgiRequest_read(AsgiRequestObject *self, PyObject *unused) {
    if (mt_asgi_check_open(self) < 0)
        return NULL;
    mt_conn_t *c = self->conn;
    mt_state_t *st = self->worker->st;
    if (self->error_status) {
        PyErr_SetString(st->RequestBodyError, "the request body could not be read");
        return NULL;
    }
    size_t available = c->body.len - c->body_pos;
    if (available == 0 && !c->req.message_complete) {
        ssize_t n = mt_conn_body_fill_nowait(c, 1);
        if (n == -EAGAIN)
            Py_RETURN_NONE;
        if (n < 0) {
            if (n == -MT_ECLOSED || n == -EPIPE || n == -ECONNRESET) {
                self->error_status = 400;
                PyErr_SetString(st->ClientDisconnected, "the client closed the connection before the end of the body");
            } else if (n == -MT_EPROTO) {
                self->error_status = c->req.error_status ? c->req.error_status : 400;
                PyErr_Format(st->RequestBodyError, "invalid request body: %s",
                             c->req.error_reason ? c->req.error_reason : "malformed");
            } else {
                self->error_status = 500;
                errno = (int)-n;
                PyErr_SetFromErrno(PyExc_OSError);
            }
            return NULL;
        }
        available = c->body.len - c->body_pos;
    }
    PyObject *data = PyBytes_FromStringAndSize(available ? c->body.data + c->body_pos : "", (Py_ssize_t)available);
    if (data == NULL)
        return NULL;
    mt_conn_body_consume(c, available);
    bool more = !c->req.message_complete || c->body.len > c->body_pos;
    PyObject *r = PyTuple_Pack(2, data, more ? Py_True : Py_False);
    Py_DECREF(data);
    return r;
}

/* The body timeout passed: the client gets 408 (if nothing was sent). */
static PyObject *AsgiRequest_body_timeout(AsgiRequestObject *self, PyObject *unused) {
    self->error_status = 408;
    PyErr_SetString(self->worker->st->RequestBodyError, "the request body did not arrive in time");
    return NULL;
}

/* One item of a message's `headers`: a new tuple of two bytes, or NULL with
 * TypeError naming the message (`what`) and the item's index. */
static PyObject *header_item(PyObject *item, Py_ssize_t index, const char *what) {
    PyObject *pair = PySequence_Check(item) && !PyBytes_Check(item) ? PySequence_Tuple(item) : NULL;
    if (pair == NULL || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0)) ||
        !PyBytes_Check(PyTuple_GET_ITEM(pair, 1))) {
        Py_XDECREF(pair);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "ASGI: %s %zd must be a pair of bytes, got %R", what, index, item);
        return NULL;
    }
    return pair;
}

static PyObject *AsgiRequest_start(AsgiRequestObject *self, PyObject *args) {
    PyObject *status, *headers;
    int trailers = 0;
    if (!PyArg_ParseTuple(args, "OO|p:start", &status, &headers, &trailers) || mt_asgi_check_open(self) < 0)
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: http.response.start sent twice");
        return NULL;
    }
    if (!PyLong_CheckExact(status)) {
        PyErr_Format(PyExc_TypeError, "ASGI: http.response.start 'status' must be an int, got %.100s",
                     Py_TYPE(status)->tp_name);
        return NULL;
    }
    long code = PyLong_AsLong(status);
    if (code < 100 || code > 599) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "ASGI: invalid status %ld", code);
        return NULL;
    }
    /* The status line, made once per code (the head is built from it as for WSGI). */
    mt_asgi_t *a = self->worker->asgi;
    PyObject **cached = &a->status_lines[code - 100];
    if (*cached == NULL) {
        const char *reason = mt_http1_reason((int)code);
        if ((*cached = PyUnicode_FromFormat("%ld %s", code, reason ? reason : "Unknown")) == NULL)
            return NULL;
    }
    PyObject *line = Py_NewRef(*cached);
    PyObject *list = PyList_New(0), *iter = NULL, *item = NULL;
    if (list == NULL)
        goto error;
    if ((iter = PyObject_GetIter(headers)) == NULL) {
        PyErr_Format(PyExc_TypeError, "ASGI: http.response.start 'headers' must be an iterable, got %.100s",
                     Py_TYPE(headers)->tp_name);
        goto error;
    }
    Py_ssize_t index = 0;
    while ((item = PyIter_Next(iter)) != NULL) {
        PyObject *pair = header_item(item, index, "response header");
        if (pair == NULL)
            goto error;
        PyObject *n = PyTuple_GET_ITEM(pair, 0), *v = PyTuple_GET_ITEM(pair, 1);
        PyObject *ns = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(n), PyBytes_GET_SIZE(n), NULL);
        PyObject *vs = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), NULL);
        PyObject *t = ns && vs ? PyTuple_Pack(2, ns, vs) : NULL;
        Py_XDECREF(ns);
        Py_XDECREF(vs);
        Py_DECREF(pair);
        if (t == NULL || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            goto error;
        }
        Py_DECREF(t);
        Py_CLEAR(item);
        index++;
    }
    if (PyErr_Occurred())
        goto error;
    Py_DECREF(iter);
    Py_XSETREF(self->ex.status, line);
    Py_XSETREF(self->ex.headers, list);
    self->started = true;
    /* Trailers go out only where the body is chunked for a client that
     * accepts them; otherwise they are checked and dropped. */
    self->trailers_due = trailers;
    self->ex.trailers = trailers && self->te_trailers && !self->ex.no_body;
    Py_RETURN_NONE;
error:
    Py_XDECREF(item);
    Py_XDECREF(iter);
    Py_XDECREF(line);
    Py_XDECREF(list);
    return NULL;
}

static int check_body_message(AsgiRequestObject *self, const char *type) {
    if (mt_asgi_check_open(self) < 0)
        return -1;
    if (!self->started) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s sent before http.response.start", type);
        return -1;
    }
    if (self->complete) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s sent after the response completed", type);
        return -1;
    }
    if (self->body_ended) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s sent after the body ended (http.response.trailers is due)", type);
        return -1;
    }
    if (self->ex.failed) {
        PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away");
        return -1;
    }
    return 0;
}

/* body(data, more_body) -> whether the output queue is over its high-water
 * mark (the caller then awaits the drain before sending more). */
static PyObject *AsgiRequest_body(AsgiRequestObject *self, PyObject *args) {
    PyObject *data;
    int more;
    if (!PyArg_ParseTuple(args, "Op:body", &data, &more) || check_body_message(self, "http.response.body") < 0)
        return NULL;
    mt_exchange_t *ex = &self->ex;
    if (!PyBytes_Check(data)) {
        if (!PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
            PyErr_Format(PyExc_TypeError, "ASGI: http.response.body 'body' must be bytes, got %.100s",
                         Py_TYPE(data)->tp_name);
            return NULL;
        }
        data = PyBytes_FromObject(data);
        if (data == NULL)
            return NULL;
    } else {
        Py_INCREF(data);
    }
    int rc;
    if (!ex->head_built && !more && !ex->trailers) {
        /* The whole body in one message: Content-Length, one compressed stream, one write. */
        rc = mt_response_known(ex, &data, 1);
    } else if (!more) {
        /* The last part of a streamed body (or one chunked for its trailers): it ends the
         * compressed stream and leaves with the last chunk. */
        rc = mt_response_last(ex, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
    } else {
        rc = ex->head_built ? 0 : mt_response_head(ex, -1);
        if (rc == 0)
            rc = mt_response_chunk(ex, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
        if (rc == 0 && !ex->head_sent)
            rc = mt_response_flush(ex); /* the head goes out now (server-sent events) */
    }
    Py_DECREF(data);
    if (rc == 0 && !more) {
        rc = mt_response_end(ex);
        if (self->trailers_due) {
            self->body_ended = true; /* what is held waits for the trailers (a bad one still gets a 500) */
        } else {
            self->complete = true;
            if (rc == 0 && !mt_asgi_hold(self))
                rc = mt_response_flush(ex);
        }
    }
    if (rc < 0)
        return NULL;
    return PyBool_FromLong(more && mt_conn_output_full(self->conn));
}

/* trailers(headers, more_trailers): the http.response.trailers extension.
 * Each field is checked as a header field is, and against the fields a
 * trailer section may not carry; they go out after the last chunk when the
 * body is chunked for a client that sent "TE: trailers", else are dropped.
 * The last message sends what the body left held. */
static PyObject *AsgiRequest_trailers(AsgiRequestObject *self, PyObject *args) {
    PyObject *headers, *iter = NULL, *item = NULL;
    int more;
    if (!PyArg_ParseTuple(args, "Op:trailers", &headers, &more) || mt_asgi_check_open(self) < 0)
        return NULL;
    mt_exchange_t *ex = &self->ex;
    const char *broken = NULL;
    if (!self->started)
        broken = "http.response.trailers sent before http.response.start";
    else if (!self->trailers_due)
        broken = "http.response.trailers sent, but http.response.start did not announce trailers (\"trailers\": True)";
    else if (self->complete)
        broken = "http.response.trailers sent after the response completed";
    else if (!self->body_ended)
        broken = "http.response.trailers sent before the body ended (the last http.response.body has more_body False)";
    if (broken) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s", broken);
        return NULL;
    }
    if (ex->failed) {
        PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away");
        return NULL;
    }
    if ((iter = PyObject_GetIter(headers)) == NULL) {
        PyErr_Format(PyExc_TypeError, "ASGI: http.response.trailers 'headers' must be an iterable, got %.100s",
                     Py_TYPE(headers)->tp_name);
        return NULL;
    }
    Py_ssize_t index = 0;
    while ((item = PyIter_Next(iter)) != NULL) {
        PyObject *pair = header_item(item, index++, "trailer field");
        Py_DECREF(item);
        if (pair == NULL)
            goto error;
        PyObject *n = PyTuple_GET_ITEM(pair, 0), *v = PyTuple_GET_ITEM(pair, 1);
        int rc = mt_response_trailer(ex, PyBytes_AS_STRING(n), (size_t)PyBytes_GET_SIZE(n), PyBytes_AS_STRING(v),
                                     (size_t)PyBytes_GET_SIZE(v));
        Py_DECREF(pair);
        if (rc < 0)
            goto error;
    }
    if (PyErr_Occurred())
        goto error;
    Py_DECREF(iter);
    if (!more) {
        self->complete = true;
        if (mt_response_trailers_end(ex) < 0 || (ex->out->len && mt_response_flush(ex) < 0))
            return NULL;
    }
    Py_RETURN_NONE;
error:
    Py_DECREF(iter);
    return NULL;
}

/* pathsend(path): the http.response.pathsend extension, the file sent with
 * sendfile (the rest queued as a file range for the I/O thread). */
static PyObject *AsgiRequest_pathsend(AsgiRequestObject *self, PyObject *arg) {
    if (check_body_message(self, "http.response.pathsend") < 0)
        return NULL;
    PyObject *bytes = NULL;
    if (!PyUnicode_FSConverter(arg, &bytes))
        return NULL;
    int fd = open(PyBytes_AS_STRING(bytes), O_RDONLY | O_CLOEXEC);
    Py_DECREF(bytes);
    struct stat stbuf;
    if (fd < 0 || fstat(fd, &stbuf) < 0 || !S_ISREG(stbuf.st_mode)) {
        if (fd >= 0)
            close(fd);
        PyErr_Format(PyExc_OSError, "ASGI: http.response.pathsend: cannot send %R", arg);
        return NULL;
    }
    mt_exchange_t *ex = &self->ex;
    ex->decided = true; /* files go out as they are, as with wsgi.file_wrapper */
    ex->compressing = ex->vary = false;
    /* A file has its Content-Length: trailers announced are checked and dropped. */
    ex->trailers = false;
    self->complete = !self->trailers_due;
    self->body_ended = self->trailers_due;
    long long size = (long long)stbuf.st_size, count = size;
    int rc = mt_response_head(ex, size);
    if (rc == 0 && ex->declared_length >= 0 && ex->declared_length != size) {
        count = MT_MIN(ex->declared_length, size);
        ex->keep_alive = false;
    }
    if (rc == 0 && (ex->no_body || count == 0)) {
        rc = mt_response_end(ex);
        if (rc == 0)
            rc = mt_response_flush(ex);
    } else if (rc == 0) {
        struct iovec head = {ex->out->data, ex->out->len};
        off_t offset = 0;
        int w = mt_conn_writev_more(self->conn, &head, 1);
        if (w == 0)
            w = mt_conn_sendfile(self->conn, fd, &offset, (size_t)count);
        ex->out->len = 0;
        ex->head_sent = true;
        if (w < 0) {
            ex->keep_alive = false;
            ex->failed = true;
            PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away during sendfile");
            rc = -1;
        } else {
            ex->body_sent += (unsigned long long)count;
        }
    }
    close(fd);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void release_buffers(AsgiRequestObject *self) {
    if (self->ws) {
        mt_asgi_ws_free(self->ws);
        self->ws = NULL;
    }
    mt_buf_dispose(&self->handler.out);
    mt_buf_dispose(&self->handler.zbuf);
    if (self->handler.z) {
        mt_compressor_destroy(self->handler.z);
        self->handler.z = NULL;
    }
    free(self->handler.scratch); /* an API route's match (asgi_api.c) */
    self->handler.scratch = NULL;
    mt_auth_handler_dispose(&self->handler);
}

/* Hands the connection back (to the I/O thread, or to the caller when the
 * client pipelined another request: its AsgiRequest is returned). */
void mt_asgi_record(AsgiRequestObject *self, mt_conn_t *c, int status, unsigned long long bytes) {
    if (!self->api && c->metric_route == MT_METRICS_ROUTE_SERVER)
        c->metric_route = MT_METRICS_ROUTE_ASGI; /* an API route has its own label */
    mt_server_record(&self->worker->server, c, status, bytes, true);
}

static PyObject *hand_back(AsgiRequestObject *self, bool keep_alive) {
    mt_conn_t *c = self->conn;
    WorkerObject *w = self->worker;
    self->conn = NULL;
    /* The exchange's buffers go back now, not when the object dies (an
     * application may keep receive/send, and with them this object). */
    release_buffers(self);
    if (c->answer_status) {
        mt_asgi_record(self, c, c->answer_status, c->answer_bytes);
        c->answer_status = 0;
    }
    if (!c->req.message_complete)
        keep_alive = false; /* an unread body: reading it here could block the loop */
    mt_conn_t *next = mt_server_finish(&w->server, c, keep_alive);
    if (next == NULL)
        Py_RETURN_NONE;
    if (w->asgi->api_only) {
        /* A pipelined request: routed again by a handler thread (it may be any route). */
        mt_queue_push(&w->server.queue, &next->qitem);
        Py_RETURN_NONE;
    }
    return request_new(w, next);
}

/* end(failed): the application returned (failed: it raised, or broke the
 * protocol; the error is logged by the caller). Sends what is due (a 500,
 * or the reason the body could not be read, while nothing went out; else
 * the close that cuts a response short) and hands the connection back.
 * Returns the next pipelined request's AsgiRequest, or None. */
static PyObject *AsgiRequest_end(AsgiRequestObject *self, PyObject *arg) {
    int failed = PyObject_IsTrue(arg);
    if (failed < 0)
        return NULL;
    if (self->held) { /* the batch's flush writes the response, then ends the exchange */
        self->end_due = true;
        self->end_failed = failed;
        Py_RETURN_NONE;
    }
    return end_exchange(self, failed);
}

static PyObject *end_exchange(AsgiRequestObject *self, int failed) {
    if (self->conn == NULL)
        Py_RETURN_NONE;
    mt_conn_never_wait = true;
    mt_exchange_t *ex = &self->ex;
    if (!ex->failed) {
        if (self->error_status && !ex->head_sent) {
            mt_response_error(ex, self->error_status,
                              self->error_detail ? self->error_detail : "the request body could not be read", false);
            self->complete = true;
        } else if (failed || !self->complete) {
            if (ex->head_sent) {
                ex->out->len = 0;
                ex->keep_alive = false;
            } else {
                mt_response_error(ex, 500, NULL, ex->keep_alive);
            }
            self->complete = true;
        }
        if (ex->out->len && mt_response_flush(ex) < 0)
            PyErr_Clear();
        if (!ex->failed && self->ws == NULL) { /* a WebSocket's 101 was logged at its accept */
            self->conn->answer_status = ex->status_code;
            self->conn->answer_bytes = ex->body_sent;
        }
    }
    return hand_back(self, ex->keep_alive && !ex->failed);
}

/* peek() -> True: the client closed (or reset) the connection; False: it
 * sent more (a pipelined request); None: nothing to see. */
static PyObject *AsgiRequest_peek(AsgiRequestObject *self, PyObject *unused) {
    if (self->conn == NULL)
        Py_RETURN_TRUE;
    char byte;
    ssize_t n = recv(self->conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        Py_RETURN_FALSE;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        Py_RETURN_NONE;
    Py_RETURN_TRUE;
}

static PyObject *AsgiRequest_output_full(AsgiRequestObject *self, PyObject *unused) {
    if (self->conn == NULL || self->ex.failed)
        Py_RETURN_FALSE;
    return PyBool_FromLong(mt_conn_output_full(self->conn));
}

/* No byte went out for the write timeout: the client is given up. */
static PyObject *AsgiRequest_write_timeout(AsgiRequestObject *self, PyObject *unused) {
    if (self->conn) {
        mt_conn_fail(self->conn, -ETIMEDOUT);
        self->ex.failed = true;
        self->ex.keep_alive = false;
    }
    Py_RETURN_NONE;
}

static PyObject *AsgiRequest_fileno(AsgiRequestObject *self, PyObject *unused) {
    return PyLong_FromLong(self->conn ? self->conn->fd : -1);
}

static PyObject *AsgiRequest_get_scope(AsgiRequestObject *self, void *closure) {
    /* Read as the application's call begins: a checkpoint of the batch's deadline. */
    mt_asgi_batch_checkpoint(self->worker->asgi);
    return Py_NewRef(self->scope ? self->scope : Py_None);
}

static PyObject *AsgiRequest_get_conn_id(AsgiRequestObject *self, void *closure) {
    return PyLong_FromVoidPtr(self->conn);
}

static PyObject *AsgiRequest_get_failed(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->ex.failed);
}

static PyObject *AsgiRequest_get_complete(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->complete);
}

static PyObject *AsgiRequest_get_started(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->started);
}

static PyObject *AsgiRequest_get_websocket(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->websocket);
}

static PyObject *AsgiRequest_get_uri(AsgiRequestObject *self, void *closure) {
    return Py_NewRef(self->ex.uri ? self->ex.uri : Py_None);
}

static void AsgiRequest_dealloc(AsgiRequestObject *self) {
    if (self->conn) {
        /* Dropped without end() (a failure while it was built): closed. */
        mt_conn_never_wait = true;
        self->ex.keep_alive = false;
        PyObject *next = hand_back(self, false);
        Py_XDECREF(next);
        if (PyErr_Occurred())
            PyErr_Clear();
    }
    release_buffers(self);
    PyMem_Free(self->hs);
    Py_XDECREF(self->ex.status);
    Py_XDECREF(self->ex.headers);
    Py_XDECREF(self->ex.uri);
    Py_XDECREF(self->scope);
    Py_XDECREF(self->worker);
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyMethodDef AsgiRequest_methods[] = {
    {"ws_accept", (PyCFunction)AsgiRequest_ws_accept, METH_VARARGS,
     "ws_accept(subprotocol, headers)\n--\n\nwebsocket.accept: the 101 answer."},
    {"ws_receive", (PyCFunction)AsgiRequest_ws_receive, METH_O,
     "ws_receive(may_read)\n--\n\nThe next message dict, or a close (code, reason), or None: wait for the "
     "socket."},
    {"ws_send", (PyCFunction)AsgiRequest_ws_send, METH_O,
     "ws_send(data)\n--\n\nwebsocket.send (str: text, bytes: binary); returns whether the output is over its mark."},
    {"ws_send_message", (PyCFunction)AsgiRequest_ws_send_message, METH_O,
     "ws_send_message(message)\n--\n\nwebsocket.send given as a dict: whether the output is over its mark; "
     "NotImplemented for another message."},
    {"ws_close", (PyCFunction)AsgiRequest_ws_close, METH_VARARGS, "ws_close(code, reason='')\n--\n\nwebsocket.close."},
    {"ws_keepalive", (PyCFunction)AsgiRequest_ws_keepalive, METH_VARARGS,
     "ws_keepalive(now, interval, timeout)\n--\n\nThe idle ping: 0 nothing to do, 1 a ping went out, 2 no answer "
     "in time (close 1011 sent, the connection failed)."},
    {"deny", (PyCFunction)AsgiRequest_deny, METH_NOARGS, "deny()\n--\n\nwebsocket.close before the accept: 403."},
    {"api_args", (PyCFunction)AsgiRequest_api_args, METH_NOARGS,
     "api_args()\n--\n\nAn API route's (endpoint, method, path, query, headers, params[, auth])."},
    {"respond", (PyCFunction)AsgiRequest_respond, METH_VARARGS,
     "respond(status, headers, body=None)\n--\n\nAn API route's response: status line, (str, str) headers, and a "
     "list of bytes (the whole body), or None (the body follows through body())."},
    {"read", (PyCFunction)AsgiRequest_read, METH_NOARGS,
     "read()\n--\n\n(bytes, more_body), or None: wait for the socket to be readable."},
    {"body_timeout", (PyCFunction)AsgiRequest_body_timeout, METH_NOARGS,
     "body_timeout()\n--\n\nRecords that the body timed out (408) and raises RequestBodyError."},
    {"start", (PyCFunction)AsgiRequest_start, METH_VARARGS,
     "start(status, headers, trailers=False)\n--\n\nhttp.response.start: checks and keeps the status and headers."},
    {"body", (PyCFunction)AsgiRequest_body, METH_VARARGS,
     "body(data, more_body)\n--\n\nhttp.response.body; returns whether the output is over its high-water mark."},
    {"trailers", (PyCFunction)AsgiRequest_trailers, METH_VARARGS,
     "trailers(headers, more_trailers)\n--\n\nhttp.response.trailers: trailer fields after the body."},
    {"pathsend", (PyCFunction)AsgiRequest_pathsend, METH_O,
     "pathsend(path)\n--\n\nhttp.response.pathsend: the file with sendfile."},
    {"end", (PyCFunction)AsgiRequest_end, METH_O,
     "end(failed)\n--\n\nEnds the exchange; returns the next pipelined request, or None (also when the response is "
     "held: the batch's flush ends it)."},
    {"peek", (PyCFunction)AsgiRequest_peek, METH_NOARGS,
     "peek()\n--\n\nTrue if the client closed, False if it sent more, None if nothing happened."},
    {"output_full", (PyCFunction)AsgiRequest_output_full, METH_NOARGS,
     "output_full()\n--\n\nWhether the output queue is over its high-water mark (arms the drain wake-up)."},
    {"write_timeout", (PyCFunction)AsgiRequest_write_timeout, METH_NOARGS,
     "write_timeout()\n--\n\nGives the client up: no byte went out for the write timeout."},
    {"fileno", (PyCFunction)AsgiRequest_fileno, METH_NOARGS, "fileno()\n--\n\nThe connection's socket."},
    {NULL},
};

static PyGetSetDef AsgiRequest_getset[] = {
    {"websocket", (getter)AsgiRequest_get_websocket, NULL, "A WebSocket handshake.", NULL},
    {"scope", (getter)AsgiRequest_get_scope, NULL, "The HTTP scope (without state).", NULL},
    {"conn_id", (getter)AsgiRequest_get_conn_id, NULL, "The connection's id in asgi_take's drained list.", NULL},
    {"failed", (getter)AsgiRequest_get_failed, NULL, "The client went away.", NULL},
    {"complete", (getter)AsgiRequest_get_complete, NULL, "The response's last message was sent.", NULL},
    {"started", (getter)AsgiRequest_get_started, NULL, "http.response.start was sent.", NULL},
    {"uri", (getter)AsgiRequest_get_uri, NULL, "The request target, for the error log.", NULL},
    {NULL},
};

static PyType_Slot AsgiRequest_slots[] = {
    {Py_tp_doc, "One ASGI HTTP exchange (made by asgi_take)."},
    {Py_tp_methods, AsgiRequest_methods},
    {Py_tp_getset, AsgiRequest_getset},
    {Py_tp_dealloc, AsgiRequest_dealloc},
    {0, NULL},
};

PyType_Spec AsgiRequest_Spec = {
    .name = "meltemi._core.AsgiRequest",
    .basicsize = sizeof(AsgiRequestObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = AsgiRequest_slots,
};
