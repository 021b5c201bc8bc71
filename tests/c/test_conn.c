/* Unit tests of src/core/loop/conn.c: the blocking body reads and response writes
 * of a handler thread, over a socketpair. The peer (the "client") is played
 * by helper threads that write in pieces, read slowly or not at all. Every
 * wait is bounded by the small timeouts set in the server config. */
#include "buf.c"
#include "clock.c"
#include "http1.c"
#include "output.c"
#include "conn.c"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "server_limits.h"
#include "tap.h"
#include "pump.h"

/* conn.c only reads c->server->config; no I/O thread is needed. */
static mt_server_t server = {
    .config =
        {
            MT_TEST_LIMITS,
            .head_timeout_ms = 200,
            .body_timeout_ms = 300,
            .keepalive_timeout_ms = 200,
            .linger_ms = 50,
            .max_connections = 16,
        },
};

static void sleep_ms(int ms) {
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* A connection as the I/O thread would hand it over, on one end of a
 * socketpair; *peer is the client's end (blocking). */
static mt_conn_t *conn_new(int *peer, int sndbuf) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        abort();
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    if (sndbuf) {
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof sndbuf);
    }
    /* A bounded wait for the client's own reads. */
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
    if (c->fd >= 0)
        close(c->fd);
    mt_conn_dispose(c);
    free(c);
}

/* What the I/O thread does before the hand-off: the bytes that came with the
 * head are parsed (body bytes included); then the handler consumed the head. */
static int take_head_n(mt_conn_t *c, const char *data, size_t n) {
    mt_buf_append(&c->rbuf, data, n);
    size_t stop;
    int r = mt_http1_parse(&c->req, c->rbuf.data, c->rpos, c->rbuf.len, &stop);
    c->rpos = stop;
    c->head_consumed = true;
    int complete = r == MT_PARSE_ERROR ? -1 : c->req.head_complete;
    if (complete != 1)
        ok(0, "test setup: the head parses (%d %s)", c->req.error_status, c->req.error_reason);
    return complete;
}

#define take_head(c, text) take_head_n((c), (text), strlen(text))

/* Reads the whole body the way wsgi.input does; returns its length, or the
 * negative result of the failing fill. */
static ssize_t read_body(mt_conn_t *c, char *out, size_t cap, size_t want) {
    size_t got = 0;
    for (;;) {
        ssize_t n = mt_conn_body_fill(c, want);
        if (n <= 0)
            return n < 0 ? n : (ssize_t)got;
        if (got + (size_t)n <= cap)
            memcpy(out + got, c->body.data + c->body_pos, (size_t)n);
        got += (size_t)n;
        mt_conn_body_consume(c, (size_t)n);
    }
}

/* ---- client helpers ---- */

typedef struct feeder {
    int fd;
    const char *data;
    size_t len;
    size_t piece;
    int delay_ms;
    int close_after; /* 1: close the socket after writing */
} feeder_t;

static void *feed(void *arg) {
    feeder_t *f = arg;
    for (size_t off = 0; off < f->len;) {
        size_t n = MT_MIN(f->piece, f->len - off);
        ssize_t w = write(f->fd, f->data + off, n);
        if (w <= 0)
            break; /* the server side gave up: fine for the tests that make it */
        off += (size_t)w;
        if (f->delay_ms)
            sleep_ms(f->delay_ms);
        else
            sched_yield();
    }
    if (f->close_after)
        close(f->fd);
    return NULL;
}

typedef struct reader {
    int fd;
    char *data;
    size_t cap, len;
    size_t chunk;
    int every_kb_sleep_ms;
} reader_t;

static void *slow_read(void *arg) {
    reader_t *r = arg;
    size_t since_sleep = 0;
    for (;;) {
        ssize_t n = read(r->fd, r->data + r->len, MT_MIN(r->chunk, r->cap - r->len));
        if (n <= 0)
            break;
        r->len += (size_t)n;
        since_sleep += (size_t)n;
        if (since_sleep >= 8192) {
            since_sleep = 0;
            sleep_ms(r->every_kb_sleep_ms);
        }
        if (r->len == r->cap)
            break;
    }
    return NULL;
}

/* Whatever the client can read right now, without waiting. */
static size_t drain_now(int fd, char *buf, size_t cap) {
    size_t got = 0;
    ssize_t n;
    while (got < cap && (n = recv(fd, buf + got, cap - got, MSG_DONTWAIT)) > 0)
        got += (size_t)n;
    return got;
}

