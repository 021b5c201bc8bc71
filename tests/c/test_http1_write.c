/* Unit tests of src/core/http1/http1_write.c: response serialization. Whatever the
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

/* A chunked body's end: the last chunk, the trailer fields, the blank line
 * (RFC 9112 7.1.2), with trailer fields checked as header fields are and
 * the fields RFC 9110 6.5.1 keeps out of a trailer section refused. */
static void test_trailers(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    is_int(mt_http1_last_chunk(&b, false), 0, "last chunk without trailers");
    is_str(text(&b), "0\r\n\r\n", "the last chunk and the empty trailer section");
    b.len = 0;
    is_int(mt_http1_last_chunk(&b, true), 0, "last chunk, trailers to follow");
    is_int(mt_http1_write_trailer(&b, "X-Checksum", 10, "abc123", 6), 0, "a trailer field");
    is_int(mt_http1_write_trailer(&b, "grpc-status", 11, "0", 1), 0, "a second trailer field");
    mt_http1_write_raw(&b, "\r\n", 2);
    is_str(text(&b), "0\r\nX-Checksum: abc123\r\ngrpc-status: 0\r\n\r\n", "the trailer section on the wire");

    static const struct {
        const char *name;
        const char *rule;
    } forbidden[] = {
        {"Content-Length", "message framing"},
        {"transfer-encoding", "message framing"},
        {"TRAILER", "message framing"},
        {"Connection", "message framing"},
        {"te", "message framing"},
        {"Host", "routing"},
        {"Authorization", "authentication"},
        {"Set-Cookie", "authentication"},
        {"Cache-Control", "response controls"},
        {"Content-Encoding", "content format"},
        {"Content-Type", "content format"},
        {"Content-Range", "content format"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(forbidden); i++) {
        const char *name = forbidden[i].name;
        const char *rule = mt_http1_trailer_rule(name, strlen(name));
        ok(rule && strcmp(rule, forbidden[i].rule) == 0, "%s is refused in trailers (%s)", name, rule ? rule : "none");
        size_t mark = b.len;
        is_int(mt_http1_write_trailer(&b, name, strlen(name), "1", 1), MT_HTTP1_EFORBIDDEN, "%s: EFORBIDDEN", name);
        is_int(b.len, mark, "%s: nothing appended", name);
    }
    ok(mt_http1_trailer_rule("Content-Lengths", 15) == NULL, "a longer name is not a forbidden one");
    ok(mt_http1_trailer_rule("Content-Lengt", 13) == NULL, "nor a prefix of one");
    ok(mt_http1_trailer_rule("Server-Timing", 13) == NULL, "Server-Timing may be a trailer");

    size_t mark = b.len;
    is_int(mt_http1_write_trailer(&b, "X-Evil", 6, "1\r\nX-Injected: 1", 18), -EINVAL, "CRLF in a trailer value");
    is_int(mt_http1_write_trailer(&b, "X Evil", 6, "1", 1), -EINVAL, "a space in a trailer name");
    is_int(mt_http1_write_trailer(&b, "", 0, "1", 1), -EINVAL, "an empty trailer name");
    is_int(mt_http1_write_trailer(&b, "X-Nul", 5, "a\0b", 3), -EINVAL, "NUL in a trailer value");
    is_int(b.len, mark, "nothing appended for a bad trailer field");
    is_int(mt_http1_write_trailer(NULL, "X-Checksum", 10, "abc", 3), 0, "checked only, with no buffer");
    is_int(mt_http1_write_trailer(NULL, "Host", 4, "abc", 3), MT_HTTP1_EFORBIDDEN, "refused with no buffer too");
    mt_buf_dispose(&b);
}

static void test_reasons(void) {
    is_str(mt_http1_reason(999), "Unknown", "unknown status reason");
    is_str(mt_http1_reason(100), "Continue", "100 reason");
}

int main(void) {
    test_status();
    test_fields();
    test_date_and_lengths();
    test_reasons();
    test_trailers();
    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffer counters balance");
    return done_testing();
}
