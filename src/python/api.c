/* The typed API's side of the glue: the routes meltemi.api compiled
 * (API.c_routes()) in the C router, with the texts of the answers C gives
 * without Python (written by src/core/api/answer.c: 405 with Allow, OPTIONS,
 * 422 for a path segment of the wrong type, the 308 of the trailing-slash
 * policy, constant routes); and, for a Python route, the call of its
 * endpoint with the request's parts, in the GIL hold that also sends the
 * response (response.c). Plus parse_query, the C query string parser the
 * API's Python side uses. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "answer.h"
#include "api.h"
#include "auth.h"
#include "cors_config.h"
#include "encoding.h"
#include "http1_write.h"
#include "quota.h"
#include "router.h"

typedef struct mt_api_route {
    PyObject *endpoint; /* NULL for a constant route */
    bool on_loop;       /* an `async def` endpoint served on the worker's loop (endpoint.on_loop) */
    bool websocket;     /* a WebSocket route (endpoint.websocket): its upgrade is checked on the loop */
    int nparams;
    mt_answer_route_t answer; /* what C answers for it (422 bodies; a constant route's response) */
    mt_route_limits_t limits; /* its rate limits (quota.h) */
} mt_api_route_t;

struct mt_api {
    mt_router_t *router;
    mt_api_route_t *routes;
    int nroutes;
    mt_cors_t *cors;        /* the API's CORS policy (API(cors=...)), or NULL */
    mt_auth_t *auth;        /* the routes' authentication (auth.c); NULL when none has any */
    bool limited;           /* some route has rate limits: they are counted in `store` */
    mt_quota_store_t store; /* (quota.h) */
};

/* The methods and parameter types the router knows: exported as
 * _core.API_METHODS and _core.API_PARAM_TYPES, which meltemi/api/routing.py
 * takes as its own. */
static const struct {
    const char *name;
    int id;
} method_ids[] = {
    {"GET", HTTP_GET},     {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},       {"PUT", HTTP_PUT},
    {"PATCH", HTTP_PATCH}, {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
};

static const char *const type_labels[MT_PARAM_NTYPES] = {"int", "float", "uuid", "bool", "str", "path"};

static char *copy_text(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

static uint64_t method_mask(PyObject *list) {
    uint64_t mask = 0;
    PyObject *methods = PyList_AsTuple(list); /* a snapshot: no borrowed item of a list */
    if (methods == NULL)
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(methods); i++) {
        const char *name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(methods, i));
        if (name == NULL) {
            Py_DECREF(methods);
            return 0;
        }
        for (size_t k = 0; k < MT_ARRAY_SIZE(method_ids); k++)
            if (strcmp(name, method_ids[k].name) == 0)
                mask |= 1ULL << method_ids[k].id;
    }
    Py_DECREF(methods);
    if (mask == 0)
        PyErr_SetString(PyExc_ValueError, "a route needs at least one known method");
    return mask;
}

/* The C types of a template's parameters, in order ("{int}" → MT_PARAM_INT). */
static int template_types(const char *tmpl, uint8_t *types, int max) {
    int n = 0;
    for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
        for (int t = 0; t < MT_PARAM_NTYPES; t++) {
            size_t len = strlen(type_labels[t]);
            if (strncmp(p + 1, type_labels[t], len) == 0 && p[1 + len] == '}' && n < max)
                types[n++] = (uint8_t)t;
        }
    }
    return n;
}