static void pattern(char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + seed + i / 251) % 26);
}

/* ---- writes ---- */

static void test_writev_partial(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 4096);
    enum { NIOV = 3000 };
    static struct iovec iov[NIOV];
    static char data[NIOV * 173];
    size_t total = 0;
    for (int i = 0; i < NIOV; i++) {
        size_t n = (size_t)(i * 37 % 173); /* includes empty iovecs */
        iov[i].iov_base = data + total;
        iov[i].iov_len = n;
        total += n;
    }
    pattern(data, total, 3);
    reader_t r = {.fd = peer, .data = malloc(total), .cap = total, .chunk = 997, .every_kb_sleep_ms = 1};
    pthread_t t;
    pthread_create(&t, NULL, slow_read, &r);
    int rc = mt_conn_writev(c, iov, NIOV);
    pthread_join(t, NULL);
    is_int(rc, 0, "writev of %d iovecs (> IOV_MAX) through a small socket buffer", NIOV);
    is_int(r.len, total, "the peer got all %zu bytes", total);
    ok(r.len == total && memcmp(r.data, data, total) == 0, "in order, none repeated or skipped");
    free(r.data);
    close(peer);
    conn_free(c);
}

static void test_write_timeout(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 4096);
    int saved = server.config.write_timeout_ms;
    server.config.write_timeout_ms = 50;
    size_t n = 4 << 20;
    char *big = calloc(1, n);
    struct iovec iov = {big, n};
    int64_t t0 = mt_clock_now_ms();
    int rc = mt_conn_writev(c, &iov, 1);
    int64_t elapsed = mt_clock_now_ms() - t0;
    is_int(rc, -ETIMEDOUT, "a peer that never reads: -ETIMEDOUT");
    ok(elapsed >= 50 && elapsed < 1500, "after about write_timeout_ms (%lld ms)", (long long)elapsed);
    server.config.write_timeout_ms = saved;
    free(big);
    close(peer);
    conn_free(c);

    c = conn_new(&peer, 0);
    close(peer);
    struct iovec small = {"HTTP/1.1 200 OK\r\n\r\n", 19};
    is_int(mt_conn_writev(c, &small, 1), -EPIPE, "a peer that went away: -EPIPE");
    conn_free(c);
}

static void test_sendfile(void) {
    char path[] = "/tmp/meltemi-test-sendfile-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    size_t n = 200000;
    char *data = malloc(n);
    pattern(data, n, 11);
    ok(write(fd, data, n) == (ssize_t)n, "temp file written");
    int peer;
    mt_conn_t *c = conn_new(&peer, 4096);
    reader_t r = {.fd = peer, .data = malloc(n), .cap = n - 1000, .chunk = 4096, .every_kb_sleep_ms = 1};
    pthread_t t;
    pthread_create(&t, NULL, slow_read, &r);
    off_t off = 1000;
    int rc = mt_conn_sendfile(c, fd, &off, n - 1000);
    pthread_join(t, NULL);
    is_int(rc, 0, "sendfile through a small socket buffer");
    is_int(off, (off_t)n, "offset advanced to the end");
    ok(r.len == n - 1000 && memcmp(r.data, data + 1000, n - 1000) == 0, "the peer got the file from the offset");
    off = (off_t)n - 10;
    pthread_create(&t, NULL, slow_read, &(reader_t){.fd = peer, .data = r.data, .cap = 10, .chunk = 10});
    is_int(mt_conn_sendfile(c, fd, &off, 100), -ENODATA, "a file shorter than announced: -ENODATA");
    pthread_join(t, NULL);
    free(r.data);
    free(data);
    close(fd);
    close(peer);
    conn_free(c);
}

/* A file range to a client that does not read: the producer does not wait,
 * and the range costs no memory (it is queued as a file, not as bytes). */
