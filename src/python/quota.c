/* The typed API's rate limits (quota.h). */
#include "quota.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(specs, i), "Ks#IKiy#:rate limit", &id, &name, &nlen, &count, &period,
                              &key, &field, &flen))
            return -1;
        mt_limit_t *lim = &l->items[l->n++];
        if (count == 0 || period < MT_RL_TICK_NS || key < MT_LIMIT_IP || key > MT_LIMIT_SUB ||
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
static bool key_of(const mt_limit_t *lim, const mt_conn_t *c, const mt_handler_t *h, char *buf, const char **key,
                   size_t *klen) {
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
    default:
        *key = h->auth_subject;
        *klen = h->auth_subject_len;
        return h->auth_subject != NULL && h->auth_subject_len > 0;
    }
}

bool mt_quota_refuse(mt_ratelimit_t *rl, const mt_route_limits_t *l, const mt_conn_t *c, const mt_handler_t *h,
                     mt_limit_refusal_t *r) {
    char buf[MT_REQUEST_FIELD_MAX];
    uint64_t now = mt_ratelimit_now(rl);
    for (int i = 0; i < l->n; i++) {
        const mt_limit_t *lim = &l->items[i];
        const char *key;
        size_t klen;
        if (!key_of(lim, c, h, buf, &key, &klen))
            continue;
        mt_rate_result_t res;
        mt_ratelimit_take(rl, &lim->rate, key, klen, now, &res);
        if (res.allowed)
            continue;
        uint64_t retry = ceil_seconds(res.retry);
        snprintf(r->retry_after, sizeof r->retry_after, "%llu", (unsigned long long)(retry ? retry : 1));
        snprintf(r->ratelimit, sizeof r->ratelimit, "\"%.64s\";r=%u;t=%llu", lim->name, res.remaining,
                 (unsigned long long)ceil_seconds(res.reset));
        return true;
    }
    return false;
}
