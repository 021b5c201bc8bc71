#include "accesslog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "sock.h"

static const char hex[] = "0123456789abcdef";

/* The length of the well-formed UTF-8 sequence at s[0, n), or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned char b = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (b >= 0xc2 && b <= 0xdf)
        len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0; /* overlong */
        else if (b == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90; /* overlong */
        else if (b == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

size_t mt_accesslog_json_escape(char *dst, const char *src, size_t n) {
    const unsigned char *s = (const unsigned char *)src;
    char *d = dst;
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        if (b >= 0x80) {
            size_t len = utf8_sequence(s + i, n - i);
            if (len) {
                memcpy(d, s + i, len);
                d += len;
                i += len;
            } else {
                memcpy(d, "\xef\xbf\xbd", 3); /* U+FFFD REPLACEMENT CHARACTER */
                d += 3;
                i++;
            }
            continue;
        }
        i++;
        if (b == '"' || b == '\\') {
            *d++ = '\\';
            *d++ = (char)b;
        } else if (b == '\n') {
            *d++ = '\\';
            *d++ = 'n';
        } else if (b == '\r') {
            *d++ = '\\';
            *d++ = 'r';
        } else if (b == '\t') {
            *d++ = '\\';
            *d++ = 't';
        } else if (b < 0x20 || b == 0x7f) {
            memcpy(d, "\\u00", 4);
            d[4] = hex[b >> 4];
            d[5] = hex[b & 15];
            d += 6;
        } else {
            *d++ = (char)b;
        }
    }
    return (size_t)(d - dst);
}

/* Appends s[0, n) escaped for the text formats: printable ASCII as it is,
 * '"', '\' and every other byte as \xHH; NULL as "-". */
static int put_text(mt_buf_t *out, const char *s, size_t n) {
    if (s == NULL)
        return mt_buf_append(out, "-", 1);
    int rc = mt_buf_reserve(out, 4 * n);
    if (rc < 0)
        return rc;
    char *d = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b >= 0x20 && b < 0x7f && b != '"' && b != '\\') {
            *d++ = (char)b;
        } else {
            d[0] = '\\';
            d[1] = 'x';
            d[2] = hex[b >> 4];
            d[3] = hex[b & 15];
            d += 4;
        }
    }
    out->len = (size_t)(d - out->data);
    return 0;
}

/* Appends `"name":` and the JSON string of s[0, n) (null for NULL). */
static int put_json(mt_buf_t *out, const char *name, const char *s, size_t n) {
    size_t nlen = strlen(name);
    int rc = mt_buf_reserve(out, nlen + 6 * n + 8);
    if (rc < 0)
        return rc;
    char *d = out->data + out->len;
    *d++ = '"';
    memcpy(d, name, nlen);
    d += nlen;
    *d++ = '"';
    *d++ = ':';
    if (s == NULL) {
        memcpy(d, "null", 4);
        d += 4;
    } else {
        *d++ = '"';
        d += mt_accesslog_json_escape(d, s, n);
        *d++ = '"';
    }
    out->len = (size_t)(d - out->data);
    return 0;
}

static int put(mt_buf_t *out, const char *s) {
    return mt_buf_append(out, s, strlen(s));
}

static int format_text(mt_buf_t *out, mt_accesslog_format_t format, const mt_accesslog_entry_t *e) {
    char num[64];
    int rc = put_text(out, e->peer && e->peer[0] ? e->peer : NULL, e->peer ? strlen(e->peer) : 0);
    if (rc == 0)
        rc = put(out, " - - [");
    if (rc == 0)
        rc = mt_buf_append(out, mt_clock_log_date(), MT_LOG_DATE_LEN);
    if (rc == 0)
        rc = put(out, "] \"");
    if (e->http_minor < 0 || e->method == NULL) {
        if (rc == 0)
            rc = put(out, "-");
    } else {
        if (rc == 0)
            rc = put_text(out, e->method, e->method_len);
        if (rc == 0)
            rc = put(out, " ");
        if (rc == 0)
            rc = put_text(out, e->target ? e->target : "", e->target_len);
        snprintf(num, sizeof num, " HTTP/1.%d", e->http_minor);
        if (rc == 0)
            rc = put(out, num);
    }
    if (e->bytes)
        snprintf(num, sizeof num, "\" %d %llu", e->status, e->bytes);
    else
        snprintf(num, sizeof num, "\" %d -", e->status);
    if (rc == 0)
        rc = put(out, num);
    if (format == MT_ACCESSLOG_COMBINED) {
        if (rc == 0)
            rc = put(out, " \"");
        if (rc == 0)
            rc = put_text(out, e->referer, e->referer_len);
        if (rc == 0)
            rc = put(out, "\" \"");
        if (rc == 0)
            rc = put_text(out, e->user_agent, e->user_agent_len);
        if (rc == 0)
            rc = put(out, "\"");
    }
    return rc ? rc : put(out, "\n");
}

