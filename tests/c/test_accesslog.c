/* Unit tests of src/core/http1/accesslog.c: the JSON string escaper, the
 * three line formats, and a line logged from a parsed connection (written to
 * a pipe and read back). */
#include "buf.c"
#include "clock.c"
#include "sock.c"
#include "http1.c"
#include "http1_write.c"
#include "respond.c"
#include "output.c"
#include "conn.c"
#include "accesslog.c"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "server_limits.h"
#include "tap.h"

static mt_server_t server = {
    .config =
        {
            MT_TEST_LIMITS,
        },
};

static char escaped[1024];

static const char *esc(const char *s, size_t n) {
    size_t len = mt_accesslog_json_escape(escaped, s, n);
    escaped[len] = '\0';
    return escaped;
}

static void test_json_escape(void) {
    is_str(esc("plain /a?b=c", 12), "plain /a?b=c", "printable ASCII is kept");
    is_str(esc("a\"b\\c", 5), "a\\\"b\\\\c", "quote and backslash are escaped");
    is_str(esc("\n\r\t", 3), "\\n\\r\\t", "newline, return and tab have short escapes");
    is_str(esc("\x01\x1f\x7f", 3), "\\u0001\\u001f\\u007f", "other controls and DEL are \\u00XX");
    is_str(esc("a\0b", 3), "a\\u0000b", "NUL is escaped, not a terminator");
    is_str(esc("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
           "well-formed UTF-8 (2, 3 and 4 bytes) is kept");
    is_str(esc("a\xff"
               "b",
               3),
           "a\xef\xbf\xbd"
           "b",
           "an invalid byte becomes U+FFFD");
    is_str(esc("\xc3", 1), "\xef\xbf\xbd", "a truncated sequence becomes U+FFFD");
    is_str(esc("\xc0\xaf", 2), "\xef\xbf\xbd\xef\xbf\xbd", "an overlong '/' is two invalid bytes");
    is_str(esc("\xed\xa0\x80", 3), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "a UTF-16 surrogate is refused");
    is_str(esc("\xf4\x90\x80\x80", 4), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", "above U+10FFFF is refused");
    is_str(esc("\xe2\x82", 2), "\xef\xbf\xbd\xef\xbf\xbd", "a cut 3-byte sequence is refused byte by byte");
    char worst[64];
    memset(worst, 1, sizeof worst);
    ok(mt_accesslog_json_escape(escaped, worst, sizeof worst) == 6 * sizeof worst, "6 bytes per byte at most");
}

/* The line of `e` in `format`, without the time (replaced by "T"). */
static const char *line(mt_accesslog_format_t format, const mt_accesslog_entry_t *e) {
    static char text[2048];
    mt_buf_t out;
    mt_buf_init(&out);
    if (mt_accesslog_format(&out, format, e) < 0)
        return "ENOMEM";
    size_t n = MT_MIN(out.len, sizeof text - 1);
    memcpy(text, out.data, n);
    text[n] = '\0';
    mt_buf_dispose(&out);
    const char *date = format == MT_ACCESSLOG_JSON ? mt_clock_iso_date() : mt_clock_log_date();
    char *at = strstr(text, date);
    if (at) {
        size_t dlen = strlen(date);
        at[0] = 'T';
        memmove(at + 1, at + dlen, strlen(at + dlen) + 1);
    }
    return text;
}

static void test_formats(void) {
    mt_accesslog_entry_t e = {
        .peer = "192.0.2.1",
        .method = "GET",
        .method_len = 3,
        .target = "/a?q=\"x\"",
        .target_len = 8,
        .http_minor = 1,
        .status = 200,
        .bytes = 5,
        .duration_us = 1234,
        .request_id = "abc",
        .request_id_len = 3,
        .referer = "http://r/",
        .referer_len = 9,
        .user_agent = "curl/8 \xff",
        .user_agent_len = 8,
    };
    is_str(line(MT_ACCESSLOG_COMMON, &e), "192.0.2.1 - - [T] \"GET /a?q=\\x22x\\x22 HTTP/1.1\" 200 5\n",
           "common: Common Log Format, quotes in the target as \\x22");
    is_str(line(MT_ACCESSLOG_COMBINED, &e),
           "192.0.2.1 - - [T] \"GET /a?q=\\x22x\\x22 HTTP/1.1\" 200 5 \"http://r/\" \"curl/8 \\xff\"\n",
           "combined: common, then referer and user agent");
    is_str(line(MT_ACCESSLOG_JSON, &e),
           "{\"time\":\"T\",\"remote_addr\":\"192.0.2.1\",\"method\":\"GET\",\"target\":\"/a?q=\\\"x\\\"\","
           "\"protocol\":\"HTTP/1.1\",\"status\":200,\"bytes\":5,\"duration_ms\":1.234,\"request_id\":\"abc\","
           "\"referer\":\"http://r/\",\"user_agent\":\"curl/8 \xef\xbf\xbd\"}\n",
           "json: one object, escaped, duration in ms with 3 decimals");
    mt_accesslog_entry_t bare = {.peer = "", .http_minor = -1, .status = 400, .duration_us = -1};
    is_str(line(MT_ACCESSLOG_COMBINED, &bare), "- - - [T] \"-\" 400 - \"-\" \"-\"\n",
           "combined: an unparsed request and absent fields are '-'");
    is_str(line(MT_ACCESSLOG_JSON, &bare),
           "{\"time\":\"T\",\"remote_addr\":null,\"method\":null,\"target\":null,\"protocol\":null,\"status\":400,"
           "\"bytes\":0,\"duration_ms\":null,\"request_id\":null,\"referer\":null,\"user_agent\":null}\n",
           "json: absent values are null");
    char evil[] = "/\n\r\x1b[31m";
    mt_accesslog_entry_t inj = {.peer = "::1",
                                .method = "GET",
                                .method_len = 3,
                                .target = evil,
                                .target_len = sizeof evil - 1,
                                .http_minor = 0,
                                .status = 404};
    const char *text = line(MT_ACCESSLOG_COMMON, &inj);
    is_str(text, "::1 - - [T] \"GET /\\x0a\\x0d\\x1b[31m HTTP/1.0\" 404 -\n", "common: no raw control byte gets out");
    ok(strchr(text, '\n') == text + strlen(text) - 1, "one line: the only newline ends it");
    text = line(MT_ACCESSLOG_JSON, &inj);
    ok(strstr(text, "\"/\\n\\r\\u001b[31m\"") != NULL, "json: controls escaped in the target");
}

static void test_body_length(void) {
    const char *answer = "HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nabcd";
    is_int(mt_accesslog_body_length(answer, strlen(answer)), 4, "the body follows the blank line");
    is_int(mt_accesslog_body_length("HTTP/1.1 204", 12), 0, "no blank line: no body");
}

/* A parsed request on a connection, logged to a pipe. */
static void test_conn_line(void) {
    int sv[2], pipefd[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) < 0)
        abort();
    mt_conn_t *c = calloc(1, sizeof *c + sizeof(mt_header_t) * server.config.limits.max_headers);
    if (mt_conn_init(c, &server, sv[0]) < 0)
        abort();
    mt_http1_init(&c->req, &server.config.limits, c->headers, &c->body);
    const char *head = "POST /form?x=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: ua/1\r\nReferer: /from\r\n"
                       "Content-Length: 2\r\n\r\nab";
    mt_buf_append(&c->rbuf, head, strlen(head));
    size_t stop;
    is_int(mt_http1_parse(&c->req, c->rbuf.data, 0, c->rbuf.len, &stop), MT_PARSE_COMPLETE, "the request parses");
    c->head_us = mt_clock_now_us() - 2500;
    memcpy(c->request_id, "rid-1", 5);
    c->request_id_len = 5;
    mt_accesslog_t log = {.fd = pipefd[1], .format = MT_ACCESSLOG_JSON};
    mt_accesslog_conn(&log, c, 201, 7, true);
    char got[1024];
    ssize_t n = read(pipefd[0], got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    ok(n > 0 && got[n - 1] == '\n', "one line written");
    ok(strstr(got,
              "\"method\":\"POST\",\"target\":\"/form?x=1\",\"protocol\":\"HTTP/1.1\",\"status\":201,\"bytes\":7") !=
           NULL,
       "the request line, status and bytes: %s", got);
    ok(strstr(got, "\"request_id\":\"rid-1\",\"referer\":\"/from\",\"user_agent\":\"ua/1\"") != NULL,
       "the request id and the fields");
    const char *d = strstr(got, "\"duration_ms\":");
    double ms = d ? atof(d + 14) : 0;
    ok(ms >= 2.5 && ms < 1000, "the duration counts from the head (%.3f ms)", ms);
    log.format = MT_ACCESSLOG_COMMON;
    mt_accesslog_conn(NULL, c, 200, 0, true);
    ok(read(pipefd[0], got, sizeof got) < 0, "a NULL log writes nothing");
    mt_accesslog_conn(&log, c, 400, 0, false);
    n = read(pipefd[0], got, sizeof got - 1);
    got[n > 0 ? n : 0] = '\0';
    ok(strstr(got, "\"POST /form?x=1 HTTP/1.1\" 400 -\n") != NULL, "a refused request logs its request line: %s", got);
    mt_conn_dispose(c);
    free(c);
    close(sv[1]);
    close(pipefd[0]);
    close(pipefd[1]);
}

int main(void) {
    test_json_escape();
    test_formats();
    test_body_length();
    test_conn_line();
    return done_testing();
}
