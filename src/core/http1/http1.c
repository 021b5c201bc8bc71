#include "http1.h"

#include "common.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

/* Header fields that the server itself interprets. */
enum { FIELD_OTHER, FIELD_HOST, FIELD_CONTENT_LENGTH, FIELD_TRANSFER_ENCODING, FIELD_EXPECT };

#define REQ(p) ((mt_request_t *)(p)->data)

static int fail(mt_request_t *req, int status, const char *reason) {
    if (req->error_status == 0) {
        req->error_status = status;
        req->error_reason = reason;
    }
    return -1;
}

/* Extends a span by a piece that llhttp reports. A span split over two
 * llhttp_execute calls arrives in two pieces that are adjacent in the input
 * buffer, because the caller keeps the head contiguous. */
static void span_extend(mt_request_t *req, mt_span_t *span, const char *at, size_t length) {
    if (span->len == 0)
        span->off = (uint32_t)(at - req->base);
    span->len += (uint32_t)length;
}

bool mt_span_ieq(const char *base, mt_span_t span, const char *lower, size_t n) {
    if (span.len != n)
        return false;
    const char *s = base + span.off;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != lower[i])
            return false;
    }
    return true;
}

static int on_method(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    if (req->method.len == 0) {
        /* llhttp skips any CR and LF before the request line. Empty lines are
         * to be ignored (RFC 9112 2.2), but a bare CR or LF there is as bad a
         * line ending as anywhere in the head; gunicorn and h11 refuse it. */
        size_t from = req->message_start, to = (size_t)(at - req->base);
        if ((to - from) % 2)
            return fail(req, 400, "bare CR or LF before the request line");
        for (size_t i = from; i < to; i += 2)
            if (req->base[i] != '\r' || req->base[i + 1] != '\n')
                return fail(req, 400, "bare CR or LF before the request line");
    }
    span_extend(req, &req->method, at, length);
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    span_extend(req, &req->target, at, length);
    if ((uint64_t)req->method.len + req->target.len + 10 > req->limits->max_request_line)
        return fail(req, 414, "request line too long");
    return 0;
}

/* The request line as sent is checked here, once the version starts:
 * - its length, the spaces included: on_url counts only the method and the
 *   target, and the check of an incomplete head in mt_http1_parse counts
 *   every byte, so a line padded with spaces would pass when it arrives in one
 *   read and get 414 when it arrives in two;
 * - exactly one space between its parts (RFC 9112 3). llhttp takes several;
 *   gunicorn and h11 refuse them, and lenient request-line parsing is one of
 *   the differences between servers that smuggling is made of (RFC 9112 3
 *   warns of it). */
static int on_version(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    if ((size_t)(at + length - req->base) - req->message_start > req->limits->max_request_line)
        return fail(req, 414, "request line too long");
    size_t target_end = (size_t)req->target.off + req->target.len;
    if (req->target.off != req->method.off + req->method.len + 1 || req->base[target_end + 1] != 'H')
        return fail(req, 400, "more than one space in the request line");
    return 0;
}

static int on_version_complete(llhttp_t *p) {
    mt_request_t *req = REQ(p);
    req->request_line_done = true;
    /* llhttp accepts any one-digit major and minor; HTTP/1.x is all we speak. */
    if (p->http_major != 1 || p->http_minor > 1)
        return fail(req, 505, "HTTP version not supported");
    req->http_minor = p->http_minor;
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    if (!req->request_line_done)
        return fail(req, 400, "missing HTTP version"); /* an HTTP/0.9-style request line */
    if (req->nheaders >= req->limits->max_headers)
        return fail(req, 431, "too many header fields");
    span_extend(req, &req->headers[req->nheaders].name, at, length);
    return 0;
}

static int on_header_field_complete(llhttp_t *p) {
    mt_request_t *req = REQ(p);
    if (req->in_trailers) {
        /* Trailers count against the same limit; their spans are not kept. */
        if (req->nheaders + ++req->ntrailers > req->limits->max_headers)
            return fail(req, 431, "too many trailer fields");
        return 0;
    }
    mt_span_t name = req->headers[req->nheaders].name;
    const char *base = req->base;
    if (mt_span_ieq(base, name, "host", 4))
        req->current_field = FIELD_HOST;
    else if (mt_span_ieq(base, name, "content-length", 14))
        req->current_field = FIELD_CONTENT_LENGTH;
    else if (mt_span_ieq(base, name, "transfer-encoding", 17))
        req->current_field = FIELD_TRANSFER_ENCODING;
    else if (mt_span_ieq(base, name, "expect", 6))
        req->current_field = FIELD_EXPECT;
    else
        req->current_field = FIELD_OTHER;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    span_extend(req, &req->headers[req->nheaders].value, at, length);
    return 0;
}

