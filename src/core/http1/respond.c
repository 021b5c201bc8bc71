#include "respond.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "http1_write.h"
#include "server.h"

static bool name_is(const char *s, size_t n, const char *lower, size_t m) {
    return n == m && strncasecmp(s, lower, m) == 0;
}

/* Calls back each element of a comma-separated list, trimmed; stops when the
 * callback says so. */
typedef bool (*element_fn)(const char *s, size_t n, void *arg);

static bool each_element(const char *value, size_t n, element_fn fn, void *arg) {
    size_t i = 0;
    while (i < n) {
        while (i < n && (mt_is_ows(value[i]) || value[i] == ','))
            i++;
        size_t start = i;
        while (i < n && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && mt_is_ows(value[end - 1]))
            end--;
        if (end > start && fn(value + start, end - start, arg))
            return true;
    }
    return false;
}

/* The MT_VARY_* token an element of Vary names (all of them for "*"), or 0. */
static unsigned vary_token(const char *s, size_t n) {
    if (n == 1 && s[0] == '*')
        return MT_VARY_ACCEPT_ENCODING | MT_VARY_ORIGIN;
    if (name_is(s, n, "accept-encoding", 15))
        return MT_VARY_ACCEPT_ENCODING;
    if (name_is(s, n, "origin", 6))
        return MT_VARY_ORIGIN;
    return 0;
}

static bool collect_vary(const char *s, size_t n, void *arg) {
    *(unsigned *)arg |= vary_token(s, n);
    return false;
}

static bool is_close(const char *s, size_t n, void *arg) {
    return name_is(s, n, "close", 5);
}

void mt_respond_init(mt_respond_t *r, const mt_request_t *req, bool keep_alive) {
    *r = (mt_respond_t){
        .method_id = req ? req->method_id : HTTP_GET,
        .http_minor = req ? req->http_minor : 1,
        .keep_alive = keep_alive,
        .declared_length = -1,
    };
}

bool mt_respond_keep_alive(const mt_conn_t *c, bool draining) {
    const mt_request_t *req = &c->req;
    return req->keep_alive && !draining && !(req->expect_continue && !c->continue_sent && !req->message_complete);
}

static void set_status(mt_respond_t *r, int status) {
    r->status = status;
    r->no_body = status < 200 || status == 204 || status == 304 || r->method_id == HTTP_HEAD;
}

int mt_respond_status(mt_respond_t *r, mt_buf_t *out, int status) {
    if (status < 100 || status > 999)
        return -EINVAL;
    const char *reason = mt_http1_reason(status);
    size_t rlen = strlen(reason);
    int rc = mt_buf_reserve(out, 15 + rlen);
    if (rc < 0)
        return rc;
    char *p = out->data + out->len;
    memcpy(p, "HTTP/1.1 ", 9);
    p[9] = (char)('0' + status / 100);
    p[10] = (char)('0' + status / 10 % 10);
    p[11] = (char)('0' + status % 10);
    p[12] = ' ';
    memcpy(p + 13, reason, rlen);
    memcpy(p + 13 + rlen, "\r\n", 2);
    out->len += 15 + rlen;
    set_status(r, status);
    return 0;
}

int mt_respond_status_line(mt_respond_t *r, mt_buf_t *out, const char *status, size_t n) {
    int code;
    int rc = mt_http1_write_status(out, status, n, &code);
    if (rc == 0)
        set_status(r, code);
    return rc;
}