static void test_sendfile_queued(void) {
    char path[] = "/tmp/meltemi-test-sendfile-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    size_t n = 4 << 20;
    char *data = malloc(n);
    pattern(data, n, 5);
    ok(write(fd, data, n) == (ssize_t)n, "4 MiB temp file written");
    int peer;
    mt_conn_t *c = conn_new(&peer, 4096);
    off_t off = 0;
    int64_t t0 = mt_clock_now_ms();
    int rc = mt_conn_sendfile(c, fd, &off, n);
    int64_t elapsed = mt_clock_now_ms() - t0;
    is_int(rc, 0, "sendfile to a client that does not read yet: 0");
    ok(elapsed < 500, "returned at once (%lld ms): the producer never waits for the client", (long long)elapsed);
    is_int(off, (off_t)n, "the offset is past the whole range");
    pthread_mutex_lock(&c->out_lock);
    ok(c->out.pending > 0 && c->out.memory == 0, "the rest is queued as a file range (%zu bytes, %zu in memory)",
       c->out.pending, c->out.memory);
    pthread_mutex_unlock(&c->out_lock);
    close(fd); /* the queue keeps its own descriptor */
    reader_t r = {.fd = peer, .data = malloc(n), .cap = n, .chunk = 65536};
    pthread_t t;
    pthread_create(&t, NULL, slow_read, &r);
    pthread_join(t, NULL);
    ok(r.len == n && memcmp(r.data, data, n) == 0, "the client got the whole file, after its owner closed it");
    is_int(mt_conn_drain(c), 0, "drained");
    free(r.data);
    free(data);
    close(peer);
    conn_free(c);
}

/* A producer faster than its client: the queue never holds much more than
 * the high-water mark, and the bytes arrive whole and in order. */
static void test_backpressure(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 4096);
    size_t n = 2 << 20, piece = 10000;
    char *data = malloc(n);
    pattern(data, n, 9);
    reader_t r = {.fd = peer, .data = malloc(n), .cap = n, .chunk = 4096, .every_kb_sleep_ms = 1};
    pthread_t t;
    pthread_create(&t, NULL, slow_read, &r);
    size_t most = 0;
    int rc = 0;
    for (size_t done = 0; done < n && rc == 0; done += piece) {
        struct iovec iov = {data + done, MT_MIN(piece, n - done)};
        rc = mt_conn_writev(c, &iov, 1);
        pthread_mutex_lock(&c->out_lock);
        most = MT_MAX(most, c->out.memory);
        pthread_mutex_unlock(&c->out_lock);
    }
    is_int(rc, 0, "2 MiB in 10 kB writes to a slow client");
    ok(most <= server.config.output_high_water, "at most the high-water mark queued in memory (%zu <= %zu)", most,
       server.config.output_high_water);
    ok(most > 0, "the slow client made the producer queue (%zu bytes at most)", most);
    pthread_join(t, NULL);
    ok(r.len == n && memcmp(r.data, data, n) == 0, "the client got every byte in order");
    free(r.data);
    free(data);
    close(peer);
    conn_free(c);
}

/* An event-loop producer (the ASGI loop): its writes never wait; it asks
 * mt_conn_output_full and gets the server's on_drained call once the queue
 * is back under the low mark (here from the pump, as from the I/O thread). */
static atomic_int drained_calls;
static mt_conn_t *_Atomic drained_conn;

static void note_drained(void *ctx, mt_conn_t *c) {
    (void)ctx;
    atomic_store(&drained_conn, c);
    atomic_fetch_add(&drained_calls, 1);
}

static void test_event_loop_producer(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 4096);
    server.config.on_drained = note_drained;
    mt_conn_never_wait = true;
    size_t n = 1 << 20;
    char *data = malloc(n);
    pattern(data, n, 11);
    struct iovec iov = {data, n};
    int64_t t0 = mt_clock_now_ms();
    is_int(mt_conn_writev(c, &iov, 1), 0, "1 MiB to a client that does not read");
    ok(mt_clock_now_ms() - t0 < 200, "the write did not wait");
    ok(mt_conn_output_full(c), "the queue is over the high-water mark");
    is_int(atomic_load(&drained_calls), 0, "no drained call yet");
    reader_t r = {.fd = peer, .data = malloc(n), .cap = n, .chunk = 65536};
    pthread_t t;
    pthread_create(&t, NULL, slow_read, &r);
    for (int i = 0; i < 200 && atomic_load(&drained_calls) == 0; i++)
        sleep_ms(10);
    is_int(atomic_load(&drained_calls), 1, "one drained call once the client reads");
    ok(atomic_load(&drained_conn) == c, "for that connection");
    pthread_join(t, NULL);
    ok(r.len == n && memcmp(r.data, data, n) == 0, "the client got every byte");
    ok(!mt_conn_output_full(c), "no longer full");
    mt_conn_fail(c, -ETIMEDOUT);
    ok(mt_conn_writev(c, &iov, 1) == -ETIMEDOUT, "mt_conn_fail fails later writes");
    mt_conn_never_wait = false;
    server.config.on_drained = NULL;
    free(r.data);
    free(data);
    close(peer);
    conn_free(c);
}