/* Transfer-Encoding: exactly one coding, "chunked". llhttp already rejects a
 * request whose last coding is not chunked; "chunked, chunked" is malformed
 * and any other coding is one we cannot decode. */
static int check_transfer_encoding(mt_request_t *req, mt_span_t value) {
    const char *s = req->base + value.off;
    size_t n = value.len;
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    while (n && (*s == ' ' || *s == '\t'))
        s++, n--;
    if (n == 0)
        return fail(req, 400, "empty Transfer-Encoding");
    mt_span_t trimmed = {(uint32_t)(s - req->base), (uint32_t)n};
    if (mt_span_ieq(req->base, trimmed, "chunked", 7))
        return 0;
    if (memchr(s, ',', n) == NULL)
        return fail(req, 501, "unsupported transfer coding");
    /* A list: chunked more than once is malformed, anything else unsupported. */
    size_t chunked = 0;
    for (size_t i = 0; i + 7 <= n; i++)
        if (strncasecmp(s + i, "chunked", 7) == 0)
            chunked++;
    return chunked > 1 ? fail(req, 400, "chunked given more than once") : fail(req, 501, "unsupported transfer coding");
}

static int on_header_value_complete(llhttp_t *p) {
    mt_request_t *req = REQ(p);
    if (req->in_trailers)
        return 0;
    mt_header_t *field = &req->headers[req->nheaders];
    switch (req->current_field) {
    case FIELD_HOST:
        req->host_count++;
        /* One host[:port]: a list ("a, b") or whitespace inside is two hosts
         * to a proxy and one to us, the stuff of cache poisoning. */
        for (uint32_t i = 0; i < field->value.len; i++) {
            char c = req->base[field->value.off + i];
            if (c == ',' || c == ' ' || c == '\t')
                return fail(req, 400, "invalid Host header");
        }
        break;
    case FIELD_CONTENT_LENGTH:
        /* llhttp accepts an empty value as no length; RFC 9110 says it is invalid. */
        if (field->value.len == 0)
            return fail(req, 400, "empty Content-Length");
        break;
    case FIELD_TRANSFER_ENCODING:
        req->te_count++;
        if (req->te_count > 1)
            return fail(req, 400, "Transfer-Encoding given twice");
        if (check_transfer_encoding(req, field->value) < 0)
            return -1;
        break;
    case FIELD_EXPECT:
        if (mt_span_ieq(req->base, field->value, "100-continue", 12))
            req->expect_continue = true;
        break;
    }
    req->head_end = field->value.off + field->value.len;
    req->nheaders++;
    if (req->nheaders < req->limits->max_headers)
        memset(&req->headers[req->nheaders], 0, sizeof(mt_header_t));
    return 0;
}

static int check_target(mt_request_t *req) {
    const char *t = req->base + req->target.off;
    uint32_t n = req->target.len;
    if (n == 0)
        return fail(req, 400, "empty request target");
    if (req->method_id == HTTP_CONNECT)
        return fail(req, 501, "CONNECT is not supported");
    /* PATH_INFO is percent-decoded for the application; a NUL there would
     * truncate the path in any C string or file name it reaches. */
    const char *query = memchr(t, '?', n);
    const char *path_end = query ? query : t + n;
    if (memmem(t, (size_t)(path_end - t), "%00", 3) != NULL)
        return fail(req, 400, "encoded NUL in the request path");
    if (t[0] == '/')
        return 0;
    if (n == 1 && t[0] == '*')
        return req->method_id == HTTP_OPTIONS ? 0 : fail(req, 400, "asterisk-form target is only valid with OPTIONS");
    /* Absolute form: http://authority/path (RFC 9112 3.2.2). */
    if ((n > 7 && strncasecmp(t, "http://", 7) == 0) || (n > 8 && strncasecmp(t, "https://", 8) == 0))
        return 0;
    return fail(req, 400, "invalid request target");
}

