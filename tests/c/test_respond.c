/* Unit tests of src/core/http1/respond.c, the one response writer: the framing
 * matrix (status x method x version x length), the field filter, Vary merged
 * by tokens, ETag weakening, and the server's error answers. Every head is
 * read back by llhttp in response mode, followed by the body its framing
 * promises: it must end exactly where the writer meant it to. */
#include "buf.c"
#include "clock.c"
#include "http1.c"
#include "http1_write.c"
#include "respond.c"

#include <stdlib.h>

#include "tap.h"

/* The buffer's content as a C string (tests only append text). */
static const char *text(mt_buf_t *b) {
    mt_buf_reserve(b, 1);
    b->data[b->len] = '\0';
    return b->data;
}

/* The value of field `name` in a head (its first occurrence), or NULL; into
 * one of 8 static buffers used in turn. */
static const char *field(const char *head, const char *name) {
    static char values[8][512];
    static int next;
    char *value = values[next++ % 8];
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        const char *p = line + 2;
        if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
            const char *end = strstr(p, "\r\n");
            snprintf(value, sizeof values[0], "%.*s", (int)(end - p - n - 2), p + n + 2);
            return value;
        }
    }
    return NULL;
}

static int count_fields(const char *head, const char *name) {
    int count = 0;
    size_t n = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n"))
        if (strncasecmp(line + 2, name, n) == 0 && line[2 + n] == ':')
            count++;
    return count;
}

/* ---- llhttp read-back ---- */

typedef struct readback {
    bool head_request;
    bool head_done, complete;
    size_t body;
} readback_t;

static int rb_headers_complete(llhttp_t *p) {
    readback_t *r = p->data;
    r->head_done = true;
    return r->head_request ? 1 : 0; /* a response to HEAD has no body, whatever it says */
}

static int rb_body(llhttp_t *p, const char *at, size_t n) {
    ((readback_t *)p->data)->body += n;
    return 0;
}

static int rb_complete(llhttp_t *p) {
    ((readback_t *)p->data)->complete = true;
    return HPE_PAUSED; /* one message: what follows is not under test */
}

/* Parses data as a client that sent `method` would. Returns whether the
 * message completed, with *body the body bytes read and *keep_alive what
 * llhttp concludes about the connection. `eof`: the server closes after. */
static bool read_back(const char *data, size_t n, int method, bool eof, int *status, size_t *body, bool *keep_alive) {
    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_headers_complete = rb_headers_complete;
    settings.on_body = rb_body;
    settings.on_message_complete = rb_complete;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    readback_t r = {.head_request = method == HTTP_HEAD};
    parser.data = &r;
    llhttp_errno_t err = llhttp_execute(&parser, data, n);
    if (err == HPE_OK && eof && !r.complete)
        err = llhttp_finish(&parser);
    if (err != HPE_OK && err != HPE_PAUSED)
        return false;
    *status = parser.status_code;
    *body = r.body;
    *keep_alive = llhttp_should_keep_alive(&parser);
    return r.complete;
}

/* ---- the framing matrix ---- */

