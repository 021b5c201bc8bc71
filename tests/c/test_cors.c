/* Unit tests of src/core/http1/cors.c: the origin split of urlsplit, the
 * policy's decisions (exact origins, scheme case, ports, "null", regexes
 * anchored at the start, every origin with and without credentials), the URL
 * regex on the decoded path, the fields a response gets through the response
 * writer (Vary merged by tokens with Accept-Encoding and the producer's Vary,
 * a producer's Access-Control-* field replaced), and a preflight answered on a
 * socket. */
#include "buf.c"
#include "clock.c"
#include "http1.c"
#include "http1_write.c"
#include "respond.c"
#include "output.c"
#include "conn.c"
#include "cors.c"

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

static mt_cors_t *policy(mt_cors_config_t config) {
    mt_cors_t *p;
    char err[256] = "";
    if (config.methods == NULL)
        config.methods = "DELETE, GET, OPTIONS, PATCH, POST, PUT";
    if (config.headers == NULL)
        config.headers = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with";
    if (mt_cors_create(&p, &config, err, sizeof err) < 0) {
        ok(0, "policy created (%s)", err);
        abort();
    }
    return p;
}

static bool allowed(const mt_cors_t *p, const char *origin) {
    return mt_cors_origin_allowed(p, origin, strlen(origin));
}

#include "test_client.h"

/* The head a producer's response gets: status 200, `fields` ("Name: value"
 * pairs, NULL-terminated), with `vary` (Accept-Encoding) as a compressing
 * producer would set it. */
static char head_text[8192];
static const char *respond(const char *request, const char *const *fields, bool vary) {
    client_t t;
    open_with(&t, request);
    mt_cors_decision_t d;
    mt_cors_decide(&d, t.c);
    mt_respond_t r;
    mt_respond_init(&r, &t.c->req, true);
    r.vary = vary;
    mt_cors_respond(&r, &d);
    mt_buf_t out;
    mt_buf_init(&out);
    int rc = mt_respond_status(&r, &out, 200);
    for (int i = 0; rc == 0 && fields && fields[i]; i += 2)
        rc = mt_respond_field(&r, &out, fields[i], strlen(fields[i]), fields[i + 1], strlen(fields[i + 1]));
    if (rc == 0)
        rc = mt_respond_end(&r, &out, NULL, 0);
    snprintf(head_text, sizeof head_text, "%.*s", rc == 0 ? (int)out.len : 0, out.data);
    mt_buf_dispose(&out);
    close_client(&t);
    return head_text;
}

/* How many lines of the head start with "name:" (case-insensitive). */
static int count_fields(const char *head, const char *name) {
    int n = 0;
    size_t len = strlen(name);
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n"))
        if (strncasecmp(line + 2, name, len) == 0 && line[2 + len] == ':')
            n++;
    return n;
}

static bool has_line(const char *head, const char *line) {
    return strstr(head, line) != NULL;
}

static void test_split(void) {
    parts_t p;
    ok(split_origin("https://a.example:8443", 22, &p) && p.scheme_len == 5 && p.netloc_len == 14 &&
           strncmp(p.netloc, "a.example:8443", 14) == 0,
       "split: scheme and netloc (host and port)");
    ok(split_origin("null", 4, &p) && p.scheme_len == 0 && p.netloc_len == 0, "split: null has neither");
    ok(split_origin("http://a.example/x?y", 20, &p) && p.netloc_len == 9, "split: the netloc ends at / ? #");
    ok(split_origin("1ttp://a", 8, &p) && p.scheme_len == 0, "split: a scheme starts with a letter");
    ok(!split_origin("http://[::1", 11, &p), "split: an unpaired bracket is refused (urlsplit's ValueError)");
    ok(!split_origin("http://::1]", 11, &p), "split: a lone closing bracket is refused");
    ok(split_origin("http://[::1]:8000", 17, &p) && p.netloc_len == 10, "split: a bracketed IPv6 host");
    ok(!split_origin("http://[1.2.3.4]", 16, &p), "split: IPv4 in brackets is refused");
    ok(split_origin("http://[v1.x]", 13, &p), "split: an IPvFuture host");
    ok(split_origin("http://[fe80::1%eth0]", 21, &p), "split: an IPv6 zone");
    ok(!split_origin("http://[fe80::1%]", 17, &p), "split: an empty zone is refused");
}

