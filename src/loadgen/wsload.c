/* meltemi-wsload: a closed-loop WebSocket echo load generator, for the bench's WebSocket echo scenario.
 *
 *   meltemi-wsload HOST PORT PATH CONNECTIONS SECONDS SIZE
 *
 * Opens CONNECTIONS connections to HOST:PORT (a numeric IPv4 or IPv6 address), upgrades each with a GET of PATH
 * (RFC 6455 handshake: the status must be 101 and Sec-WebSocket-Accept the key's digest), then, on every
 * connection, sends a masked text message of SIZE bytes and waits for its echo before sending the next (closed
 * loop: one message in flight per connection) for SECONDS seconds. The latency of a message is the time from its
 * send to its echo's last byte. An echo that is not a text frame of the same bytes counts as an error and closes
 * the connection; a ping is answered with a pong.
 *
 * Prints one JSON line: connections, messages, duration_us, errors and latency percentiles in microseconds.
 * Exits with 1 when a connection or its handshake fails at the start, 2 on bad arguments. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WS_BUF 65536
#define WS_MAX_MESSAGE 16384
/* RFC 6455's sample key and its accept value (section 1.3): every connection may use the same key. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

typedef struct {
    int opcode;
    int fin;
    size_t header;  /* bytes of the frame's header */
    size_t payload; /* bytes of its payload */
} ws_frame_t;

