/* Unit tests of src/core/http1_write.c: response serialization. Whatever the
 * application hands us, nothing with CR, LF or NUL may reach the wire. */
#include "buf.c"
#include "clock.c"
#include "http1_write.c"

#include <stdlib.h>
#include <time.h>

#include "tap.h"

/* The buffer's content as a C string (tests only append text). */
static const char *text(mt_buf_t *b) {
    mt_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return b->data;
}

static void test_status(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    int code = -1;
    is_int(mt_http1_write_status(&b, "200 OK", 6, &code), 0, "200 OK");
    is_str(text(&b), "HTTP/1.1 200 OK\r\n", "status line");
    is_int(code, 200, "code parsed");
    b.len = 0;
    is_int(mt_http1_write_status(&b, "404 Not Found", 13, &code), 0, "404 Not Found");
    is_int(code, 404, "code 404");
    b.len = 0;
    is_int(mt_http1_write_status(&b, "299 ", 4, &code), 0, "an empty reason phrase is allowed");
    is_str(text(&b), "HTTP/1.1 299 \r\n", "status line with empty reason");
    is_int(mt_http1_write_status(&b, "599 Custom\tTab", 14, &code), 0, "HTAB allowed in the reason");

    static const struct {
        const char *status;
        const char *why;
    } bad[] = {
        {"200", "no space and reason"},
        {"20 OK", "two digits"},
        {"2000 OK", "four digits"},
        {"abc OK", "not digits"},
        {"099 X", "leading zero (< 100)"},
        {"200OK", "no space"},
        {"200 OK\r\nX-Evil: 1", "CRLF in the reason"},
        {"200 OK\n", "LF in the reason"},
        {"200 OK\r", "CR in the reason"},
        {"", "empty"},
        {"-20 OK", "sign"},
        {" 200 OK", "leading space"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(bad); i++) {
        b.len = 0;
        code = -1;
        int rc = mt_http1_write_status(&b, bad[i].status, strlen(bad[i].status), &code);
        ok(rc == -EINVAL && b.len == 0 && code == -1, "status rejected: %s", bad[i].why);
    }
    b.len = 0;
    is_int(mt_http1_write_status(&b, "200 O\0K", 7, &code), -EINVAL, "status rejected: NUL in the reason");
    is_int(b.len, 0, "nothing appended on failure");
    mt_buf_dispose(&b);
}

static void test_fields(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    is_int(mt_http1_write_field(&b, "Content-Type", 12, "text/html; charset=utf-8", 24), 0, "a field");
    is_str(text(&b), "Content-Type: text/html; charset=utf-8\r\n", "name: value CRLF");
    b.len = 0;
    is_int(mt_http1_write_field(&b, "X-Empty", 7, "", 0), 0, "an empty value is allowed");
    is_str(text(&b), "X-Empty: \r\n", "empty value on the wire");
    b.len = 0;
    is_int(mt_http1_write_field(&b, "X-Obs", 5, "caf\xc3\xa9\tx", 7), 0, "obs-text and HTAB in a value are allowed");

    static const struct {
        const char *name, *value;
        size_t nlen, vlen;
        const char *why;
    } bad[] = {
        {"X-A", "a\r\nSet-Cookie: x=1", 3, 19, "CRLF in the value"},
        {"X-A", "a\nb", 3, 3, "LF in the value"},
        {"X-A", "a\rb", 3, 3, "CR in the value"},
        {"X-A", "a\0b", 3, 3, "NUL in the value"},
        {"X-A", "a\x01", 3, 2, "control char in the value"},
        {"X-A", "a\x7f", 3, 2, "DEL in the value"},
        {"X-A\r\nX-B", "v", 8, 1, "CRLF in the name"},
        {"X\nA", "v", 3, 1, "LF in the name"},
        {"X\0A", "v", 3, 1, "NUL in the name"},
        {"", "v", 0, 1, "empty name"},
        {"X A", "v", 3, 1, "space in the name"},
        {"X-A:", "v", 4, 1, "colon in the name"},
        {"X(A)", "v", 4, 1, "separator in the name"},
        {"X\xc3\xa9", "v", 3, 1, "non-ASCII in the name"},
        {"X-A ", "v", 4, 1, "trailing space in the name"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(bad); i++) {
        b.len = 0;
        int rc = mt_http1_write_field(&b, bad[i].name, bad[i].nlen, bad[i].value, bad[i].vlen);
        ok(rc == -EINVAL && b.len == 0, "field rejected, nothing written: %s", bad[i].why);
    }

    ok(mt_http1_token_valid("!#$%&'*+-.^_`|~09AZaz", 21), "every tchar class is a token");
    ok(!mt_http1_token_valid("a\"b", 3), "a quote is not a token char");
    ok(mt_http1_value_valid("", 0), "empty value is valid");
    mt_buf_dispose(&b);
}

static void test_date_and_lengths(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    is_int(mt_http1_write_date(&b), 0, "Date field");
    ok(b.len == 6 + MT_HTTP_DATE_LEN + 2, "Date field length");
    text(&b);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(b.data, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
    ok(end == b.data + b.len, "Date parses back as an IMF-fixdate");
    time_t t = timegm(&tm), now = time(NULL);
    ok(t >= now - 2 && t <= now, "Date is now (%lld vs %lld)", (long long)t, (long long)now);

    b.len = 0;
    mt_http1_write_content_length(&b, 0);
    mt_http1_write_content_length(&b, 18446744073709551615ULL);
    is_str(text(&b), "Content-Length: 0\r\nContent-Length: 18446744073709551615\r\n", "Content-Length, 0 and max");
    b.len = 0;
    mt_http1_write_raw(&b, "raw\r\n", 5);
    is_str(text(&b), "raw\r\n", "raw text");
    mt_buf_dispose(&b);

    static const struct {
        size_t size;
        const char *line;
    } chunks[] = {
        {0, "0\r\n"},
        {1, "1\r\n"},
        {15, "f\r\n"},
        {16, "10\r\n"},
        {255, "ff\r\n"},
        {4096, "1000\r\n"},
        {0xabcdef, "abcdef\r\n"},
        {SIZE_MAX, "ffffffffffffffff\r\n"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(chunks); i++) {
        char line[20 + 8];
        memset(line, 'Z', sizeof line);
        size_t n = mt_http1_chunk_size_line(line, chunks[i].size);
        ok(n == strlen(chunks[i].line) && memcmp(line, chunks[i].line, n) == 0 && line[n] == 'Z',
           "chunk size line for %zu is '%.*s' and writes nothing more", chunks[i].size, (int)n - 2, line);
        ok(n <= 20, "chunk size line fits the documented 20 bytes");
    }
}

/* Parses an error response back: status line, fields, body framed by its
 * Content-Length. Returns the body, or NULL if malformed. */
static const char *parse_response(const char *r, int *status, char *reason, size_t rlen, int *has_close, int *has_date,
                                  long *clen, const char **ctype_end) {
    int n = 0;
    if (sscanf(r, "HTTP/1.1 %3d %n", status, &n) != 1 || n == 0)
        return NULL;
    const char *eol = strstr(r, "\r\n");
    snprintf(reason, rlen, "%.*s", (int)(eol - r - n), r + n);
    *has_close = *has_date = 0;
    *clen = -1;
    for (const char *line = eol + 2; line; line = strstr(line, "\r\n") + 2) {
        if (strncmp(line, "\r\n", 2) == 0)
            return line + 2;
        const char *colon = strchr(line, ':');
        const char *next = strstr(line, "\r\n");
        if (!colon || !next || colon > next || memchr(line, '\n', (size_t)(next - line)))
            return NULL;
        if (strncmp(line, "Connection: close\r\n", 19) == 0)
            *has_close = 1;
        if (strncmp(line, "Date: ", 6) == 0)
            *has_date = next - line == 6 + MT_HTTP_DATE_LEN;
        if (strncmp(line, "Content-Length: ", 16) == 0)
            *clen = strtol(line + 16, NULL, 10);
        if (strncmp(line, "Content-Type: ", 14) == 0)
            *ctype_end = next;
    }
    return NULL;
}

static void test_error_response(void) {
    static const int statuses[] = {400, 408, 413, 414, 431, 501, 503, 505};
    for (size_t i = 0; i < MT_ARRAY_SIZE(statuses); i++) {
        mt_buf_t b;
        mt_buf_init(&b);
        is_int(mt_http1_write_error(&b, statuses[i], "some detail", true), 0, "error response %d", statuses[i]);
        text(&b);
        int status = 0, has_close = 0, has_date = 0;
        long clen = -1;
        const char *ctype = NULL;
        char reason[64];
        const char *body = parse_response(b.data, &status, reason, sizeof reason, &has_close, &has_date, &clen, &ctype);
        ok(body != NULL, "%d parses back as an HTTP/1.1 response", statuses[i]);
        if (!body)
            continue;
        ok(status == statuses[i] && strcmp(reason, mt_http1_reason(statuses[i])) == 0, "%d: status line '%d %s'",
           statuses[i], status, reason);
        ok(strcmp(reason, "Unknown") != 0, "%d has a real reason phrase", statuses[i]);
        ok(has_date && has_close && ctype, "%d: Date, Connection: close, Content-Type", statuses[i]);
        is_int(clen, (long)strlen(body), "%d: Content-Length frames exactly the body", statuses[i]);
        char want[128];
        snprintf(want, sizeof want, "%d %s: some detail\n", statuses[i], reason);
        is_str(body, want, "%d: body names the problem", statuses[i]);
        mt_buf_dispose(&b);
    }

    mt_buf_t b;
    mt_buf_init(&b);
    mt_http1_write_error(&b, 400, NULL, false);
    text(&b);
    int status, has_close, has_date;
    long clen;
    const char *ctype = NULL;
    char reason[64];
    const char *body = parse_response(b.data, &status, reason, sizeof reason, &has_close, &has_date, &clen, &ctype);
    ok(body && !has_close, "without close: no Connection: close");
    ok(body && strcmp(body, "400 Bad Request\n") == 0 && clen == 16, "without detail: body is the status line");
    mt_buf_dispose(&b);

    /* A detail longer than the body buffer is cut, and still framed right. */
    char longdetail[1000];
    memset(longdetail, 'd', sizeof longdetail - 1);
    longdetail[sizeof longdetail - 1] = '\0';
    mt_buf_init(&b);
    mt_http1_write_error(&b, 431, longdetail, true);
    text(&b);
    body = parse_response(b.data, &status, reason, sizeof reason, &has_close, &has_date, &clen, &ctype);
    ok(body && clen == (long)strlen(body) && clen > 0 && clen < 256, "a long detail is truncated, framing intact");
    mt_buf_dispose(&b);

    is_str(mt_http1_reason(999), "Unknown", "unknown status reason");
    is_str(mt_http1_reason(100), "Continue", "100 reason");
}

int main(void) {
    test_status();
    test_fields();
    test_date_and_lengths();
    test_error_response();
    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffer counters balance");
    return done_testing();
}
