/* RESP (resp.h). */
#include "resp.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The line at s[pos, n) up to CRLF: sets *end to the CR. False when
 * incomplete (no CRLF yet). A bare CR or LF inside is left to the caller. */
static bool line_end(const char *s, size_t pos, size_t n, size_t *end) {
    const char *cr = pos < n ? memchr(s + pos, '\r', n - pos) : NULL;
    if (cr == NULL || (size_t)(cr - s) + 1 >= n)
        return false;
    *end = (size_t)(cr - s);
    return true;
}

/* A decimal number of at most 18 digits, with an optional '-'. */
static bool number(const char *s, size_t n, long long *out) {
    bool neg = n > 0 && s[0] == '-';
    size_t i = neg ? 1 : 0;
    if (n == i || n - i > 18)
        return false;
    long long v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* One value at s[*pos, n); arrays only when `top`. */
static mt_resp_result_t value(const char *s, size_t n, size_t *pos, mt_resp_value_t *v, bool top, int *count) {
    size_t p = *pos, end;
    if (p >= n)
        return MT_RESP_INCOMPLETE;
    char kind = s[p];
    if (!line_end(s, p + 1, n, &end)) {
        /* A bare LF before any CR can never become a line. */
        const char *cr = memchr(s + p + 1, '\r', n - p - 1), *lf = memchr(s + p + 1, '\n', n - p - 1);
        if (lf && (cr == NULL || lf < cr))
            return MT_RESP_BAD;
        return n - p > 64 + MT_RESP_MAX_BULK ? MT_RESP_BAD : MT_RESP_INCOMPLETE;
    }
    if (s[end + 1] != '\n' || memchr(s + p + 1, '\n', end - p - 1))
        return MT_RESP_BAD;
    const char *text = s + p + 1;
    size_t tlen = end - p - 1;
    long long num = 0;
    switch (kind) {
    case '+':
    case '-':
        v->type = kind == '+' ? MT_RESP_STATUS : MT_RESP_ERROR;
        v->str = text;
        v->len = tlen;
        *pos = end + 2;
        return MT_RESP_DONE;
    case ':':
        if (!number(text, tlen, &num))
            return MT_RESP_BAD;
        v->type = MT_RESP_INT;
        v->integer = num;
        *pos = end + 2;
        return MT_RESP_DONE;
    case '$':
        if (!number(text, tlen, &num) || num < -1 || num > MT_RESP_MAX_BULK)
            return MT_RESP_BAD;
        if (num == -1) {
            v->type = MT_RESP_NIL;
            *pos = end + 2;
            return MT_RESP_DONE;
        }
        if (n - (end + 2) < (size_t)num + 2)
            return MT_RESP_INCOMPLETE;
        if (s[end + 2 + num] != '\r' || s[end + 3 + num] != '\n')
            return MT_RESP_BAD;
        v->type = MT_RESP_BULK;
        v->str = s + end + 2;
        v->len = (size_t)num;
        *pos = end + 4 + (size_t)num;
        return MT_RESP_DONE;
    case '*':
        if (!top || !number(text, tlen, &num) || num < -1 || num > MT_RESP_MAX_ITEMS)
            return MT_RESP_BAD;
        v->type = num == -1 ? MT_RESP_NIL : MT_RESP_ARRAY;
        *count = num == -1 ? 0 : (int)num;
        *pos = end + 2;
        return MT_RESP_DONE;
    default:
        return MT_RESP_BAD;
    }
}

mt_resp_result_t mt_resp_parse(const char *s, size_t n, mt_resp_reply_t *r, size_t *used) {
    size_t pos = 0;
    r->n = 0;
    int count = 0;
    mt_resp_result_t rc = value(s, n, &pos, &r->top, true, &count);
    if (rc != MT_RESP_DONE)
        return rc;
    for (int i = 0; r->top.type == MT_RESP_ARRAY && i < count; i++) {
        if ((rc = value(s, n, &pos, &r->items[i], false, NULL)) != MT_RESP_DONE)
            return rc;
        r->n = i + 1;
    }
    *used = pos;
    return MT_RESP_DONE;
}

int mt_resp_command(mt_buf_t *out, int argc, const char *const *argv, const size_t *lens) {
    char head[32];
    int k = snprintf(head, sizeof head, "*%d\r\n", argc);
    if (mt_buf_append(out, head, (size_t)k) < 0)
        return -ENOMEM;
    for (int i = 0; i < argc; i++) {
        k = snprintf(head, sizeof head, "$%zu\r\n", lens[i]);
        if (mt_buf_append(out, head, (size_t)k) < 0 || mt_buf_append(out, argv[i], lens[i]) < 0 ||
            mt_buf_append(out, "\r\n", 2) < 0)
            return -ENOMEM;
    }
    return 0;
}