typedef struct {
    int fd;
    int open;
    int waiting;  /* a message is in flight */
    int want_out; /* the socket is watched for EPOLLOUT: bytes of out are still to write */
    double sent_at;
    uint8_t in[WS_BUF];
    size_t in_len;
    uint8_t out[WS_MAX_MESSAGE + 14 + 256];
    size_t out_len, out_off;
} ws_conn_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes a masked client frame (FIN set) into out; returns its length. out holds at least len + 14 bytes. */
static size_t ws_encode(uint8_t *out, int opcode, const uint8_t *payload, size_t len, uint32_t mask) {
    size_t n = 0;
    out[n++] = (uint8_t)(0x80 | (opcode & 0x0f));
    if (len < 126) {
        out[n++] = (uint8_t)(0x80 | len);
    } else if (len <= 0xffff) {
        out[n++] = 0x80 | 126;
        out[n++] = (uint8_t)(len >> 8);
        out[n++] = (uint8_t)len;
    } else {
        out[n++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[n++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint8_t key[4] = {(uint8_t)(mask >> 24), (uint8_t)(mask >> 16), (uint8_t)(mask >> 8), (uint8_t)mask};
    memcpy(out + n, key, 4);
    n += 4;
    for (size_t i = 0; i < len; i++)
        out[n + i] = payload[i] ^ key[i & 3];
    return n + len;
}

/* Parses a server frame at the start of buf: 1 and *f when it is complete in buf, 0 when more bytes are needed,
 * -1 when it is invalid (masked, reserved bits set, or larger than max). */
static int ws_parse(const uint8_t *buf, size_t len, size_t max, ws_frame_t *f) {
    if (len < 2)
        return 0;
    if (buf[0] & 0x70 || buf[1] & 0x80)
        return -1;
    f->fin = buf[0] >> 7;
    f->opcode = buf[0] & 0x0f;
    uint64_t payload = buf[1] & 0x7f;
    size_t header = 2;
    if (payload == 126) {
        if (len < 4)
            return 0;
        payload = (uint64_t)buf[2] << 8 | buf[3];
        header = 4;
    } else if (payload == 127) {
        if (len < 10)
            return 0;
        payload = 0;
        for (int i = 0; i < 8; i++)
            payload = payload << 8 | buf[2 + i];
        header = 10;
    }
    if (payload > max)
        return -1;
    if (len < header + payload)
        return 0;
    f->header = header;
    f->payload = (size_t)payload;
    return 1;
}

/* Checks a handshake response head (up to its blank line): 1 when it is a 101 with the expected accept value. */
static int ws_handshake_ok(const char *head) {
    if (strncmp(head, "HTTP/1.1 101", 12) != 0)
        return 0;
    for (const char *line = strstr(head, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
        const char *name = line + 2;
        if (strncasecmp(name, "sec-websocket-accept:", 21) == 0) {
            const char *value = name + 21;
            while (*value == ' ' || *value == '\t')
                value++;
            return strncmp(value, WS_ACCEPT, strlen(WS_ACCEPT)) == 0 && (value[28] == '\r' || value[28] == ' ');
        }
    }
    return 0;
}

static uint32_t xorshift(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *state = x;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t percentile(const uint32_t *sorted, size_t n, double p) {
    if (n == 0)
        return 0;
    size_t index = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return sorted[index < n ? index : n - 1];
}

/* Opens a connection and completes the handshake (blocking); returns the descriptor or -1. */
static int ws_connect(const struct sockaddr_storage *addr, socklen_t addr_len, const char *host, int port,
                      const char *path) {
    int fd = socket(addr->ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (const struct sockaddr *)addr, addr_len) < 0) {
        close(fd);
        return -1;
    }
    char request[1024];
    int n = snprintf(request, sizeof request,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
                     path, host, port);
    if (n <= 0 || (size_t)n >= sizeof request || write(fd, request, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    /* Read byte by byte up to the blank line, so that no frame byte is taken with the head. */
    char head[4096];
    size_t len = 0;
    while (len + 1 < sizeof head) {
        ssize_t got = read(fd, head + len, 1);
        if (got <= 0)
            break;
        len++;
        if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[len] = '\0';
    if (len < 4 || memcmp(head + len - 4, "\r\n\r\n", 4) != 0 || !ws_handshake_ok(head)) {
        fprintf(stderr, "meltemi-wsload: handshake refused: %.200s\n", head);
        close(fd);
        return -1;
    }
    return fd;
}

/* Writes what is left of c's output; when the socket is full, watches it for EPOLLOUT until it is written. */
static int flush_out(int ep, ws_conn_t *c, uint32_t index) {
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            if (!c->want_out) {
                struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = index};
                c->want_out = 1;
                return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
            }
            return 0;
        }
        c->out_off += (size_t)n;
    }
    c->out_len = c->out_off = 0;
    if (c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = index};
        c->want_out = 0;
        return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: meltemi-wsload HOST PORT PATH CONNECTIONS SECONDS SIZE\n");
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *path = argv[3];
    int connections = atoi(argv[4]);
    double seconds = atof(argv[5]);
    long size = atol(argv[6]);
    if (port <= 0 || port > 65535 || connections <= 0 || seconds <= 0 || size < 0 || size > WS_MAX_MESSAGE) {
        fprintf(stderr, "meltemi-wsload: bad arguments (SIZE is at most %d)\n", WS_MAX_MESSAGE);
        return 2;
    }
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    socklen_t addr_len;
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        addr_len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        addr_len = sizeof *v6;
    } else {
        fprintf(stderr, "meltemi-wsload: HOST must be a numeric address\n");
        return 2;
    }

    uint8_t *message = malloc((size_t)size + 1);
    for (long i = 0; i < size; i++)
        message[i] = (uint8_t)('a' + i % 26);
    ws_conn_t *conns = calloc((size_t)connections, sizeof *conns);
    int ep = epoll_create1(0);
    if (!message || !conns || ep < 0)
        return 1;
    for (int i = 0; i < connections; i++) {
        conns[i].fd = ws_connect(&addr, addr_len, host, port, path);
        if (conns[i].fd < 0) {
            fprintf(stderr, "meltemi-wsload: connection %d failed (connect or handshake)\n", i);
            return 1;
        }
        if (fcntl(conns[i].fd, F_SETFL, fcntl(conns[i].fd, F_GETFL) | O_NONBLOCK) < 0)
            return 1;
        conns[i].open = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev);
    }

    size_t cap = 1 << 16, count = 0;
    uint32_t *latencies = malloc(cap * sizeof *latencies);
    long errors = 0;
    uint32_t seed = 0x9e3779b9u;
    double start = now_s();
    double end = start + seconds;
    int open = connections;
    for (int i = 0; i < connections; i++) {
        ws_conn_t *c = &conns[i];
        c->out_len = ws_encode(c->out, 1, message, (size_t)size, xorshift(&seed));
        c->sent_at = now_s();
        c->waiting = 1;
        if (flush_out(ep, c, (uint32_t)i) < 0) {
            errors++;
            c->open = 0;
            open--;
        }
    }
    /* After SECONDS: no new message; the echoes in flight are awaited (not counted), then every connection is
     * closed with a close handshake (code 1000), so that servers see clients leave as they normally do. */
    struct epoll_event events[256];
    double elapsed = 0;
    int closing = 0;
    while (open > 0) {
        double now = now_s();
        if (now >= end && elapsed == 0)
            elapsed = now - start;
        if (now >= end + 3)
            break;
        if (now >= end && !closing) {
            int in_flight = 0;
            for (int i = 0; i < connections; i++)
                in_flight |= conns[i].open && conns[i].waiting;
            if (!in_flight || now >= end + 2) {
                closing = 1;
                for (int i = 0; i < connections; i++) {
                    if (!conns[i].open)
                        continue;
                    uint8_t close_frame[16];
                    uint8_t code[2] = {0x03, 0xe8};
                    size_t len = ws_encode(close_frame, 0x8, code, 2, xorshift(&seed));
                    (void)!send(conns[i].fd, close_frame, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                }
            }
        }
        int timeout = now < end ? (int)((end - now) * 1000) + 1 : 50;
        int n = epoll_wait(ep, events, 256, timeout);
        for (int e = 0; e < n; e++) {
            uint32_t index = events[e].data.u32;
            ws_conn_t *c = &conns[index];
            if (!c->open)
                continue;
            if (events[e].events & EPOLLOUT && flush_out(ep, c, index) < 0) {
                errors++;
                c->open = 0;
                open--;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            ssize_t got = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                errors += !closing;
                c->open = 0;
                open--;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                continue;
            }
            if (got < 0)
                continue;
            c->in_len += (size_t)got;
            ws_frame_t f;
            int r;
            while (c->open && (r = ws_parse(c->in, c->in_len, WS_MAX_MESSAGE, &f)) != 0) {
                const uint8_t *payload = c->in + f.header;
                int bad = r < 0;
                if (!bad && f.opcode == 0x9) { /* ping: answer with a pong carrying its payload */
                    uint8_t pong[125 + 14];
                    size_t plen = ws_encode(pong, 0xA, payload, f.payload < 125 ? f.payload : 125, xorshift(&seed));
                    if (send(c->fd, pong, plen, MSG_NOSIGNAL) != (ssize_t)plen)
                        bad = 1;
                } else if (!bad && f.opcode == 0xA) {
                    /* an unsolicited pong: ignored */
                } else if (!bad && f.opcode == 0x8 && closing) { /* the server's close: done */
                    c->open = 0;
                    open--;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    break;
                } else if (bad || f.opcode != 0x1 || !f.fin || f.payload != (size_t)size ||
                           memcmp(payload, message, (size_t)size) != 0) {
                    bad = 1;
                } else {
                    double t = now_s();
                    c->waiting = 0;
                    if (t >= end) { /* an echo in flight at the end: awaited, not counted */
                        size_t used = f.header + f.payload;
                        memmove(c->in, c->in + used, c->in_len - used);
                        c->in_len -= used;
                        continue;
                    }
                    if (count == cap) {
                        cap *= 2;
                        latencies = realloc(latencies, cap * sizeof *latencies);
                        if (!latencies)
                            return 1;
                    }
                    latencies[count++] = (uint32_t)((t - c->sent_at) * 1e6);
                    c->out_len = ws_encode(c->out, 1, message, (size_t)size, xorshift(&seed));
                    c->out_off = 0;
                    c->sent_at = t;
                    c->waiting = 1;
                    if (flush_out(ep, c, index) < 0)
                        bad = 1;
                }
                if (bad) {
                    errors++;
                    c->open = 0;
                    open--;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    break;
                }
                size_t used = f.header + f.payload;
                memmove(c->in, c->in + used, c->in_len - used);
                c->in_len -= used;
            }
            if (c->open && c->out_off < c->out_len && flush_out(ep, c, index) < 0) {
                errors++;
                c->open = 0;
                open--;
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            }
        }
    }
    if (elapsed == 0)
        elapsed = now_s() - start;
    for (int i = 0; i < connections; i++)
        close(conns[i].fd);
    qsort(latencies, count, sizeof *latencies, cmp_u32);
    printf("{\"connections\": %d, \"messages\": %zu, \"duration_us\": %.0f, \"errors\": %ld, \"mps\": %.1f, "
           "\"p50_us\": %u, \"p90_us\": %u, \"p99_us\": %u, \"p999_us\": %u, \"max_us\": %u}\n",
           connections, count, elapsed * 1e6, errors, (double)count / elapsed, percentile(latencies, count, 50),
           percentile(latencies, count, 90), percentile(latencies, count, 99), percentile(latencies, count, 99.9),
           count ? latencies[count - 1] : 0);
    free(latencies);
    free(conns);
    free(message);
    return 0;
}
