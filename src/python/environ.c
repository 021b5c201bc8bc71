/* The WSGI environ (PEP 3333) of a request, built in one GIL hold from the
 * parser's spans and interned keys. */
#include <string.h>
#include <strings.h>

#include "environ.h"
#include "http1.h"

/* Request header fields that most requests carry, with their environ keys
 * made once. Other names get a key built per request. */
typedef struct common_field {
    const char *name; /* lowercase */
    size_t len;
    const char *key; /* its environ key, interned into the module state's field_keys[] */
} common_field_t;

#define FIELD(name, key)                                                                                               \
    { name, sizeof(name) - 1, key }
static const common_field_t common_fields[] = {
    FIELD("host", "HTTP_HOST"),
    FIELD("user-agent", "HTTP_USER_AGENT"),
    FIELD("accept", "HTTP_ACCEPT"),
    FIELD("accept-encoding", "HTTP_ACCEPT_ENCODING"),
    FIELD("accept-language", "HTTP_ACCEPT_LANGUAGE"),
    FIELD("connection", "HTTP_CONNECTION"),
    FIELD("cookie", "HTTP_COOKIE"),
    FIELD("referer", "HTTP_REFERER"),
    FIELD("cache-control", "HTTP_CACHE_CONTROL"),
    FIELD("origin", "HTTP_ORIGIN"),
    FIELD("authorization", "HTTP_AUTHORIZATION"),
    FIELD("content-type", "CONTENT_TYPE"),
    FIELD("content-length", "CONTENT_LENGTH"),
    FIELD("x-forwarded-for", "HTTP_X_FORWARDED_FOR"),
    FIELD("x-forwarded-proto", "HTTP_X_FORWARDED_PROTO"),
    FIELD("x-requested-with", "HTTP_X_REQUESTED_WITH"),
    FIELD("x-csrftoken", "HTTP_X_CSRFTOKEN"),
    FIELD("if-none-match", "HTTP_IF_NONE_MATCH"),
    FIELD("if-modified-since", "HTTP_IF_MODIFIED_SINCE"),
    FIELD("upgrade-insecure-requests", "HTTP_UPGRADE_INSECURE_REQUESTS"),
    FIELD("sec-fetch-site", "HTTP_SEC_FETCH_SITE"),
    FIELD("sec-fetch-mode", "HTTP_SEC_FETCH_MODE"),
    FIELD("sec-fetch-dest", "HTTP_SEC_FETCH_DEST"),
    FIELD("pragma", "HTTP_PRAGMA"),
    FIELD("range", "HTTP_RANGE"),
    FIELD("transfer-encoding", "HTTP_TRANSFER_ENCODING"),
    FIELD("expect", "HTTP_EXPECT"),
};

static PyObject *intern(const char *s) {
    return PyUnicode_InternFromString(s);
}

