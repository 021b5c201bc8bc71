/* Unit tests of src/core/static/static.c: static files answered on a connection over
 * a socketpair, from a temporary tree. Each request is parsed into c->req as
 * the I/O thread would, answered by mt_static_serve on a helper thread, and
 * read back by the test as the client. */
#include "buf.c"
#include "clock.c"
#include "queue.c"
#include "sock.c"
#include "http1.c"
#include "http1_write.c"
#include "respond.c"
#include "accesslog.c"
#include "forwarded.c"
#include "requestid.c"
#include "output.c"
#include "conn.c"
#include "metrics.c"
#include "server.c"
#include "compress.c"
#include "zcache.c"
#include "conditional.c"
#include "file_cache.c"
#include "static.c"
#include "cors.c"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "tap.h"
#include "pump.h"

/* conn.c and static.c only read c->server->config and its stop flag. */
static mt_server_t server = {
    .config =
        {
            .limits = {.max_request_line = 2048,
                       .max_head_size = 8192,
                       .max_headers = 32,
                       .max_body_size = 1 << 20,
                       .max_chunk_ext = 256},
            .head_timeout_ms = 200,
            .body_timeout_ms = 300,
            .keepalive_timeout_ms = 200,
            .write_timeout_ms = 2000,
            .output_high_water = 65536,
            .output_low_water = 16384,
            .linger_ms = 50,
            .max_connections = 16,
        },
};

static char tmp[64];   /* the temporary tree: tmp/root, tmp/extra, tmp/media, tmp/secret */
static char root[128]; /* tmp/root */
static mt_static_t *st;
static int heads_left; /* requests whose head serve did not mark consumed */

static void sleep_ms(int ms) {
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* ---- files ---- */

static void put_file(const char *rel, const void *data, size_t n) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, data, n) != (ssize_t)n)
        abort();
    close(fd);
}

#define put_text(rel, text) put_file((rel), (text), strlen(text))

/* Sets a file's mtime to now + delta seconds. */
static void touch(const char *rel, int delta) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    now.tv_sec += delta;
    struct timespec times[2] = {now, now};
    utimensat(AT_FDCWD, path, times, 0);
}

static void pattern(char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + seed + i / 251) % 26);
}

enum { BIG = 300000 };
static char big[BIG];

static void make_tree(void) {
    strcpy(tmp, "/tmp/meltemi-test-static-XXXXXX");
    if (!mkdtemp(tmp))
        abort();
    snprintf(root, sizeof root, "%s/root", tmp);
    static const char *dirs[] = {"root", "root/sub", "root/sub/dir", "extra", "media"};
    char path[256], target[256];
    for (size_t i = 0; i < MT_ARRAY_SIZE(dirs); i++) {
        snprintf(path, sizeof path, "%s/%s", tmp, dirs[i]);
        mkdir(path, 0755);
    }
    put_text("secret", "SECRET\n");
    put_text("root/hello.txt", "Hello, world!\n");
    put_text("root/page.html", "<p>hi</p>\n");
    put_text("root/app.css", "body{}\n");
    put_text("root/app.js", "let a;\n");
    put_text("root/mod.mjs", "export {};\n");
    put_text("root/data.json", "{}\n");
    put_text("root/pic.svg", "<svg/>\n");
    put_text("root/PIC.PNG", "\x89PNG");
    put_text("root/f.woff2", "wOF2");
    put_text("root/doc.pdf", "%PDF");
    put_text("root/x.wasm", "\0asm");
    put_text("root/app.js.map", "{}\n");
    put_text("root/README", "no extension\n");
    put_text("root/blob.unknownext", "?\n");
    put_text("root/empty.txt", "");
    put_text("root/app.0123456789ab.css", "hashed{}\n");
    put_text("root/app.0123456789AB.css", "not hashed: upper case\n");
    put_text("root/LICENSE.0123456789ab", "hashed, no extension\n");
    put_text("root/app.123456789ab.css", "not hashed: 11 hex\n");
    put_text("root/sub/dir/file.txt", "deep\n");
    put_text("root/a b.txt", "space\n");
    pattern(big, BIG, 7);
    put_file("root/big.bin", big, BIG);
    /* Precompressed variants: the tests only look at which one is sent. */
    put_text("root/v.js", "original javascript, identity\n");
    put_text("root/v.js.gz", "GZIP-VARIANT");
    put_text("root/v.js.br", "BROTLI-VARIANT");
    put_text("root/v.js.zst", "ZSTD-VARIANT");
    put_text("root/g.css", "only gzip beside me\n");
    put_text("root/g.css.gz", "GZ-OF-G");
    put_text("root/old.js", "newer than its variant\n");
    put_text("root/old.js.gz", "STALE");
    touch("root/old.js.gz", -100);
    put_text("extra/extra.txt", "from the second mount\n");
    put_text("extra/hello.txt", "shadowed by the first mount\n");
    put_text("media/photo.jpg", "JPEG");
    put_text("media/raw.txt", "raw\n");
    snprintf(path, sizeof path, "%s/link_in", root);
    ok(symlink("hello.txt", path) == 0, "setup: symlink inside the root");
    snprintf(path, sizeof path, "%s/link_out", root);
    ok(symlink("../secret", path) == 0, "setup: symlink to a file outside");
    snprintf(path, sizeof path, "%s/linkdir_out", root);
    ok(symlink("..", path) == 0, "setup: symlink to the directory above");
    snprintf(path, sizeof path, "%s/abs_in", root);
    snprintf(target, sizeof target, "%s/hello.txt", root);
    ok(symlink(target, path) == 0, "setup: absolute symlink to a file inside");
    snprintf(path, sizeof path, "%s/abs_out", root);
    snprintf(target, sizeof target, "%s/secret", tmp);
    ok(symlink(target, path) == 0, "setup: absolute symlink outside");
    snprintf(path, sizeof path, "%s/fifo", root);
    ok(mkfifo(path, 0644) == 0, "setup: a FIFO");
}

static void remove_tree(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd) != 0)
        diag("could not remove %s", tmp);
}

static int count_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (d && readdir(d))
        n++;
    if (d)
        closedir(d);
    return n;
}

/* ---- a connection and a client ---- */

static mt_conn_t *conn_new(int *peer) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    struct timeval tv = {2, 0};
    setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    mt_conn_t *c = calloc(1, sizeof *c + sizeof(mt_header_t) * server.config.limits.max_headers);
    if (mt_conn_init(c, &server, sv[0]) < 0)
        abort();
    atomic_init(&c->state, MT_CONN_ACTIVE);
    *peer = sv[1];
    return c;
}

static void conn_free(mt_conn_t *c) {
    pump_forget(&server, c);
    close(c->fd);
    mt_conn_dispose(c);
    free(c);
}

