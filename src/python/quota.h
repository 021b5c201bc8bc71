/* The typed API's rate limits (quota.c): the limits of a route, read from
 * RateLimit.c_spec() tuples when the API is loaded, and checked for a
 * request without the GIL against the shared table (ratelimit.h). */
#ifndef MT_PY_QUOTA_H
#define MT_PY_QUOTA_H

#include "module.h"
#include "ratelimit.h"
#include "worker.h"

/* What a limit counts by (meltemi/api/ratelimit.py KEY_*). */
typedef enum mt_limit_key {
    MT_LIMIT_IP = 0,     /* the client's address, as the trusted proxies resolve it */
    MT_LIMIT_HEADER = 1, /* a request field's value */
    MT_LIMIT_SUB = 2,    /* the authenticated subject (mt_handler_t.auth_subject) */
} mt_limit_key_t;

typedef struct mt_limit {
    mt_rate_t rate;
    int key;
    char *field; /* MT_LIMIT_HEADER: the field's name, lowercase */
    size_t field_len;
    char *name; /* the policy's name */
} mt_limit_t;

/* The limits of one route, with its RateLimit-Policy value composed once. */
typedef struct mt_route_limits {
    int n;
    mt_limit_t *items;
    char *policy;
    size_t policy_len;
} mt_route_limits_t;

/* A refusal: the fields of the 429. */
typedef struct mt_limit_refusal {
    char retry_after[24];
    char ratelimit[128];
} mt_limit_refusal_t;

/* Reads a tuple of (id, name, count, period_ns, key, field) into l (GIL
 * held). 0, or -1 with an exception; l is then left for mt_quota_dispose. */
int mt_quota_parse(PyObject *specs, mt_route_limits_t *l);
void mt_quota_dispose(mt_route_limits_t *l);

/* Takes the request on c (handler h) from each limit in turn, without the
 * GIL; stops at the first that refuses. Returns true and fills *r when one
 * refused (the limits before it have counted the request). */
bool mt_quota_refuse(mt_ratelimit_t *rl, const mt_route_limits_t *l, const mt_conn_t *c, const mt_handler_t *h,
                     mt_limit_refusal_t *r);

#endif
