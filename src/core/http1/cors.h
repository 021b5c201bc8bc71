/* CORS (the Fetch standard's CORS protocol), decided in C for every response
 * whoever produced it (WSGI, the API's endpoints and C answers, static files),
 * with the rules of django-cors-headers' middleware, so that a project moves
 * over with its settings (docs/api.md, "CORS").
 *
 * A policy (mt_cors_t) is made once when a worker starts and is read-only
 * afterwards, shared by the I/O thread and the handler threads. The
 * project's policy (mt_server_config_t.cors) applies to the paths its URL
 * regex matches; an API's policy (c->cors, set by the API glue when one of its
 * routes matched) to that API's routes the project's does not cover.
 *
 * Per request: mt_cors_preflight answers a preflight (OPTIONS with
 * Access-Control-Request-Method) in C; for any other answer the producer
 * calls mt_cors_decide while the request head is intact and mt_cors_respond
 * on its response writer, which appends the fields and merges Origin into
 * Vary.
 *
 * Regexes are PCRE2 (Debian's libpcre2-8), compiled anchored at the start
 * (Python's re.match) and JIT-compiled where the CPU allows. */
#ifndef MT_CORS_H
#define MT_CORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "conn.h"
#include "respond.h"

typedef struct mt_cors mt_cors_t;

typedef struct mt_cors_config {
    /* Allowed origins, "scheme://host[:port]" as in CORS_ALLOWED_ORIGINS, or
     * "null"; compared as django-cors-headers does (scheme without regard to
     * case, host and port exactly). */
    const char *const *origins;
    size_t norigins;
    /* Patterns one of which must match at the start of the Origin value. */
    const char *const *origin_regexes;
    size_t nregexes;
    /* Pattern matched at the start of the percent-decoded path; NULL: every path. */
    const char *urls_regex;
    bool allow_all;       /* any origin (echoed with credentials, else "*") */
    bool credentials;     /* Access-Control-Allow-Credentials: true */
    bool private_network; /* answer Access-Control-Request-Private-Network: true */
    /* Field values, written as given ("" is written too, as the middleware does). */
    const char *methods;
    const char *headers;
    const char *expose; /* "": no Access-Control-Expose-Headers */
    long long max_age;  /* <= 0: no Access-Control-Max-Age */
} mt_cors_config_t;

/* Creates a policy. Returns 0, -ENOMEM, or -EINVAL with a message naming the
 * bad pattern or origin in err[0, errlen). */
int mt_cors_create(mt_cors_t **out, const mt_cors_config_t *config, char *err, size_t errlen);
void mt_cors_destroy(mt_cors_t *p);

/* Whether p's URL regex matches the request's path (percent-decoded). */
bool mt_cors_path_applies(const mt_cors_t *p, const mt_request_t *req, const char *base);

/* Whether p allows `origin` (the Origin field's value). */
bool mt_cors_origin_allowed(const mt_cors_t *p, const char *origin, size_t n);

/* The policy for c's request: the project's if its URL regex matches the
 * path, else the one an API set (c->cors) if its URL regex does, else NULL. */
const mt_cors_t *mt_cors_select(const mt_conn_t *c);

/* The longest Origin value echoed; a longer allowed one gets no CORS fields. */
#define MT_CORS_ORIGIN_MAX 1024

/* One response's CORS decision, with the copy of the Origin it echoes, so
 * that the producer may build its head after the request's head is gone
 * (a WSGI application reads the body first). */
typedef struct mt_cors_decision {
    const mt_cors_t *policy; /* NULL: no CORS for this request */
    bool allowed;            /* the origin is allowed: the fields below go out */
    bool is_options;         /* OPTIONS: also the preflight fields */
    bool private_network;    /* Access-Control-Allow-Private-Network: true */
    uint16_t origin_len;
    char origin[MT_CORS_ORIGIN_MAX];
} mt_cors_decision_t;

/* Decides for c's request (its head must be intact). Reads Origin,
 * Access-Control-Request-Private-Network and the path. */
void mt_cors_decide(mt_cors_decision_t *d, const mt_conn_t *c);

/* Puts d's fields on the response writer r (call it before the producer's
 * fields): Vary: Origin whenever a policy applies, and the
 * Access-Control-* fields when the origin is allowed. d must live until
 * mt_respond_end. */
void mt_cors_respond(mt_respond_t *r, const mt_cors_decision_t *d);

/* Whether c's request is a preflight: OPTIONS with an
 * Access-Control-Request-Method field (present, whatever its value). */
bool mt_cors_is_preflight(const mt_conn_t *c);

/* Answers c's request if it is a preflight and a policy applies to it
 * (mt_cors_select): 200, Content-Length: 0, the policy's fields, built in
 * `out` (left empty) and written. *keep_alive says on entry whether the
 * connection may stay open (no draining), as far as the caller knows.
 * Returns false when it did not answer. When it did, *keep_alive says
 * whether the connection stays open (false after a failed write too), and
 * c->answer_status is set for the access log. */
bool mt_cors_preflight(mt_conn_t *c, mt_buf_t *out, bool *keep_alive);

#endif
