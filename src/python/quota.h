/* The typed API's rate limits (quota.c): the limits of a route, read from
 * RateLimit.c_spec() tuples when the API is loaded, and checked for a
 * request without the GIL against the store: this machine's shared table
 * (ratelimit.h) or Redis (redislimit.h). */
#ifndef MT_PY_QUOTA_H
#define MT_PY_QUOTA_H

#include "module.h"
#include "ratelimit.h"
#include "redislimit.h"
#include "worker.h"

/* What a limit counts by (meltemi/api/ratelimit.py KEY_*). */
typedef enum mt_limit_key {
    MT_LIMIT_IP = 0,     /* the client's address, as the trusted proxies resolve it */
    MT_LIMIT_HEADER = 1, /* a request field's value */
    MT_LIMIT_SUB = 2,    /* the authenticated subject (mt_handler_t.auth_subject) */
    MT_LIMIT_PYTHON = 3, /* a Python function's result (called with the GIL) */
} mt_limit_key_t;

typedef struct mt_limit {
    mt_rate_t rate;
    int key;
    char *field; /* MT_LIMIT_HEADER: the field's name, lowercase */
    size_t field_len;
    char *name;   /* the policy's name */
    PyObject *fn; /* MT_LIMIT_PYTHON: fn(method, target, client, headers) -> bytes | None */
} mt_limit_t;

/* The limits of one route, with its RateLimit-Policy value composed once. */
typedef struct mt_route_limits {
    int n;
    mt_limit_t *items;
    char *policy;
    size_t policy_len;
} mt_route_limits_t;

/* Where the limits are counted. */
typedef struct mt_quota_store {
    mt_ratelimit_t *table;  /* this machine's shared table (NULL with Redis) */
    Py_buffer view;         /* ... the memory it lies in, held while the API lives */
    mt_redislimit_t *redis; /* or Redis */
    char prefix[129];       /* Redis: the keys' prefix */
    size_t prefix_len;
} mt_quota_store_t;

/* A refusal: the status (429, or 503 when Redis cannot decide and the
 * policy is to refuse) and its fields ("" ratelimit: none). */
typedef struct mt_limit_refusal {
    int status;
    char retry_after[24];
    char ratelimit[128];
} mt_limit_refusal_t;

/* Sets up the store from API.c_routes()'s third item (GIL held): the shared
 * memory (an object with a writable buffer) or ("redis", host, port,
 * password, db, timeout_ms, pool, fail_open, prefix). 0, or -1 with an
 * exception. */
int mt_quota_store_init(mt_quota_store_t *s, PyObject *spec);
void mt_quota_store_dispose(mt_quota_store_t *s);

/* Reads a tuple of (id, name, count, period_ns, key, field) into l (GIL
 * held). 0, or -1 with an exception; l is then left for mt_quota_dispose. */
int mt_quota_parse(PyObject *specs, mt_route_limits_t *l);
void mt_quota_dispose(mt_route_limits_t *l);

/* Takes the request on c (handler h) from each limit in turn, without the
 * GIL (a Python key function takes it for its call; its exceptions are
 * logged and the limit skipped); stops at the first that refuses. Returns true and fills *r when one
 * refused (the limits before it have counted the request). */
bool mt_quota_refuse(WorkerObject *w, const mt_quota_store_t *s, const mt_route_limits_t *l, const mt_conn_t *c,
                     const mt_handler_t *h, mt_limit_refusal_t *r);

#endif