bool mt_respond_parse_length(const char *s, size_t n, long long *out) {
    if (n == 0 || n > 18)
        return false;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static unsigned vary_wanted(const mt_respond_t *r) {
    return (r->vary ? MT_VARY_ACCEPT_ENCODING : 0u) | (r->vary_origin ? MT_VARY_ORIGIN : 0u);
}

/* Appends ", Accept-Encoding" and/or ", Origin" (tokens) to an open line;
 * `first`: nothing precedes them on it. */
static int append_vary_tokens(mt_buf_t *out, unsigned tokens, bool first) {
    int rc = 0;
    if (tokens & MT_VARY_ACCEPT_ENCODING) {
        rc = first ? mt_buf_append(out, "Accept-Encoding", 15) : mt_buf_append(out, ", Accept-Encoding", 17);
        first = false;
    }
    if (rc == 0 && (tokens & MT_VARY_ORIGIN))
        rc = first ? mt_buf_append(out, "Origin", 6) : mt_buf_append(out, ", Origin", 8);
    return rc;
}

/* Vary with the writer's tokens (Accept-Encoding, Origin) merged in: the
 * first Vary field gets those it does not name appended (none beside "*");
 * in a later field, a token the writer appended is not repeated. */
static int write_vary(mt_respond_t *r, mt_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (!r->vary_done) {
        unsigned named = 0;
        each_element(value, vlen, collect_vary, &named);
        unsigned missing = vary_wanted(r) & ~named;
        r->vary_done = true;
        if (!missing)
            return mt_http1_write_line(out, name, nlen, value, vlen, NULL, 0);
        r->vary_added = (uint8_t)missing;
        size_t end = vlen;
        while (end > 0 && (mt_is_ows(value[end - 1]) || value[end - 1] == ','))
            end--;
        int rc = mt_http1_write_line(out, name, nlen, value, end, NULL, 0);
        if (rc < 0)
            return rc;
        out->len -= 2; /* reopen the line */
        if ((rc = append_vary_tokens(out, missing, end == 0)) < 0)
            return rc;
        return mt_buf_append(out, "\r\n", 2);
    }
    unsigned named = 0;
    each_element(value, vlen, collect_vary, &named);
    if (!(r->vary_added & named))
        return mt_http1_write_line(out, name, nlen, value, vlen, NULL, 0);
    /* A later field naming a token the writer added: keep its other tokens
     * ("*" among them: it says more than the token the writer added). */
    size_t mark = out->len;
    int rc = mt_http1_write_line(out, name, nlen, "", 0, NULL, 0);
    if (rc < 0)
        return rc;
    out->len -= 2; /* reopen the line */
    bool any = false;
    size_t i = 0;
    while (i < vlen) {
        while (i < vlen && (mt_is_ows(value[i]) || value[i] == ','))
            i++;
        size_t start = i;
        while (i < vlen && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && mt_is_ows(value[end - 1]))
            end--;
        if (end == start)
            continue;
        unsigned token = vary_token(value + start, end - start);
        if (token != (MT_VARY_ACCEPT_ENCODING | MT_VARY_ORIGIN) && (token & r->vary_added))
            continue;
        if ((any && (rc = mt_buf_append(out, ", ", 2)) < 0) ||
            (rc = mt_buf_append(out, value + start, end - start)) < 0)
            return rc;
        any = true;
    }
    if (!any) {
        out->len = mark; /* nothing left to say */
        return 0;
    }
    return mt_buf_append(out, "\r\n", 2);
}

static bool late_named(const mt_respond_t *r, const char *name, size_t nlen) {
    for (unsigned i = 0; i < r->nlate; i++)
        if (r->late[i].nlen == nlen && strncasecmp(r->late[i].name, name, nlen) == 0)
            return true;
    return false;
}

void mt_respond_request_id(mt_respond_t *r, const mt_conn_t *c) {
    if (c->request_id_len == 0 || c->server == NULL || c->server->config.request_id_name == NULL)
        return;
    r->id_name = c->server->config.request_id_name;
    r->id_nlen = c->server->config.request_id_header_len;
    r->id = c->request_id;
    r->id_len = c->request_id_len;
}

int mt_respond_field(mt_respond_t *r, mt_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen) {
    if (!mt_http1_token_valid(name, nlen) || !mt_http1_value_valid(value, vlen))
        return -EINVAL;
    if (r->id && nlen == r->id_nlen && strncasecmp(name, r->id_name, nlen) == 0)
        return 0; /* the server's request id replaces the producer's */
    if (r->nlate && late_named(r, name, nlen))
        return 0; /* so does a field the server adds (CORS) */
    switch (nlen) {
    case 2:
        if (name_is(name, nlen, "te", 2))
            return 0; /* hop-by-hop */
        break;
    case 4:
        if (name_is(name, nlen, "date", 4)) {
            r->has_date = true;
        } else if (r->compressing && name_is(name, nlen, "etag", 4) && vlen >= 2 && value[0] == '"') {
            /* A strong validator names exact bytes, and these are not those
             * (RFC 9110 8.8.1): the compressed representation's is weak. */
            return mt_http1_write_line(out, "ETag", 4, "W/", 2, value, vlen);
        } else if ((r->vary || r->vary_origin) && name_is(name, nlen, "vary", 4)) {
            return write_vary(r, out, name, nlen, value, vlen);
        }
        break;
    case 10:
        if (name_is(name, nlen, "connection", 10)) {
            /* The server owns the connection: the field is written from
             * keep_alive at the end, and "close" is honoured. */
            if (each_element(value, vlen, is_close, NULL))
                r->keep_alive = false;
            return 0;
        }
        if (name_is(name, nlen, "keep-alive", 10))
            return 0; /* hop-by-hop */
        break;
    case 14:
        if (name_is(name, nlen, "content-length", 14)) {
            long long length;
            if (!mt_respond_parse_length(value, vlen, &length))
                return MT_RESPOND_EBADLENGTH;
            if (r->declared_length >= 0) {
                /* Two lengths would frame the body two ways (a smuggling
                 * vector downstream): one is kept, a differing one refused. */
                return length == r->declared_length ? 0 : MT_RESPOND_EBADLENGTH;
            }
            r->declared_length = length;
            /* Never on 1xx and 204 (RFC 9110 8.6); replaced when compressing. */
            if (r->status < 200 || r->status == 204 || r->compressing)
                return 0;
        }
        break;
    case 16:
        if (name_is(name, nlen, "proxy-connection", 16))
            return 0; /* hop-by-hop (obsolete, still honoured by some proxies) */
        break;
    case 17:
        if (name_is(name, nlen, "transfer-encoding", 17))
            return 0; /* hop-by-hop: the server frames the message itself */
        break;
    }
    return mt_http1_write_line(out, name, nlen, value, vlen, NULL, 0);
}

int mt_respond_end(mt_respond_t *r, mt_buf_t *out, const char *coding, long long known_length) {
    int rc = r->has_date ? 0 : mt_http1_write_date(out);
    if (rc == 0 && coding)
        rc = mt_http1_write_line(out, "Content-Encoding", 16, coding, strlen(coding), NULL, 0);
    if (rc == 0 && r->id)
        rc = mt_http1_write_line(out, r->id_name, r->id_nlen, r->id, r->id_len, NULL, 0);
    for (unsigned i = 0; rc == 0 && i < r->nlate; i++)
        rc = mt_http1_write_line(out, r->late[i].name, r->late[i].nlen, r->late[i].value, r->late[i].vlen, NULL, 0);
    if (rc == 0 && vary_wanted(r) && !r->vary_done) {
        rc = mt_buf_append(out, "Vary: ", 6);
        if (rc == 0)
            rc = append_vary_tokens(out, vary_wanted(r), true);
        if (rc == 0)
            rc = mt_buf_append(out, "\r\n", 2);
        r->vary_done = true;
    }
    /* The length that frames the body: the producer's, unless the body is
     * compressed (then known_length is the compressed length, or -1). */
    int code = r->status;
    long long declared = r->compressing ? -1 : r->declared_length;
    bool bodiless_status = code < 200 || code == 204 || code == 304;
    r->chunked = false;
    if (rc == 0 && !(code < 200 || code == 204) && declared < 0) {
        if (known_length >= 0 && code != 304) {
            rc = mt_http1_write_content_length(out, (unsigned long long)known_length);
        } else if (r->method_id == HTTP_HEAD && !bodiless_status) {
            /* HEAD gets the fields GET would get; the body framing is moot. */
            if (r->http_minor == 1)
                rc = mt_buf_append(out, "Transfer-Encoding: chunked\r\n", 28);
        } else if (!r->no_body) {
            if (r->http_minor == 1) {
                r->chunked = true;
                rc = mt_buf_append(out, "Transfer-Encoding: chunked\r\n", 28);
            } else {
                r->keep_alive = false; /* HTTP/1.0: the close delimits the body */
            }
        }
    }
    if (rc < 0)
        return rc;
    if (!r->keep_alive)
        return mt_buf_append(out, "Connection: close\r\n\r\n", 21);
    if (r->http_minor == 0)
        return mt_buf_append(out, "Connection: keep-alive\r\n\r\n", 26);
    return mt_buf_append(out, "\r\n", 2);
}

int mt_respond_answer(mt_respond_t *r, mt_buf_t *out, int status, const mt_field_t *fields, int nfields,
                      const char *ctype, const char *body, size_t blen) {
    int rc = mt_respond_status(r, out, status);
    for (int i = 0; rc == 0 && i < nfields; i++)
        rc = mt_respond_field(r, out, fields[i].name, fields[i].nlen, fields[i].value, fields[i].vlen);
    if (rc == 0 && ctype && status != 204)
        rc = mt_respond_field(r, out, "Content-Type", 12, ctype, strlen(ctype));
    if (rc == 0)
        rc = mt_respond_end(r, out, NULL, (long long)blen);
    if (rc == 0 && blen && !r->no_body)
        rc = mt_buf_append(out, body, blen);
    return rc;
}

int mt_respond_error(mt_buf_t *out, const mt_request_t *req, int status, const char *detail, bool keep_alive) {
    char body[256];
    const char *reason = mt_http1_reason(status);
    int blen = snprintf(body, sizeof body, "%d %s%s%s\n", status, reason, detail ? ": " : "", detail ? detail : "");
    if (blen < 0 || (size_t)blen >= sizeof body)
        blen = (int)strlen(body);
    mt_respond_t r;
    mt_respond_init(&r, req, keep_alive);
    size_t mark = out->len;
    int rc = mt_respond_answer(&r, out, status, NULL, 0, "text/plain; charset=utf-8", body, (size_t)blen);
    if (rc < 0)
        out->len = mark;
    return rc;
}
