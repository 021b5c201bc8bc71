/* End-to-end test of the WebSocket core through the server's upgrade
 * mechanism (mt_server_upgrade): a real server on a loopback port, a
 * handler thread that validates the handshake (ws_handshake.c) and answers
 * 101, and an echo protocol on the I/O thread built from ws_frame.c and
 * ws_deflate.c: it echoes every message, answers pings, completes the
 * close handshake, closes with the parser's code on a bad frame, and pings
 * an idle client (closing when the pong does not come).
 *
 * This is the shape the real WebSocket protocol table will take once the
 * ASGI side exists; what it leaves out is said in docs/design.md. */
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
#include "ws_deflate.c"
#include "ws_frame.c"
#include "ws_handshake.c"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

#include "tap.h"

#define IDLE_MS 200 /* the server's keepalive_timeout: idle time before a ping */
#define PONG_MS 200 /* time the client has to answer it */

static const mt_server_config_t config = {
    .limits = {.max_request_line = 1024,
               .max_head_size = 4096,
               .max_headers = 32,
               .max_body_size = 1 << 16,
               .max_chunk_ext = 256},
    .head_timeout_ms = 1000,
    .body_timeout_ms = 1000,
    .keepalive_timeout_ms = IDLE_MS,
    .write_timeout_ms = 1000,
    .output_high_water = 65536,
    .output_low_water = 16384,
    .linger_ms = 50,
    .max_connections = 64,
};

static const mt_ws_handshake_config_t hs_config = {
    .deflate = true, .server_max_window_bits = 15, .client_max_window_bits = 15};

static mt_server_t server;
static int listen_fd;
static struct sockaddr_in server_addr;
static pthread_t handler;
static atomic_int ws_closed;

static void sleep_ms(int ms) {
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* ---- the echo protocol (I/O thread) ---- */

typedef struct ws_echo {
    mt_ws_parser_t parser;
    bool deflate;
    mt_ws_deflate_t z;
    mt_buf_t message; /* the message being received (inflated if compressed) */
    int inflate_rc;
    bool ping_sent; /* a keepalive ping is waiting for its pong */
} ws_echo_t;

static int send_frame(mt_conn_t *c, mt_ws_opcode_t opcode, bool rsv1, const void *payload, size_t n) {
    uint8_t head[10];
    size_t hn = mt_ws_frame_header(head, opcode, true, rsv1, n);
    struct iovec iov[2] = {{head, hn}, {(void *)payload, n}};
    return mt_conn_writev(c, iov, n ? 2 : 1);
}

static void send_close(mt_conn_t *c, unsigned code, const char *reason) {
    uint8_t pl[MT_WS_MAX_CONTROL];
    int n = mt_ws_close_payload(pl, code, reason, strlen(reason));
    send_frame(c, MT_WS_CLOSE, false, pl, n > 0 ? (size_t)n : 0);
}

static int echo_message(mt_conn_t *c, ws_echo_t *w, uint8_t opcode) {
    if (!w->deflate)
        return send_frame(c, opcode, false, w->message.data, w->message.len);
    mt_buf_t z;
    mt_buf_init(&z);
    int rc = mt_ws_deflate_compress(&w->z, w->message.data, w->message.len, &z);
    if (rc == 0)
        rc = send_frame(c, opcode, true, z.data, z.len);
    mt_buf_dispose(&z);
    return rc;
}

/* Handles what the parser reports for buf[0, len). Returns false once the
 * connection is to be closed (a close frame went out). */
static bool ws_process(mt_conn_t *c, ws_echo_t *w, uint8_t *buf, size_t len, size_t *consumed) {
    *consumed = 0;
    if (len == 0)
        return true; /* buf may be NULL: an empty rbuf has no storage */
    for (;;) {
        size_t used;
        mt_ws_event_t ev;
        mt_ws_parse_result_t r = mt_ws_parse(&w->parser, buf + *consumed, len - *consumed, &used, &ev);
        *consumed += used;
        switch (r) {
        case MT_WS_PARSE_MORE:
            return true;
        case MT_WS_PARSE_ERROR:
            send_close(c, w->parser.close_code, w->parser.error);
            return false;
        case MT_WS_PARSE_DATA:
            if (ev.compressed) {
                if (w->inflate_rc == 0)
                    w->inflate_rc = mt_ws_deflate_inflate(&w->z, ev.data, ev.len, ev.message_end, &w->message);
            } else if (mt_buf_append(&w->message, ev.data, ev.len) < 0) {
                w->inflate_rc = -ENOMEM;
            }
            if (w->inflate_rc < 0) {
                send_close(c,
                           w->inflate_rc == -EMSGSIZE  ? MT_WS_CLOSE_TOO_BIG
                           : w->inflate_rc == -EBADMSG ? MT_WS_CLOSE_INVALID_DATA
                                                       : MT_WS_CLOSE_INTERNAL,
                           "bad compressed message");
                return false;
            }
            if (!ev.message_end)
                break;
            if (ev.compressed && ev.opcode == MT_WS_TEXT) {
                mt_ws_utf8_t u = {0};
                if (!mt_ws_utf8_feed(&u, (const uint8_t *)w->message.data, w->message.len) ||
                    !mt_ws_utf8_complete(&u)) {
                    send_close(c, MT_WS_CLOSE_INVALID_DATA, "text message not UTF-8");
                    return false;
                }
            }
            if (echo_message(c, w, ev.opcode) < 0)
                return false;
            w->message.len = 0;
            break;
        case MT_WS_PARSE_CONTROL:
            if (ev.opcode == MT_WS_PING) {
                send_frame(c, MT_WS_PONG, false, ev.data, ev.len);
            } else if (ev.opcode == MT_WS_PONG) {
                w->ping_sent = false;
            } else {
                /* The close handshake: the client's code echoed (1000 when it gave none). */
                unsigned code = ev.close_code == MT_WS_CLOSE_NO_STATUS ? MT_WS_CLOSE_NORMAL : ev.close_code;
                send_close(c, code, "");
                return false;
            }
            break;
        }
    }
}

static void ws_on_readable(mt_server_t *s, mt_conn_t *c) {
    ws_echo_t *w = c->proto;
    bool open = true;
    for (;;) {
        /* Bytes of an unfinished frame stay at the front of rbuf. */
        size_t used;
        open = ws_process(c, w, (uint8_t *)c->rbuf.data, c->rbuf.len, &used);
        mt_buf_consume(&c->rbuf, used);
        if (!open)
            break;
        if (mt_buf_reserve(&c->rbuf, 16384) < 0) {
            open = false;
            break;
        }
        ssize_t n = read(c->fd, c->rbuf.data + c->rbuf.len, c->rbuf.cap - c->rbuf.len);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            set_deadline(c, IDLE_MS);
            w->ping_sent = false; /* any byte shows the client is there */
            continue;
        }
        if (n == 0 || errno != EAGAIN)
            open = false;
        break;
    }
    if (!open) {
        mt_server_close(s, c);
        return;
    }
    mt_server_rearm_open(s, c);
}