static void test_framing_matrix(void) {
    static const int statuses[] = {100, 200, 204, 304, 404};
    static const int methods[] = {HTTP_GET, HTTP_HEAD};
    /* declared: the producer's Content-Length; known: the length in hand. */
    static const struct {
        long long declared, known;
        const char *name;
    } lengths[] = {{-1, -1, "unknown"}, {7, -1, "declared"}, {-1, 5, "known"}, {7, 7, "declared and known"}};
    int cases = 0, failures = 0;
    for (size_t si = 0; si < MT_ARRAY_SIZE(statuses); si++)
        for (size_t mi = 0; mi < MT_ARRAY_SIZE(methods); mi++)
            for (int minor = 0; minor <= 1; minor++)
                for (size_t li = 0; li < MT_ARRAY_SIZE(lengths); li++)
                    for (int keep = 0; keep <= 1; keep++) {
                        int s = statuses[si], method = methods[mi];
                        long long declared = lengths[li].declared, known = lengths[li].known;
                        mt_request_t req = {.method_id = (uint8_t)method, .http_minor = (uint8_t)minor};
                        mt_respond_t r;
                        mt_respond_init(&r, &req, keep);
                        mt_buf_t b;
                        mt_buf_init(&b);
                        int rc = mt_respond_status(&r, &b, s);
                        char value[24];
                        if (rc == 0 && declared >= 0) {
                            int n = snprintf(value, sizeof value, "%lld", declared);
                            rc = mt_respond_field(&r, &b, "Content-Length", 14, value, (size_t)n);
                        }
                        if (rc == 0)
                            rc = mt_respond_field(&r, &b, "Content-Type", 12, "text/plain", 10);
                        if (rc == 0)
                            rc = mt_respond_end(&r, &b, NULL, known);
                        const char *head = text(&b);

                        /* What RFC 9110/9112 ask, written out independently. */
                        bool bodiless = s < 200 || s == 204 || s == 304;
                        bool no_body = bodiless || method == HTTP_HEAD;
                        bool no_length = s < 200 || s == 204;
                        bool want_cl = !no_length && (declared >= 0 || (known >= 0 && s != 304));
                        long long cl = declared >= 0 ? declared : known;
                        bool want_te = !no_length && !want_cl && !bodiless && minor == 1;
                        bool want_chunked = want_te && method != HTTP_HEAD;
                        bool want_keep = keep && !(!no_body && !want_cl && minor == 0);
                        const char *got_cl = field(head, "Content-Length");
                        const char *conn = field(head, "Connection");
                        bool pass = rc == 0 && r.no_body == no_body && r.chunked == want_chunked &&
                                    r.keep_alive == want_keep && (got_cl != NULL) == want_cl &&
                                    (!want_cl || atoll(got_cl) == cl) &&
                                    (field(head, "Transfer-Encoding") != NULL) == want_te &&
                                    count_fields(head, "Content-Length") <= 1 && field(head, "Date") != NULL &&
                                    (want_keep ? (minor == 0 ? conn && strcmp(conn, "keep-alive") == 0 : !conn)
                                               : conn && strcmp(conn, "close") == 0);

                        /* The body its framing promises, read back by llhttp. */
                        size_t body_len = no_body ? 0 : want_cl ? (size_t)cl : 5;
                        if (!no_body && want_chunked)
                            mt_buf_append(&b, "5\r\nhello\r\n0\r\n\r\n", 15);
                        else
                            for (size_t i = 0; i < body_len; i++)
                                mt_buf_append(&b, "x", 1);
                        int status = 0;
                        size_t body = 0;
                        bool alive = false;
                        bool eof = !no_body && !want_cl && !want_chunked;
                        bool complete = read_back(b.data, b.len, method, eof, &status, &body, &alive);
                        pass = pass && complete && status == s && body == body_len &&
                               (s < 200 || alive == (want_keep && !eof));
                        cases++;
                        if (!pass) {
                            failures++;
                            diag("%d to %s HTTP/1.%d, %s length, keep-alive %d: rc %d, chunked %d, keep %d, "
                                 "read back %d/%d body %zu\n%s",
                                 s, method == HTTP_HEAD ? "HEAD" : "GET", minor, lengths[li].name, keep, rc, r.chunked,
                                 r.keep_alive, complete, status, body, text(&b));
                        }
                        mt_buf_dispose(&b);
                    }
    ok(failures == 0, "framing matrix: %d cases of status x method x version x length x keep-alive (%d failed)", cases,
       failures);
}

/* One head with the given fields (name, value pairs; NULL ends). Returns the
 * rc of the first field that failed, or of mt_respond_end. */