static void test_origins(void) {
    const char *origins[] = {"https://a.example", "http://localhost:3000", "HTTPS://Upper.example"};
    mt_cors_t *p = policy((mt_cors_config_t){.origins = origins, .norigins = 3});
    ok(allowed(p, "https://a.example"), "exact origin allowed");
    ok(!allowed(p, "http://a.example"), "another scheme is another origin");
    ok(!allowed(p, "https://a.example:443"), "a port written out is another netloc (compared as written)");
    ok(allowed(p, "HTTPS://a.example"), "the scheme is compared without regard to case");
    ok(!allowed(p, "https://A.example"), "the host is compared exactly (as django-cors-headers does)");
    ok(allowed(p, "https://Upper.example"), "a configured scheme in capitals matches");
    ok(allowed(p, "http://localhost:3000"), "host and port");
    ok(!allowed(p, "http://localhost:3001"), "another port is refused");
    ok(allowed(p, "https://a.example/"), "a path after the netloc is ignored (urlsplit)");
    ok(!allowed(p, "null"), "null is refused unless listed");
    ok(!allowed(p, ""), "an empty origin is refused");
    ok(!allowed(p, "https://a.example.evil"), "a longer host is refused");
    ok(!allowed(p, "https://a.exa\tmple"), "an origin with a tab is refused");
    mt_cors_destroy(p);

    const char *with_null[] = {"null"};
    p = policy((mt_cors_config_t){.origins = with_null, .norigins = 1});
    ok(allowed(p, "null"), "null when listed");
    ok(!allowed(p, "NULL"), "null is compared exactly");
    mt_cors_destroy(p);

    const char *bad[] = {"a.example"};
    char err[256] = "";
    mt_cors_t *q;
    ok(mt_cors_create(&q, &(mt_cors_config_t){.origins = bad, .norigins = 1, .methods = "", .headers = ""}, err,
                      sizeof err) == -EINVAL &&
           strstr(err, "a.example"),
       "an origin without scheme is refused at creation, named (%s)", err);
    const char *bad_re[] = {"^(unclosed"};
    ok(mt_cors_create(&q, &(mt_cors_config_t){.origin_regexes = bad_re, .nregexes = 1, .methods = "", .headers = ""},
                      err, sizeof err) == -EINVAL &&
           strstr(err, "unclosed"),
       "a bad regex is refused at creation, named (%s)", err);
}

static void test_regexes(void) {
    const char *res[] = {"^https://\\w+\\.example\\.com$", "http://localhost:\\d+"};
    mt_cors_t *p = policy((mt_cors_config_t){.origin_regexes = res, .nregexes = 2});
    ok(allowed(p, "https://api.example.com"), "regex: \\w+ subdomain");
    ok(!allowed(p, "https://a.b.example.com"), "regex: a dot is not a word character");
    ok(!allowed(p, "https://api.example.com.evil"), "regex: $ ends it");
    ok(allowed(p, "http://localhost:8080"), "regex: \\d+ port");
    ok(allowed(p, "http://localhost:8080.evil"), "regex: matched at the start only, like re.match");
    ok(!allowed(p, "xhttp://localhost:1"), "regex: anchored at the start");
    ok(!allowed(p, "http://[::1"), "regex: an origin urlsplit refuses is refused before the regexes");
    mt_cors_destroy(p);

    /* Catastrophic backtracking on a client's Origin is cut at the match limit. */
    const char *slow[] = {"^(a+)+$"};
    p = policy((mt_cors_config_t){.origin_regexes = slow, .nregexes = 1});
    char evil[64];
    memset(evil, 'a', 40);
    strcpy(evil + 40, "!");
    ok(allowed(p, "aaaa") && !allowed(p, evil), "a pattern that backtracks badly is cut: no match, no hang");
    mt_cors_destroy(p);

    p = policy((mt_cors_config_t){.allow_all = true});
    ok(allowed(p, "null") && allowed(p, "anything at all"), "allow all: any origin");
    ok(!allowed(p, "http://[::1"), "allow all: not one urlsplit refuses");
    mt_cors_destroy(p);
}

