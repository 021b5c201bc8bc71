/* libFuzzer driver for src/core/http1/cors.c: the split of an Origin as
 * urlsplit does it, and the whole decision for a request whose Origin (and
 * path) the input gives, through the response writer.
 *
 * Input: byte 0 picks the policy (bit 0: every origin, bit 1: credentials,
 * bit 2: a URL regex, bit 3: OPTIONS); the rest up to a NUL byte is the
 * Origin value, after it the path. The Origin is copied to a buffer of its
 * exact size for the split, so reading past it is an ASan report. Checked:
 * the split stays inside the value; an allowed origin is echoed exactly
 * (or "*"); the head has one Access-Control-Allow-Origin at most and one
 * Vary, and llhttp reads it back. */
#include "../../src/core/http1/cors.c"

#include <llhttp.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

static mt_cors_t *policies[16];
static mt_server_t server = {.config = {.limits = {.max_request_line = 8190,
                                                   .max_head_size = 16384,
                                                   .max_headers = 100,
                                                   .max_body_size = 1 << 20,
                                                   .max_chunk_ext = 4096}}};

static void make_policies(void) {
    static const char *origins[] = {"https://a.example", "http://localhost:3000", "null", "http://[::1]:8000"};
    static const char *regexes[] = {"^https://\\w+\\.example\\.com$", "http://localhost:\\d+"};
    for (int i = 0; i < 16; i++) {
        mt_cors_config_t config = {
            .origins = origins,
            .norigins = 4,
            .origin_regexes = regexes,
            .nregexes = 2,
            .urls_regex = (i & 4) ? "^/api/" : NULL,
            .allow_all = i & 1,
            .credentials = i & 2,
            .private_network = true,
            .methods = "GET, POST",
            .headers = "content-type",
            .expose = "x-total",
            .max_age = 600,
        };
        char err[256];
        CHECK(mt_cors_create(&policies[i], &config, err, sizeof err) == 0);
    }
}

static int count_lines(const char *head, size_t n, const char *name) {
    int count = 0;
    size_t len = strlen(name);
    for (size_t i = 0; i + len + 3 <= n; i++)
        if ((i == 0 || head[i - 1] == '\n') && strncasecmp(head + i, name, len) == 0 && head[i + len] == ':')
            count++;
    return count;
}

static int on_done(llhttp_t *p) {
    *(int *)p->data = 1;
    return HPE_PAUSED;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (policies[0] == NULL)
        make_policies();
    if (size < 1)
        return 0;
    unsigned pick = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    const char *nul = memchr(rest, '\0', n);
    size_t olen = nul ? (size_t)(nul - rest) : n;
    const char *path = nul ? nul + 1 : "/";
    size_t plen = nul ? n - olen - 1 : 1;

    char *exact = malloc(olen ? olen : 1);
    CHECK(exact != NULL);
    memcpy(exact, rest, olen);
    parts_t parts;
    if (split_origin(exact, olen, &parts)) {
        CHECK(parts.scheme == exact && parts.scheme_len <= olen);
        CHECK(parts.netloc >= exact && parts.netloc + parts.netloc_len <= exact + olen);
    }
    free(exact);

    /* The whole decision, on a request the parser accepted. */
    mt_buf_t req;
    mt_buf_init(&req);
    const char *method = (pick & 8) ? "OPTIONS" : "GET";
    CHECK(mt_buf_append(&req, method, strlen(method)) == 0 && mt_buf_append(&req, " /", 2) == 0);
    for (size_t i = 0; i < plen && i < 200; i++) {
        char ch = path[i];
        if (ch > 0x20 && ch < 0x7f)
            CHECK(mt_buf_append(&req, &ch, 1) == 0);
    }
    static const char middle[] = " HTTP/1.1\r\nHost: a\r\nOrigin: ";
    CHECK(mt_buf_append(&req, middle, sizeof middle - 1) == 0 && mt_buf_append(&req, rest, olen) == 0);
    static const char end[] = "\r\nAccess-Control-Request-Private-Network: true\r\n\r\n";
    CHECK(mt_buf_append(&req, end, sizeof end - 1) == 0);
    mt_conn_t *c = calloc(1, sizeof *c + sizeof(mt_header_t) * server.config.limits.max_headers);
    CHECK(c != NULL);
    c->server = &server;
    mt_buf_init(&c->rbuf);
    mt_buf_init(&c->body);
    CHECK(mt_buf_append(&c->rbuf, req.data, req.len) == 0);
    mt_http1_init(&c->req, &server.config.limits, c->headers, &c->body);
    size_t stop;
    if (mt_http1_parse(&c->req, c->rbuf.data, 0, c->rbuf.len, &stop) != MT_PARSE_ERROR && c->req.head_complete) {
        server.config.cors = policies[pick & 7];
        mt_cors_decision_t d;
        mt_cors_decide(&d, c);
        mt_respond_t r;
        mt_respond_init(&r, &c->req, true);
        mt_cors_respond(&r, &d);
        mt_buf_t out;
        mt_buf_init(&out);
        int rc = mt_respond_status(&r, &out, 200);
        if (rc == 0)
            rc = mt_respond_field(&r, &out, "Vary", 4, "Cookie", 6);
        if (rc == 0)
            rc = mt_respond_end(&r, &out, NULL, 0);
        CHECK(rc == 0);
        CHECK(count_lines(out.data, out.len, "Access-Control-Allow-Origin") == (d.allowed ? 1 : 0));
        CHECK(count_lines(out.data, out.len, "Vary") == 1);
        if (d.allowed && d.origin_len) {
            /* The echo is the value as sent (the parser trimmed its spaces). */
            const char *value;
            size_t vlen;
            char buf[MT_REQUEST_FIELD_MAX];
            CHECK(mt_request_header(&c->req, c->rbuf.data, "origin", 6, buf, &value, &vlen) == 1);
            CHECK(vlen == d.origin_len && memcmp(value, d.origin, vlen) == 0);
        }
        llhttp_t parser;
        llhttp_settings_t settings;
        llhttp_settings_init(&settings);
        settings.on_headers_complete = on_done;
        int done = 0;
        llhttp_init(&parser, HTTP_RESPONSE, &settings);
        parser.data = &done;
        llhttp_errno_t e = llhttp_execute(&parser, out.data, out.len);
        CHECK((e == HPE_OK || e == HPE_PAUSED) && done);
        mt_buf_dispose(&out);
        server.config.cors = NULL;
    }
    mt_buf_dispose(&c->rbuf);
    mt_buf_dispose(&c->body);
    free(c);
    mt_buf_dispose(&req);
    return 0;
}
