/* Unit tests of src/core/api/answer.c: the typed API's answers given in C (405
 * with Allow, OPTIONS, 422, the trailing-slash 308, constant routes), written
 * on a connection over a socketpair and read back by the test as the client. */
#include "buf.c"
#include "clock.c"
#include "http1.c"
#include "http1_write.c"
#include "respond.c"
#include "output.c"
#include "conn.c"
#include "router.c"
#include "answer.c"
#include "cors.c"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "server_limits.h"
#include "tap.h"

/* conn.c only reads c->server->config; small answers never queue. */
static mt_server_t server = {
    .config =
        {
            MT_TEST_LIMITS,
        },
};

#include "test_client.h"

static bool has_line(const char *response, const char *line) {
    const char *end = strstr(response, "\r\n\r\n");
    const char *at = strstr(response, line);
    return at && end && at < end;
}

static const char *body_of(const char *response) {
    const char *end = strstr(response, "\r\n\r\n");
    return end ? end + 4 : "";
}

/* Answers match m on a request `head`; returns the client's view. */
static const char *answer(client_t *t, const char *head, mt_route_match_t *m, const mt_answer_route_t *route,
                          bool *keep_alive, int *rc) {
    open_with(t, head);
    mt_buf_t out, scratch;
    mt_buf_init(&out);
    mt_buf_init(&scratch);
    const char *path;
    mt_span_t query;
    size_t plen = mt_http1_target_path(&t->c->req, t->c->rbuf.data, &path, &query);
    *keep_alive = t->c->req.keep_alive;
    *rc = mt_answer_send(t->c, &out, &scratch, m, route, path, plen, query, keep_alive);
    ok(out.len == 0 && scratch.len == 0, "the handler's buffers are left empty");
    mt_buf_dispose(&out);
    mt_buf_dispose(&scratch);
    return received(t);
}