typedef struct response {
    int status;
    char head[4096]; /* status line and fields, up to the blank line */
    char *body;      /* malloc'd, NUL-terminated */
    size_t body_len;
    size_t extra; /* bytes the server sent after the response */
    int rc;       /* of mt_static_serve */
    bool keep_alive;
    bool parsed; /* the request head parsed */
} response_t;

typedef struct serve_job {
    mt_static_t *st;
    mt_conn_t *c;
    int rc;
    bool keep_alive;
} serve_job_t;

static void *serve_main(void *arg) {
    serve_job_t *job = arg;
    job->rc = mt_static_serve(job->st, job->c, &job->keep_alive);
    return NULL;
}

static void response_free(response_t *r) {
    free(r->body);
    r->body = NULL;
}

/* The value of a field in r's head, or NULL. Valid until the 4th next call. */
static const char *field(const response_t *r, const char *name) {
    static char values[4][512];
    static int next;
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n + (p[3 + n] == ' ');
            const char *e = strstr(v, "\r\n");
            char *out = values[next++ % 4];
            snprintf(out, 512, "%.*s", (int)(e ? e - v : (long)strlen(v)), v);
            return out;
        }
    }
    return NULL;
}

static size_t read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, buf + got, n - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    return got;
}

/* Sends a raw request through mt_static_serve and reads the answer as a
 * client would. Bodies are read by Content-Length, except for HEAD and 304. */
static response_t request_with(mt_static_t *s, const char *raw) {
    response_t r = {.status = -1};
    int peer;
    mt_conn_t *c = conn_new(&peer);
    mt_buf_append(&c->rbuf, raw, strlen(raw));
    size_t stop;
    int pr = mt_http1_parse(&c->req, c->rbuf.data, 0, c->rbuf.len, &stop);
    c->rpos = stop;
    r.parsed = pr != MT_PARSE_ERROR && c->req.head_complete;
    if (!r.parsed) {
        diag("request does not parse: %d %s", c->req.error_status, c->req.error_reason);
        close(peer);
        conn_free(c);
        return r;
    }
    serve_job_t job = {.st = s, .c = c};
    pthread_t t;
    pthread_create(&t, NULL, serve_main, &job);
    size_t hlen = 0;
    char *end = NULL;
    while (hlen < sizeof r.head - 1 && !end) {
        ssize_t k = read(peer, r.head + hlen, 1); /* byte by byte: the body stays in the socket */
        if (k <= 0)
            break;
        hlen++;
        r.head[hlen] = '\0';
        end = hlen >= 4 && memcmp(r.head + hlen - 4, "\r\n\r\n", 4) == 0 ? r.head + hlen - 2 : NULL;
    }
    if (end)
        *end = '\0'; /* keep the last field's CRLF */
    sscanf(r.head, "HTTP/1.1 %d", &r.status);
    const char *cl = field(&r, "Content-Length");
    bool bodiless = c->req.method_id == HTTP_HEAD || r.status == 304;
    size_t want = cl && !bodiless ? strtoul(cl, NULL, 10) : 0;
    r.body = malloc(want + 1);
    r.body_len = read_full(peer, r.body, want);
    r.body[r.body_len] = '\0';
    pthread_join(t, NULL);
    char extra[256];
    ssize_t k;
    while ((k = recv(peer, extra, sizeof extra, MSG_DONTWAIT)) > 0)
        r.extra += (size_t)k;
    r.rc = job.rc;
    r.keep_alive = job.keep_alive;
    heads_left += !c->head_consumed;
    close(peer);
    conn_free(c);
    return r;
}

static response_t get_with(mt_static_t *s, const char *target, const char *fields) {
    char raw[2048];
    snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: a\r\n%s\r\n", target, fields ? fields : "");
    return request_with(s, raw);
}

#define get(target, fields) get_with(st, (target), (fields))

/* ---- tests ---- */

static void test_match_and_mount(void) {
    mt_static_t *s = mt_static_create();
    is_int(mt_static_mount(s, "static/", root, 60), -EINVAL, "a prefix must start with '/'");
    is_int(mt_static_mount(s, "/static", root, 60), -EINVAL, "and end with '/'");
    is_int(mt_static_mount(s, "/x/", "/nonexistent/meltemi", 60), -ENOENT, "a missing root: -ENOENT");
    char file[256];
    snprintf(file, sizeof file, "%s/hello.txt", root);
    is_int(mt_static_mount(s, "/x/", file, 60), -ENOTDIR, "a root that is a file: -ENOTDIR");
    is_int(mt_static_mount(s, "/static/", root, 60), 0, "mount /static/");
    static const struct {
        const char *target;
        bool match;
    } cases[] = {
        {"/static/app.css", true}, {"/static/", true},     {"/static/a?x=1", true},
        {"/static", false},        {"/staticx/a", false},  {"/", false},
        {"/Static/a", false},      {"/%73tatic/a", false}, {"http://h/static/a", true},
        {"http://h/other", false}, {"/?/static/", false},  {"/media/a", false},
        {"/static/../x", true}, /* matched, then refused by serve */
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        int peer;
        mt_conn_t *c = conn_new(&peer);
        char raw[256];
        snprintf(raw, sizeof raw, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].target);
        mt_buf_append(&c->rbuf, raw, strlen(raw));
        size_t stop;
        mt_http1_parse(&c->req, c->rbuf.data, 0, c->rbuf.len, &stop);
        is_int(mt_static_match(s, &c->req, c->rbuf.data), cases[i].match, "match %s: %d", cases[i].target,
               cases[i].match);
        close(peer);
        conn_free(c);
    }
    mt_static_destroy(s);
}