static int build(mt_buf_t *b, mt_respond_t *r, int method, int minor, int status, const char *const *fields,
                 long long known) {
    mt_request_t req = {.method_id = (uint8_t)method, .http_minor = (uint8_t)minor};
    bool compressing = r->compressing, vary = r->vary;
    mt_respond_init(r, &req, true);
    r->compressing = compressing;
    r->vary = vary;
    int rc = mt_respond_status(r, b, status);
    for (int i = 0; rc == 0 && fields[i]; i += 2)
        rc = mt_respond_field(r, b, fields[i], strlen(fields[i]), fields[i + 1], strlen(fields[i + 1]));
    if (rc == 0)
        rc = mt_respond_end(r, b, NULL, known);
    text(b);
    return rc;
}

static void test_status(void) {
    mt_respond_t r;
    mt_buf_t b;
    mt_buf_init(&b);
    mt_respond_init(&r, NULL, true);
    is_int(mt_respond_status(&r, &b, 99), -EINVAL, "status 99 refused");
    is_int(mt_respond_status(&r, &b, 1000), -EINVAL, "status 1000 refused");
    is_int((int)b.len, 0, "nothing written for a refused status");
    is_int(mt_respond_status(&r, &b, 416), 0, "status 416");
    is_str(text(&b), "HTTP/1.1 416 Range Not Satisfiable\r\n", "status line from the one reason table");
    b.len = 0;
    is_int(mt_respond_status(&r, &b, 599), 0, "status 599");
    is_str(text(&b), "HTTP/1.1 599 Unknown\r\n", "an unknown status still gets a reason phrase");
    b.len = 0;
    is_int(mt_respond_status_line(&r, &b, "200 OK\r\nX-Evil: 1", 17), -EINVAL, "CRLF in a WSGI status refused");
    is_int((int)b.len, 0, "nothing of it written");
    is_int(mt_respond_status_line(&r, &b, "201 Made", 8), 0, "WSGI status accepted");
    ok(r.status == 201 && !r.no_body, "its code is 201");
    mt_request_t head = {.method_id = HTTP_HEAD, .http_minor = 1};
    mt_respond_init(&r, &head, true);
    mt_respond_status(&r, &b, 200);
    ok(r.no_body, "HEAD: no body");
    mt_buf_dispose(&b);
}

