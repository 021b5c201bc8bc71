/* The typed API's rate limits (quota.h). */
#include "quota.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "forwarded.h"
#include "http1_write.h"

#define TICKS_PER_SECOND (1000000000ULL / MT_RL_TICK_NS)

static char *copy_bytes(const char *s, size_t n) {
    char *c = malloc(n + 1);
    if (c) {
        memcpy(c, s, n);
        c[n] = '\0';
    }
    return c;
}

void mt_quota_dispose(mt_route_limits_t *l) {
    for (int i = 0; i < l->n; i++) {
        free(l->items[i].field);
        free(l->items[i].name);
        Py_XDECREF(l->items[i].fn);
    }
    free(l->items);
    free(l->policy);
    memset(l, 0, sizeof *l);
}

static uint64_t ceil_seconds(uint64_t ticks) {
    return (ticks + TICKS_PER_SECOND - 1) / TICKS_PER_SECOND;
}

int mt_quota_parse(PyObject *specs, mt_route_limits_t *l) {
    memset(l, 0, sizeof *l);
    if (!PyTuple_Check(specs)) {
        PyErr_SetString(PyExc_TypeError, "a route's rate limits: a tuple");
        return -1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(specs);
    if (n == 0)
        return 0;
    if ((l->items = calloc((size_t)n, sizeof *l->items)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t cap = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long id, period;
        unsigned int count;
        int key;
        const char *name, *field;
        Py_ssize_t nlen, flen;
        PyObject *fn = NULL;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(specs, i), "Ks#IKiy#|O:rate limit", &id, &name, &nlen, &count, &period,
                              &key, &field, &flen, &fn))
            return -1;
        mt_limit_t *lim = &l->items[l->n++];
        if (key == MT_LIMIT_PYTHON && (fn == NULL || !PyCallable_Check(fn))) {
            PyErr_SetString(PyExc_TypeError, "a rate limit key function must be callable");
            return -1;
        }
        lim->fn = key == MT_LIMIT_PYTHON ? Py_NewRef(fn) : NULL;
        if (count == 0 || period < MT_RL_TICK_NS || key < MT_LIMIT_IP || key > MT_LIMIT_PYTHON ||
            (key == MT_LIMIT_HEADER && flen == 0) || !mt_http1_value_valid(name, (size_t)nlen) ||
            memchr(name, '"', (size_t)nlen) || memchr(name, '\\', (size_t)nlen)) {
            PyErr_SetString(PyExc_ValueError, "a bad rate limit");
            return -1;
        }
        mt_rate_init(&lim->rate, id, count, period);
        lim->key = key;
        lim->field = copy_bytes(field, (size_t)flen);
        lim->field_len = (size_t)flen;
        lim->name = copy_bytes(name, (size_t)nlen);
        cap += (size_t)nlen + 64;
        if (lim->field == NULL || lim->name == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    /* RateLimit-Policy (draft-ietf-httpapi-ratelimit-headers): a list of
     * "name";q=quota;w=window-in-seconds. */
    if ((l->policy = malloc(cap + 1)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    size_t len = 0;
    for (int i = 0; i < l->n; i++) {
        const mt_limit_t *lim = &l->items[i];
        len += (size_t)snprintf(l->policy + len, cap + 1 - len, "%s\"%s\";q=%u;w=%llu", i ? ", " : "", lim->name,
                                lim->rate.count, (unsigned long long)ceil_seconds(lim->rate.period));
    }
    l->policy_len = len;
    return 0;
}

/* The bytes a limit counts by, or false when the request has none (then the
 * limit does not apply to it). */
/* A Python key function's key, copied into buf (MT_REQUEST_FIELD_MAX bytes). */
static bool python_key(WorkerObject *w, const mt_limit_t *lim, const mt_conn_t *c, char *buf, const char **key,
                       size_t *klen) {
    char host[64];
    int port;
    mt_sock_peer_format(mt_forwarded_client(&c->fwd, &c->peer), host, sizeof host, &port);
    PyGILState_STATE gil = PyGILState_Ensure();
    bool found = false;
    PyObject *args[4] = {
        PyUnicode_DecodeLatin1(c->rbuf.data + c->req.method.off, c->req.method.len, NULL),
        PyUnicode_DecodeLatin1(c->rbuf.data + c->req.target.off, c->req.target.len, NULL),
        PyUnicode_FromString(host),
        mt_api_headers_dict(w, c),
    };
    PyObject *result = NULL;
    if (args[0] && args[1] && args[2] && args[3])
        result = PyObject_Vectorcall(lim->fn, args, 4, NULL);
    if (result && result != Py_None && !PyBytes_Check(result)) {
        PyErr_Format(PyExc_TypeError, "rate limit %s: the key function gave %R, not bytes or None", lim->name, result);
        Py_CLEAR(result);
    }
    if (result == NULL) {
        mt_log_exception(w, "rate limit key function");
    } else if (result != Py_None && PyBytes_GET_SIZE(result) > 0) {
        size_t n = (size_t)PyBytes_GET_SIZE(result);
        if (n > MT_REQUEST_FIELD_MAX)
            n = MT_REQUEST_FIELD_MAX; /* longer keys are told apart by their first 4 KiB */
        memcpy(buf, PyBytes_AS_STRING(result), n);
        *key = buf;
        *klen = n;
        found = true;
    }
    Py_XDECREF(result);
    for (int i = 0; i < 4; i++)
        Py_XDECREF(args[i]);
    PyGILState_Release(gil);
    return found;
}

static bool key_of(WorkerObject *w, const mt_limit_t *lim, const mt_conn_t *c, const mt_handler_t *h, char *buf,
                   const char **key, size_t *klen) {
    switch (lim->key) {
    case MT_LIMIT_IP: {
        const mt_peer_t *p = mt_forwarded_client(&c->fwd, &c->peer);
        if (p->addr.ss_family == AF_INET) {
            *key = (const char *)&((const struct sockaddr_in *)&p->addr)->sin_addr;
            *klen = 4;
        } else if (p->addr.ss_family == AF_INET6) {
            const struct in6_addr *a = &((const struct sockaddr_in6 *)&p->addr)->sin6_addr;
            bool mapped = IN6_IS_ADDR_V4MAPPED(a);
            *key = (const char *)a->s6_addr + (mapped ? 12 : 0);
            *klen = mapped ? 4 : 16;
        } else {
            *key = "unix"; /* every client of a Unix socket (not behind a trusted proxy) shares one budget */
            *klen = 4;
        }
        return true;
    }
    case MT_LIMIT_HEADER: {
        int rc = mt_request_header(&c->req, c->rbuf.data, lim->field, lim->field_len, buf, key, klen);
        if (rc == -E2BIG) {
            /* Too many lines to join: one budget for every such request, so
             * repeating the field is no way around the limit. */
            *key = "\0too-long";
            *klen = 9;
            return true;
        }
        return rc == 1 && *klen > 0;
    }
    case MT_LIMIT_PYTHON:
        return python_key(w, lim, c, buf, key, klen);
    default:
        *key = h->auth_subject;
        *klen = h->auth_subject_len;
        return h->auth_subject != NULL && h->auth_subject_len > 0;
    }
}

int mt_quota_store_init(mt_quota_store_t *s, PyObject *spec) {
    memset(s, 0, sizeof *s);
    if (PyTuple_Check(spec)) {
        const char *kind, *host, *password, *prefix;
        Py_ssize_t plen;
        mt_redis_config_t cfg = {0};
        int fail_open;
        if (!PyArg_ParseTuple(spec, "ssiziiipy#:rate limit store", &kind, &host, &cfg.port, &password, &cfg.db,
                              &cfg.timeout_ms, &cfg.pool, &fail_open, &prefix, &plen))
            return -1;
        if (strcmp(kind, "redis") != 0 || (size_t)plen >= sizeof s->prefix) {
            PyErr_SetString(PyExc_ValueError, "a bad rate limit store");
            return -1;
        }
        cfg.host = host;
        cfg.password = password;
        cfg.fail_open = fail_open;
        char err[256];
        if ((s->redis = mt_redislimit_create(&cfg, err, sizeof err)) == NULL) {
            PyErr_Format(PyExc_ValueError, "rate limits: Redis at %s:%d: %s", host, cfg.port, err);
            return -1;
        }
        memcpy(s->prefix, prefix, (size_t)plen);
        s->prefix_len = (size_t)plen;
        return 0;
    }
    if (PyObject_GetBuffer(spec, &s->view, PyBUF_WRITABLE) < 0)
        return -1;
    if ((s->table = mt_ratelimit_attach(s->view.buf, (size_t)s->view.len)) == NULL) {
        PyErr_SetString(PyExc_ValueError, "the rate limit table is too small or not one");
        return -1;
    }
    return 0;
}

void mt_quota_store_dispose(mt_quota_store_t *s) {
    if (s->view.obj)
        PyBuffer_Release(&s->view);
    mt_redislimit_destroy(s->redis);
    memset(s, 0, sizeof *s);
}

static void refuse_with(mt_limit_refusal_t *r, const mt_limit_t *lim, uint32_t remaining, uint64_t retry,
                        uint64_t reset) {
    retry = ceil_seconds(retry);
    r->status = 429;
    snprintf(r->retry_after, sizeof r->retry_after, "%llu", (unsigned long long)(retry ? retry : 1));
    snprintf(r->ratelimit, sizeof r->ratelimit, "\"%.64s\";r=%u;t=%llu", lim->name, remaining,
             (unsigned long long)ceil_seconds(reset));
}

/* Redis: every limit of the route in one decision. */
static bool refuse_in_redis(WorkerObject *w, const mt_quota_store_t *s, const mt_route_limits_t *l, const mt_conn_t *c,
                            const mt_handler_t *h, mt_limit_refusal_t *r) {
    char field[MT_REQUEST_FIELD_MAX];
    char keys[MT_REDIS_MAX_LIMITS][sizeof s->prefix + 17 + MT_REQUEST_FIELD_MAX];
    const char *kp[MT_REDIS_MAX_LIMITS];
    size_t klens[MT_REDIS_MAX_LIMITS];
    const mt_rate_t *rates[MT_REDIS_MAX_LIMITS];
    const mt_limit_t *which[MT_REDIS_MAX_LIMITS];
    int n = 0;
    for (int i = 0; i < l->n && n < MT_REDIS_MAX_LIMITS; i++) {
        const char *key;
        size_t klen;
        if (!key_of(w, &l->items[i], c, h, field, &key, &klen))
            continue;
        /* prefix, the limit's id in hex, ':', the key's bytes (binary-safe in RESP). */
        int k = snprintf(keys[n], sizeof keys[n], "%.*s%016llx:", (int)s->prefix_len, s->prefix,
                         (unsigned long long)l->items[i].rate.id);
        memcpy(keys[n] + k, key, klen);
        kp[n] = keys[n];
        klens[n] = (size_t)k + klen;
        rates[n] = &l->items[i].rate;
        which[n] = &l->items[i];
        n++;
    }
    if (n == 0)
        return false;
    mt_redis_verdict_t v;
    if (mt_redislimit_take(s->redis, n, rates, kp, klens, &v) < 0) {
        if (mt_redislimit_fail_open(s->redis))
            return false;
        r->status = 503;
        snprintf(r->retry_after, sizeof r->retry_after, "1");
        r->ratelimit[0] = '\0';
        return true;
    }
    if (v.allowed)
        return false;
    refuse_with(r, which[v.refused_by], 0, v.retry, v.reset);
    return true;
}

bool mt_quota_refuse(WorkerObject *w, const mt_quota_store_t *s, const mt_route_limits_t *l, const mt_conn_t *c,
                     const mt_handler_t *h, mt_limit_refusal_t *r) {
    if (s->redis)
        return refuse_in_redis(w, s, l, c, h, r);
    mt_ratelimit_t *rl = s->table;
    char buf[MT_REQUEST_FIELD_MAX];
    uint64_t now = mt_ratelimit_now(rl);
    for (int i = 0; i < l->n; i++) {
        const mt_limit_t *lim = &l->items[i];
        const char *key;
        size_t klen;
        if (!key_of(w, lim, c, h, buf, &key, &klen))
            continue;
        mt_rate_result_t res;
        mt_ratelimit_take(rl, &lim->rate, key, klen, now, &res);
        if (res.allowed)
            continue;
        refuse_with(r, lim, res.remaining, res.retry, res.reset);
        return true;
    }
    return false;
}