static void test_basic(void) {
    response_t r = get("/static/hello.txt", NULL);
    is_int(r.status, 200, "GET a file: 200");
    is_str(r.body, "Hello, world!\n", "exact bytes");
    is_str(field(&r, "Content-Type"), "text/plain; charset=utf-8", "Content-Type");
    is_str(field(&r, "Content-Length"), "14", "Content-Length");
    is_str(field(&r, "Accept-Ranges"), "bytes", "Accept-Ranges");
    is_str(field(&r, "Cache-Control"), "public, max-age=60", "Cache-Control from the mount's max_age");
    ok(field(&r, "Date") && strlen(field(&r, "Date")) == MT_HTTP_DATE_LEN, "Date");
    const char *etag = field(&r, "ETag");
    ok(etag && etag[0] == '"' && etag[strlen(etag) - 1] == '"' && strlen(etag) > 8, "a strong, quoted ETag (%s)", etag);
    struct stat sb;
    char path[256], lm[MT_HTTP_DATE_LEN + 1];
    snprintf(path, sizeof path, "%s/hello.txt", root);
    stat(path, &sb);
    mt_http_date_format(lm, sb.st_mtime);
    is_str(field(&r, "Last-Modified"), lm, "Last-Modified is the file's mtime");
    ok(!field(&r, "Vary") && !field(&r, "Content-Encoding") && !field(&r, "Connection"),
       "no Vary, Content-Encoding or Connection");
    ok(r.rc == 0 && r.keep_alive && r.extra == 0, "rc 0, keep-alive, nothing after the body");
    response_free(&r);

    r = request_with(st, "HEAD /static/hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    is_int(r.status, 200, "HEAD: 200");
    is_str(field(&r, "Content-Length"), "14", "HEAD: the Content-Length of GET");
    ok(field(&r, "ETag") && field(&r, "Last-Modified") && field(&r, "Content-Type"), "HEAD: the validators and type");
    is_int(r.extra, 0, "HEAD: no body");
    response_free(&r);

    r = get("/static/hello.txt?v=3#x", NULL);
    ok(r.status == 200 && strcmp(r.body, "Hello, world!\n") == 0, "a query string is not part of the path");
    response_free(&r);
    r = get("http://example.com/static/hello.txt", NULL);
    is_int(r.status, 200, "an absolute-form target");
    response_free(&r);
    r = get("/static/sub/dir/file.txt", NULL);
    ok(r.status == 200 && strcmp(r.body, "deep\n") == 0, "a file in a subdirectory");
    response_free(&r);
    r = get("/static/a%20b.txt", NULL);
    ok(r.status == 200 && strcmp(r.body, "space\n") == 0, "a percent-encoded name");
    response_free(&r);
    r = get("/static/%68ello.txt", NULL);
    is_int(r.status, 200, "an encoded ordinary letter decodes");
    response_free(&r);

    r = get("/static/empty.txt", NULL);
    ok(r.status == 200 && r.body_len == 0 && strcmp(field(&r, "Content-Length"), "0") == 0 && r.extra == 0,
       "an empty file: 200, Content-Length 0");
    response_free(&r);

    /* A file larger than the small-body path goes out with sendfile. */
    r = get("/static/big.bin", NULL);
    ok(r.status == 200 && r.body_len == BIG && memcmp(r.body, big, BIG) == 0, "a %d-byte file, intact", BIG);
    is_str(field(&r, "Content-Type"), "application/octet-stream", "unknown extension: application/octet-stream");
    response_free(&r);
}

static void test_content_types(void) {
    static const struct {
        const char *path, *type;
    } cases[] = {
        {"page.html", "text/html; charset=utf-8"},
        {"app.css", "text/css; charset=utf-8"},
        {"app.js", "text/javascript; charset=utf-8"},
        {"mod.mjs", "text/javascript; charset=utf-8"},
        {"data.json", "application/json"},
        {"pic.svg", "image/svg+xml"},
        {"PIC.PNG", "image/png"},
        {"f.woff2", "font/woff2"},
        {"doc.pdf", "application/pdf"},
        {"x.wasm", "application/wasm"},
        {"app.js.map", "application/json"},
        {"README", "application/octet-stream"},
        {"blob.unknownext", "application/octet-stream"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        char target[128];
        snprintf(target, sizeof target, "/static/%s", cases[i].path);
        response_t r = get(target, NULL);
        is_str(field(&r, "Content-Type"), cases[i].type, "Content-Type of %s", cases[i].path);
        response_free(&r);
    }
}

static void test_conditional(void) {
    response_t r = get("/static/hello.txt", NULL);
    char etag[128], lm[64], fields[512];
    snprintf(etag, sizeof etag, "%s", field(&r, "ETag"));
    snprintf(lm, sizeof lm, "%s", field(&r, "Last-Modified"));
    response_free(&r);

    static const char *matching[] = {"%s", "\"nope\", %s", "W/%s", "\"a\",W/%s ,\"b\"", "*"};
    for (size_t i = 0; i < MT_ARRAY_SIZE(matching); i++) {
        char value[256];
        snprintf(value, sizeof value, matching[i], etag);
        snprintf(fields, sizeof fields, "If-None-Match: %s\r\n", value);
        r = get("/static/hello.txt", fields);
        is_int(r.status, 304, "If-None-Match: %s -> 304", value);
        if (i == 0) {
            is_str(field(&r, "ETag"), etag, "304 carries the ETag");
            ok(field(&r, "Cache-Control") && field(&r, "Last-Modified") && field(&r, "Date"),
               "and Cache-Control, Last-Modified, Date");
            ok(!field(&r, "Content-Length") && r.extra == 0 && r.keep_alive, "no body, no Content-Length, keep-alive");
        }
        response_free(&r);
    }
    r = get("/static/hello.txt", "If-None-Match: \"other\"\r\n");
    ok(r.status == 200 && r.body_len == 14, "If-None-Match that does not match: 200 with the body");
    response_free(&r);
    snprintf(fields, sizeof fields, "If-None-Match: \"other\"\r\nIf-Modified-Since: %s\r\n", lm);
    r = get("/static/hello.txt", fields);
    is_int(r.status, 200, "If-Modified-Since is ignored when If-None-Match is present");
    response_free(&r);

    snprintf(fields, sizeof fields, "If-Modified-Since: %s\r\n", lm);
    r = get("/static/hello.txt", fields);
    is_int(r.status, 304, "If-Modified-Since = Last-Modified: 304");
    response_free(&r);
    r = get("/static/hello.txt", "If-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n");
    is_int(r.status, 200, "If-Modified-Since in the past: 200");
    response_free(&r);
    r = get("/static/hello.txt", "If-Modified-Since: yesterday\r\n");
    is_int(r.status, 200, "an invalid date is ignored: 200");
    response_free(&r);
    r = get("/static/hello.txt", "If-Modified-Since: Thursday, 01-Jan-37 00:00:00 GMT\r\n");
    is_int(r.status, 304, "an RFC 850 date in the future: 304");
    response_free(&r);
    r = get("/static/hello.txt", "If-Modified-Since: Thu Jan  1 00:00:00 2037\r\n");
    is_int(r.status, 304, "an asctime date in the future: 304");
    response_free(&r);

    r = request_with(st, "HEAD /static/hello.txt HTTP/1.1\r\nHost: a\r\nIf-None-Match: *\r\n\r\n");
    is_int(r.status, 304, "HEAD with a matching If-None-Match: 304");
    response_free(&r);

    r = get("/static/hello.txt", "If-Match: \"other\"\r\n");
    is_int(r.status, 412, "If-Match that does not match: 412");
    response_free(&r);
    snprintf(fields, sizeof fields, "If-Match: W/%s\r\n", etag);
    r = get("/static/hello.txt", fields);
    is_int(r.status, 412, "If-Match compares strongly: a weak tag does not match");
    response_free(&r);
    snprintf(fields, sizeof fields, "If-Match: %s\r\n", etag);
    r = get("/static/hello.txt", fields);
    is_int(r.status, 200, "If-Match that matches: 200");
    response_free(&r);
    r = get("/static/hello.txt", "If-Unmodified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n");
    is_int(r.status, 412, "If-Unmodified-Since before the mtime: 412");
    response_free(&r);
}

static void check_range(const char *range, int status, const char *content_range, size_t first, size_t len) {
    char fields[256];
    snprintf(fields, sizeof fields, "Range: %s\r\n", range);
    response_t r = get("/static/big.bin", fields);
    is_int(r.status, status, "Range: %s -> %d", range, status);
    if (status == 206) {
        is_str(field(&r, "Content-Range"), content_range, "Content-Range: %s", content_range);
        ok(r.body_len == len && memcmp(r.body, big + first, len) == 0, "the %zu bytes from %zu", len, first);
    } else if (status == 200) {
        ok(r.body_len == BIG && !field(&r, "Content-Range"), "the whole file, no Content-Range");
    }
    ok(r.extra == 0 && r.rc == 0, "nothing after the body");
    response_free(&r);
}

static void test_range(void) {
    check_range("bytes=0-99", 206, "bytes 0-99/300000", 0, 100);
    check_range("bytes=1000-1999", 206, "bytes 1000-1999/300000", 1000, 1000);
    check_range("bytes=-500", 206, "bytes 299500-299999/300000", 299500, 500);
    check_range("bytes=299000-", 206, "bytes 299000-299999/300000", 299000, 1000);
    check_range("bytes=299990-400000", 206, "bytes 299990-299999/300000", 299990, 10);
    check_range("bytes=-400000", 206, "bytes 0-299999/300000", 0, BIG);
    check_range("bytes=5-100004", 206, "bytes 5-100004/300000", 5, 100000); /* by sendfile */
    check_range("BYTES=7-7", 206, "bytes 7-7/300000", 7, 1);
    check_range("bytes=0-1,5-6", 200, NULL, 0, 0);
    check_range("bytes=5-1", 200, NULL, 0, 0);
    check_range("items=0-1", 200, NULL, 0, 0);
    check_range("bytes=abc", 200, NULL, 0, 0);
    check_range("bytes=", 200, NULL, 0, 0);

    response_t r = get("/static/big.bin", "Range: bytes=300000-\r\n");
    is_int(r.status, 416, "a range past the end: 416");
    is_str(field(&r, "Content-Range"), "bytes */300000", "416 carries Content-Range: bytes */size");
    ok(r.rc == 0 && r.keep_alive && r.extra == 0, "and keeps the connection");
    response_free(&r);
    r = get("/static/big.bin", "Range: bytes=-0\r\n");
    is_int(r.status, 416, "an empty suffix range: 416");
    response_free(&r);
    r = get("/static/empty.txt", "Range: bytes=0-\r\n");
    ok(r.status == 416 && strcmp(field(&r, "Content-Range"), "bytes */0") == 0, "any range of an empty file: 416");
    response_free(&r);

    r = get("/static/big.bin", NULL);
    char etag[128], lm[64], fields[512];
    snprintf(etag, sizeof etag, "%s", field(&r, "ETag"));
    snprintf(lm, sizeof lm, "%s", field(&r, "Last-Modified"));
    response_free(&r);
    snprintf(fields, sizeof fields, "Range: bytes=10-19\r\nIf-Range: %s\r\n", etag);
    r = get("/static/big.bin", fields);
    ok(r.status == 206 && r.body_len == 10 && memcmp(r.body, big + 10, 10) == 0, "If-Range with the ETag: 206");
    response_free(&r);
    r = get("/static/big.bin", "Range: bytes=10-19\r\nIf-Range: \"stale\"\r\n");
    ok(r.status == 200 && r.body_len == BIG, "If-Range with another ETag: 200 with the whole file");
    response_free(&r);
    snprintf(fields, sizeof fields, "Range: bytes=10-19\r\nIf-Range: W/%s\r\n", etag);
    r = get("/static/big.bin", fields);
    is_int(r.status, 200, "If-Range with a weak ETag never matches: 200");
    response_free(&r);
    snprintf(fields, sizeof fields, "Range: bytes=10-19\r\nIf-Range: %s\r\n", lm);
    r = get("/static/big.bin", fields);
    is_int(r.status, 206, "If-Range with the Last-Modified date: 206");
    response_free(&r);
    r = get("/static/big.bin", "Range: bytes=10-19\r\nIf-Range: Sat, 01 Jan 2000 00:00:00 GMT\r\n");
    is_int(r.status, 200, "If-Range with another date: 200");
    response_free(&r);
    r = get("/static/big.bin", "Range: bytes=300000-\r\nIf-Range: \"stale\"\r\n");
    is_int(r.status, 200, "an unsatisfiable range under a failed If-Range: 200, not 416");
    response_free(&r);
    r = request_with(st, "HEAD /static/big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=0-9\r\n\r\n");
    ok(r.status == 200 && strcmp(field(&r, "Content-Length"), "300000") == 0 && r.extra == 0,
       "HEAD ignores Range: 200, the full length, no body");
    response_free(&r);
    snprintf(fields, sizeof fields, "Range: bytes=0-9\r\nIf-None-Match: %s\r\n", etag);
    r = get("/static/big.bin", fields);
    is_int(r.status, 304, "a matching If-None-Match wins over Range: 304");
    response_free(&r);
}

static void test_variants(void) {
    static const struct {
        const char *accept; /* NULL: no Accept-Encoding field */
        const char *encoding, *body;
    } cases[] = {
        {NULL, NULL, "original javascript, identity\n"},
        {"", NULL, "original javascript, identity\n"},
        {"gzip", "gzip", "GZIP-VARIANT"},
        {"gzip, deflate", "gzip", "GZIP-VARIANT"},
        {"gzip, br", "br", "BROTLI-VARIANT"},
        {"gzip, deflate, br, zstd", "zstd", "ZSTD-VARIANT"},
        {"br;q=0.5, gzip", "gzip", "GZIP-VARIANT"},
        {"br;q=1.0, gzip;q=1", "br", "BROTLI-VARIANT"},
        {"zstd;q=0, *", "br", "BROTLI-VARIANT"},
        {"*", "zstd", "ZSTD-VARIANT"},
        {"*;q=0", NULL, "original javascript, identity\n"},
        {"identity", NULL, "original javascript, identity\n"},
        {"gzip;q=0", NULL, "original javascript, identity\n"},
        {"GZIP", "gzip", "GZIP-VARIANT"},
        {"x-gzip", "gzip", "GZIP-VARIANT"},
        {"Br ; Q=0.9 , gzip ; q=0.8", "br", "BROTLI-VARIANT"},
        {"identity;q=1, gzip;q=0.5", NULL, "original javascript, identity\n"},
        {"gzip;q=0.5, identity;q=0.5", "gzip", "GZIP-VARIANT"},
        {", ,gzip ;q=0.8,", "gzip", "GZIP-VARIANT"},
        {"br;q=2, gzip", "gzip", "GZIP-VARIANT"},
        {"deflate, compress", NULL, "original javascript, identity\n"},
        {"zstd;q=0.001, br;q=0", "zstd", "ZSTD-VARIANT"},
    };
    char etags[MT_ARRAY_SIZE(cases)][128];
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        char fields[256] = "";
        if (cases[i].accept)
            snprintf(fields, sizeof fields, "Accept-Encoding: %s\r\n", cases[i].accept);
        response_t r = get("/static/v.js", fields);
        const char *ce = field(&r, "Content-Encoding");
        ok(r.status == 200 && (cases[i].encoding ? ce && strcmp(ce, cases[i].encoding) == 0 : ce == NULL) &&
               strcmp(r.body, cases[i].body) == 0,
           "Accept-Encoding: %s -> %s (%s)", cases[i].accept ? cases[i].accept : "(none)",
           cases[i].encoding ? cases[i].encoding : "identity", ce ? ce : "identity");
        if (i < 6) {
            is_str(field(&r, "Vary"), "Accept-Encoding", "Vary: Accept-Encoding on every representation");
            is_str(field(&r, "Content-Type"), "text/javascript; charset=utf-8", "the original's Content-Type");
            char len[32];
            snprintf(len, sizeof len, "%zu", strlen(cases[i].body));
            is_str(field(&r, "Content-Length"), len, "the Content-Length of what is sent");
        }
        snprintf(etags[i], sizeof etags[i], "%s", field(&r, "ETag"));
        response_free(&r);
    }
    ok(strcmp(etags[0], etags[2]) && strcmp(etags[0], etags[4]) && strcmp(etags[0], etags[5]) &&
           strcmp(etags[2], etags[4]) && strcmp(etags[4], etags[5]),
       "each representation has its own ETag (%s %s %s %s)", etags[0], etags[2], etags[4], etags[5]);

    response_t r = get("/static/v.js", "Accept-Encoding: gzip\r\nAccept-Encoding: br;q=0.9, zstd;q=0.5\r\n");
    ok(r.status == 200 && strcmp(field(&r, "Content-Encoding"), "gzip") == 0,
       "several Accept-Encoding fields are one list (gzip=1 > br=0.9)");
    response_free(&r);
    r = get("/static/v.js", "Accept-Encoding: gzip\r\nAccept-Encoding: gzip;q=0, br;q=0.1\r\n");
    ok(r.status == 200 && strcmp(field(&r, "Content-Encoding"), "br") == 0, "a refusal in a second field stands (%s)",
       field(&r, "Content-Encoding"));
    response_free(&r);

    char fields[512];
    snprintf(fields, sizeof fields, "Accept-Encoding: br\r\nIf-None-Match: %s\r\n", etags[4]);
    r = get("/static/v.js", fields);
    ok(r.status == 304 && strcmp(field(&r, "Vary"), "Accept-Encoding") == 0, "the br ETag revalidates br: 304, Vary");
    response_free(&r);
    snprintf(fields, sizeof fields, "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n", etags[4]);
    r = get("/static/v.js", fields);
    ok(r.status == 200 && strcmp(r.body, "GZIP-VARIANT") == 0, "but not gzip: 200 with the gzip variant");
    response_free(&r);

    r = get("/static/v.js", "Accept-Encoding: br\r\nRange: bytes=0-5\r\n");
    ok(r.status == 206 && strcmp(r.body, "BROTLI") == 0 && strcmp(field(&r, "Content-Range"), "bytes 0-5/14") == 0 &&
           strcmp(field(&r, "Content-Encoding"), "br") == 0,
       "Range applies to the variant sent (%s)", field(&r, "Content-Range"));
    response_free(&r);
    r = request_with(st, "HEAD /static/v.js HTTP/1.1\r\nHost: a\r\nAccept-Encoding: zstd\r\n\r\n");
    ok(r.status == 200 && strcmp(field(&r, "Content-Length"), "12") == 0 &&
           strcmp(field(&r, "Content-Encoding"), "zstd") == 0 && r.extra == 0,
       "HEAD: the variant's fields, no body");
    response_free(&r);

    r = get("/static/g.css", "Accept-Encoding: br, zstd\r\n");
    ok(r.status == 200 && !field(&r, "Content-Encoding") && strcmp(field(&r, "Vary"), "Accept-Encoding") == 0,
       "only a .gz beside the file and gzip not accepted: identity, with Vary");
    response_free(&r);
    r = get("/static/g.css", "Accept-Encoding: br, gzip\r\n");
    ok(r.status == 200 && strcmp(r.body, "GZ-OF-G") == 0, "only a .gz beside the file: gzip");
    response_free(&r);
    r = get("/static/old.js", "Accept-Encoding: gzip\r\n");
    ok(r.status == 200 && strcmp(r.body, "newer than its variant\n") == 0 && !field(&r, "Vary"),
       "a variant older than the file is ignored (no Vary)");
    response_free(&r);
    r = get("/static/hello.txt", "Accept-Encoding: gzip, br, zstd\r\n");
    ok(r.status == 200 && !field(&r, "Vary") && !field(&r, "Content-Encoding"), "no variants: no Vary");
    response_free(&r);
}

static void test_cache_control(void) {
    static const struct {
        const char *path, *cache_control;
    } cases[] = {
        {"/static/app.0123456789ab.css", "public, max-age=31536000, immutable"},
        {"/static/LICENSE.0123456789ab", "public, max-age=31536000, immutable"},
        {"/static/app.0123456789AB.css", "public, max-age=60"},
        {"/static/app.123456789ab.css", "public, max-age=60"},
        {"/static/app.css", "public, max-age=60"},
        {"/media/photo.jpg", "no-cache"},
        {"/raw/raw.txt", NULL},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        response_t r = get(cases[i].path, NULL);
        is_int(r.status, 200, "%s: 200", cases[i].path);
        is_str(field(&r, "Cache-Control"), cases[i].cache_control, "Cache-Control of %s", cases[i].path);
        response_free(&r);
    }
    ok(hashed_name("a/b.0123456789ab.js.map", 23) == false && hashed_name("b.js.0123456789ab.map", 21),
       "source maps: Django hashes before the last extension");
    ok(!hashed_name(".0123456789ab.css", 17) && !hashed_name("0123456789ab", 12), "a hash needs a name before it");
}

static void test_not_found(void) {
    static const char *targets[] = {
        "/static/../secret",
        "/static/%2e%2e/secret",
        "/static/%2E%2E/secret",
        "/static/.%2e/secret",
        "/static/sub/%2e%2e/%2e%2e/secret",
        "/static/..%2fsecret",
        "/static/%2e%2e%2fsecret",
        "/static/sub%2fdir/file.txt",
        "/static/sub%2Fdir%2Ffile.txt",
        "/static/..%5csecret",
        "/static/..%5Csecret",
        "/static/sub%5cdir%5cfile.txt",
        "/static/./hello.txt",
        "/static/sub/./dir/file.txt",
        "/static//hello.txt",
        "/static/sub//dir/file.txt",
        "/static/%2fetc/passwd",
        "/static/link_out",
        "/static/linkdir_out/secret",
        "/static/abs_out",
        "/static/abs_in",
        "/static/sub",
        "/static/sub/",
        "/static/sub/dir",
        "/static/",
        "/static/missing.txt",
        "/static/hello.txt/",
        "/static/hello.txt/x",
        "/static/fifo",
        "/static/hello%0a.txt",
        "/static/v.js.gz/../v.js",
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(targets); i++) {
        response_t r = get(targets[i], NULL);
        ok(r.status == 404 && !strstr(r.body, "SECRET") && r.rc == 0 && r.keep_alive, "%s -> 404", targets[i]);
        response_free(&r);
    }
    /* The parser refuses an encoded NUL before us; clean_path would too. */
    response_t r = get("/static/hello.txt%00.png", NULL);
    ok(!r.parsed || r.status == 404, "an encoded NUL never reaches a file");
    response_free(&r);
    char out[64];
    is_int(clean_path("a%00b", 5, out, sizeof out), -1, "clean_path refuses an encoded NUL");
    is_int(clean_path("a%2fb", 5, out, sizeof out), -1, "clean_path refuses an encoded slash");
    is_int(clean_path("a/%2E%2e/b", 10, out, sizeof out), -1, "clean_path refuses an encoded '..'");
    is_int(clean_path("a%5cb", 5, out, sizeof out), -1, "clean_path refuses an encoded backslash");
    ok(clean_path("a/b%20c/100%.txt", 16, out, sizeof out) == 14 && strcmp(out, "a/b c/100%.txt") == 0,
       "clean_path decodes, keeping an invalid escape as it is (%s)", out);
    is_int(clean_path("abcdefgh", 8, out, 8), -1, "clean_path refuses what does not fit");
    r = request_with(st, "GET /static/..\\secret HTTP/1.1\r\nHost: a\r\n\r\n");
    if (r.parsed)
        is_int(r.status, 404, "a literal backslash: 404");
    else
        skip("the parser refuses a literal backslash before us");
    response_free(&r);
    r = request_with(st, "HEAD /static/missing HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(r.status == 404 && r.extra == 0, "HEAD of a missing file: 404 without a body");
    response_free(&r);
    if (geteuid() == 0) {
        skip("an unreadable file cannot be tested as root");
    } else {
        put_text("root/private.txt", "private\n");
        char path[256];
        snprintf(path, sizeof path, "%s/private.txt", root);
        chmod(path, 0);
        r = get("/static/private.txt", NULL);
        is_int(r.status, 404, "an unreadable file: 404");
        response_free(&r);
    }
}

static void test_symlinks(void) {
    bool openat2_ok = !atomic_load(&openat2_missing);
    diag("path resolution: %s", openat2_ok ? "openat2 RESOLVE_BENEATH" : "O_NOFOLLOW walk");
    response_t r = get("/static/link_in", NULL);
    if (openat2_ok)
        ok(r.status == 200 && strcmp(r.body, "Hello, world!\n") == 0, "openat2: a relative symlink inside: served");
    else
        is_int(r.status, 404, "walk: a symlink inside: 404");
    response_free(&r);

    /* The fallback, forced, on a fresh cache. */
    atomic_store(&openat2_missing, true);
    mt_static_t *s = mt_static_create();
    mt_static_mount(s, "/static/", root, 60);
    static const struct {
        const char *target;
        int status;
    } cases[] = {
        {"/static/hello.txt", 200},
        {"/static/sub/dir/file.txt", 200},
        {"/static/link_in", 404},
        {"/static/link_out", 404},
        {"/static/linkdir_out/secret", 404},
        {"/static/abs_in", 404},
        {"/static/abs_out", 404},
        {"/static/sub", 404},
        {"/static/fifo", 404},
        {"/static/missing/x", 404},
        {"/static/hello.txt/x", 404},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        r = get_with(s, cases[i].target, NULL);
        is_int(r.status, cases[i].status, "walk: %s -> %d", cases[i].target, cases[i].status);
        response_free(&r);
    }
    mt_static_destroy(s);
    atomic_store(&openat2_missing, !openat2_ok);
}

static void test_methods_and_connection(void) {
    response_t r = request_with(st, "POST /static/hello.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    is_int(r.status, 405, "POST: 405");
    is_str(field(&r, "Allow"), "GET, HEAD", "with Allow: GET, HEAD");
    ok(r.keep_alive && r.rc == 0, "the connection may go on (the caller skips the body)");
    response_free(&r);
    r = request_with(st, "DELETE /static/missing HTTP/1.1\r\nHost: a\r\n\r\n");
    is_int(r.status, 405, "DELETE, even of a missing file: 405");
    response_free(&r);
    r = request_with(st, "OPTIONS /static/hello.txt HTTP/1.1\r\nHost: a\r\n\r\n");
    is_int(r.status, 405, "OPTIONS: 405");
    response_free(&r);
    r = request_with(st, "POST /static/x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    ok(r.status == 405 && !r.keep_alive && strcmp(field(&r, "Connection"), "close") == 0,
       "a body waiting for 100 Continue: 405 and Connection: close");
    response_free(&r);

    r = get("/static/hello.txt", "Connection: close\r\n");
    ok(r.status == 200 && !r.keep_alive && strcmp(field(&r, "Connection"), "close") == 0,
       "Connection: close is honoured");
    response_free(&r);
    r = request_with(st, "GET /static/hello.txt HTTP/1.0\r\n\r\n");
    ok(r.status == 200 && !r.keep_alive && strcmp(field(&r, "Connection"), "close") == 0, "HTTP/1.0: close");
    response_free(&r);
    r = request_with(st, "GET /static/hello.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    ok(r.status == 200 && r.keep_alive && strcmp(field(&r, "Connection"), "keep-alive") == 0,
       "HTTP/1.0 with keep-alive: Connection: keep-alive");
    response_free(&r);
    atomic_store(&server.shutdown_requested, true);
    r = get("/static/hello.txt", NULL);
    ok(r.status == 200 && !r.keep_alive && strcmp(field(&r, "Connection"), "close") == 0,
       "during a graceful stop: Connection: close");
    response_free(&r);
    atomic_store(&server.shutdown_requested, false);

    /* The client is gone: a negative result, and no keep-alive. */
    int peer;
    mt_conn_t *c = conn_new(&peer);
    const char *raw = "GET /static/big.bin HTTP/1.1\r\nHost: a\r\n\r\n";
    mt_buf_append(&c->rbuf, raw, strlen(raw));
    size_t stop;
    mt_http1_parse(&c->req, c->rbuf.data, 0, c->rbuf.len, &stop);
    close(peer);
    bool keep_alive = true;
    int rc = mt_static_serve(st, c, &keep_alive);
    ok(rc < 0 && !keep_alive, "a vanished client: negative (%d), no keep-alive", rc);
    conn_free(c);
}

static void test_mounts(void) {
    response_t r = get("/static/extra.txt", NULL);
    ok(r.status == 200 && strcmp(r.body, "from the second mount\n") == 0,
       "a second mount of the same prefix is searched");
    response_free(&r);
    r = get("/static/hello.txt", NULL);
    ok(r.status == 200 && strcmp(r.body, "Hello, world!\n") == 0, "the first mount wins");
    response_free(&r);
    r = get("/media/hello.txt", NULL);
    is_int(r.status, 404, "mounts do not leak into each other");
    response_free(&r);
}

static void test_changes(void) {
    put_text("root/change.txt", "version one\n");
    response_t r = get("/static/change.txt", NULL);
    char etag1[128];
    snprintf(etag1, sizeof etag1, "%s", field(&r, "ETag"));
    is_str(r.body, "version one\n", "a new file is served");
    response_free(&r);
    unsigned long opens = st->files->opens;
    r = get("/static/change.txt", NULL);
    is_int(st->files->opens, opens, "a second request is answered from the cache (no open)");
    response_free(&r);

    put_text("root/change.txt", "version two, longer\n"); /* the same inode, rewritten */
    touch("root/change.txt", 5);
    put_text("root/later.txt", "created after a miss\n");
    char path[256];
    snprintf(path, sizeof path, "%s/app.js", root);
    unlink(path);
    sleep_ms(CACHE_TTL_MS + 100);
    r = get("/static/change.txt", NULL);
    is_str(r.body, "version two, longer\n", "a rewritten file is noticed after the TTL");
    ok(field(&r, "ETag") && strcmp(field(&r, "ETag"), etag1) != 0, "with a new ETag");
    response_free(&r);

    /* Replaced by rename: a new inode, same size. */
    put_text("root/change.tmp", "version 3, longer!! \n");
    char from[256];
    snprintf(from, sizeof from, "%s/change.tmp", root);
    snprintf(path, sizeof path, "%s/change.txt", root);
    rename(from, path);
    st->files->ttl_ms = 0; /* revalidate on every request */
    r = get("/static/change.txt", NULL);
    is_str(r.body, "version 3, longer!! \n", "a file replaced by rename is noticed");
    response_free(&r);
    opens = st->files->opens;
    r = get("/static/change.txt", NULL);
    is_int(st->files->opens, opens, "an unchanged file is revalidated without reopening");
    response_free(&r);
    st->files->ttl_ms = CACHE_TTL_MS;

    r = get("/static/app.js", NULL);
    is_int(r.status, 404, "a deleted file: 404");
    response_free(&r);
    r = get("/static/later.txt", NULL);
    is_int(r.status, 200, "a file created after it was missing: 200");
    response_free(&r);
    put_text("root/app.js", "let a;\n");
}

static void test_fd_leaks(void) {
    int before = count_fds();
    mt_static_t *s = mt_static_create();
    mt_static_mount(s, "/static/", root, 60);
    s->files->capacity = 8;
    static const char *targets[] = {
        "/static/hello.txt", "/static/v.js",      "/static/big.bin", "/static/missing",  "/static/../secret",
        "/static/sub",       "/static/app.css",   "/static/g.css",   "/static/link_out", "/static/page.html",
        "/static/data.json", "/static/empty.txt", "/static/fifo",    "/static/old.js",   "/static/pic.svg",
    };
    static const char *fields[] = {NULL, "Accept-Encoding: gzip, br\r\n", "Range: bytes=0-9\r\n",
                                   "If-None-Match: *\r\n", "Range: bytes=999999-\r\n"};
    int max_open = 0, failures = 0;
    for (int i = 0; i < 600; i++) {
        if (i == 300)
            s->files->ttl_ms = 0; /* now every hit revalidates, and changed entries are replaced */
        response_t r = get_with(s, targets[i % MT_ARRAY_SIZE(targets)], fields[i % MT_ARRAY_SIZE(fields)]);
        failures += r.status < 200 || r.rc != 0;
        response_free(&r);
        max_open = MT_MAX(max_open, count_fds() - before);
    }
    is_int(failures, 0, "600 requests answered");
    ok(max_open <= 8 + 1, "open descriptors stay within the cache capacity (at most %d more)", max_open);
    ok(s->files->count <= 8, "the cache holds at most its capacity (%zu)", s->files->count);
    mt_static_destroy(s);
    is_int(count_fds(), before, "no descriptor leaked after destroy");
}

/* Inflates a gzip body; returns the decoded length, or -1. */
static long gunzip(const char *in, size_t n, char *out, size_t cap) {
    z_stream zs = {0};
    inflateInit2(&zs, 15 + 16);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)n;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    long got = inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.avail_in == 0 ? (long)zs.total_out : -1;
    inflateEnd(&zs);
    return got;
}

/* Files without precompressed variants, compressed by the zcache and served
 * like variants (src/core/static/zcache.c has the cache's own tests). */
static void test_compressed_copies(void) {
    enum { CSS_SIZE = 20000, TEXT_SIZE = 120000 };
    static char css[CSS_SIZE], text[TEXT_SIZE], out[TEXT_SIZE + 64];
    pattern(css, CSS_SIZE, 3);
    unsigned seed = 5;
    for (size_t i = 0; i < TEXT_SIZE; i++) { /* letters at random: the copy stays larger than SMALL_BODY */
        seed = seed * 1103515245u + 12345u;
        text[i] = (char)('a' + (seed >> 16) % 26);
    }
    put_file("root/z.css", css, CSS_SIZE);
    put_file("root/zbig.txt", text, TEXT_SIZE);
    put_file("root/zv.css", css, CSS_SIZE);
    put_text("root/zv.css.gz", "GZ-OF-ZV");
    int before = count_fds();
    mt_static_t *s = mt_static_create();
    mt_static_mount(s, "/static/", root, 60);
    mt_zcache_config_t config = {.budget = 1 << 20, .min_size = 512, .codings = MT_CODING_ALL, .levels = {-1, 6, 4, 3}};
    is_int(mt_static_compress(s, &config), 0, "compressed copies on");
    config.budget = 0;
    is_int(mt_static_compress(s, &config), -EINVAL, "a budget of 0 is refused");

    response_t plain = get_with(s, "/static/z.css", NULL);
    ok(plain.status == 200 && field(&plain, "Content-Encoding") == NULL && plain.body_len == CSS_SIZE,
       "identity without Accept-Encoding");
    is_str(field(&plain, "Vary"), "Accept-Encoding", "Vary on the identity answer of a compressible file");
    response_t r = get_with(s, "/static/z.css", "Accept-Encoding: gzip\r\n");
    is_str(field(&r, "Content-Encoding"), "gzip", "gzip for a client that accepts it");
    is_str(field(&r, "Vary"), "Accept-Encoding", "with Vary");
    ok(r.body_len < CSS_SIZE / 4 && gunzip(r.body, r.body_len, out, sizeof out) == CSS_SIZE &&
           memcmp(out, css, CSS_SIZE) == 0,
       "the copy decodes to the file (%zu bytes)", r.body_len);
    char etag[128], want[160];
    snprintf(etag, sizeof etag, "%s", field(&r, "ETag"));
    snprintf(want, sizeof want, "%.*s-z6-gzip\"", (int)strlen(field(&plain, "ETag")) - 1, field(&plain, "ETag"));
    is_str(etag, want, "the ETag: the file's, the level and the coding");
    response_t again = get_with(s, "/static/z.css", "Accept-Encoding: gzip\r\n");
    ok(again.body_len == r.body_len && memcmp(again.body, r.body, r.body_len) == 0, "the same copy again");
    response_free(&again);
    char fields[256];
    snprintf(fields, sizeof fields, "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n", etag);
    again = get_with(s, "/static/z.css", fields);
    ok(again.status == 304 && strcmp(field(&again, "ETag"), etag) == 0, "304 on the copy's ETag");
    response_free(&again);
    snprintf(fields, sizeof fields, "If-None-Match: %s\r\n", etag);
    again = get_with(s, "/static/z.css", fields);
    is_int(again.status, 200, "not for a client that takes identity");
    response_free(&again);
    again = get_with(s, "/static/z.css", "Accept-Encoding: gzip\r\nRange: bytes=2-11\r\n");
    char range[64];
    snprintf(range, sizeof range, "bytes 2-11/%zu", r.body_len);
    ok(again.status == 206 && again.body_len == 10 && memcmp(again.body, r.body + 2, 10) == 0,
       "a range of the compressed bytes");
    is_str(field(&again, "Content-Range"), range, "Content-Range of the copy");
    response_free(&again);
    response_free(&r);
    response_free(&plain);

    r = get_with(s, "/static/zbig.txt", "Accept-Encoding: gzip\r\n");
    ok(r.body_len > SMALL_BODY && gunzip(r.body, r.body_len, out, sizeof out) == TEXT_SIZE &&
           memcmp(out, text, TEXT_SIZE) == 0,
       "a copy larger than SMALL_BODY goes out by sendfile (%zu bytes)", r.body_len);
    response_free(&r);
    r = get_with(s, "/static/PIC.PNG", "Accept-Encoding: gzip\r\n");
    ok(field(&r, "Content-Encoding") == NULL && field(&r, "Vary") == NULL, "an image: neither coding nor Vary");
    response_free(&r);
    r = get_with(s, "/static/zv.css", "Accept-Encoding: br\r\n");
    ok(field(&r, "Content-Encoding") == NULL && r.body_len == CSS_SIZE,
       "a file with a precompressed variant gets no copy in another coding");
    response_free(&r);
    r = get_with(s, "/static/zv.css", "Accept-Encoding: br, gzip\r\n");
    ok(strcmp(r.body, "GZ-OF-ZV") == 0, "its variant is sent");
    response_free(&r);
    mt_static_destroy(s);
    is_int(count_fds(), before, "no descriptor left after destroy");
}

typedef struct hammer {
    mt_static_t *s;
    int id, errors;
} hammer_t;

/* Serves and reads back sequentially in one thread: the files are small
 * enough to fit in the socket buffer. */
static void *hammer_main(void *arg) {
    hammer_t *h = arg;
    static const char *names[] = {"hello.txt", "app.css", "page.html", "data.json", "v.js", "g.css", "pic.svg"};
    static const char *bodies[] = {
        "Hello, world!\n",       "body{}\n", "<p>hi</p>\n", "{}\n", "original javascript, identity\n",
        "only gzip beside me\n", "<svg/>\n"};
    for (int i = 0; i < 400; i++) {
        int k = (i * 7 + h->id) % 7, peer;
        mt_conn_t *c = conn_new(&peer);
        char raw[256];
        snprintf(raw, sizeof raw, "GET /static/%s HTTP/1.1\r\nHost: a\r\n\r\n", names[k]);
        mt_buf_append(&c->rbuf, raw, strlen(raw));
        size_t stop;
        mt_http1_parse(&c->req, c->rbuf.data, 0, c->rbuf.len, &stop);
        bool ka;
        int rc = mt_static_serve(h->s, c, &ka);
        char buf[2048];
        ssize_t n = recv(peer, buf, sizeof buf - 1, MSG_DONTWAIT);
        buf[n > 0 ? n : 0] = '\0';
        const char *body = strstr(buf, "\r\n\r\n");
        if (rc != 0 || !body || strcmp(body + 4, bodies[k]) != 0)
            h->errors++;
        close(peer);
        conn_free(c);
    }
    return NULL;
}

static void test_threads(void) {
    mt_static_t *s = mt_static_create();
    mt_static_mount(s, "/static/", root, 60);
    s->files->capacity = 4; /* entries are evicted while other threads send from them */
    s->files->ttl_ms = 0;
    enum { N = 4 };
    hammer_t h[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        h[i] = (hammer_t){.s = s, .id = i};
        pthread_create(&t[i], NULL, hammer_main, &h[i]);
    }
    int errors = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        errors += h[i].errors;
    }
    is_int(errors, 0, "%d threads x 400 requests through a 4-entry cache: all answered correctly", N);
    mt_static_destroy(s);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    pump_start(&server);
    make_tree();
    test_match_and_mount();
    st = mt_static_create();
    char dir[256];
    is_int(mt_static_mount(st, "/static/", root, 60), 0, "mount /static/");
    snprintf(dir, sizeof dir, "%s/extra", tmp);
    is_int(mt_static_mount(st, "/static/", dir, 60), 0, "mount a second root on /static/");
    snprintf(dir, sizeof dir, "%s/media", tmp);
    is_int(mt_static_mount(st, "/media/", dir, 0), 0, "mount /media/ with max-age 0");
    is_int(mt_static_mount(st, "/raw/", dir, -1), 0, "mount /raw/ without Cache-Control");
    test_basic();
    test_content_types();
    test_conditional();
    test_range();
    test_variants();
    test_cache_control();
    test_not_found();
    test_symlinks();
    test_methods_and_connection();
    test_mounts();
    test_changes();
    test_fd_leaks();
    test_compressed_copies();
    test_threads();
    is_int(heads_left, 0, "every answer marks the head consumed");
    mt_static_destroy(st);
    remove_tree();
    pump_stop(&server);
    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffer counters balance");
    is_int(atomic_load(&mt_counters.output_bytes_queued), atomic_load(&mt_counters.output_bytes_released),
           "output counters balance");
    return done_testing();
}