static int on_headers_complete(llhttp_t *p) {
    mt_request_t *req = REQ(p);
    if (!req->request_line_done || p->http_major != 1)
        return fail(req, 400, "missing HTTP version");
    req->method_id = p->method;
    if (req->head_end > req->message_start && req->head_end - req->message_start + 4 > req->limits->max_head_size)
        return fail(req, 431, "request head too large");
    if (check_target(req) < 0)
        return -1;
    if (req->http_minor == 1 && req->host_count != 1)
        return fail(req, 400, req->host_count ? "more than one Host header" : "missing Host header");
    if (req->host_count > 1)
        return fail(req, 400, "more than one Host header");
    if (req->http_minor == 0 && req->te_count)
        return fail(req, 400, "Transfer-Encoding in an HTTP/1.0 request");
    req->chunked = (p->flags & F_CHUNKED) != 0;
    req->content_length = req->chunked ? 0 : p->content_length;
    if (!req->chunked && (p->flags & F_CONTENT_LENGTH) && p->content_length > req->limits->max_body_size)
        return fail(req, 413, "request body too large");
    /* An upgrade (WebSocket, h2c) is not taken: the request is served as an
     * ordinary one and the connection closed after it. */
    req->keep_alive = llhttp_should_keep_alive(p) && !(p->flags & F_UPGRADE);
    /* 100 Continue is an HTTP/1.1 mechanism (RFC 9110 10.1.1). */
    if (req->http_minor == 0)
        req->expect_continue = false;
    req->head_complete = true;
    /* 0: let llhttp frame the body from Content-Length / chunked itself. */
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    req->body_received += length;
    if (req->body_received > req->limits->max_body_size)
        return fail(req, 413, "request body too large");
    if (mt_buf_append(req->body_sink, at, length) < 0)
        return fail(req, 503, "out of memory for the request body");
    return 0;
}

static int on_chunk_header(llhttp_t *p) {
    mt_request_t *req = REQ(p);
    if (p->content_length == 0)
        req->in_trailers = true;
    else if (p->content_length > req->limits->max_body_size - MT_MIN(req->body_received, req->limits->max_body_size))
        return fail(req, 413, "request body too large"); /* refused on the size line, before the data */
    return 0;
}

static int on_chunk_extension(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    req->chunk_ext_bytes += (uint32_t)length;
    if (req->chunk_ext_bytes > req->limits->max_chunk_ext)
        return fail(req, 400, "chunk extensions too long");
    return 0;
}

static int on_trailer_bytes(llhttp_t *p, const char *at, size_t length) {
    mt_request_t *req = REQ(p);
    if (!req->in_trailers)
        return 0;
    req->head_end += (uint32_t)length; /* trailers share the head's size limit */
    if (req->head_end - req->message_start > req->limits->max_head_size)
        return fail(req, 431, "trailer section too large");
    return 0;
}

/* llhttp reports trailer fields through the header callbacks: these route
 * them to the size accounting, so they are never merged into the head. */
static int on_trailer_field(llhttp_t *p, const char *at, size_t length) {
    return REQ(p)->in_trailers ? on_trailer_bytes(p, at, length) : on_header_field(p, at, length);
}

static int on_trailer_value(llhttp_t *p, const char *at, size_t length) {
    return REQ(p)->in_trailers ? on_trailer_bytes(p, at, length) : on_header_value(p, at, length);
}

static int on_message_complete(llhttp_t *p) {
    REQ(p)->message_complete = true;
    return HPE_PAUSED; /* stop here: what follows is the next (pipelined) request */
}

static const llhttp_settings_t settings = {
    .on_method = on_method,
    .on_url = on_url,
    .on_version = on_version,
    .on_version_complete = on_version_complete,
    .on_header_field = on_trailer_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_trailer_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_chunk_extension_name = on_chunk_extension,
    .on_chunk_extension_value = on_chunk_extension,
    .on_message_complete = on_message_complete,
};

static void reset_message(mt_request_t *req, size_t offset) {
    req->method = (mt_span_t){0, 0};
    req->target = (mt_span_t){0, 0};
    req->nheaders = 0;
    req->ntrailers = 0;
    memset(&req->headers[0], 0, sizeof(mt_header_t));
    req->http_minor = 1;
    req->method_id = 0;
    req->head_complete = false;
    req->message_complete = false;
    req->chunked = false;
    req->keep_alive = false;
    req->expect_continue = false;
    req->content_length = 0;
    req->body_received = 0;
    req->in_trailers = false;
    req->request_line_done = false;
    req->current_field = FIELD_OTHER;
    req->message_start = (uint32_t)offset;
    req->head_end = (uint32_t)offset;
    req->host_count = 0;
    req->te_count = 0;
    req->chunk_ext_bytes = 0;
    req->error_status = 0;
    req->error_reason = NULL;
}

void mt_http1_init(mt_request_t *req, const mt_limits_t *limits, mt_header_t *headers, mt_buf_t *body_sink) {
    llhttp_init(&req->parser, HTTP_REQUEST, &settings);
    req->parser.data = req;
    req->limits = limits;
    req->headers = headers;
    req->body_sink = body_sink;
    req->base = NULL;
    reset_message(req, 0);
}

void mt_http1_next(mt_request_t *req, size_t offset) {
    if (llhttp_get_errno(&req->parser) == HPE_PAUSED)
        llhttp_resume(&req->parser);
    reset_message(req, offset);
}

