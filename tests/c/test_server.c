/* Unit tests of src/core/loop/server.c: a real server on a loopback port, its I/O
 * thread, and two handler threads written in C that answer every request
 * with its own target as the body. Timeouts are a few hundred milliseconds;
 * the I/O thread checks deadlines every SWEEP_INTERVAL_MS, so waits allow for
 * two sweeps. */
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

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "tap.h"

#define HANDLERS 2
#define SLACK_MS (2 * SWEEP_INTERVAL_MS + 500)

/* The worker's metrics slot (metrics.h): the server counts its own answers and the bytes in it. */
static mt_metrics_slot_t metrics;

static const mt_server_config_t config = {
    .limits = {.max_request_line = 1024,
               .max_head_size = 4096,
               .max_headers = 32,
               .max_body_size = 1 << 16,
               .max_chunk_ext = 256},
    .head_timeout_ms = 150,
    .body_timeout_ms = 200,
    .keepalive_timeout_ms = 200,
    .write_timeout_ms = 1000,
    .output_high_water = 65536,
    .output_low_water = 16384,
    .linger_ms = 50,
    .max_connections = 64,
    .metrics = &metrics,
};

static mt_server_t server;
static int listen_fd;
static struct sockaddr_in server_addr;
static pthread_t handlers[HANDLERS];
static atomic_int handled;

static void sleep_ms(int ms) {
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* Answers one request: 200 with the target as the body. "/slow" waits a
 * little first, so a shutdown can catch it in flight. */
static bool answer(mt_server_t *s, mt_conn_t *c) {
    char target[256];
    snprintf(target, sizeof target, "%.*s", (int)c->req.target.len, c->rbuf.data + c->req.target.off);
    c->head_consumed = true;
    if (strcmp(target, "/slow") == 0)
        sleep_ms(150);
    bool keep_alive = c->req.keep_alive && !mt_server_draining(s);
    char head[256];
    int hlen = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n%s\r\n", strlen(target),
                        keep_alive ? "" : "Connection: close\r\n");
    struct iovec iov[2] = {{head, (size_t)hlen}, {target, strlen(target)}};
    if (mt_conn_writev(c, iov, 2) < 0)
        keep_alive = false;
    if (keep_alive && !c->req.message_complete && mt_conn_body_skip(c, 1 << 20) < 0)
        keep_alive = false;
    atomic_fetch_add(&handled, 1);
    return keep_alive;
}

/* ---- a toy protocol for the upgrade: echo, on the I/O thread ---- */

static atomic_int echo_closed;

static void echo_on_readable(mt_server_t *s, mt_conn_t *c) {
    if (c->rbuf.len) { /* what came with the upgrade request */
        struct iovec iov = {c->rbuf.data, c->rbuf.len};
        mt_conn_writev(c, &iov, 1);
        c->rbuf.len = 0;
    }
    char buf[8192];
    ssize_t n;
    while ((n = read(c->fd, buf, sizeof buf)) > 0) {
        struct iovec iov = {buf, (size_t)n};
        if (mt_conn_writev(c, &iov, 1) < 0) {
            mt_server_close(s, c);
            return;
        }
    }
    if (n == 0 || errno != EAGAIN) {
        mt_server_close(s, c);
        return;
    }
    mt_server_rearm_open(s, c);
}

static void echo_on_timeout(mt_server_t *s, mt_conn_t *c) {
    shutdown(c->fd, SHUT_RDWR);
}

static void echo_on_close(mt_server_t *s, mt_conn_t *c) {
    atomic_fetch_add(&echo_closed, 1);
}

static const mt_conn_ops_t echo_ops = {
    .name = "echo", .on_readable = echo_on_readable, .on_timeout = echo_on_timeout, .on_close = echo_on_close};

/* "/echo" is answered with 101 and handed to the echo protocol. */
static bool upgrade_echo(mt_server_t *s, mt_conn_t *c) {
    if (c->req.target.len != 5 || memcmp(c->rbuf.data + c->req.target.off, "/echo", 5) != 0)
        return false;
    c->head_consumed = true;
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n";
    struct iovec iov = {(void *)head, sizeof head - 1};
    mt_conn_writev(c, &iov, 1);
    atomic_fetch_add(&handled, 1);
    mt_server_upgrade(s, c, &echo_ops, NULL);
    return true;
}