/* ---- bodies ---- */

static void test_body_content_length(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 0);
    enum { LEN = 100000 };
    static char body[LEN], got[LEN];
    pattern(body, LEN, 5);
    char head[256];
    int hlen = snprintf(head, sizeof head, "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", LEN);
    static char first[512];
    memcpy(first, head, (size_t)hlen);
    memcpy(first + hlen, body, 10); /* some body bytes came with the head */
    is_int(take_head_n(c, first, (size_t)hlen + 10), 1, "head complete");
    /* The rest in odd pieces, then the start of a pipelined request. */
    static char rest[LEN + 64];
    memcpy(rest, body + 10, LEN - 10);
    memcpy(rest + LEN - 10, "GET /next HTTP/1.1\r\n", 20);
    feeder_t f = {.fd = peer, .data = rest, .len = LEN - 10 + 20, .piece = 3333, .delay_ms = 1};
    pthread_t t;
    pthread_create(&t, NULL, feed, &f);
    size_t max_rbuf = 0, max_body = 0, total = 0;
    ssize_t n;
    while ((n = mt_conn_body_fill(c, 4096)) > 0) {
        memcpy(got + total, c->body.data + c->body_pos, (size_t)n);
        total += (size_t)n;
        mt_conn_body_consume(c, (size_t)n);
        max_rbuf = MT_MAX(max_rbuf, c->rbuf.cap);
        max_body = MT_MAX(max_body, c->body.cap);
    }
    pthread_join(t, NULL);
    is_int(n, 0, "fill returns 0 at the end of the body");
    is_int(total, LEN, "all %d body bytes read", LEN);
    ok(total == LEN && memcmp(got, body, LEN) == 0, "body bytes intact and in order");
    ok(c->req.message_complete, "message complete");
    ok(max_rbuf <= 2 * MT_BUF_BLOCK && max_body <= 4 * MT_BUF_BLOCK,
       "buffers stay bounded while streaming (rbuf %zu, body %zu)", max_rbuf, max_body);
    /* Whatever arrived after the body is kept for the next request. */
    size_t tail = c->rbuf.len - c->rpos;
    ok(tail <= 20 && memcmp(c->rbuf.data + c->rpos, "GET /next HTTP/1.1\r\n", tail) == 0,
       "bytes after the body stay in rbuf for the next request (%zu)", tail);
    is_int(mt_conn_body_fill(c, 100), 0, "fill after the end keeps returning 0");
    close(peer);
    conn_free(c);

    /* No body at all. */
    c = conn_new(&peer, 0);
    take_head(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    is_int(mt_conn_body_fill(c, 10), 0, "a GET has an empty body: 0 at once");
    close(peer);
    conn_free(c);
}

/* A chunked encoding of data[0, n) with uneven chunks, extensions and a trailer. */
static size_t chunk_encode(char *out, const char *data, size_t n) {
    size_t o = 0, i = 0, k = 0;
    while (i < n) {
        size_t len = MT_MIN(n - i, 1 + (k * 131) % 700);
        o += (size_t)sprintf(out + o, k % 3 ? "%zx\r\n" : "%zX;ext=%zu\r\n", len, k);
        memcpy(out + o, data + i, len);
        o += len;
        out[o++] = '\r';
        out[o++] = '\n';
        i += len;
        k++;
    }
    o += (size_t)sprintf(out + o, "0\r\nX-Checksum: 1\r\n\r\n");
    return o;
}

static void test_body_chunked(void) {
    static const size_t sizes[] = {20000, 600};
    static const size_t pieces[] = {7, 1};
    for (int round = 0; round < 2; round++) {
        int peer;
        mt_conn_t *c = conn_new(&peer, 0);
        size_t len = sizes[round];
        char *body = malloc(len), *got = malloc(len), *enc = malloc(2 * len + 4096);
        pattern(body, len, 9);
        size_t elen = chunk_encode(enc, body, len);
        static const char head[] = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
        is_int(take_head(c, head), 1, "chunked head complete");
        feeder_t f = {.fd = peer, .data = enc, .len = elen, .piece = pieces[round], .delay_ms = 0};
        pthread_t t;
        pthread_create(&t, NULL, feed, &f);
        ssize_t total = read_body(c, got, len, 1000);
        pthread_join(t, NULL);
        is_int(total, (ssize_t)len, "chunked body of %zu bytes arriving in %zu-byte pieces", len, pieces[round]);
        ok(total == (ssize_t)len && memcmp(got, body, len) == 0, "decoded bytes intact");
        ok(c->req.message_complete && c->rpos == c->rbuf.len, "trailers consumed, message complete");
        free(body);
        free(got);
        free(enc);
        close(peer);
        conn_free(c);
    }
}