mt_parse_result_t mt_http1_parse(mt_request_t *req, const char *input, size_t start, size_t end, size_t *stop) {
    req->base = input;
    *stop = start;
    if (req->message_complete)
        return MT_PARSE_COMPLETE;
    llhttp_errno_t err = llhttp_execute(&req->parser, input + start, end - start);
    if (err == HPE_OK) {
        *stop = end;
        if (!req->request_line_done && req->target.len) {
            /* A line break right after the target: an HTTP/0.9 request line,
             * refused now rather than at the head timeout. */
            size_t after = (size_t)req->target.off + req->target.len;
            if (after < end && (memchr(input + after, '\n', end - after) || memchr(input + after, '\r', end - after)))
                return fail(req, 400, "missing HTTP version"), MT_PARSE_ERROR;
        }
        if (!req->head_complete) {
            size_t head = end - req->message_start;
            if (!req->request_line_done && head > req->limits->max_request_line)
                return fail(req, 414, "request line too long"), MT_PARSE_ERROR;
            if (head > req->limits->max_head_size)
                return fail(req, 431, "request head too large"), MT_PARSE_ERROR;
        }
        return MT_PARSE_INCOMPLETE;
    }
    if ((err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) && req->message_complete) {
        *stop = (size_t)(llhttp_get_error_pos(&req->parser) - input);
        if (err == HPE_PAUSED_UPGRADE)
            req->keep_alive = false;
        return MT_PARSE_COMPLETE;
    }
    if (req->error_status == 0 && err == HPE_INVALID_VERSION && req->parser.http_major &&
        !(req->parser.http_major == 1 && req->parser.http_minor <= 1)) {
        /* llhttp rejects versions it does not know (HTTP/1.2, HTTP/3.0) itself;
         * a bad line ending after a good version is the same error code but a 400. */
        req->error_status = 505;
        req->error_reason = "HTTP version not supported";
    }
    if (req->error_status == 0) {
        req->error_status = 400;
        req->error_reason = llhttp_get_error_reason(&req->parser);
        if (req->error_reason == NULL)
            req->error_reason = "malformed request";
    }
    return MT_PARSE_ERROR;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t mt_http1_percent_decode(char *dst, const char *src, size_t n) {
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '%' && i + 2 < n) {
            int hi = hex_value(src[i + 1]), lo = hex_value(src[i + 2]);
            if (hi >= 0 && lo >= 0) {
                dst[out++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        dst[out++] = src[i];
    }
    return out;
}

size_t mt_http1_target_path(const mt_request_t *req, const char *base, const char **path, mt_span_t *query) {
    const char *t = mt_span_ptr(base, req->target);
    size_t n = req->target.len;
    if (query)
        *query = (mt_span_t){0, 0};
    *path = t;
    if (n && t[0] != '/') {
        const char *s = memmem(t, n, "://", 3);
        if (s == NULL)
            return 0;
        s += 3;
        size_t rest = n - (size_t)(s - t);
        size_t i = 0;
        while (i < rest && s[i] != '/' && s[i] != '?')
            i++;
        if (i == rest || s[i] != '/')
            return 0;
        n = rest - i;
        t = s + i;
    }
    const char *hash = memchr(t, '#', n);
    if (hash)
        n = (size_t)(hash - t);
    const char *q = memchr(t, '?', n);
    *path = t;
    size_t plen = q ? (size_t)(q - t) : n;
    if (q && query)
        *query = (mt_span_t){(uint32_t)(q + 1 - base), (uint32_t)(n - plen - 1)};
    return plen;
}

int mt_request_header(const mt_request_t *req, const char *base, const char *lower, size_t n, char *buf,
                      const char **value, size_t *len) {
    const char *found = NULL;
    size_t total = 0;
    *value = NULL;
    *len = 0;
    for (uint32_t i = 0; i < req->nheaders; i++) {
        const mt_header_t *h = &req->headers[i];
        if (!mt_span_ieq(base, h->name, lower, n))
            continue;
        const char *v = mt_span_ptr(base, h->value);
        if (found == NULL) {
            found = v;
            total = h->value.len;
            continue;
        }
        if (found != buf) { /* a second field: the list starts its copy */
            if (total > MT_REQUEST_FIELD_MAX)
                return -E2BIG;
            memcpy(buf, found, total);
            found = buf;
        }
        if (total + 2 + h->value.len > MT_REQUEST_FIELD_MAX)
            return -E2BIG;
        memcpy(buf + total, ", ", 2);
        memcpy(buf + total + 2, v, h->value.len);
        total += 2 + h->value.len;
    }
    if (found == NULL)
        return 0;
    *value = found;
    *len = total;
    return 1;
}