int main(void) {
    client_t t;
    bool keep;
    int rc;
    static char constant_body[] = "{\"message\":\"Hello, World!\"}";
    mt_answer_route_t constant = {
        .status = 200, .content_type = "application/json", .body = constant_body, .body_len = 27};

    mt_route_match_t m = {.status = MT_ROUTE_FOUND, .route = 0};
    const char *r = answer(&t, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", &m, &constant, &keep, &rc);
    ok(rc == 0 && keep && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 && has_line(r, "\r\nDate: ") &&
           has_line(r, "\r\nContent-Type: application/json\r\n") && has_line(r, "\r\nContent-Length: 27\r\n") &&
           !has_line(r, "Connection") && strcmp(body_of(r), constant_body) == 0,
       "constant route: 200, its type, Content-Length, body, kept alive");
    close_client(&t);

    r = answer(&t, "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n", &m, &constant, &keep, &rc);
    ok(rc == 0 && keep && has_line(r, "\r\nContent-Length: 27\r\n") && strcmp(body_of(r), "") == 0,
       "constant route to HEAD: the GET's Content-Length, no body");
    close_client(&t);

    r = answer(&t, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &m, &constant, &keep, &rc);
    ok(rc == 0 && keep && has_line(r, "\r\nConnection: keep-alive\r\n"), "HTTP/1.0 kept alive: said so");
    close_client(&t);

    r = answer(&t, "GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &m, &constant, &keep, &rc);
    ok(rc == 0 && !keep && has_line(r, "\r\nConnection: close\r\n"), "Connection: close honoured");
    close_client(&t);

    r = answer(&t, "POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", &m,
               &constant, &keep, &rc);
    ok(rc == 0 && !keep && has_line(r, "\r\nConnection: close\r\n"),
       "a client waiting for 100 Continue is answered with a close");
    close_client(&t);

    m = (mt_route_match_t){.status = MT_ROUTE_METHOD, .allow = 1u << HTTP_GET | 1u << HTTP_HEAD | 1u << HTTP_OPTIONS};
    r = answer(&t, "DELETE /hello HTTP/1.1\r\nHost: a\r\n\r\n", &m, NULL, &keep, &rc);
    ok(rc == 0 && keep && strncmp(r, "HTTP/1.1 405 Method Not Allowed\r\n", 33) == 0 &&
           has_line(r, "\r\nAllow: GET, HEAD, OPTIONS\r\n") &&
           strcmp(body_of(r), "{\"detail\":\"Method Not Allowed\"}") == 0,
       "405 with Allow and a JSON body");
    close_client(&t);

    m.status = MT_ROUTE_OPTIONS;
    r = answer(&t, "OPTIONS /hello HTTP/1.1\r\nHost: a\r\n\r\n", &m, NULL, &keep, &rc);
    ok(rc == 0 && strncmp(r, "HTTP/1.1 204 No Content\r\n", 25) == 0 && has_line(r, "\r\nAllow: GET, HEAD, OPTIONS") &&
           !has_line(r, "Content-Length") && !has_line(r, "Content-Type") && strcmp(body_of(r), "") == 0,
       "OPTIONS: 204 with Allow, no Content-Length, no body");
    close_client(&t);

    char *invalid[] = {"{\"detail\":\"bad\"}"};
    mt_answer_route_t typed = {.invalid_body = invalid};
    m = (mt_route_match_t){.status = MT_ROUTE_INVALID, .route = 0, .bad_param = 0};
    r = answer(&t, "GET /items/abc HTTP/1.1\r\nHost: a\r\n\r\n", &m, &typed, &keep, &rc);
    ok(rc == 0 && strncmp(r, "HTTP/1.1 422 Unprocessable Content\r\n", 36) == 0 &&
           has_line(r, "\r\nContent-Length: 16\r\n") && strcmp(body_of(r), invalid[0]) == 0,
       "422 with the parameter's JSON body");
    close_client(&t);

    m = (mt_route_match_t){.status = MT_ROUTE_REDIRECT};
    r = answer(&t, "GET /items/?a=1&b=%20 HTTP/1.1\r\nHost: a\r\n\r\n", &m, NULL, &keep, &rc);
    ok(rc == 0 && strncmp(r, "HTTP/1.1 308 Permanent Redirect\r\n", 33) == 0 &&
           has_line(r, "\r\nLocation: /items?a=1&b=%20\r\n"),
       "308: the slash removed, the query kept");
    close_client(&t);
    r = answer(&t, "GET /items HTTP/1.1\r\nHost: a\r\n\r\n", &m, NULL, &keep, &rc);
    ok(rc == 0 && has_line(r, "\r\nLocation: /items/\r\n"), "308: the slash added");
    close_client(&t);

    /* A rate limit's refusals. */
    mt_buf_t lout;
    mt_buf_init(&lout);
    open_with(&t, "GET /limited HTTP/1.1\r\nHost: a\r\n\r\n");
    keep = true;
    rc = mt_answer_limited(t.c, &lout, &keep, 429, "7", "\"ip\";q=10;w=60", 14, "\"ip\";r=0;t=42");
    r = received(&t);
    ok(rc == 0 && keep && strncmp(r, "HTTP/1.1 429 Too Many Requests\r\n", 32) == 0 &&
           has_line(r, "\r\nRetry-After: 7\r\n") && has_line(r, "\r\nRateLimit-Policy: \"ip\";q=10;w=60\r\n") &&
           has_line(r, "\r\nRateLimit: \"ip\";r=0;t=42\r\n") && has_line(r, "\r\nContent-Type: application/json\r\n") &&
           strcmp(body_of(r), "{\"detail\":\"Too Many Requests\"}") == 0 && t.c->answer_status == 429,
       "429: Retry-After, RateLimit-Policy, RateLimit, the API's error shape, kept alive");
    close_client(&t);
    open_with(&t, "HEAD /limited HTTP/1.0\r\nHost: a\r\n\r\n");
    keep = true;
    rc = mt_answer_limited(t.c, &lout, &keep, 503, "1", "\"ip\";q=10;w=60", 14, NULL);
    r = received(&t);
    ok(rc == 0 && strncmp(r, "HTTP/1.1 503 Service Unavailable\r\n", 34) == 0 &&
           has_line(r, "\r\nRetry-After: 1\r\n") && !has_line(r, "\r\nRateLimit:") && strcmp(body_of(r), "") == 0,
       "503 when the store cannot decide: no RateLimit field; HEAD: no body");
    close_client(&t);
    mt_buf_dispose(&lout);

    /* The client is gone: the write fails and the caller closes. */
    m = (mt_route_match_t){.status = MT_ROUTE_FOUND};
    open_with(&t, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    close(t.peer);
    mt_buf_t out, scratch;
    mt_buf_init(&out);
    mt_buf_init(&scratch);
    keep = true;
    const char *path;
    mt_span_t query;
    size_t plen = mt_http1_target_path(&t.c->req, t.c->rbuf.data, &path, &query);
    signal(SIGPIPE, SIG_IGN);
    rc = mt_answer_send(t.c, &out, &scratch, &m, &constant, path, plen, query, &keep);
    ok(rc < 0, "a failed write is reported (%d)", rc);
    mt_buf_dispose(&out);
    mt_buf_dispose(&scratch);
    t.peer = open("/dev/null", O_RDONLY);
    close_client(&t);

    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffer counters balance");
    return done_testing();
}