static void test_body_errors(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 0);
    int saved = server.config.body_timeout_ms;
    server.config.body_timeout_ms = 50;
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789");
    int64_t t0 = mt_clock_now_ms();
    char got[100];
    ssize_t n = read_body(c, got, sizeof got, 100);
    int64_t elapsed = mt_clock_now_ms() - t0;
    is_int(n, -ETIMEDOUT, "a body that stops arriving: -ETIMEDOUT");
    ok(elapsed >= 50 && elapsed < 1000, "after about body_timeout_ms (%lld ms)", (long long)elapsed);
    server.config.body_timeout_ms = saved;
    close(peer);
    conn_free(c);

    c = conn_new(&peer, 0);
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n");
    feeder_t f = {.fd = peer, .data = "only twenty bytes...", .len = 20, .piece = 7, .delay_ms = 1, .close_after = 1};
    pthread_t t;
    pthread_create(&t, NULL, feed, &f);
    n = read_body(c, got, sizeof got, 100);
    pthread_join(t, NULL);
    is_int(n, -MT_ECLOSED, "the peer closing mid-body: -MT_ECLOSED");
    ok(!c->req.message_complete, "and the message is not complete");
    conn_free(c);

    c = conn_new(&peer, 0);
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    f = (feeder_t){.fd = peer, .data = "5\r\nhel", .len = 6, .piece = 6, .close_after = 1};
    pthread_create(&t, NULL, feed, &f);
    n = read_body(c, got, sizeof got, 100);
    pthread_join(t, NULL);
    is_int(n, -MT_ECLOSED, "a chunked body cut short: -MT_ECLOSED");
    conn_free(c);

    c = conn_new(&peer, 0);
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    f = (feeder_t){.fd = peer, .data = "5\r\nhelloXX\r\n0\r\n\r\n", .len = 17, .piece = 3};
    pthread_create(&t, NULL, feed, &f);
    n = read_body(c, got, sizeof got, 100);
    pthread_join(t, NULL);
    ok(n == -MT_EPROTO && c->req.error_status == 400, "chunk data not followed by CRLF: -MT_EPROTO, 400 (%zd, %d)", n,
       c->req.error_status);
    close(peer);
    conn_free(c);

    /* Past max_body_size in a chunked body: 413, found while streaming. */
    c = conn_new(&peer, 0);
    uint64_t saved_max = server.config.limits.max_body_size;
    server.config.limits.max_body_size = 5000;
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    static char enc[30000], plain[12000];
    pattern(plain, sizeof plain, 1);
    size_t elen = chunk_encode(enc, plain, sizeof plain);
    f = (feeder_t){.fd = peer, .data = enc, .len = elen, .piece = 1000};
    pthread_create(&t, NULL, feed, &f);
    static char big[12000];
    n = read_body(c, big, sizeof big, 4096);
    close(c->fd); /* unblocks the feeder */
    c->fd = -1;
    pthread_join(t, NULL);
    ok(n == -MT_EPROTO && c->req.error_status == 413, "chunked body past max_body_size: -MT_EPROTO, 413 (%zd, %d)", n,
       c->req.error_status);
    server.config.limits.max_body_size = saved_max;
    close(peer);
    conn_free(c);
}

typedef struct continue_client {
    int fd;
    char seen[256];
    size_t seen_len;
} continue_client_t;

/* Waits for the interim response, then sends the body in two pieces. */
static void *continue_client(void *arg) {
    continue_client_t *cc = arg;
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    while (cc->seen_len < sizeof line - 1) {
        ssize_t n = read(cc->fd, cc->seen + cc->seen_len, sizeof line - 1 - cc->seen_len);
        if (n <= 0)
            return NULL;
        cc->seen_len += (size_t)n;
    }
    ssize_t w = write(cc->fd, "hel", 3);
    sleep_ms(5);
    w = write(cc->fd, "lo", 2);
    (void)w;
    return NULL;
}