static void *handler_main(void *arg) {
    mt_server_t *s = arg;
    mt_conn_t *c;
    while ((c = mt_server_next(s)) != NULL) {
        while (c) {
            if (upgrade_echo(s, c))
                break;
            bool keep_alive = answer(s, c);
            c = mt_server_finish(s, c, keep_alive);
        }
    }
    return NULL;
}

static int start_server(void) {
    listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    server_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof server_addr;
    if (bind(listen_fd, (struct sockaddr *)&server_addr, len) < 0 || listen(listen_fd, 128) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&server_addr, &len) < 0)
        return -errno;
    int rc = mt_server_init(&server, &config, &listen_fd, 1);
    if (rc == 0)
        rc = mt_server_start(&server);
    for (int i = 0; rc == 0 && i < HANDLERS; i++)
        rc = -pthread_create(&handlers[i], NULL, handler_main, &server);
    return rc;
}

/* ---- a small blocking client ---- */

typedef struct client {
    int fd;
    char buf[65536];
    size_t len;
} client_t;

static int client_open(client_t *cl) {
    cl->len = 0;
    cl->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {2, 0}; /* no read waits longer than this */
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return connect(cl->fd, (struct sockaddr *)&server_addr, sizeof server_addr);
}

static void client_send(client_t *cl, const char *data, size_t n) {
    while (n > 0) {
        ssize_t w = write(cl->fd, data, n);
        if (w <= 0)
            return;
        data += w;
        n -= (size_t)w;
    }
}

#define SEND(cl, lit) client_send((cl), (lit), sizeof(lit) - 1)

/* Reads one response: fills status, whether it said "Connection: close" and
 * its body (framed by Content-Length). Returns 0, or -1 on EOF/timeout. */
static int client_response(client_t *cl, int *status, int *close_, char *body, size_t cap) {
    for (;;) {
        char *end = memmem(cl->buf, cl->len, "\r\n\r\n", 4);
        if (end) {
            size_t hlen = (size_t)(end + 4 - cl->buf);
            cl->buf[hlen - 1] = '\0';
            *status = 0;
            sscanf(cl->buf, "HTTP/1.1 %d", status);
            *close_ = strstr(cl->buf, "\r\nConnection: close\r") != NULL;
            char *clh = strstr(cl->buf, "\r\nContent-Length: ");
            size_t blen = clh ? strtoul(clh + 18, NULL, 10) : 0;
            cl->buf[hlen - 1] = '\n';
            while (cl->len < hlen + blen) {
                ssize_t n = read(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len);
                if (n <= 0)
                    return -1;
                cl->len += (size_t)n;
            }
            size_t copy = MT_MIN(blen, cap - 1);
            memcpy(body, cl->buf + hlen, copy);
            body[copy] = '\0';
            memmove(cl->buf, cl->buf + hlen + blen, cl->len - hlen - blen);
            cl->len -= hlen + blen;
            return 0;
        }
        ssize_t n = read(cl->fd, cl->buf + cl->len, sizeof cl->buf - cl->len);
        if (n <= 0)
            return -1;
        cl->len += (size_t)n;
    }
}

/* Waits for the server to close: returns the bytes that came first (or -1 if
 * the connection stayed open past the receive timeout). */
static ssize_t client_wait_eof(client_t *cl) {
    size_t extra = cl->len;
    for (;;) {
        ssize_t n = read(cl->fd, cl->buf, sizeof cl->buf);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return (ssize_t)extra;
        if (n < 0)
            return -1;
        extra += (size_t)n;
    }
}

static void client_close(client_t *cl) {
    close(cl->fd);
}

/* ---- tests ---- */