static int add_route(mt_api_t *api, int id, PyObject *spec) {
    PyObject *methods, *target, *invalid, *limits = NULL;
    const char *tmpl;
    if (!PyArg_ParseTuple(spec, "sO!OO!|O!:API route", &tmpl, &PyList_Type, &methods, &target, &PyTuple_Type, &invalid,
                          &PyTuple_Type, &limits))
        return -1;
    uint64_t mask = method_mask(methods);
    if (mask == 0)
        return -1;
    mt_api_route_t *route = &api->routes[id];
    if (limits && mt_quota_parse(limits, &route->limits) < 0)
        return -1;
    if (route->limits.n && !api->limited) {
        PyErr_Format(PyExc_ValueError, "route %s has rate limits but the API no table", tmpl);
        return -1;
    }
    uint8_t types[MT_ROUTER_MAX_PARAMS];
    route->nparams = template_types(tmpl, types, MT_ROUTER_MAX_PARAMS);
    if (route->nparams != PyTuple_GET_SIZE(invalid)) {
        PyErr_Format(PyExc_ValueError, "route %s: %zd 422 answers for %d parameters", tmpl, PyTuple_GET_SIZE(invalid),
                     route->nparams);
        return -1;
    }
    if (PyTuple_Check(target)) {
        const char *ctype, *body;
        Py_ssize_t body_len;
        mt_answer_route_t *a = &route->answer;
        if (!PyArg_ParseTuple(target, "isy#:constant route", &a->status, &ctype, &body, &body_len))
            return -1;
        if (a->status < 200 || a->status > 999 || a->status == 204 || a->status == 304 ||
            !mt_http1_value_valid(ctype, strlen(ctype))) {
            PyErr_Format(PyExc_ValueError, "constant route %s: bad status or content type", tmpl);
            return -1;
        }
        a->content_type = copy_text(ctype, strlen(ctype));
        a->body = copy_text(body, (size_t)body_len);
        a->body_len = (size_t)body_len;
        if (a->content_type == NULL || a->body == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    } else if (PyCallable_Check(target)) {
        route->endpoint = Py_NewRef(target);
        PyObject *on_loop = PyObject_GetAttrString(target, "on_loop");
        if (on_loop == NULL)
            PyErr_Clear(); /* a plain callable: served on a handler thread */
        route->on_loop = on_loop && PyObject_IsTrue(on_loop) > 0;
        Py_XDECREF(on_loop);
        PyObject *websocket = route->on_loop ? PyObject_GetAttrString(target, "websocket") : NULL;
        if (websocket == NULL)
            PyErr_Clear();
        route->websocket = websocket && PyObject_IsTrue(websocket) > 0;
        Py_XDECREF(websocket);
    } else {
        PyErr_Format(PyExc_TypeError, "route %s: the target is not callable", tmpl);
        return -1;
    }
    if (route->nparams) {
        route->answer.invalid_body = calloc((size_t)route->nparams, sizeof(char *));
        if (route->answer.invalid_body == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (int i = 0; i < route->nparams; i++) {
            char *body;
            Py_ssize_t len;
            if (PyBytes_AsStringAndSize(PyTuple_GET_ITEM(invalid, i), &body, &len) < 0)
                return -1;
            if ((route->answer.invalid_body[i] = copy_text(body, (size_t)len)) == NULL) {
                PyErr_NoMemory();
                return -1;
            }
        }
    }
    int rc = mt_router_add(api->router, tmpl, mask, id);
    if (rc == -EEXIST)
        PyErr_Format(PyExc_ValueError, "two routes for the same method and path: %s", tmpl);
    else if (rc == -EINVAL)
        PyErr_Format(PyExc_ValueError, "bad route template: %s", tmpl);
    else if (rc < 0)
        PyErr_NoMemory();
    return rc < 0 ? -1 : 0;
}

void mt_api_destroy(mt_api_t *api) {
    if (api == NULL)
        return;
    for (int i = 0; i < api->nroutes; i++) {
        mt_api_route_t *r = &api->routes[i];
        Py_XDECREF(r->endpoint);
        if (r->answer.invalid_body)
            for (int k = 0; k < r->nparams; k++)
                free(r->answer.invalid_body[k]);
        free(r->answer.invalid_body);
        free(r->answer.content_type);
        free(r->answer.body);
        mt_quota_dispose(&r->limits);
    }
    mt_quota_store_dispose(&api->store);
    free(api->routes);
    mt_auth_destroy(api->auth);
    mt_router_destroy(api->router);
    mt_cors_destroy(api->cors);
    free(api);
}

mt_api_t *mt_api_create(PyObject *spec) {
    int redirect_slash;
    PyObject *list, *cors = Py_None, *auth = Py_None, *table = Py_None;
    if (!PyArg_ParseTuple(spec, "pO!|OOO:api", &redirect_slash, &PyList_Type, &list, &cors, &auth, &table))
        return NULL;
    PyObject *routes = PyList_AsTuple(list); /* a snapshot: no borrowed item of a list */
    if (routes == NULL)
        return NULL;
    mt_api_t *api = calloc(1, sizeof *api);
    if (api == NULL || (api->router = mt_router_create(redirect_slash)) == NULL ||
        (api->routes = calloc((size_t)PyTuple_GET_SIZE(routes) + 1, sizeof(mt_api_route_t))) == NULL) {
        mt_api_destroy(api);
        Py_DECREF(routes);
        PyErr_NoMemory();
        return NULL;
    }
    /* Where the rate limits are counted (meltemi/api/ratelimit.py). */
    if (table != Py_None) {
        if (mt_quota_store_init(&api->store, table) < 0) {
            mt_api_destroy(api);
            Py_DECREF(routes);
            return NULL;
        }
        api->limited = true;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(routes); i++) {
        api->nroutes = (int)i + 1;
        if (add_route(api, (int)i, PyTuple_GET_ITEM(routes, i)) < 0) {
            mt_api_destroy(api);
            api = NULL;
            break;
        }
    }
    Py_DECREF(routes);
    if (api != NULL && (mt_cors_from_py(cors, &api->cors) < 0 ||
                        (auth != Py_None && (api->auth = mt_auth_create(auth, api->nroutes)) == NULL))) {
        mt_api_destroy(api);
        return NULL;
    }
    return api;
}

/* ---- routing, without the GIL ---- */

mt_api_result_t mt_api_route_request(WorkerObject *worker, mt_conn_t *c, mt_handler_t *h, bool *keep_alive) {
    mt_api_t *api = worker->api;
    const char *path;
    mt_span_t query;
    h->auth_scheme = -1; /* no identity unless this request's route gives one (auth.c) */
    h->auth_subject = h->auth_claims = NULL;
    h->auth_subject_len = h->auth_claims_len = 0;
    size_t plen = mt_http1_target_path(&c->req, c->rbuf.data, &path, &query);
    if (plen == 0 || path[0] != '/')
        return MT_API_NONE;
    if (h->scratch == NULL) {
        h->scratch_size = 6 * (size_t)worker->server.config.limits.max_request_line + 8;
        if ((h->scratch = malloc(h->scratch_size)) == NULL)
            return MT_API_NONE;
    }
    if (6 * plen + 8 > h->scratch_size)
        return MT_API_NONE;
    mt_router_match(api->router, c->req.method_id, path, plen, h->scratch, &h->match);
    mt_route_match_t *m = &h->match;
    if (m->status == MT_ROUTE_NONE)
        return MT_API_NONE;
    if (m->route >= 0)
        c->metric_route = mt_metrics_api_route(m->route);
    /* The API's CORS policy, where the project's does not apply (cors.h). */
    c->cors = api->cors;
    *keep_alive = !mt_server_draining(&worker->server);
    if (api->cors && mt_cors_preflight(c, &h->out, keep_alive))
        return MT_API_ANSWERED;
    bool python = m->status == MT_ROUTE_FOUND && api->routes[m->route].endpoint;
    h->query = query; /* an API key may be read from the query (auth.c) */
    /* Authentication and the guards on claims, before Python (auth.c); before
     * the rate limits too, so that a limit keyed on the subject counts the
     * verified one. Constant routes are public. */
    if (python && mt_auth_check(worker, api->auth, m->route, c, h, keep_alive) == MT_AUTH_ANSWERED)
        return MT_API_ANSWERED;
    /* Rate limits (quota.c), on Python and constant routes alike. */
    mt_limit_refusal_t refusal;
    if (m->status == MT_ROUTE_FOUND && api->routes[m->route].limits.n &&
        mt_quota_refuse(worker, &api->store, &api->routes[m->route].limits, c, h, &refusal)) {
        const mt_route_limits_t *l = &api->routes[m->route].limits;
        *keep_alive = c->req.keep_alive && !mt_server_draining(&worker->server);
        if (mt_answer_limited(c, &h->out, keep_alive, refusal.status, refusal.retry_after, l->policy, l->policy_len,
                              refusal.ratelimit[0] ? refusal.ratelimit : NULL) < 0)
            *keep_alive = false;
        c->head_consumed = true;
        return MT_API_ANSWERED;
    }
    if (python) {
        h->route = m->route;
        h->path = path;
        h->path_len = plen;
        h->query = query;
        /* An async endpoint goes to the worker's loop when one takes them (asgi_api.c). */
        return api->routes[m->route].on_loop && worker->asgi ? MT_API_LOOP : MT_API_PYTHON;
    }
    /* Answered in C (src/core/api/answer.c). */
    bool known = m->status == MT_ROUTE_FOUND || m->status == MT_ROUTE_INVALID;
    *keep_alive = c->req.keep_alive && !mt_server_draining(&worker->server);
    if (mt_answer_send(c, &h->out, &h->zbuf, m, known ? &api->routes[m->route].answer : NULL, path, plen, query,
                       keep_alive) < 0)
        *keep_alive = false;
    c->head_consumed = true;
    return MT_API_ANSWERED;
}

/* ---- the call of a Python route, GIL held ---- */

static PyObject *param_value(const char *s, const mt_route_value_t *v) {
    const char *text = s + v->off;
    switch (v->type) {
    case MT_PARAM_INT: {
        long long n;
        if (mt_router_int_value(text, v->len, &n))
            return PyLong_FromLongLong(n);
        return PyLong_FromString(text, NULL, 10); /* NUL-terminated by the router */
    }
    case MT_PARAM_FLOAT:
        return PyFloat_FromDouble(strtod(text, NULL));
    case MT_PARAM_BOOL: {
        bool yes = (v->len == 4 && strncasecmp(text, "true", 4) == 0) || (v->len == 1 && text[0] == '1') ||
                   (v->len == 3 && strncasecmp(text, "yes", 3) == 0) ||
                   (v->len == 2 && strncasecmp(text, "on", 2) == 0);
        return Py_NewRef(yes ? Py_True : Py_False);
    }
    default:
        return PyUnicode_DecodeUTF8(text, v->len, NULL);
    }
}

/* Header names, lowercase, as keys; repeated fields joined (", ", or "; "
 * for Cookie). Names with '_' are kept (a header is looked up by its own
 * name here, unlike in a WSGI environ). */
PyObject *mt_api_headers_dict(const WorkerObject *w, const mt_conn_t *c) {
    PyObject *d = PyDict_New();
    if (d == NULL)
        return NULL;
    const char *base = c->rbuf.data;
    char lower[256];
    for (uint32_t i = 0; i < c->req.nheaders; i++) {
        const mt_header_t *f = &c->req.headers[i];
        size_t n = f->name.len < sizeof lower ? f->name.len : sizeof lower;
        const char *name = base + f->name.off;
        for (size_t k = 0; k < n; k++)
            lower[k] = (char)((name[k] >= 'A' && name[k] <= 'Z') ? name[k] + 32 : name[k]);
        PyObject *key = PyUnicode_DecodeLatin1(lower, (Py_ssize_t)n, NULL);
        PyObject *value = key ? PyUnicode_DecodeLatin1(base + f->value.off, f->value.len, NULL) : NULL;
        if (value == NULL) {
            Py_XDECREF(key);
            Py_DECREF(d);
            return NULL;
        }
        PyObject *old;
        int rc = PyDict_GetItemRef(d, key, &old);
        if (rc > 0) {
            bool cookie = n == 6 && memcmp(lower, "cookie", 6) == 0;
            PyObject *joined = PyUnicode_FromFormat(cookie ? "%U; %U" : "%U, %U", old, value);
            rc = joined ? PyDict_SetItem(d, key, joined) : -1;
            Py_XDECREF(joined);
            Py_DECREF(old);
        } else if (rc == 0) {
            rc = PyDict_SetItem(d, key, value);
        }
        Py_DECREF(key);
        Py_DECREF(value);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    /* The request id replaces an incoming field that was not kept. */
    if (c->request_id_len && w->request_id_header_key) {
        PyObject *id = PyUnicode_DecodeLatin1(c->request_id, c->request_id_len, NULL);
        int rc = id ? PyDict_SetItem(d, w->request_id_header_key, id) : -1;
        Py_XDECREF(id);
        if (rc < 0) {
            Py_DECREF(d);
            return NULL;
        }
    }
    return d;
}

/* Fills args[3..nargs-1] of an endpoint's call (path, query, headers, path
 * parameters, auth); args[0..2] are the caller's. 0, or -1 (with an
 * exception, or *bad_status set without one); the caller frees args[3..]. */
static int call_args(mt_exchange_t *ex, mt_handler_t *h, PyObject **args, size_t nargs, int *bad_status) {
    mt_conn_t *c = ex->conn;
    const mt_route_match_t *m = &h->match;
    *bad_status = 0;
    if (ex->uri == NULL &&
        (ex->uri = PyUnicode_DecodeLatin1(c->rbuf.data + c->req.target.off, c->req.target.len, NULL)) == NULL)
        return -1;
    /* The path, percent-decoded as UTF-8 (into scratch, behind the values). */
    char *decoded = h->scratch + 3 * h->path_len + 4;
    size_t dlen = mt_http1_percent_decode(decoded, h->path, h->path_len);
    args[3] = PyUnicode_DecodeUTF8(decoded, (Py_ssize_t)dlen, "replace");
    args[4] = h->query.len ? PyUnicode_DecodeLatin1(c->rbuf.data + h->query.off, h->query.len, NULL)
                           : Py_NewRef(ex->worker->st->str.empty);
    args[5] = mt_api_headers_dict(ex->worker, c);
    args[6] = PyTuple_New(m->nparams);
    if (nargs == 8)
        args[7] = mt_auth_value(h);
    if (args[3] == NULL || args[4] == NULL || args[5] == NULL || args[6] == NULL || (nargs == 8 && args[7] == NULL))
        return -1;
    for (int i = 0; i < m->nparams; i++) {
        PyObject *v = param_value(h->scratch, &m->params[i]);
        if (v == NULL) {
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();
                *bad_status = 400; /* a path segment that is not UTF-8 */
            }
            return -1;
        }
        PyTuple_SET_ITEM(args[6], i, v);
    }
    c->head_consumed = true;
    return 0;
}

PyObject *mt_api_call(mt_exchange_t *ex, PyObject *start_response, mt_handler_t *h, int *bad_status) {
    const mt_api_route_t *route = &ex->worker->api->routes[h->route];
    PyObject *args[8] = {start_response, (PyObject *)ex->input, ex->method, NULL, NULL, NULL, NULL, NULL};
    size_t nargs = mt_auth_route_has(ex->worker->api->auth, h->route) ? 8 : 7; /* + auth */
    PyObject *result = NULL;
    if (call_args(ex, h, args, nargs, bad_status) == 0)
        result = PyObject_Vectorcall(route->endpoint, args, nargs, NULL);
    for (int i = 3; i < 8; i++)
        Py_XDECREF(args[i]);
    return result;
}

bool mt_api_route_websocket(const mt_api_t *api, int route) {
    return route >= 0 && route < api->nroutes && api->routes[route].websocket;
}

PyObject *mt_api_loop_args(mt_exchange_t *ex, mt_handler_t *h, int *bad_status) {
    const mt_api_route_t *route = &ex->worker->api->routes[h->route];
    PyObject *args[8] = {NULL, NULL, ex->method, NULL, NULL, NULL, NULL, NULL};
    size_t nargs = mt_auth_route_has(ex->worker->api->auth, h->route) ? 8 : 7;
    PyObject *result = NULL;
    if (call_args(ex, h, args, nargs, bad_status) == 0) {
        args[1] = route->endpoint; /* (endpoint, method, path, query, headers, params[, auth]) */
        result = PyTuple_New((Py_ssize_t)nargs - 1);
        for (size_t i = 1; result && i < nargs; i++)
            PyTuple_SET_ITEM(result, (Py_ssize_t)i - 1, Py_NewRef(args[i]));
    }
    for (int i = 3; i < 8; i++)
        Py_XDECREF(args[i]);
    return result;
}

/* ---- parse_query ---- */

/* Decodes a query component ('+' is a space, then %XX escapes, invalid
 * ones kept as they are) as UTF-8, with U+FFFD for bytes that are not (as
 * urllib.parse does). */
static PyObject *query_component(const char *s, size_t n, char *buf) {
    for (size_t i = 0; i < n; i++)
        buf[i] = s[i] == '+' ? ' ' : s[i];
    return PyUnicode_DecodeUTF8(buf, (Py_ssize_t)mt_http1_percent_decode(buf, buf, n), "replace");
}

static int add_pair(PyObject *d, PyObject *key, PyObject *value) {
    PyObject *old;
    int rc = PyDict_GetItemRef(d, key, &old);
    if (rc <= 0)
        return rc < 0 ? -1 : PyDict_SetItem(d, key, value);
    if (PyList_CheckExact(old)) {
        rc = PyList_Append(old, value);
        Py_DECREF(old);
        return rc;
    }
    PyObject *list = PyList_New(2);
    if (list) {
        PyList_SET_ITEM(list, 0, Py_NewRef(old));
        PyList_SET_ITEM(list, 1, Py_NewRef(value));
    }
    Py_DECREF(old);
    rc = list ? PyDict_SetItem(d, key, list) : -1;
    Py_XDECREF(list);
    return rc;
}

/* parse_query(qs: str) -> dict: "a=1&b=x+y&a=2" → {"a": ["1", "2"], "b": "x y"};
 * pairs split at '&', empty pairs skipped, a key without '=' has the value "". */
static PyObject *mt_api_parse_query(PyObject *module, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "parse_query() takes a str");
        return NULL;
    }
    Py_ssize_t n;
    PyObject *holder = NULL;
    const char *s;
    if (PyUnicode_KIND(arg) == PyUnicode_1BYTE_KIND) {
        s = (const char *)PyUnicode_DATA(arg); /* latin-1: the bytes as they came */
        n = PyUnicode_GET_LENGTH(arg);
    } else {
        holder = PyUnicode_AsUTF8String(arg);
        if (holder == NULL)
            return NULL;
        s = PyBytes_AS_STRING(holder);
        n = PyBytes_GET_SIZE(holder);
    }
    PyObject *empty = ((mt_state_t *)PyModule_GetState(module))->str.empty;
    PyObject *d = PyDict_New();
    char stack[512];
    char *buf = n <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc((size_t)n);
    if (d == NULL || buf == NULL) {
        Py_XDECREF(d);
        Py_XDECREF(holder);
        return buf ? NULL : PyErr_NoMemory();
    }
    Py_ssize_t pos = 0;
    while (pos < n) {
        const char *amp = memchr(s + pos, '&', (size_t)(n - pos));
        Py_ssize_t end = amp ? amp - s : n;
        if (end > pos) {
            const char *eq = memchr(s + pos, '=', (size_t)(end - pos));
            Py_ssize_t kend = eq ? eq - s : end;
            PyObject *key = query_component(s + pos, (size_t)(kend - pos), buf);
            PyObject *value =
                key ? (eq ? query_component(eq + 1, (size_t)(end - kend - 1), buf) : Py_NewRef(empty)) : NULL;
            int rc = value ? add_pair(d, key, value) : -1;
            Py_XDECREF(key);
            Py_XDECREF(value);
            if (rc < 0) {
                Py_CLEAR(d);
                break;
            }
        }
        pos = end + 1;
    }
    if (buf != stack)
        PyMem_Free(buf);
    Py_XDECREF(holder);
    return d;
}