/* Idle: ping once; still nothing after PONG_MS: give up. The sweep calls
 * this while walking the connection list, so it must not free c: a
 * shutdown makes epoll report it, and on_readable closes it. */
static void ws_on_timeout(mt_server_t *s, mt_conn_t *c) {
    ws_echo_t *w = c->proto;
    if (w->ping_sent) {
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    w->ping_sent = true;
    send_frame(c, MT_WS_PING, false, "keepalive", 9);
    set_deadline(c, PONG_MS);
}

static void ws_on_close(mt_server_t *s, mt_conn_t *c) {
    ws_echo_t *w = c->proto;
    mt_ws_deflate_dispose(&w->z);
    mt_buf_dispose(&w->message);
    free(w);
    c->proto = NULL;
    atomic_fetch_add(&ws_closed, 1);
}

static const mt_conn_ops_t ws_ops = {
    .name = "websocket", .on_readable = ws_on_readable, .on_timeout = ws_on_timeout, .on_close = ws_on_close};

/* ---- the handler thread: handshakes ---- */

static bool answer(mt_server_t *s, mt_conn_t *c) {
    mt_ws_handshake_t hs;
    mt_ws_handshake_result_t r = mt_ws_handshake_parse(&hs, &c->req, c->rbuf.data, &hs_config);
    char head[1024];
    int n;
    if (r == MT_WS_HANDSHAKE_OK) {
        /* The application's choice: "echo" when offered. */
        const char *proto = NULL;
        for (uint32_t i = 0; i < hs.nprotocols; i++)
            if (hs.protocols[i].len == 4 && memcmp(c->rbuf.data + hs.protocols[i].off, "echo", 4) == 0)
                proto = "echo";
        n = mt_ws_handshake_accept(&hs, c->rbuf.data, proto, proto ? 4 : 0, head, sizeof head);
        ws_echo_t *w = calloc(1, sizeof *w);
        mt_ws_parser_config_t pc = {.max_frame = 1 << 16, .max_message = 1 << 18, .deflate = hs.deflate};
        mt_ws_parser_init(&w->parser, &pc);
        w->deflate = hs.deflate;
        if (hs.deflate)
            mt_ws_deflate_init(&w->z, &hs.params, 6, 8, mt_ws_deflate_memory(&hs.params, 8), pc.max_message);
        c->head_consumed = true;
        struct iovec iov = {head, (size_t)n};
        mt_conn_writev(c, &iov, 1);
        mt_server_upgrade(s, c, &ws_ops, w);
        return true;
    }
    if (r == MT_WS_HANDSHAKE_NOT_WEBSOCKET)
        n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    else
        n = mt_ws_handshake_refuse(r, &hs, head, sizeof head);
    c->head_consumed = true;
    struct iovec iov = {head, (size_t)n};
    mt_conn_writev(c, &iov, 1);
    mt_server_finish(s, c, r == MT_WS_HANDSHAKE_NOT_WEBSOCKET && c->req.keep_alive);
    return false;
}

static void *handler_main(void *arg) {
    mt_server_t *s = arg;
    mt_conn_t *c;
    while ((c = mt_server_next(s)) != NULL)
        answer(s, c);
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
    if (rc == 0)
        rc = -pthread_create(&handler, NULL, handler_main, &server);
    return rc;
}

/* ---- a blocking WebSocket client ---- */

static int client_open(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void client_send(int fd, const void *data, size_t n) {
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static int read_exact(int fd, void *out, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)out + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Reads a response head (up to the blank line) into out. */
static int read_head(int fd, char *out, size_t cap) {
    size_t len = 0;
    while (len + 1 < cap) {
        if (read(fd, out + len, 1) != 1)
            return -1;
        len++;
        out[len] = '\0';
        if (len >= 4 && memcmp(out + len - 4, "\r\n\r\n", 4) == 0)
            return 0;
    }
    return -1;
}

/* A masked client frame. */
static size_t make_frame(uint8_t *out, int b0, const void *payload, size_t n) {
    static const uint8_t key[4] = {0xa1, 0x5e, 0x07, 0xc3};
    size_t h = 0;
    out[h++] = (uint8_t)b0;
    if (n < 126) {
        out[h++] = (uint8_t)(0x80 | n);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    }
    memcpy(out + h, key, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        out[h + i] = ((const uint8_t *)payload)[i] ^ key[i & 3];
    return h + n;
}

static void ws_send(int fd, int b0, const void *payload, size_t n) {
    uint8_t f[70000];
    client_send(fd, f, make_frame(f, b0, payload, n));
}

/* Reads one server frame: returns its first byte (or -1), fills payload. */
static int ws_read(int fd, uint8_t *payload, size_t cap, size_t *n) {
    uint8_t h[10];
    if (read_exact(fd, h, 2) < 0)
        return -1;
    if (h[1] & 0x80)
        return -2; /* a server frame must not be masked */
    uint64_t len = h[1] & 0x7f;
    if (len == 126) {
        if (read_exact(fd, h + 2, 2) < 0)
            return -1;
        len = (uint64_t)h[2] << 8 | h[3];
    } else if (len == 127) {
        if (read_exact(fd, h + 2, 8) < 0)
            return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
    }
    if (len > cap || read_exact(fd, payload, (size_t)len) < 0)
        return -1;
    *n = (size_t)len;
    return h[0];
}

static bool eof_next(int fd) {
    char b;
    ssize_t r = read(fd, &b, 1);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define HANDSHAKE(extra)                                                                                               \
    "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " KEY              \
    "\r\nSec-WebSocket-Version: 13\r\n" extra "\r\n"

/* Opens a WebSocket connection (the handshake checked); -1 on failure. */
static int ws_connect(const char *request, char *head, size_t cap) {
    int fd = client_open();
    if (fd < 0)
        return -1;
    client_send(fd, request, strlen(request));
    if (read_head(fd, head, cap) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- tests ---- */

static void test_echo(void) {
    char head[1024];
    uint8_t buf[70000];
    size_t n;
    /* The first frame travels in the same packet as the handshake. */
    char req[1024];
    size_t rlen = (size_t)snprintf(req, sizeof req, "%s", HANDSHAKE("Sec-WebSocket-Protocol: chat, echo\r\n"));
    rlen += make_frame((uint8_t *)req + rlen, 0x81, "first", 5);
    int fd = client_open();
    client_send(fd, req, rlen);
    ok(read_head(fd, head, sizeof head) == 0 && strncmp(head, "HTTP/1.1 101 ", 13) == 0, "101 Switching Protocols");
    ok(strstr(head, "\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != NULL, "the accept key");
    ok(strstr(head, "\r\nSec-WebSocket-Protocol: echo\r\n") != NULL, "the subprotocol the application chose");
    ok(strstr(head, "Sec-WebSocket-Extensions") == NULL, "no extension offered, none answered");
    ok(ws_read(fd, buf, sizeof buf, &n) == 0x81 && n == 5 && memcmp(buf, "first", 5) == 0,
       "a frame that came with the handshake is echoed");

    ws_send(fd, 0x81, "Hello", 5);
    ok(ws_read(fd, buf, sizeof buf, &n) == 0x81 && n == 5 && memcmp(buf, "Hello", 5) == 0,
       "a masked text frame echoed, unmasked");
    ws_send(fd, 0x89, "x", 1);
    ok(ws_read(fd, buf, sizeof buf, &n) == 0x8a && n == 1 && buf[0] == 'x', "a ping answered by a pong");

    ws_send(fd, 0x01, "Hel", 3);
    ws_send(fd, 0x89, "mid", 3);
    ws_send(fd, 0x80, "lo", 2);
    int b0 = ws_read(fd, buf, sizeof buf, &n);
    ok(b0 == 0x8a && n == 3 && memcmp(buf, "mid", 3) == 0, "a ping inside a fragmented message: pong first");
    ok(ws_read(fd, buf, sizeof buf, &n) == 0x81 && n == 5 && memcmp(buf, "Hello", 5) == 0,
       "then the fragmented message, echoed whole");

    /* A 60 000-byte binary message whose frame arrives a few bytes at a time. */
    static uint8_t big[60000], frame[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31);
    size_t fl = make_frame(frame, 0x82, big, sizeof big);
    for (size_t i = 0; i < 20; i++)
        client_send(fd, frame + i, 1);
    client_send(fd, frame + 20, fl - 20);
    ok(ws_read(fd, buf, sizeof buf, &n) == 0x82 && n == sizeof big && memcmp(buf, big, n) == 0,
       "a 60 KB frame, its header split byte by byte, echoed");

    uint8_t cl[] = {0x03, 0xe8, 'b', 'y', 'e'};
    ws_send(fd, 0x88, cl, sizeof cl);
    ok(ws_read(fd, buf, sizeof buf, &n) == 0x88 && n == 2 && buf[0] == 0x03 && buf[1] == 0xe8,
       "the close handshake: 1000 answered with 1000");
    ok(eof_next(fd), "then the server closes the connection");
    close(fd);
}

static void test_bad_frames(void) {
    char head[1024];
    uint8_t buf[256];
    size_t n;
    static const struct {
        uint8_t frame[16];
        size_t len;
        unsigned code;
        const char *what;
    } cases[] = {
        {{0x81, 0x02, 'h', 'i'}, 4, 1002, "an unmasked frame"},
        {{0x83, 0x80, 1, 2, 3, 4}, 6, 1002, "opcode 3"},
        {{0x80, 0x80, 1, 2, 3, 4}, 6, 1002, "a continuation without a message"},
        {{0x81, 0x81, 0, 0, 0, 0, 0xff}, 7, 1007, "a text frame that is not UTF-8"},
        {{0x82, 0xff, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4}, 14, 1009, "a 1 MiB frame over the 64 KiB limit"},
        {{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xed}, 8, 1002, "a close with code 1005"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        int fd = ws_connect(HANDSHAKE(""), head, sizeof head);
        client_send(fd, cases[i].frame, cases[i].len);
        int b0 = ws_read(fd, buf, sizeof buf, &n);
        unsigned code = n >= 2 ? (unsigned)buf[0] << 8 | buf[1] : 0;
        ok(b0 == 0x88 && code == cases[i].code, "%s: closed with %u (%u, reason '%.*s')", cases[i].what, cases[i].code,
           code, n > 2 ? (int)n - 2 : 0, (const char *)buf + 2);
        ok(eof_next(fd), "%s: then the connection is closed", cases[i].what);
        close(fd);
    }

    int fd = ws_connect(HANDSHAKE(""), head, sizeof head);
    close(fd);
    fd = client_open();
    const char *v8 = "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n";
    client_send(fd, v8, strlen(v8));
    ok(read_head(fd, head, sizeof head) == 0 && strncmp(head, "HTTP/1.1 426 ", 13) == 0 &&
           strstr(head, "Sec-WebSocket-Version: 13"),
       "version 8: 426 naming version 13");
    close(fd);
}

static void test_deflate(void) {
    char head[1024];
    uint8_t buf[1024];
    size_t n;
    int fd = ws_connect(HANDSHAKE("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"), head,
                        sizeof head);
    ok(strstr(head, "\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n") != NULL,
       "permessage-deflate negotiated");
    /* RFC 7692 7.2.3.1's "Hello", compressed by the client. */
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    ws_send(fd, 0xc1, hello, sizeof hello);
    ok(ws_read(fd, buf, sizeof buf, &n) == 0xc1 && n == sizeof hello && memcmp(buf, hello, n) == 0,
       "a compressed text message echoed compressed (RSV1, the same bytes)");
    /* The same message in two fragments, RSV1 on the first only. */
    ws_send(fd, 0x41, hello, 3);
    ws_send(fd, 0x80, hello + 3, sizeof hello - 3);
    int b0 = ws_read(fd, buf, sizeof buf, &n);
    mt_ws_deflate_params_t p = {.server_max_window_bits = 15, .client_max_window_bits = 15};
    mt_ws_deflate_t z;
    mt_ws_deflate_init(&z, &p, 6, 8, 1 << 20, 1024);
    mt_buf_t plain;
    mt_buf_init(&plain);
    /* The server's context now holds the first "Hello": inflate both. */
    mt_ws_deflate_inflate(&z, hello, sizeof hello, true, &plain);
    plain.len = 0;
    int rc = b0 == 0xc1 ? mt_ws_deflate_inflate(&z, buf, n, true, &plain) : -1;
    ok(rc == 0 && plain.len == 5 && memcmp(plain.data, "Hello", 5) == 0,
       "a fragmented compressed message echoed (with the server's context)");
    mt_ws_deflate_dispose(&z);
    mt_buf_dispose(&plain);
    static const uint8_t junk[] = {0xff, 0xff, 0xff};
    ws_send(fd, 0xc2, junk, sizeof junk);
    b0 = ws_read(fd, buf, sizeof buf, &n);
    ok(b0 == 0x88 && n >= 2 && (buf[0] << 8 | buf[1]) == 1007, "data that does not inflate: closed with 1007");
    close(fd);
}

static void test_keepalive(void) {
    char head[1024];
    uint8_t buf[256];
    size_t n;
    int fd = ws_connect(HANDSHAKE(""), head, sizeof head);
    int64_t t0 = mt_clock_now_ms();
    int b0 = ws_read(fd, buf, sizeof buf, &n);
    int64_t waited = mt_clock_now_ms() - t0;
    ok(b0 == 0x89 && n == 9 && memcmp(buf, "keepalive", 9) == 0 && waited >= IDLE_MS - 20,
       "an idle client is pinged (after %lld ms)", (long long)waited);
    ws_send(fd, 0x8a, buf, n);
    t0 = mt_clock_now_ms();
    b0 = ws_read(fd, buf, sizeof buf, &n);
    waited = mt_clock_now_ms() - t0;
    ok(b0 == 0x89 && waited >= IDLE_MS - 20, "answered: still open, pinged again after another idle period");
    t0 = mt_clock_now_ms();
    ok(eof_next(fd), "unanswered: the connection is closed");
    waited = mt_clock_now_ms() - t0;
    ok(waited < PONG_MS + 2 * SWEEP_INTERVAL_MS + 500, "... after the pong timeout (%lld ms)", (long long)waited);
    close(fd);
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    is_int(start_server(), 0, "server started");
    test_echo();
    test_bad_frames();
    test_deflate();
    test_keepalive();
    for (int i = 0; i < 200 && atomic_load(&ws_closed) < 10; i++)
        sleep_ms(10);
    ok(atomic_load(&ws_closed) >= 10, "every WebSocket connection's state was freed (%d)", atomic_load(&ws_closed));
    mt_server_shutdown(&server);
    is_int(mt_server_join(&server, 3000), 0, "the I/O thread exits");
    pthread_join(handler, NULL);
    mt_server_dispose(&server);
    close(listen_fd);
    mt_buf_pool_drain();
    is_int(atomic_load(&mt_counters.connections_opened), atomic_load(&mt_counters.connections_closed),
           "connections_opened == connections_closed");
    is_int(atomic_load(&mt_counters.requests_started), atomic_load(&mt_counters.requests_finished),
           "requests_started == requests_finished (an upgrade finishes its request)");
    is_int(atomic_load(&mt_counters.buffers_acquired), atomic_load(&mt_counters.buffers_released),
           "buffers_acquired == buffers_released");
    is_int(atomic_load(&mt_counters.output_bytes_queued), atomic_load(&mt_counters.output_bytes_released),
           "output_bytes_queued == output_bytes_released");
    return done_testing();
}
