/* The typed API's answers that need no Python: what the API router decided
 * on its own (405 with Allow, OPTIONS, the 308 of the trailing-slash policy,
 * 422 for a path segment that does not convert) and constant routes. A
 * handler thread writes them without the GIL, through the response writer
 * (respond.h), which frames them (HEAD gets the fields and no body). The
 * routes' texts are composed by the glue when the API is loaded
 * (src/python/api.c) and stay unchanged while requests are served. */
#ifndef MT_ANSWER_H
#define MT_ANSWER_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "conn.h"
#include "http1.h"
#include "respond.h"
#include "router.h"

/* What C answers for one route. */
typedef struct mt_answer_route {
    int status;          /* a constant route's status (0: the route calls Python) */
    char *content_type;  /* a constant route's Content-Type */
    char *body;          /* a constant route's body */
    size_t body_len;     /* ... and its length */
    char **invalid_body; /* per parameter: the JSON body of the 422 for it */
} mt_answer_route_t;

/* Writes on c the answer of match m (any status but MT_ROUTE_FOUND of a
 * Python route and MT_ROUTE_NONE): `route` is the matched route's (FOUND and
 * INVALID; NULL otherwise), path[0, plen) and `query` (a span of c's buffer)
 * the request's, for the Location of a 308. `out` and `scratch` are the
 * handler's reusable buffers; both are left empty. *keep_alive says on entry
 * whether the connection may stay open (the request's wish, no draining) and
 * on return whether it will. Returns 0, or a negative errno when the
 * connection must be closed (the write failed, out of memory). */
int mt_answer_send(mt_conn_t *c, mt_buf_t *out, mt_buf_t *scratch, const mt_route_match_t *m,
                   const mt_answer_route_t *route, const char *path, size_t plen, mt_span_t query, bool *keep_alive);

/* Writes an answer of the API's own (401, 403 of its authentication):
 * `status`, the extra fields, and the JSON body[0, blen). *keep_alive as for
 * mt_answer_send. Returns 0 or a negative errno. */
int mt_answer_json(mt_conn_t *c, mt_buf_t *out, bool *keep_alive, int status, const mt_field_t *fields, int nfields,
                   const char *body, size_t blen);

/* Writes on c the refusal of a rate limit: 429 {"detail": "Too Many
 * Requests"} or, when the limits' store cannot decide and the policy is to
 * refuse, 503 {"detail": "Service Unavailable"}; with Retry-After
 * `retry_after` (seconds, a NUL-terminated number) and the RateLimit-Policy
 * and RateLimit fields (policy[0, plen) and `ratelimit`, NUL-terminated;
 * NULL: none). `out` and *keep_alive as for mt_answer_send. Returns 0 or a
 * negative errno (close the connection). */
int mt_answer_limited(mt_conn_t *c, mt_buf_t *out, bool *keep_alive, int status, const char *retry_after,
                      const char *policy, size_t plen, const char *ratelimit);

#endif