static void test_expect_continue(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 0);
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    ok(c->req.expect_continue, "the request expects 100-continue");
    char early[64];
    is_int(drain_now(peer, early, sizeof early), 0, "nothing is sent before the application reads");
    continue_client_t cc = {.fd = peer};
    pthread_t t;
    pthread_create(&t, NULL, continue_client, &cc);
    ssize_t n1 = mt_conn_body_fill(c, 3);
    mt_conn_body_consume(c, n1 > 0 ? (size_t)n1 : 0);
    ssize_t n2 = mt_conn_body_fill(c, 2);
    mt_conn_body_consume(c, n2 > 0 ? (size_t)n2 : 0);
    ssize_t n3 = mt_conn_body_fill(c, 1);
    pthread_join(t, NULL);
    ok(n1 == 3 && n2 == 2 && n3 == 0, "body read after the go-ahead (%zd, %zd, %zd)", n1, n2, n3);
    cc.seen[cc.seen_len] = '\0';
    is_str(cc.seen, "HTTP/1.1 100 Continue\r\n\r\n", "the client got 100 Continue");
    char more[64];
    is_int(drain_now(peer, more, sizeof more), 0, "100 Continue is sent only on the first fill");
    close(peer);
    conn_free(c);

    /* The body came with the head anyway: no interim response is due. */
    c = conn_new(&peer, 0);
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello");
    char got[8];
    is_int(read_body(c, got, sizeof got, 5), 5, "a body already complete is read");
    is_int(drain_now(peer, more, sizeof more), 0, "and no 100 Continue is sent for it");
    close(peer);
    conn_free(c);

    /* Skipping a body the client has not been told to send cannot work. */
    c = conn_new(&peer, 0);
    take_head(c, "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    ok(mt_conn_body_skip(c, 1 << 20) < 0, "body_skip refuses to wait for a body that was never asked for");
    is_int(drain_now(peer, more, sizeof more), 0, "and sends no 100 Continue");
    close(peer);
    conn_free(c);
}

static void test_body_skip(void) {
    int peer;
    mt_conn_t *c = conn_new(&peer, 0);
    enum { LEN = 50000 };
    static char data[LEN + 64];
    pattern(data, LEN, 2);
    memcpy(data + LEN, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n", 31);
    char head[128];
    int hlen = snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", LEN);
    take_head_n(c, head, (size_t)hlen);
    feeder_t f = {.fd = peer, .data = data, .len = LEN + 31, .piece = 4000, .delay_ms = 1};
    pthread_t t;
    pthread_create(&t, NULL, feed, &f);
    /* The application read a little, then left the rest. */
    ssize_t n = mt_conn_body_fill(c, 100);
    mt_conn_body_consume(c, n > 0 ? (size_t)n : 0);
    int rc = mt_conn_body_skip(c, 1 << 20);
    pthread_join(t, NULL);
    is_int(rc, 0, "body_skip drains the rest of the body");
    ok(c->req.message_complete, "message complete after skipping");
    size_t tail = c->rbuf.len - c->rpos;
    ok(tail <= 31 && memcmp(c->rbuf.data + c->rpos, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n", tail) == 0,
       "the pipelined request after the body is kept (%zu bytes so far)", tail);
    is_int(mt_conn_body_skip(c, 0), 0, "skipping a finished body is a no-op");
    close(peer);
    conn_free(c);

    c = conn_new(&peer, 0);
    hlen = snprintf(head, sizeof head, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", LEN);
    take_head_n(c, head, (size_t)hlen);
    f = (feeder_t){.fd = peer, .data = data, .len = LEN, .piece = 4000};
    pthread_create(&t, NULL, feed, &f);
    rc = mt_conn_body_skip(c, 1000);
    close(c->fd); /* unblocks the feeder */
    c->fd = -1;
    pthread_join(t, NULL);
    ok(rc < 0, "a body larger than the skip limit: negative (%d), the connection must close", rc);
    close(peer);
    conn_free(c);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN); /* as in the worker: a vanished client is -EPIPE, not a signal */
    pump_start(&server);
    test_writev_partial();
    test_write_timeout();
    test_sendfile();
    test_sendfile_queued();
    test_backpressure();
    test_event_loop_producer();
    test_body_content_length();
    test_body_chunked();
    test_body_errors();
    test_expect_continue();
    test_body_skip();
    pump_stop(&server);
    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffer counters balance");
    is_int(atomic_load(&mt_counters.output_bytes_queued), atomic_load(&mt_counters.output_bytes_released),
           "output counters balance (%ld bytes queued)", atomic_load(&mt_counters.output_bytes_queued));
    return done_testing();
}