/* Reads exactly n bytes (or fails). */
static int client_read_exact(client_t *cl, char *out, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(cl->fd, out + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static void test_upgrade(void) {
    client_t cl;
    is_int(client_open(&cl), 0, "connected");
    /* The first bytes of the new protocol come in the same packet as the request. */
    SEND(&cl, "GET /echo HTTP/1.1\r\nHost: a\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello");
    static const char want[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhello";
    char got[sizeof want];
    ok(client_read_exact(&cl, got, sizeof want - 1) == 0 && memcmp(got, want, sizeof want - 1) == 0,
       "101, then the bytes that came with the request, echoed by the new protocol");
    SEND(&cl, "world");
    ok(client_read_exact(&cl, got, 5) == 0 && memcmp(got, "world", 5) == 0, "later bytes echoed");
    /* More than the socket buffers hold while the client is not reading:
     * the echo queues it, and it all comes back in order. */
    enum { BIG = 1 << 20 };
    char *big = malloc(BIG), *back = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)('a' + i % 23);
    pthread_t t;
    struct sender {
        int fd;
        char *data;
    } snd = {cl.fd, big};
    void *send_all(void *arg);
    pthread_create(&t, NULL, send_all, &snd);
    ok(client_read_exact(&cl, back, BIG) == 0 && memcmp(back, big, BIG) == 0, "1 MiB echoed whole and in order");
    pthread_join(t, NULL);
    client_close(&cl);
    for (int i = 0; i < 100 && atomic_load(&echo_closed) == 0; i++)
        sleep_ms(10);
    is_int(atomic_load(&echo_closed), 1, "the protocol's on_close ran when the client closed");
    free(big);
    free(back);
}

void *send_all(void *arg) {
    struct sender {
        int fd;
        char *data;
    } *snd = arg;
    size_t done = 0;
    while (done < (1 << 20)) {
        ssize_t w = write(snd->fd, snd->data + done, (1 << 20) - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    return NULL;
}

static void test_keep_alive(void) {
    client_t cl;
    ok(client_open(&cl) == 0, "connected");
    int all = 1;
    for (int i = 0; i < 3; i++) {
        char req[128], body[256], want[32];
        int n = snprintf(req, sizeof req, "GET /ka%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
        client_send(&cl, req, (size_t)n);
        int status, closing;
        snprintf(want, sizeof want, "/ka%d", i);
        all &= client_response(&cl, &status, &closing, body, sizeof body) == 0 && status == 200 && !closing &&
               strcmp(body, want) == 0;
        if (i == 1)
            sleep_ms(50); /* an idle pause shorter than the keep-alive timeout */
    }
    ok(all, "three requests answered one after the other on one connection");
    SEND(&cl, "POST /body HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    char body[256];
    int status, closing;
    ok(client_response(&cl, &status, &closing, body, sizeof body) == 0 && strcmp(body, "/body") == 0,
       "a request with a body on the same connection");
    SEND(&cl, "GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    ok(client_response(&cl, &status, &closing, body, sizeof body) == 0 && closing && strcmp(body, "/last") == 0,
       "Connection: close is honoured");
    is_int(client_wait_eof(&cl), 0, "then the server closes, with nothing more");
    client_close(&cl);
}

static void test_pipelining(void) {
    client_t cl;
    client_open(&cl);
    char all[8192];
    size_t len = 0;
    for (int i = 0; i < 30; i++)
        len += (size_t)snprintf(all + len, sizeof all - len,
                                i % 3 == 1   ? "POST /p%d HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                                : i % 3 == 2 ? "POST /p%d HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                                               "2\r\nab\r\n0\r\n\r\n"
                                             : "GET /p%d HTTP/1.1\r\nHost: a\r\n\r\n",
                                i);
    client_send(&cl, all, len);
    int in_order = 0;
    for (int i = 0; i < 30; i++) {
        char body[64], want[16];
        int status, closing;
        snprintf(want, sizeof want, "/p%d", i);
        if (client_response(&cl, &status, &closing, body, sizeof body) == 0 && status == 200 && !strcmp(body, want))
            in_order++;
    }
    is_int(in_order, 30, "30 pipelined requests answered in order");

    /* A good request, then a bad one in the same segment. */
    SEND(&cl, "GET /good HTTP/1.1\r\nHost: a\r\n\r\nGET /bad HTTP/9.9\r\nHost: a\r\n\r\n");
    char body[256];
    int status, closing;
    ok(client_response(&cl, &status, &closing, body, sizeof body) == 0 && status == 200 && !strcmp(body, "/good"),
       "the request before a bad pipelined one is answered");
    int rc = client_response(&cl, &status, &closing, body, sizeof body);
    ok(rc == 0 && (status == 505 || status == 400) && closing, "the bad one gets its error with Connection: close (%d)",
       status);
    is_int(client_wait_eof(&cl), 0, "then the connection closes");
    client_close(&cl);

    /* A head arriving a byte at a time (well within the head timeout). */
    client_open(&cl);
    static const char slow[] = "GET /trickle HTTP/1.1\r\nHost: a\r\n\r\n";
    for (size_t i = 0; i < sizeof slow - 1; i++) {
        client_send(&cl, slow + i, 1);
        sleep_ms(1);
    }
    ok(client_response(&cl, &status, &closing, body, sizeof body) == 0 && !strcmp(body, "/trickle"),
       "a head split at every byte is reassembled");
    client_close(&cl);
}

static uint64_t server_answers(int status_class) {
    return mt_metrics_get(&metrics.routes[MT_METRICS_ROUTE_SERVER].status[status_class]);
}

static void test_errors(void) {
    long started = atomic_load(&mt_counters.requests_started);
    uint64_t answers_before = server_answers(4) + server_answers(5);
    uint64_t in_before = mt_metrics_get(&metrics.bytes_in), out_before = mt_metrics_get(&metrics.bytes_out);
    size_t sent = 0;
    static const struct {
        const char *req;
        int status, alt;
        const char *what;
    } cases[] = {
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505, 400, "HTTP/2.0"},
        {"GET / HTTP/1.1\r\n\r\n", 400, 0, "missing Host"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400, 0, "CL + TE"},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", 413, 0, "body over the limit"},
        {"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501, 405, "CONNECT"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        client_t cl;
        client_open(&cl);
        client_send(&cl, cases[i].req, strlen(cases[i].req));
        sent += strlen(cases[i].req);
        char body[256];
        int status = 0, closing = 0;
        int rc = client_response(&cl, &status, &closing, body, sizeof body);
        ok(rc == 0 && (status == cases[i].status || status == cases[i].alt) && closing,
           "%s: answered %d by the I/O thread, Connection: close", cases[i].what, status);
        is_int(client_wait_eof(&cl), 0, "%s: then closed", cases[i].what);
        client_close(&cl);
    }
    is_int(atomic_load(&mt_counters.requests_started) - started, 0, "no bad request reached a handler");
    is_int(server_answers(4) + server_answers(5) - answers_before, MT_ARRAY_SIZE(cases),
           "each error answer is counted once, under the server's own route");
    ok(mt_metrics_get(&metrics.bytes_in) - in_before >= sent, "every byte the clients sent was counted in");
    ok(mt_metrics_get(&metrics.bytes_out) - out_before > 0, "the answers were counted out");

    /* A head larger than the limit, sent in one go. */
    client_t cl;
    client_open(&cl);
    static char big[8192];
    size_t n = (size_t)snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nX-Big: ");
    memset(big + n, 'x', 6000);
    n += 6000;
    memcpy(big + n, "\r\n\r\n", 4);
    client_send(&cl, big, n + 4);
    char body[256];
    int status = 0, closing = 0;
    int rc = client_response(&cl, &status, &closing, body, sizeof body);
    ok(rc == 0 && status == 431 && closing, "a head over max_head_size: 431 (%d)", status);
    client_close(&cl);
}

static void test_timeouts(void) {
    client_t cl;
    client_open(&cl);
    SEND(&cl, "GET / HTTP/1.1\r\nHost:");
    int64_t t0 = mt_clock_now_ms();
    char body[256];
    int status = 0, closing = 0;
    int rc = client_response(&cl, &status, &closing, body, sizeof body);
    int64_t elapsed = mt_clock_now_ms() - t0;
    ok(rc == 0 && status == 408 && closing, "a head that stops arriving: 408 with Connection: close (%d)", status);
    ok(elapsed >= config.head_timeout_ms && elapsed < config.head_timeout_ms + SLACK_MS,
       "at the head timeout (%lld ms)", (long long)elapsed);
    is_int(client_wait_eof(&cl), 0, "then closed");
    client_close(&cl);

    /* Slowloris: bytes keep coming, but the head never ends in time. */
    client_open(&cl);
    t0 = mt_clock_now_ms();
    SEND(&cl, "GET / HTTP/1.1\r\n");
    rc = -1;
    for (int i = 0; i < 100 && mt_clock_now_ms() - t0 < config.head_timeout_ms + SLACK_MS; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "X-%d: v\r\n", i);
        if (send(cl.fd, line, (size_t)n, MSG_NOSIGNAL) < 0)
            break;
        sleep_ms(20);
        if (recv(cl.fd, cl.buf, sizeof cl.buf, MSG_DONTWAIT | MSG_PEEK) > 0) {
            rc = client_response(&cl, &status, &closing, body, sizeof body);
            break;
        }
    }
    elapsed = mt_clock_now_ms() - t0;
    ok(rc == 0 && status == 408, "a trickling head is cut at the head timeout, not extended by each byte (%d, %lld ms)",
       status, (long long)elapsed);
    client_close(&cl);

    /* A connection that never says anything is closed silently. */
    client_open(&cl);
    t0 = mt_clock_now_ms();
    ssize_t extra = client_wait_eof(&cl);
    elapsed = mt_clock_now_ms() - t0;
    ok(extra == 0 && elapsed < config.head_timeout_ms + SLACK_MS, "a silent connection is closed (%zd, %lld ms)", extra,
       (long long)elapsed);
    client_close(&cl);

    /* Idle keep-alive: closed after the keep-alive timeout. */
    client_open(&cl);
    SEND(&cl, "GET /idle HTTP/1.1\r\nHost: a\r\n\r\n");
    ok(client_response(&cl, &status, &closing, body, sizeof body) == 0 && !closing, "answered, kept alive");
    t0 = mt_clock_now_ms();
    extra = client_wait_eof(&cl);
    elapsed = mt_clock_now_ms() - t0;
    ok(extra == 0 && elapsed >= config.keepalive_timeout_ms - 10 && elapsed < config.keepalive_timeout_ms + SLACK_MS,
       "an idle keep-alive connection is closed after the keep-alive timeout (%zd, %lld ms)", extra,
       (long long)elapsed);
    client_close(&cl);

    /* A body that stops arriving: the handler's read times out and the
     * connection is closed without a second answer. */
    client_open(&cl);
    SEND(&cl, "POST /stall HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
    ok(client_response(&cl, &status, &closing, body, sizeof body) == 0 && !strcmp(body, "/stall"),
       "answered before the body arrived");
    extra = client_wait_eof(&cl);
    ok(extra == 0, "the unfinished body makes the server close (body timeout in body_skip)");
    client_close(&cl);
}

static void test_shutdown(void) {
    client_t idle, busy;
    client_open(&idle);
    SEND(&idle, "GET /before HTTP/1.1\r\nHost: a\r\n\r\n");
    char body[256];
    int status, closing;
    ok(client_response(&idle, &status, &closing, body, sizeof body) == 0, "an idle keep-alive connection");
    client_open(&busy);
    SEND(&busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n");
    sleep_ms(30); /* the handler has it */
    mt_server_shutdown(&server);
    mt_server_shutdown(&server); /* idempotent */
    ok(mt_server_draining(&server), "draining after shutdown");
    int rc = client_response(&busy, &status, &closing, body, sizeof body);
    ok(rc == 0 && status == 200 && !strcmp(body, "/slow") && closing,
       "the request in flight is answered, with Connection: close");
    is_int(client_wait_eof(&busy), 0, "then its connection is closed");
    is_int(client_wait_eof(&idle), 0, "the idle connection is closed");
    client_close(&busy);
    client_close(&idle);
    int64_t t0 = mt_clock_now_ms();
    is_int(mt_server_join(&server, 3000), 0, "the I/O thread exits");
    diag("join took %lld ms", (long long)(mt_clock_now_ms() - t0));
    ok(atomic_load(&server.io_done), "io_done is set");
    int joined = 1;
    for (int i = 0; i < HANDLERS; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 2;
        joined &= pthread_timedjoin_np(handlers[i], NULL, &ts) == 0;
    }
    ok(joined, "handler threads see mt_server_next return NULL and exit");
    ok(server.nconns == 0, "no connection left open");
    mt_server_dispose(&server);
    close(listen_fd);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    int rc = start_server();
    is_int(rc, 0, "server started on 127.0.0.1:%d", ntohs(server_addr.sin_port));
    test_keep_alive();
    test_pipelining();
    test_errors();
    test_timeouts();
    test_upgrade();
    test_shutdown();
    diag("%d requests handled", atomic_load(&handled));
    is_int(mt_metrics_get(&metrics.connections_accepted), atomic_load(&mt_counters.connections_opened),
           "the metrics counted every accepted connection");
    is_int(mt_metrics_get(&metrics.connections), 0, "the connections gauge is 0 once the server stopped");
    is_int(mt_metrics_get(&metrics.in_flight) + mt_metrics_get(&metrics.queued), 0, "so are in-flight and queued");
    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.connections_opened), atomic_load(&mt_counters.connections_closed),
           "connections_opened == connections_closed (%ld)", atomic_load(&mt_counters.connections_opened));
    is_int(atomic_load(&mt_counters.requests_started), atomic_load(&mt_counters.requests_finished),
           "requests_started == requests_finished (%ld)", atomic_load(&mt_counters.requests_started));
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffers_acquired == buffers_released (%ld)", atomic_load(&mt_counters.buffers_acquired));
    is_int(atomic_load(&mt_counters.output_bytes_queued), atomic_load(&mt_counters.output_bytes_released),
           "output_bytes_queued == output_bytes_released (%ld)", atomic_load(&mt_counters.output_bytes_queued));
    return done_testing();
}