static void test_field_filter(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    mt_respond_t r = {0};
    static const char *const hop[] = {
        "Transfer-Encoding", "chunked",    "Keep-Alive", "timeout=5", "TE", "trailers", "Proxy-Connection",
        "keep-alive",        "Connection", "upgrade",    "X-Kept",    "1",  NULL};
    is_int(build(&b, &r, HTTP_GET, 1, 200, hop, 3), 0, "hop-by-hop fields accepted");
    ok(!field(b.data, "Keep-Alive") && !field(b.data, "TE") && !field(b.data, "Proxy-Connection") &&
           !field(b.data, "Connection") && !field(b.data, "Transfer-Encoding"),
       "hop-by-hop fields dropped");
    ok(field(b.data, "X-Kept") && strcmp(field(b.data, "Content-Length"), "3") == 0 && r.keep_alive,
       "other fields kept; the server frames the body (Content-Length: 3) and keeps the connection");

    static const char *const close_fields[] = {"Connection", "Keep-Alive, close", NULL};
    b.len = 0;
    build(&b, &r, HTTP_GET, 1, 200, close_fields, 0);
    ok(!r.keep_alive && strcmp(field(b.data, "Connection"), "close") == 0, "Connection: close honoured");
    static const char *const closed[] = {"Connection", "closed", NULL};
    b.len = 0;
    build(&b, &r, HTTP_GET, 1, 200, closed, 0);
    ok(r.keep_alive && !field(b.data, "Connection"), "the token 'closed' is not 'close'");

    /* Injection: nothing of a refused field reaches the buffer. */
    static const struct {
        const char *name, *value;
        size_t vlen;
        const char *what;
    } bad[] = {
        {"X-A", "1\r\nX-Evil: 2", 0, "CRLF in a value"},
        {"X-A", "1\nX-Evil: 2", 0, "LF in a value"},
        {"X-A", "1\rX", 0, "CR in a value"},
        {"X-A", "1\0X", 3, "NUL in a value"},
        {"X-A", "\x7f", 0, "DEL in a value"},
        {"X-A\r\nX-Evil", "1", 0, "CRLF in a name"},
        {"X A", "1", 0, "a space in a name"},
        {"X-A:", "1", 0, "a colon in a name"},
        {"", "1", 0, "an empty name"},
        {"Transfer-Encoding", "chunked\r\n\r\nHTTP/1.1 200 OK", 0, "CRLF in a dropped field"},
        {"Vary", "Cookie\r\nX: 1", 0, "CRLF in a merged Vary"},
        {"ETag", "\"a\"\r\nX: 1", 0, "CRLF in a weakened ETag"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(bad); i++) {
        mt_request_t req = {.method_id = HTTP_GET, .http_minor = 1};
        mt_respond_init(&r, &req, true);
        r.vary = r.compressing = true;
        b.len = 0;
        mt_respond_status(&r, &b, 200);
        size_t mark = b.len;
        size_t vlen = bad[i].vlen ? bad[i].vlen : strlen(bad[i].value);
        int rc = mt_respond_field(&r, &b, bad[i].name, strlen(bad[i].name), bad[i].value, vlen);
        ok(rc == -EINVAL && b.len == mark, "%s: refused, nothing written", bad[i].what);
    }
    b.len = 0;
    mt_respond_init(&r, NULL, true);
    mt_respond_status(&r, &b, 200);
    is_int(mt_respond_field(&r, &b, "X-A", 3, "a\tb", 3), 0, "HTAB allowed in a value");

    /* Content-Length: only digits, one value. */
    static const char *const lengths[] = {"", "-1", "+5", "5 ", " 5", "0x5", "5, 5", "1234567890123456789", "5a"};
    for (size_t i = 0; i < MT_ARRAY_SIZE(lengths); i++) {
        mt_respond_init(&r, NULL, true);
        b.len = 0;
        mt_respond_status(&r, &b, 200);
        size_t mark = b.len;
        int rc = mt_respond_field(&r, &b, "Content-Length", 14, lengths[i], strlen(lengths[i]));
        ok(rc == MT_RESPOND_EBADLENGTH && b.len == mark, "Content-Length '%s' refused", lengths[i]);
    }
    static const char *const twice_same[] = {"Content-Length", "5", "content-length", "5", NULL};
    b.len = 0;
    is_int(build(&b, &r, HTTP_GET, 1, 200, twice_same, -1), 0, "the same Content-Length twice");
    is_int(count_fields(b.data, "Content-Length"), 1, "... written once");
    static const char *const twice_differ[] = {"Content-Length", "5", "Content-Length", "6", NULL};
    b.len = 0;
    is_int(build(&b, &r, HTTP_GET, 1, 200, twice_differ, -1), MT_RESPOND_EBADLENGTH,
           "two different Content-Lengths refused");
    static const char *const cl[] = {"Content-Length", "5", NULL};
    b.len = 0;
    build(&b, &r, HTTP_GET, 1, 204, cl, -1);
    ok(!field(b.data, "Content-Length") && r.declared_length == 5, "no Content-Length on 204 (but it is noted)");
    b.len = 0;
    build(&b, &r, HTTP_GET, 1, 101, cl, -1);
    ok(!field(b.data, "Content-Length"), "no Content-Length on 1xx");
    b.len = 0;
    r.compressing = true;
    build(&b, &r, HTTP_GET, 1, 200, cl, 3);
    ok(strcmp(field(b.data, "Content-Length"), "3") == 0 && count_fields(b.data, "Content-Length") == 1,
       "compressing: the compressed length replaces the application's");
    r.compressing = false;
    static const char *const date[] = {"Date", "Tue, 01 Jan 2030 00:00:00 GMT", NULL};
    b.len = 0;
    build(&b, &r, HTTP_GET, 1, 200, date, 0);
    ok(count_fields(b.data, "Date") == 1 && strcmp(field(b.data, "Date"), date[1]) == 0,
       "the application's Date is kept, not doubled");
    mt_buf_dispose(&b);
}

static void test_vary(void) {
    static const struct {
        const char *first, *second; /* the application's Vary fields (NULL: none) */
        const char *want1, *want2;  /* the Vary fields written (NULL: none) */
    } cases[] = {
        {NULL, NULL, "Accept-Encoding", NULL},
        {"Cookie", NULL, "Cookie, Accept-Encoding", NULL},
        {"Accept-Encoding", NULL, "Accept-Encoding", NULL},
        {"accept-encoding", NULL, "accept-encoding", NULL},
        {"Cookie, Accept-Encoding", NULL, "Cookie, Accept-Encoding", NULL},
        {"*", NULL, "*", NULL},
        {"Cookie, *", NULL, "Cookie, *", NULL},
        {"X-Accept-Encoding-Hint", NULL, "X-Accept-Encoding-Hint, Accept-Encoding", NULL},
        {"", NULL, "Accept-Encoding", NULL},
        {"Cookie, ", NULL, "Cookie, Accept-Encoding", NULL},
        {"Cookie", "Accept-Encoding", "Cookie, Accept-Encoding", NULL},
        {"Cookie", "User-Agent, accept-encoding", "Cookie, Accept-Encoding", "User-Agent"},
        {"Accept-Encoding", "Accept-Encoding", "Accept-Encoding", "Accept-Encoding"},
        {"Cookie", "*", "Cookie, Accept-Encoding", "*"},
    };
    mt_buf_t b;
    mt_buf_init(&b);
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        const char *fields[5] = {NULL};
        int n = 0;
        if (cases[i].first) {
            fields[n++] = "Vary";
            fields[n++] = cases[i].first;
        }
        if (cases[i].second) {
            fields[n++] = "Vary";
            fields[n++] = cases[i].second;
        }
        mt_respond_t r = {.vary = true};
        b.len = 0;
        build(&b, &r, HTTP_GET, 1, 200, fields, 10);
        /* The Vary lines, in order. */
        char got[2][128] = {"", ""};
        int k = 0;
        for (const char *line = strstr(b.data, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n"))
            if (strncmp(line + 2, "Vary: ", 6) == 0 && k < 2) {
                const char *end = strstr(line + 2, "\r\n");
                snprintf(got[k++], sizeof got[0], "%.*s", (int)(end - line - 8), line + 8);
            }
        bool pass = strcmp(got[0], cases[i].want1) == 0 &&
                    (cases[i].want2 ? k == 2 && strcmp(got[1], cases[i].want2) == 0 : k == 1);
        ok(pass, "Vary %s%s%s -> %s%s%s", cases[i].first ? cases[i].first : "(none)", cases[i].second ? " + " : "",
           cases[i].second ? cases[i].second : "", got[0], k == 2 ? " + " : "", k == 2 ? got[1] : "");
    }
    static const char *const cookie[] = {"Vary", "Cookie", NULL};
    mt_respond_t r = {0};
    b.len = 0;
    build(&b, &r, HTTP_GET, 1, 200, cookie, 10);
    ok(strcmp(field(b.data, "Vary"), "Cookie") == 0 && count_fields(b.data, "Vary") == 1,
       "a response that does not vary by Accept-Encoding keeps its Vary as it is");
    mt_buf_dispose(&b);
}

static void test_etag(void) {
    static const struct {
        const char *value;
        bool compressing;
        const char *want;
    } cases[] = {
        {"\"abc\"", true, "W/\"abc\""}, {"W/\"abc\"", true, "W/\"abc\""},
        {"\"abc\"", false, "\"abc\""},  {"\"\"", true, "W/\"\""},
        {"abc", true, "abc"}, /* not an entity-tag: left alone */
    };
    mt_buf_t b;
    mt_buf_init(&b);
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        const char *fields[] = {"ETag", cases[i].value, NULL};
        mt_respond_t r = {.compressing = cases[i].compressing};
        b.len = 0;
        build(&b, &r, HTTP_GET, 1, 200, fields, 10);
        const char *got = field(b.data, "ETag");
        ok(got && strcmp(got, cases[i].want) == 0 && count_fields(b.data, "ETag") == 1, "ETag %s%s -> %s",
           cases[i].value, cases[i].compressing ? " (compressing)" : "", got ? got : "(none)");
    }
    mt_buf_dispose(&b);
}

static void test_end_fields(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    mt_request_t req = {.method_id = HTTP_GET, .http_minor = 1};
    mt_respond_t r;
    mt_respond_init(&r, &req, true);
    r.compressing = r.vary = true;
    mt_respond_status(&r, &b, 200);
    mt_respond_end(&r, &b, "br", 9);
    text(&b);
    ok(strcmp(field(b.data, "Content-Encoding"), "br") == 0 && strcmp(field(b.data, "Vary"), "Accept-Encoding") == 0 &&
           strcmp(field(b.data, "Content-Length"), "9") == 0,
       "Content-Encoding, Vary and the compressed length at the end of the head");
    ok(b.len > 4 && memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0 && strstr(b.data, "\r\n\r\n") == b.data + b.len - 4,
       "the head ends once, at its end");

    /* A client waiting for 100 Continue that never came: the close ends it. */
    mt_conn_t c = {0};
    c.req = (mt_request_t){.keep_alive = true, .expect_continue = true};
    ok(!mt_respond_keep_alive(&c, false), "Expect: 100-continue without the 100: no keep-alive");
    c.continue_sent = true;
    ok(mt_respond_keep_alive(&c, false), "after the 100: keep-alive");
    ok(!mt_respond_keep_alive(&c, true), "draining: no keep-alive");
    c.req.keep_alive = false;
    ok(!mt_respond_keep_alive(&c, false), "the request says close: no keep-alive");
    mt_buf_dispose(&b);
}

/* The request id: echoed once, under the configured name, replacing the
 * producer's own field of that name (any case); nothing without an id or
 * without the option. */
static void test_request_id(void) {
    mt_server_t server = {.config = {.request_id_header = "x-request-id",
                                     .request_id_name = "X-Request-ID",
                                     .request_id_header_len = 12}};
    mt_conn_t c = {.server = &server, .request_id_len = 5};
    memcpy(c.request_id, "id-42", 5);
    mt_request_t req = {.method_id = HTTP_GET, .http_minor = 1};
    mt_buf_t b;
    mt_buf_init(&b);
    mt_respond_t r;
    mt_respond_init(&r, &req, true);
    mt_respond_request_id(&r, &c);
    mt_respond_status(&r, &b, 200);
    is_int(mt_respond_field(&r, &b, "x-REQUEST-id", 12, "from-app", 8), 0, "the producer's id is accepted...");
    mt_respond_field(&r, &b, "X-Other", 7, "1", 1);
    mt_respond_end(&r, &b, NULL, 0);
    text(&b);
    ok(strstr(b.data, "from-app") == NULL, "... and dropped");
    is_int(count_fields(b.data, "X-Request-ID"), 1, "one id field");
    is_str(field(b.data, "X-Request-ID"), "id-42", "the connection's id, under the configured name");
    b.len = 0;
    mt_respond_init(&r, &req, true);
    mt_respond_answer(&r, &b, 405, NULL, 0, "text/plain", "no", 2);
    text(&b);
    is_int(count_fields(b.data, "X-Request-ID"), 0, "without mt_respond_request_id: no id");
    b.len = 0;
    c.request_id_len = 0;
    mt_respond_init(&r, &req, true);
    mt_respond_request_id(&r, &c);
    mt_respond_status(&r, &b, 200);
    mt_respond_field(&r, &b, "X-Request-ID", 12, "kept", 4);
    mt_respond_end(&r, &b, NULL, 0);
    text(&b);
    is_str(field(b.data, "X-Request-ID"), "kept", "a connection without an id leaves the producer's field");
    server.config.request_id_name = NULL;
    c.request_id_len = 5;
    b.len = 0;
    mt_respond_init(&r, &req, true);
    mt_respond_request_id(&r, &c);
    mt_respond_status(&r, &b, 204);
    mt_respond_end(&r, &b, NULL, 0);
    text(&b);
    is_int(count_fields(b.data, "X-Request-ID"), 0, "request ids off: none");
    mt_buf_dispose(&b);
}

static void test_answer(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    mt_request_t head = {.method_id = HTTP_HEAD, .http_minor = 1};
    mt_respond_t r;
    mt_respond_init(&r, &head, true);
    mt_field_t allow = {"Allow", 5, "GET, HEAD", 9};
    is_int(mt_respond_answer(&r, &b, 405, &allow, 1, "application/json", "{}", 2), 0, "answer to HEAD");
    text(&b);
    ok(strcmp(field(b.data, "Content-Length"), "2") == 0 && strcmp(field(b.data, "Allow"), "GET, HEAD") == 0 &&
           memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0,
       "HEAD: the GET's fields and Content-Length, no body");
    mt_request_t get = {.method_id = HTTP_GET, .http_minor = 1};
    mt_respond_init(&r, &get, true);
    b.len = 0;
    is_int(mt_respond_answer(&r, &b, 204, &allow, 1, "application/json", NULL, 0), 0, "answer 204");
    text(&b);
    ok(!field(b.data, "Content-Length") && !field(b.data, "Content-Type"), "204: no Content-Length, no Content-Type");
    mt_field_t evil = {"Location", 8, "/a\r\nX: 1", 8};
    mt_respond_init(&r, &get, true);
    b.len = 0;
    is_int(mt_respond_answer(&r, &b, 308, &evil, 1, NULL, NULL, 0), -EINVAL, "a server field with CRLF refused");
    mt_buf_dispose(&b);
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
        is_int(mt_respond_error(&b, NULL, statuses[i], "some detail", false), 0, "error response %d", statuses[i]);
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
    mt_respond_error(&b, NULL, 400, NULL, true);
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
    mt_respond_error(&b, NULL, 431, longdetail, false);
    text(&b);
    body = parse_response(b.data, &status, reason, sizeof reason, &has_close, &has_date, &clen, &ctype);
    ok(body && clen == (long)strlen(body) && clen > 0 && clen < 256, "a long detail is truncated, framing intact");
    mt_buf_dispose(&b);

    /* To a HEAD request: the fields, no body; to HTTP/1.0 kept alive: said so. */
    mt_request_t head = {.method_id = HTTP_HEAD, .http_minor = 0};
    mt_buf_init(&b);
    mt_respond_error(&b, &head, 500, NULL, true);
    text(&b);
    ok(memcmp(b.data + b.len - 4, "\r\n\r\n", 4) == 0 && strcmp(field(b.data, "Connection"), "keep-alive") == 0 &&
           field(b.data, "Content-Length"),
       "error to a HEAD over HTTP/1.0 kept alive: no body, Connection: keep-alive");
    mt_buf_dispose(&b);
}

int main(void) {
    test_framing_matrix();
    test_status();
    test_field_filter();
    test_vary();
    test_etag();
    test_end_fields();
    test_request_id();
    test_answer();
    test_error_response();
    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffer counters balance");
    return done_testing();
}