static int format_json(mt_buf_t *out, const mt_accesslog_entry_t *e) {
    char num[96];
    bool request = e->http_minor >= 0 && e->method;
    int rc = put(out, "{\"time\":\"");
    if (rc == 0)
        rc = mt_buf_append(out, mt_clock_iso_date(), MT_ISO_DATE_LEN);
    if (rc == 0)
        rc = put(out, "\",");
    if (rc == 0)
        rc = put_json(out, "remote_addr", e->peer && e->peer[0] ? e->peer : NULL, e->peer ? strlen(e->peer) : 0);
    if (rc == 0)
        rc = put(out, ",");
    if (rc == 0)
        rc = put_json(out, "method", request ? e->method : NULL, e->method_len);
    if (rc == 0)
        rc = put(out, ",");
    if (rc == 0)
        rc = put_json(out, "target", request ? (e->target ? e->target : "") : NULL, e->target_len);
    if (request)
        snprintf(num, sizeof num, ",\"protocol\":\"HTTP/1.%d\",", e->http_minor);
    else
        snprintf(num, sizeof num, ",\"protocol\":null,");
    if (rc == 0)
        rc = put(out, num);
    if (e->duration_us >= 0)
        snprintf(num, sizeof num, "\"status\":%d,\"bytes\":%llu,\"duration_ms\":%lld.%03lld,", e->status, e->bytes,
                 (long long)(e->duration_us / 1000), (long long)(e->duration_us % 1000));
    else
        snprintf(num, sizeof num, "\"status\":%d,\"bytes\":%llu,\"duration_ms\":null,", e->status, e->bytes);
    if (rc == 0)
        rc = put(out, num);
    if (rc == 0)
        rc = put_json(out, "request_id", e->request_id, e->request_id_len);
    if (rc == 0)
        rc = put(out, ",");
    if (rc == 0)
        rc = put_json(out, "referer", e->referer, e->referer_len);
    if (rc == 0)
        rc = put(out, ",");
    if (rc == 0)
        rc = put_json(out, "user_agent", e->user_agent, e->user_agent_len);
    return rc ? rc : put(out, "}\n");
}

int mt_accesslog_format(mt_buf_t *out, mt_accesslog_format_t format, const mt_accesslog_entry_t *e) {
    return format == MT_ACCESSLOG_JSON ? format_json(out, e) : format_text(out, format, e);
}

void mt_accesslog_write(const mt_accesslog_t *log, const mt_accesslog_entry_t *e) {
    mt_buf_t line;
    mt_buf_init(&line);
    if (mt_accesslog_format(&line, log->format, e) == 0) {
        ssize_t n;
        do
            n = write(log->fd, line.data, line.len);
        while (n < 0 && errno == EINTR);
    }
    mt_buf_dispose(&line);
}

/* The value of a request field for the log, or NULL. */
static const char *request_field(const mt_conn_t *c, const char *lower, size_t n, char *buf, size_t *len) {
    const char *value;
    if (mt_request_header(&c->req, c->rbuf.data, lower, n, buf, &value, len) == 1)
        return value;
    return NULL;
}

void mt_accesslog_conn(const mt_accesslog_t *log, const mt_conn_t *c, int status, unsigned long long bytes,
                       bool head_parsed) {
    if (log == NULL)
        return;
    char host[64];
    int port;
    mt_sock_peer_format(mt_forwarded_client(&c->fwd, &c->peer), host, sizeof host, &port);
    const mt_request_t *req = &c->req;
    mt_accesslog_entry_t e = {
        .peer = host,
        .http_minor = -1,
        .status = status,
        .bytes = bytes,
        .duration_us = c->head_us ? mt_clock_now_us() - c->head_us : -1,
        .request_id = c->request_id_len ? c->request_id : NULL,
        .request_id_len = c->request_id_len,
    };
    if (req->method.len && req->target.len && (head_parsed || req->request_line_done)) {
        e.method = mt_span_ptr(c->rbuf.data, req->method);
        e.method_len = req->method.len;
        e.target = mt_span_ptr(c->rbuf.data, req->target);
        e.target_len = req->target.len;
        e.http_minor = req->http_minor;
    }
    /* A field given on several lines is joined into a buffer of
     * MT_REQUEST_FIELD_MAX bytes; only the formats that show them pay for it. */
    char *buf = head_parsed && log->format != MT_ACCESSLOG_COMMON ? malloc(2 * MT_REQUEST_FIELD_MAX) : NULL;
    if (buf) {
        e.referer = request_field(c, "referer", 7, buf, &e.referer_len);
        e.user_agent = request_field(c, "user-agent", 10, buf + MT_REQUEST_FIELD_MAX, &e.user_agent_len);
    }
    mt_accesslog_write(log, &e);
    free(buf);
}

size_t mt_accesslog_body_length(const char *out, size_t len) {
    const char *end = memmem(out, len, "\r\n\r\n", 4);
    return end ? len - (size_t)(end + 4 - out) : 0;
}