int mt_api_add_constants(PyObject *module) {
    PyObject *methods = PyTuple_New(MT_ARRAY_SIZE(method_ids));
    PyObject *types = PyTuple_New(MT_PARAM_NTYPES);
    int rc = methods && types ? 0 : -1;
    for (Py_ssize_t i = 0; rc == 0 && i < (Py_ssize_t)MT_ARRAY_SIZE(method_ids); i++) {
        PyObject *name = PyUnicode_FromString(method_ids[i].name);
        rc = name ? PyTuple_SetItem(methods, i, name) : -1;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < MT_PARAM_NTYPES; i++) {
        PyObject *label = PyUnicode_FromString(type_labels[i]);
        rc = label ? PyTuple_SetItem(types, i, label) : -1;
    }
    if (rc == 0)
        rc = PyModule_AddObjectRef(module, "API_METHODS", methods);
    if (rc == 0)
        rc = PyModule_AddObjectRef(module, "API_PARAM_TYPES", types);
    Py_XDECREF(methods);
    Py_XDECREF(types);
    return rc;
}

PyMethodDef mt_api_methods[] = {
    {"parse_query", mt_api_parse_query, METH_O,
     "parse_query(qs, /)\n--\n\nA query string's keys and values as a dict, decoded ('+' and %XX, UTF-8); repeated "
     "keys give lists."},
    {NULL, NULL, 0, NULL},
};
