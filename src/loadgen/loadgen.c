/* An open-loop HTTP/1.1 load generator for the SLO search of bench/slo.py.
 *
 *   loadgen PORT RATE CONNECTIONS SECONDS REQUEST_FILE
 *
 * Sends the request in REQUEST_FILE (raw bytes, keep-alive) to 127.0.0.1:PORT
 * at RATE requests per second spread over CONNECTIONS connections, each with
 * one request in flight. Request k of connection c is due at
 * t0 + (c + k * CONNECTIONS) / RATE; its latency is measured from that due
 * time, not from when it could be sent, so a server that falls behind is
 * charged for the queue it builds (no coordinated omission). Responses must
 * carry Content-Length; a connection the server closes is opened again. Prints one JSON line: due, sent, completed,
 * errors and latency percentiles in microseconds. Built by bench/slo.py with the host's cc. */
#define _GNU_SOURCE
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

typedef struct {
    int fd;
    long next;  /* index k of this connection's next request */
    double due; /* due time of the request in flight (or the next one) */
    int busy;   /* a request is in flight */
    char buf[65536];
    size_t len;
} conn_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Length of the complete response at the start of buf, 0 if incomplete, -1 if unusable;
 * *close is set when the server announces it closes the connection after it. */
static long response_length(const char *buf, size_t len, int *close) {
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (!end)
        return len > 16384 ? -1 : 0;
    size_t head = end - buf + 4;
    long body = -1;
    for (const char *line = memchr(buf, '\n', head); line && line < end; line = memchr(line + 1, '\n', end - line)) {
        if (strncasecmp(line + 1, "content-length:", 15) == 0)
            body = strtol(line + 16, NULL, 10);
        else if (strncasecmp(line + 1, "connection:", 11) == 0 && memmem(line, end - line, "close", 5))
            *close = 1;
    }
    if (body < 0)
        return -1;
    return head + body <= len ? (long)(head + body) : 0;
}

/* A new connection in place of connection c's (the server closed it, or will). */
static int reopen(int ep, conn_t *cn, unsigned c, int port) {
    if (cn->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, cn->fd, NULL);
        close(cn->fd);
    }
    cn->len = 0;
    cn->busy = 0;
    cn->fd = connect_to(port);
    if (cn->fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, cn->fd, &ev);
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: loadgen PORT RATE CONNECTIONS SECONDS REQUEST_FILE\n");
        return 2;
    }
    int port = atoi(argv[1]);
    double rate = atof(argv[2]);
    int nconn = atoi(argv[3]);
    double seconds = atof(argv[4]);
    FILE *f = fopen(argv[5], "rb");
    if (!f || rate <= 0 || nconn <= 0 || seconds <= 0) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }
    static char request[16384];
    size_t request_len = fread(request, 1, sizeof request, f);
    fclose(f);

    long capacity = (long)(rate * seconds) + nconn + 16;
    uint32_t *latencies = malloc(capacity * sizeof *latencies);
    conn_t *conns = calloc(nconn, sizeof *conns);
    int ep = epoll_create1(0);
    long sent = 0, completed = 0, errors = 0;
    double t0 = now_s() + 0.01, end = t0 + seconds;
    for (int c = 0; c < nconn; c++) {
        conns[c].fd = connect_to(port);
        if (conns[c].fd < 0) {
            fprintf(stderr, "loadgen: cannot connect to port %d\n", port);
            return 1;
        }
        conns[c].due = t0 + c / rate;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[c].fd, &ev);
    }

    for (;;) {
        double now = now_s();
        double wake = end + 1.0;
        int busy = 0;
        for (int c = 0; c < nconn; c++) {
            conn_t *cn = &conns[c];
            if (!cn->busy && cn->fd >= 0 && cn->due < end) {
                if (cn->due <= now) {
                    /* One small request: a blocking-enough write on a fresh socket buffer. */
                    if (send(cn->fd, request, request_len, MSG_NOSIGNAL) != (ssize_t)request_len) {
                        errors++;
                        reopen(ep, cn, c, port);
                        continue;
                    }
                    cn->busy = 1;
                    sent++;
                } else if (cn->due < wake) {
                    wake = cn->due;
                }
            }
            busy += cn->busy;
        }
        if (now >= end && !busy)
            break;
        if (now >= end + 5.0) /* responses still missing 5 s after the end count as errors */
            break;
        int timeout_ms = busy ? 100 : 0;
        if (wake <= end) {
            double ms = (wake - now) * 1000.0;
            timeout_ms = ms <= 0 ? 0 : (ms < 1 ? 1 : (int)ms);
            if (busy && timeout_ms > 100)
                timeout_ms = 100;
        }
        struct epoll_event events[256];
        int n = epoll_wait(ep, events, 256, timeout_ms);
        for (int i = 0; i < n; i++) {
            conn_t *cn = &conns[events[i].data.u32];
            ssize_t got = read(cn->fd, cn->buf + cn->len, sizeof cn->buf - cn->len);
            unsigned c = events[i].data.u32;
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                if (cn->busy) { /* the request in flight is lost: on to the next one */
                    errors++;
                    cn->next++;
                    cn->due = t0 + (c + (double)cn->next * nconn) / rate;
                }
                reopen(ep, cn, c, port);
                continue;
            }
            cn->len += got;
            int closing = 0;
            long whole = response_length(cn->buf, cn->len, &closing);
            if (whole < 0) {
                errors++;
                cn->next++;
                cn->due = t0 + (c + (double)cn->next * nconn) / rate;
                reopen(ep, cn, c, port);
                continue;
            }
            if (whole == 0)
                continue;
            double done = now_s();
            if (completed < capacity)
                latencies[completed] = (uint32_t)((done - cn->due) * 1e6);
            completed++;
            memmove(cn->buf, cn->buf + whole, cn->len - whole);
            cn->len -= whole;
            cn->busy = 0;
            cn->next++;
            cn->due = t0 + (c + (double)cn->next * nconn) / rate;
            if (closing)
                reopen(ep, cn, c, port);
        }
    }
    long due = 0;
    for (int c = 0; c < nconn; c++)
        for (long k = 0; t0 + (c + (double)k * nconn) / rate < end; k++)
            due++;
    long stored = completed < capacity ? completed : capacity;
    qsort(latencies, stored, sizeof *latencies, cmp_u32);
#define PCT(p) (stored ? latencies[(long)((p) / 100.0 * (stored - 1))] : 0)
    printf("{\"rate\": %.0f, \"due\": %ld, \"sent\": %ld, \"completed\": %ld, \"errors\": %ld, \"p50_us\": %u, "
           "\"p90_us\": %u, \"p99_us\": %u, \"p999_us\": %u, \"max_us\": %u}\n",
           rate, due, sent, completed, errors, PCT(50), PCT(90), PCT(99), PCT(99.9),
           stored ? latencies[stored - 1] : 0);
    return 0;
}