int mt_environ_init_strings(mt_py_strings_t *s) {
    _Static_assert(MT_ARRAY_SIZE(common_fields) <= MT_COMMON_FIELDS_MAX, "MT_COMMON_FIELDS_MAX is too small");
#define S(field, text)                                                                                                 \
    if ((s->field = intern(text)) == NULL)                                                                             \
        return -1;
    S(REQUEST_METHOD, "REQUEST_METHOD")
    S(SCRIPT_NAME, "SCRIPT_NAME")
    S(PATH_INFO, "PATH_INFO")
    S(QUERY_STRING, "QUERY_STRING")
    S(REQUEST_URI, "REQUEST_URI")
    S(RAW_URI, "RAW_URI")
    S(SERVER_PROTOCOL, "SERVER_PROTOCOL")
    S(SERVER_NAME, "SERVER_NAME")
    S(SERVER_PORT, "SERVER_PORT")
    S(REMOTE_ADDR, "REMOTE_ADDR")
    S(REMOTE_PORT, "REMOTE_PORT")
    S(CONTENT_TYPE, "CONTENT_TYPE")
    S(CONTENT_LENGTH, "CONTENT_LENGTH")
    S(wsgi_input, "wsgi.input")
    S(wsgi_version, "wsgi.version")
    S(wsgi_url_scheme, "wsgi.url_scheme")
    S(wsgi_errors, "wsgi.errors")
    S(wsgi_multithread, "wsgi.multithread")
    S(wsgi_multiprocess, "wsgi.multiprocess")
    S(wsgi_run_once, "wsgi.run_once")
    S(wsgi_file_wrapper, "wsgi.file_wrapper")
    S(wsgi_input_terminated, "wsgi.input_terminated")
    S(HTTP_1_0, "HTTP/1.0")
    S(HTTP_1_1, "HTTP/1.1")
    S(empty, "")
    S(close, "close")
    S(fileno, "fileno")
    S(read, "read")
#undef S
    /* llhttp_method_name() aborts on ids it does not know: walk its map. */
    s->methods[0] = NULL;
#define METHOD(num, name, string)                                                                                      \
    if (num < MT_ARRAY_SIZE(s->methods) && (s->methods[num] = intern(#string)) == NULL)                                \
        return -1;
    HTTP_METHOD_MAP(METHOD)
#undef METHOD
    for (size_t i = 0; i < MT_ARRAY_SIZE(s->methods); i++)
        if (s->methods[i] == NULL)
            s->methods[i] = Py_NewRef(s->empty);
    for (size_t i = 0; i < MT_ARRAY_SIZE(common_fields); i++)
        if ((s->field_keys[i] = intern(common_fields[i].key)) == NULL)
            return -1;
    for (size_t i = MT_ARRAY_SIZE(common_fields); i < MT_COMMON_FIELDS_MAX; i++)
        s->field_keys[i] = Py_NewRef(s->empty);
    return 0;
}

PyObject *mt_environ_template(WorkerObject *worker, PyObject *url_scheme, int multithread, int multiprocess) {
    const mt_py_strings_t *S = &worker->st->str;
    PyObject *env = PyDict_New(), *version = NULL;
    if (env == NULL)
        return NULL;
    PyObject *errors = PySys_GetObject("stderr"); /* borrowed */
    version = Py_BuildValue("(ii)", 1, 0);
    if (version == NULL || errors == NULL)
        goto error;
    if (PyDict_SetItem(env, S->wsgi_version, version) < 0 || PyDict_SetItem(env, S->wsgi_url_scheme, url_scheme) < 0 ||
        PyDict_SetItem(env, S->wsgi_errors, errors) < 0 ||
        PyDict_SetItem(env, S->wsgi_multithread, multithread ? Py_True : Py_False) < 0 ||
        PyDict_SetItem(env, S->wsgi_multiprocess, multiprocess ? Py_True : Py_False) < 0 ||
        PyDict_SetItem(env, S->wsgi_run_once, Py_False) < 0 ||
        PyDict_SetItem(env, S->wsgi_file_wrapper, (PyObject *)worker->st->FileWrapper_Type) < 0 ||
        PyDict_SetItem(env, S->wsgi_input_terminated, Py_True) < 0 || PyDict_SetItem(env, S->SCRIPT_NAME, S->empty) < 0)
        goto error;
    Py_DECREF(version);
    return env;
error:
    if (errors == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "sys.stderr is not set");
    Py_XDECREF(version);
    Py_DECREF(env);
    return NULL;
}

static PyObject *latin1(const char *s, size_t n) {
    return PyUnicode_DecodeLatin1(s, (Py_ssize_t)n, NULL);
}

static int set_latin1(PyObject *env, PyObject *key, const char *s, size_t n) {
    PyObject *value = latin1(s, n);
    if (value == NULL)
        return -1;
    int rc = PyDict_SetItem(env, key, value);
    Py_DECREF(value);
    return rc;
}

/* The environ key of a header field name: a common one, or "HTTP_" + the name
 * upper-cased with '-' as '_'. NULL without an exception for a name that
 * contains '_' (dropped: it could pose as another header, see
 * HTTP-CHECKLIST.md). */
static PyObject *field_key(const mt_py_strings_t *S, const char *name, size_t n, bool *special) {
    *special = false;
    for (size_t i = 0; i < MT_ARRAY_SIZE(common_fields); i++) {
        const common_field_t *f = &common_fields[i];
        if (f->len == n && strncasecmp(f->name, name, n) == 0) {
            *special = f->key[0] == 'C'; /* CONTENT_TYPE, CONTENT_LENGTH */
            return Py_NewRef(S->field_keys[i]);
        }
    }
    if (memchr(name, '_', n) != NULL)
        return NULL;
    char stack[256];
    char *key = n + 5 <= sizeof stack ? stack : PyMem_Malloc(n + 5);
    if (key == NULL)
        return PyErr_NoMemory();
    memcpy(key, "HTTP_", 5);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        key[5 + i] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    PyObject *obj = PyUnicode_FromStringAndSize(key, (Py_ssize_t)(n + 5));
    if (key != stack)
        PyMem_Free(key);
    return obj;
}

/* Adds one header field; a repeated field is joined to the earlier value
 * with ", " (RFC 9110 5.3), or "; " for Cookie (RFC 6265 5.4). */
static int add_field(const mt_py_strings_t *S, PyObject *env, const char *base, const mt_header_t *h) {
    const char *name = base + h->name.off;
    const char *value = base + h->value.off;
    size_t vlen = h->value.len;
    while (vlen && (value[vlen - 1] == ' ' || value[vlen - 1] == '\t'))
        vlen--;
    bool special;
    PyObject *key = field_key(S, name, h->name.len, &special);
    if (key == NULL)
        return PyErr_Occurred() ? -1 : 0;
    int rc = -1;
    PyObject *obj = latin1(value, vlen), *joined = NULL, *earlier = NULL;
    if (obj == NULL)
        goto done;
    int found = PyDict_GetItemRef(env, key, &earlier);
    if (found > 0) {
        bool cookie = h->name.len == 6 && strncasecmp(name, "cookie", 6) == 0;
        joined = PyUnicode_FromFormat(cookie ? "%U; %U" : "%U, %U", earlier, obj);
        if (joined == NULL)
            goto done;
        rc = PyDict_SetItem(env, key, joined);
    } else if (found == 0) {
        rc = PyDict_SetItem(env, key, obj);
    }
done:
    Py_XDECREF(earlier);
    Py_XDECREF(joined);
    Py_XDECREF(obj);
    Py_DECREF(key);
    return rc;
}

PyObject *mt_environ_build(WorkerObject *worker, mt_conn_t *conn, PyObject *input, PyObject **uri) {
    const mt_py_strings_t *S = &worker->st->str;
    mt_request_t *req = &conn->req;
    char *base = conn->rbuf.data;
    PyObject *env = PyDict_Copy(worker->environ_template);
    if (env == NULL)
        return NULL;
    mt_py_listener_t *listener = &worker->listeners[conn->listener];
    PyObject *method = S->methods[req->method_id < MT_ARRAY_SIZE(S->methods) ? req->method_id : 0];
    if (PyDict_SetItem(env, S->REQUEST_METHOD, method) < 0 ||
        PyDict_SetItem(env, S->SERVER_PROTOCOL, req->http_minor ? S->HTTP_1_1 : S->HTTP_1_0) < 0 ||
        PyDict_SetItem(env, S->SERVER_NAME, listener->server_name) < 0 ||
        PyDict_SetItem(env, S->SERVER_PORT, listener->server_port) < 0 || PyDict_SetItem(env, S->wsgi_input, input) < 0)
        goto error;

    for (uint32_t i = 0; i < req->nheaders; i++)
        if (add_field(S, env, base, &req->headers[i]) < 0)
            goto error;
    /* The request id replaces an incoming field that was not kept. */
    if (conn->request_id_len && worker->request_id_environ_key &&
        set_latin1(env, worker->request_id_environ_key, conn->request_id, conn->request_id_len) < 0)
        goto error;
    if (req->chunked && PyDict_DelItem(env, S->CONTENT_LENGTH) < 0)
        PyErr_Clear(); /* llhttp refuses both; nothing to delete is the usual case */

    /* The target: origin form "/path?query", absolute form
     * "http://authority/path?query" (whose authority replaces Host, RFC 9112
     * 3.2.2), or "*". */
    char *target = base + req->target.off;
    size_t tlen = req->target.len;
    *uri = latin1(target, tlen);
    if (*uri == NULL || PyDict_SetItem(env, S->REQUEST_URI, *uri) < 0 || PyDict_SetItem(env, S->RAW_URI, *uri) < 0)
        goto error;
    if (target[0] != '/' && tlen > 1) {
        size_t skip = target[4] == ':' ? 7 : 8; /* "http://" or "https://" */
        char *authority = target + skip;
        size_t alen = 0;
        while (skip + alen < tlen && authority[alen] != '/' && authority[alen] != '?')
            alen++;
        if (set_latin1(env, S->field_keys[0], authority, alen) < 0)
            goto error;
        target = authority + alen;
        tlen -= skip + alen;
    }
    char *hash = memchr(target, '#', tlen);
    if (hash)
        tlen = (size_t)(hash - target);
    char *query = memchr(target, '?', tlen);
    size_t plen = query ? (size_t)(query - target) : tlen;
    if (query ? set_latin1(env, S->QUERY_STRING, query + 1, tlen - plen - 1) < 0
              : PyDict_SetItem(env, S->QUERY_STRING, S->empty) < 0)
        goto error;
    /* PATH_INFO is percent-decoded, as latin-1 (PEP 3333). The raw target was
     * copied into REQUEST_URI above, so decoding in place is safe. */
    if (plen == 0 || (plen == 1 && target[0] == '*')) {
        if (set_latin1(env, S->PATH_INFO, plen ? "*" : "/", 1) < 0)
            goto error;
    } else if (set_latin1(env, S->PATH_INFO, target, mt_http1_percent_decode(target, target, plen)) < 0) {
        goto error;
    }

    /* What trusted proxies said (forwarded.h): their client, scheme and host. */
    if (conn->fwd.host.len && set_latin1(env, S->field_keys[0], base + conn->fwd.host.off, conn->fwd.host.len) < 0)
        goto error;
    if (conn->fwd.https >= 0) {
        PyObject *scheme = PyUnicode_InternFromString(conn->fwd.https ? "https" : "http");
        int rc = scheme ? PyDict_SetItem(env, S->wsgi_url_scheme, scheme) : -1;
        Py_XDECREF(scheme);
        if (rc < 0)
            goto error;
    }
    char host[64];
    int port;
    mt_sock_peer_format(mt_forwarded_client(&conn->fwd, &conn->peer), host, sizeof host, &port);
    if (set_latin1(env, S->REMOTE_ADDR, host, strlen(host)) < 0)
        goto error;
    if (port) {
        char digits[8];
        int n = snprintf(digits, sizeof digits, "%d", port);
        if (set_latin1(env, S->REMOTE_PORT, digits, (size_t)n) < 0)
            goto error;
    }
    return env;
error:
    Py_DECREF(env);
    return NULL;
}