static void test_paths(void) {
    const char *origins[] = {"https://a.example"};
    mt_cors_t *p = policy((mt_cors_config_t){.origins = origins, .norigins = 1, .urls_regex = "^/api/"});
    client_t t;
    open_with(&t, "GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(mt_cors_path_applies(p, &t.c->req, t.c->rbuf.data), "URL regex: a path under /api/");
    close_client(&t);
    open_with(&t, "GET /%61pi/x?q=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(mt_cors_path_applies(p, &t.c->req, t.c->rbuf.data), "URL regex: matched on the decoded path");
    close_client(&t);
    open_with(&t, "GET /other/api/ HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(!mt_cors_path_applies(p, &t.c->req, t.c->rbuf.data), "URL regex: anchored at the start");
    close_client(&t);

    /* The project's policy where it applies, else the API's. */
    mt_cors_t *api = policy((mt_cors_config_t){.allow_all = true});
    server.config.cors = p;
    open_with(&t, "GET /elsewhere HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(mt_cors_select(t.c) == NULL, "select: no policy where the project's does not apply and no API's");
    t.c->cors = api;
    ok(mt_cors_select(t.c) == api, "select: the API's where the project's does not apply");
    close_client(&t);
    open_with(&t, "GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n");
    t.c->cors = api;
    ok(mt_cors_select(t.c) == p, "select: the project's where it applies");
    close_client(&t);
    server.config.cors = NULL;
    open_with(&t, "GET /elsewhere HTTP/1.1\r\nHost: a\r\n\r\n");
    t.c->cors = p;
    ok(mt_cors_select(t.c) == NULL, "select: an API's policy only where its own URL regex matches");
    close_client(&t);
    server.config.cors = NULL;
    mt_cors_destroy(api);
    mt_cors_destroy(p);
}

static void test_fields(void) {
    const char *origins[] = {"https://a.example"};
    mt_cors_t *p = policy((mt_cors_config_t){.origins = origins, .norigins = 1, .expose = "x-total"});
    server.config.cors = p;
    const char *h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", NULL, false);
    ok(has_line(h, "\r\nAccess-Control-Allow-Origin: https://a.example\r\n") &&
           has_line(h, "\r\nAccess-Control-Expose-Headers: x-total\r\n") && has_line(h, "\r\nVary: Origin\r\n") &&
           count_fields(h, "Access-Control-Allow-Credentials") == 0 &&
           count_fields(h, "Access-Control-Allow-Methods") == 0,
       "allowed origin: its echo, expose headers, Vary: Origin, no preflight fields on GET");
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://b.example\r\n\r\n", NULL, false);
    ok(count_fields(h, "Access-Control-Allow-Origin") == 0 && has_line(h, "\r\nVary: Origin\r\n"),
       "another origin: no fields but Vary: Origin");
    h = respond("GET / HTTP/1.1\r\nHost: a\r\n\r\n", NULL, false);
    ok(count_fields(h, "Access-Control-Allow-Origin") == 0 && has_line(h, "\r\nVary: Origin\r\n"),
       "no Origin: Vary: Origin all the same (the answer depends on it)");
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\nOrigin: https://a.example\r\n\r\n", NULL,
                false);
    ok(count_fields(h, "Access-Control-Allow-Origin") == 0, "two Origin fields: no origin");
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", NULL, true);
    ok(has_line(h, "\r\nVary: Accept-Encoding, Origin\r\n") && count_fields(h, "Vary") == 1,
       "with compression: one Vary with both tokens");
    const char *vary_cookie[] = {"Vary", "Cookie", NULL};
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", vary_cookie, true);
    ok(has_line(h, "\r\nVary: Cookie, Accept-Encoding, Origin\r\n") && count_fields(h, "Vary") == 1,
       "the producer's Vary gets the tokens appended");
    const char *vary_origin[] = {"Vary", "origin, Cookie", NULL};
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", vary_origin, false);
    ok(has_line(h, "\r\nVary: origin, Cookie\r\n") && count_fields(h, "Vary") == 1,
       "a Vary that names origin (any case) is left alone");
    const char *vary_two[] = {"Vary", "Cookie", "Vary", "Origin, Accept-Language", NULL};
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", vary_two, false);
    ok(has_line(h, "\r\nVary: Cookie, Origin\r\n") && has_line(h, "\r\nVary: Accept-Language\r\n"),
       "a later Vary does not repeat the token the writer added");
    const char *vary_star[] = {"Vary", "*", NULL};
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", vary_star, true);
    ok(has_line(h, "\r\nVary: *\r\n") && count_fields(h, "Vary") == 1, "nothing is added beside *");
    const char *app_acao[] = {"Access-Control-Allow-Origin", "https://evil.example", "access-control-expose-headers",
                              "x-other", NULL};
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", app_acao, false);
    ok(count_fields(h, "Access-Control-Allow-Origin") == 1 &&
           has_line(h, "\r\nAccess-Control-Allow-Origin: https://a.example\r\n") &&
           count_fields(h, "Access-Control-Expose-Headers") == 1,
       "the policy's fields replace the producer's of the same name");
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://b.example\r\n\r\n", app_acao, false);
    ok(has_line(h, "\r\nAccess-Control-Allow-Origin: https://evil.example\r\n"),
       "a refused origin leaves the producer's own fields alone (as the middleware does)");
    h = respond("OPTIONS / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", NULL, false);
    ok(count_fields(h, "Access-Control-Allow-Methods") == 1 && count_fields(h, "Access-Control-Allow-Headers") == 1 &&
           count_fields(h, "Access-Control-Max-Age") == 0,
       "OPTIONS (not a preflight): the preflight fields too; no max-age when 0");
    server.config.cors = NULL;
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://a.example\r\n\r\n", NULL, false);
    ok(count_fields(h, "Vary") == 0 && count_fields(h, "Access-Control-Allow-Origin") == 0, "no policy: nothing added");
    mt_cors_destroy(p);

    p = policy((mt_cors_config_t){.allow_all = true});
    server.config.cors = p;
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://x.example\r\n\r\n", NULL, false);
    ok(has_line(h, "\r\nAccess-Control-Allow-Origin: *\r\n"), "allow all without credentials: *");
    mt_cors_destroy(p);
    p = policy((mt_cors_config_t){.allow_all = true, .credentials = true, .private_network = true});
    server.config.cors = p;
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://x.example\r\n"
                "Access-Control-Request-Private-Network: true\r\n\r\n",
                NULL, false);
    ok(has_line(h, "\r\nAccess-Control-Allow-Origin: https://x.example\r\n") &&
           has_line(h, "\r\nAccess-Control-Allow-Credentials: true\r\n") &&
           has_line(h, "\r\nAccess-Control-Allow-Private-Network: true\r\n"),
       "allow all with credentials: the origin echoed, credentials, private network");
    h = respond("GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://x.example\r\n"
                "Access-Control-Request-Private-Network: TRUE\r\n\r\n",
                NULL, false);
    ok(count_fields(h, "Access-Control-Allow-Private-Network") == 0, "private network: only for exactly 'true'");
    char big[MT_CORS_ORIGIN_MAX + 200];
    int n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nOrigin: https://");
    memset(big + n, 'a', MT_CORS_ORIGIN_MAX);
    snprintf(big + n + MT_CORS_ORIGIN_MAX, sizeof big - n - MT_CORS_ORIGIN_MAX, "\r\n\r\n");
    h = respond(big, NULL, false);
    ok(count_fields(h, "Access-Control-Allow-Origin") == 0 && has_line(h, "\r\nVary: Origin\r\n"),
       "an origin too long to echo gets no fields");
    server.config.cors = NULL;
    mt_cors_destroy(p);
}

static void test_preflight(void) {
    const char *origins[] = {"http://localhost:3000"};
    mt_cors_t *p = policy((mt_cors_config_t){.origins = origins, .norigins = 1, .max_age = 600, .credentials = true});
    server.config.cors = p;
    client_t t;
    mt_buf_t out;
    mt_buf_init(&out);
    bool keep = false;

    open_with(&t, "OPTIONS /api/x HTTP/1.1\r\nHost: a\r\nOrigin: http://localhost:3000\r\n"
                  "Access-Control-Request-Method: PUT\r\n\r\n");
    ok(mt_cors_is_preflight(t.c), "OPTIONS with Access-Control-Request-Method is a preflight");
    keep = true;
    ok(mt_cors_preflight(t.c, &out, &keep) && keep && out.len == 0, "answered, kept alive, buffer left empty");
    const char *r = received(&t);
    ok(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 && has_line(r, "\r\nContent-Length: 0\r\n") &&
           has_line(r, "\r\nAccess-Control-Allow-Origin: http://localhost:3000\r\n") &&
           has_line(r, "\r\nAccess-Control-Allow-Credentials: true\r\n") &&
           has_line(r, "\r\nAccess-Control-Allow-Methods: DELETE, GET, OPTIONS, PATCH, POST, PUT\r\n") &&
           has_line(r, "\r\nAccess-Control-Max-Age: 600\r\n") && has_line(r, "\r\nVary: Origin\r\n") &&
           strstr(r, "\r\n\r\n")[4] == '\0',
       "preflight: 200, Content-Length 0, the policy's fields, no body");
    ok(t.c->answer_status == 200, "the access log sees 200");
    close_client(&t);

    open_with(&t, "OPTIONS /x HTTP/1.1\r\nHost: a\r\nOrigin: http://evil.example\r\n"
                  "Access-Control-Request-Method: PUT\r\n\r\n");
    keep = true;
    ok(mt_cors_preflight(t.c, &out, &keep), "a refused origin's preflight is answered too");
    r = received(&t);
    ok(strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0 && count_fields(r, "Access-Control-Allow-Origin") == 0 &&
           count_fields(r, "Access-Control-Allow-Methods") == 0 && has_line(r, "\r\nVary: Origin\r\n"),
       "... without any Access-Control field (the browser refuses the request)");
    close_client(&t);

    open_with(&t, "OPTIONS /x HTTP/1.1\r\nHost: a\r\nAccess-Control-Request-Method:\r\n\r\n");
    ok(mt_cors_is_preflight(t.c), "an empty Access-Control-Request-Method still makes a preflight");
    close_client(&t);
    open_with(&t, "OPTIONS /x HTTP/1.1\r\nHost: a\r\nOrigin: http://localhost:3000\r\n\r\n");
    keep = true;
    ok(!mt_cors_is_preflight(t.c) && !mt_cors_preflight(t.c, &out, &keep), "OPTIONS alone is no preflight");
    close_client(&t);
    open_with(&t, "GET /x HTTP/1.1\r\nHost: a\r\nAccess-Control-Request-Method: GET\r\n\r\n");
    ok(!mt_cors_is_preflight(t.c), "GET with the field is no preflight");
    close_client(&t);
    open_with(&t, "OPTIONS /x HTTP/1.0\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: PUT\r\n\r\n");
    keep = true;
    ok(mt_cors_preflight(t.c, &out, &keep) && !keep, "HTTP/1.0 without keep-alive: answered, then closed");
    r = received(&t);
    ok(has_line(r, "\r\nConnection: close\r\n"), "... with Connection: close");
    close_client(&t);

    server.config.cors = NULL;
    open_with(&t, "OPTIONS /x HTTP/1.1\r\nHost: a\r\nOrigin: http://localhost:3000\r\n"
                  "Access-Control-Request-Method: PUT\r\n\r\n");
    keep = true;
    ok(!mt_cors_preflight(t.c, &out, &keep), "no policy: the preflight is left to the application");
    t.c->cors = p;
    keep = true;
    ok(mt_cors_preflight(t.c, &out, &keep), "an API's policy answers it");
    received(&t);
    close_client(&t);
    mt_buf_dispose(&out);
    mt_cors_destroy(p);
}

int main(void) {
    test_split();
    test_origins();
    test_regexes();
    test_paths();
    test_fields();
    test_preflight();
    return done_testing();
}
