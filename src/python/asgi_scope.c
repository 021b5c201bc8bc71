/* The making of an ASGI exchange: the scope parts every request of a worker
 * shares (made once at asgi_enable / api_loop_enable: the "server" per listener,
 * a template dict, interned keys), an AsgiRequest for a connection the loop
 * took (asgi_loop.c), and its scope built in C from the parsed head: the HTTP
 * scope, or the websocket scope after a valid handshake (an invalid one is
 * refused here, 400/426, without the application). The exchange itself is
 * asgi.c.
 *
 * Thread: the loop's thread, with the GIL held. */
#include <string.h>
#include <strings.h>

#include "asgi.h"
#include "asgi_request.h"
#include "forwarded.h"
#include "encoding.h"
#include "http1_write.h"
#include "ws_handshake.h"

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
int mt_asgi_scope_setup(WorkerObject *w, mt_asgi_t *a) {
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
    return 0;
}

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

PyObject *mt_asgi_request_new(WorkerObject *w, mt_conn_t *c) {
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
