#include "answer.h"

#include <errno.h>
#include <string.h>

#include "cors.h"
#include "respond.h"

#define JSON "application/json"

/* Builds the whole answer in `out` (body included, unless HEAD) and writes it
 * in one go. */
static int send_answer(mt_conn_t *c, mt_buf_t *out, bool *keep_alive, int status, const mt_field_t *fields, int nfields,
                       const char *ctype, const char *body, size_t blen) {
    mt_respond_t head;
    mt_respond_init(&head, &c->req, *keep_alive && mt_respond_keep_alive(c, false));
    mt_respond_request_id(&head, c);
    mt_cors_decision_t cors;
    mt_cors_decide(&cors, c);
    mt_cors_respond(&head, &cors);
    out->len = 0;
    int rc = mt_respond_answer(&head, out, status, fields, nfields, ctype, body, blen);
    *keep_alive = head.keep_alive;
    c->answer_status = status;
    c->answer_bytes = head.no_body ? 0 : blen;
    if (rc == 0) {
        struct iovec iov = {out->data, out->len};
        rc = mt_conn_writev(c, &iov, 1);
    }
    out->len = 0;
    return rc;
}

int mt_answer_json(mt_conn_t *c, mt_buf_t *out, bool *keep_alive, int status, const mt_field_t *fields, int nfields,
                   const char *body, size_t blen) {
    return send_answer(c, out, keep_alive, status, fields, nfields, JSON, body, blen);
}

int mt_answer_send(mt_conn_t *c, mt_buf_t *out, mt_buf_t *scratch, const mt_route_match_t *m,
                   const mt_answer_route_t *route, const char *path, size_t plen, mt_span_t query, bool *keep_alive) {
    switch (m->status) {
    case MT_ROUTE_METHOD:
    case MT_ROUTE_OPTIONS: {
        char allow[256];
        size_t alen = mt_router_allow_value(m->allow, allow, sizeof allow);
        mt_field_t field = {"Allow", 5, allow, alen};
        if (m->status == MT_ROUTE_OPTIONS)
            return send_answer(c, out, keep_alive, 204, &field, 1, NULL, NULL, 0);
        static const char body[] = "{\"detail\":\"Method Not Allowed\"}";
        return send_answer(c, out, keep_alive, 405, &field, 1, JSON, body, sizeof body - 1);
    }
    case MT_ROUTE_INVALID: {
        const char *body = route->invalid_body[m->bad_param];
        return send_answer(c, out, keep_alive, 422, NULL, 0, JSON, body, strlen(body));
    }
    case MT_ROUTE_REDIRECT: {
        /* The path with its trailing slash toggled, and the query, as sent. */
        scratch->len = 0;
        bool slash = path[plen - 1] == '/';
        int rc = mt_buf_append(scratch, path, slash ? plen - 1 : plen);
        if (rc == 0 && !slash)
            rc = mt_buf_append(scratch, "/", 1);
        if (rc == 0 && query.len) {
            rc = mt_buf_append(scratch, "?", 1);
            if (rc == 0)
                rc = mt_buf_append(scratch, c->rbuf.data + query.off, query.len);
        }
        if (rc == 0) {
            static const char body[] = "{\"detail\":\"Permanent Redirect\"}";
            mt_field_t field = {"Location", 8, scratch->data, scratch->len};
            rc = send_answer(c, out, keep_alive, 308, &field, 1, JSON, body, sizeof body - 1);
        }
        scratch->len = 0;
        return rc;
    }
    default:
        return send_answer(c, out, keep_alive, route->status, NULL, 0, route->content_type, route->body,
                           route->body_len);
    }
}

int mt_answer_limited(mt_conn_t *c, mt_buf_t *out, bool *keep_alive, int status, const char *retry_after,
                      const char *policy, size_t plen, const char *ratelimit) {
    static const char too_many[] = "{\"detail\":\"Too Many Requests\"}";
    static const char unavailable[] = "{\"detail\":\"Service Unavailable\"}";
    const mt_field_t fields[] = {
        {"Retry-After", 11, retry_after, strlen(retry_after)},
        {"RateLimit-Policy", 16, policy, plen},
        {"RateLimit", 9, ratelimit, ratelimit ? strlen(ratelimit) : 0},
    };
    bool refused = status == 429;
    return send_answer(c, out, keep_alive, status, fields, ratelimit ? 3 : 2, JSON, refused ? too_many : unavailable,
                       refused ? sizeof too_many - 1 : sizeof unavailable - 1);
}
