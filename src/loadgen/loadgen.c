/* meltemi-loadgen: an open-loop HTTP/1.1 load generator, for `meltemi capacity` and the bench's SLO search.
 *
 *   meltemi-loadgen HOST PORT RATE CONNECTIONS SECONDS REQUEST_FILE [GRACE]
 *
 * Sends the request in REQUEST_FILE (raw bytes, keep-alive) to HOST:PORT (a numeric IPv4 or IPv6 address) at
 * RATE requests per second spread over CONNECTIONS connections, each with one request in flight. Request k of
 * connection c is due at t0 + (c + k * CONNECTIONS) / RATE; its latency is measured from that due time, not from
 * when it could be sent, so a server that falls behind is charged for the queue it builds (no coordinated
 * omission). A request still unanswered GRACE seconds (default 5) after the end, or never sent because its
 * connection stayed busy, is charged the time from its due time to then: a lower bound, but never a hole in the
 * percentiles. A connection the server closes is opened again.
 *
 * A response is delimited by Content-Length, by chunked encoding, or has no body (1xx, 204, 304, HEAD); a
 * response the generator cannot delimit counts as an error. Statuses of 400 and above are counted apart
 * (bad_status) with the last one seen (last_bad_status).
 *
 * Prints one JSON line: due, sent, completed, errors, bad_status, missing and latency percentiles in microseconds.
 * Exits with 1 when a connection cannot be opened at the start, 2 on bad arguments. It is a separate program (not
 * a function of the extension) so that the measuring loop never waits for a Python lock. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
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

#define HEAD_MAX 16384
#define BUF_SIZE 65536

typedef struct {
    int fd;
    long next;      /* index k of this connection's next request */
    double due;     /* due time of the request in flight (or the next one) */
    int busy;       /* a request is in flight */
    long body_left; /* bytes of a Content-Length body still to read; -1 while reading the head */
    int closing;    /* the server announced it closes the connection after this response */
    int status;     /* status of the response being read */
    char buf[BUF_SIZE];
    size_t len;
} conn_t;

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    const char *request;
    size_t request_len;
    int head_only; /* the request is HEAD: responses have no body */
} target_t;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int resolve(const char *host, const char *port, target_t *target) {
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST};
    struct addrinfo *found = NULL;
    if (getaddrinfo(host, port, &hints, &found) != 0 || !found)
        return -1;
    memcpy(&target->addr, found->ai_addr, found->ai_addrlen);
    target->addr_len = found->ai_addrlen;
    freeaddrinfo(found);
    return 0;
}

static int connect_to(const target_t *target) {
    int fd = socket(target->addr.ss_family, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (const struct sockaddr *)&target->addr, target->addr_len) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Length of a complete chunked body at p, 0 if incomplete, -1 if malformed. */
static long chunked_length(const char *p, size_t len) {
    size_t at = 0;
    for (;;) {
        const char *eol = memmem(p + at, len - at, "\r\n", 2);
        if (!eol)
            return 0;
        char *digits_end;
        long size = strtol(p + at, &digits_end, 16);
        if (digits_end == p + at || size < 0)
            return -1;
        at = eol - p + 2;
        if (size == 0) {
            /* Trailers, if any, end with an empty line. */
            for (;;) {
                const char *line_end = memmem(p + at, len - at, "\r\n", 2);
                if (!line_end)
                    return 0;
                int empty = line_end == p + at;
                at = line_end - p + 2;
                if (empty)
                    return (long)at;
            }
        }
        if (len - at < (size_t)size + 2)
            return 0;
        at += size + 2;
    }
}

/* Reads the head at the start of cn->buf. Returns its length (0 if incomplete, -1 if unusable) and sets
 * cn->status, cn->closing, and *body to the Content-Length (0 for a response without body, -2 for chunked). */
static long parse_head(conn_t *cn, int head_only, long *body) {
    const char *end = memmem(cn->buf, cn->len, "\r\n\r\n", 4);
    if (!end)
        return cn->len > HEAD_MAX ? -1 : 0;
    if (cn->len < 12 || strncmp(cn->buf, "HTTP/1.", 7) != 0)
        return -1;
    cn->status = atoi(cn->buf + 9);
    *body = -1;
    for (const char *line = memchr(cn->buf, '\n', end - cn->buf); line && line < end;
         line = memchr(line + 1, '\n', end - line)) {
        if (strncasecmp(line + 1, "content-length:", 15) == 0)
            *body = strtol(line + 16, NULL, 10);
        else if (strncasecmp(line + 1, "transfer-encoding:", 18) == 0 && memmem(line, end - line, "chunked", 7))
            *body = -2;
        else if (strncasecmp(line + 1, "connection:", 11) == 0 && memmem(line, end - line, "close", 5))
            cn->closing = 1;
    }
    if (head_only || cn->status < 200 || cn->status == 204 || cn->status == 304)
        *body = 0;
    return *body == -1 ? -1 : end - cn->buf + 4;
}

/* Consumes what cn->buf holds of the response in flight: 1 when the response is complete, 0 when more is
 * needed, -1 when it cannot be delimited. */
static int take_response(conn_t *cn, int head_only) {
    if (cn->body_left < 0) {
        long body;
        long head = parse_head(cn, head_only, &body);
        if (head <= 0)
            return (int)head;
        if (body == -2) {
            /* Chunked: the whole body must fit the buffer (a bound of the generator, not of HTTP). */
            long whole = chunked_length(cn->buf + head, cn->len - head);
            if (whole < 0 || (whole == 0 && cn->len == sizeof cn->buf))
                return -1;
            if (whole == 0)
                return 0;
            cn->len = 0;
            return 1;
        }
        memmove(cn->buf, cn->buf + head, cn->len - head);
        cn->len -= head;
        cn->body_left = body;
    }
    /* A Content-Length body is counted, not kept, so its size is not bounded by the buffer. */
    size_t take = cn->len < (size_t)cn->body_left ? cn->len : (size_t)cn->body_left;
    cn->body_left -= take;
    memmove(cn->buf, cn->buf + take, cn->len - take);
    cn->len -= take;
    if (cn->body_left > 0)
        return 0;
    cn->body_left = -1;
    return 1;
}

/* A new connection in place of connection c's (the server closed it, or will). */
static int reopen(int ep, conn_t *cn, unsigned c, const target_t *target) {
    if (cn->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, cn->fd, NULL);
        close(cn->fd);
    }
    cn->len = 0;
    cn->busy = 0;
    cn->body_left = -1;
    cn->closing = 0;
    cn->fd = connect_to(target);
    if (cn->fd < 0)
        return -1;
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = c};
    return epoll_ctl(ep, EPOLL_CTL_ADD, cn->fd, &ev);
}

static double due_time(double t0, unsigned c, long k, int nconn, double rate) {
    return t0 + (c + (double)k * nconn) / rate;
}

int main(int argc, char **argv) {
    if (argc != 7 && argc != 8) {
        fprintf(stderr, "usage: meltemi-loadgen HOST PORT RATE CONNECTIONS SECONDS REQUEST_FILE [GRACE]\n");
        return 2;
    }
    target_t target = {0};
    double rate = atof(argv[3]);
    int nconn = atoi(argv[4]);
    double seconds = atof(argv[5]);
    double grace = argc == 8 ? atof(argv[7]) : 5.0;
    FILE *f = fopen(argv[6], "rb");
    if (resolve(argv[1], argv[2], &target) < 0 || !f || rate <= 0 || nconn <= 0 || seconds <= 0 || grace < 0) {
        fprintf(stderr, "meltemi-loadgen: bad arguments\n");
        return 2;
    }
    static char request[HEAD_MAX * 4];
    size_t request_len = fread(request, 1, sizeof request, f);
    fclose(f);
    target.request = request;
    target.request_len = request_len;
    target.head_only = strncmp(request, "HEAD ", 5) == 0;

    /* Every due request gets one latency: answered, or charged at the end. */
    long capacity = (long)(rate * seconds) + nconn + 16;
    uint32_t *latencies = malloc(capacity * sizeof *latencies);
    conn_t *conns = calloc(nconn, sizeof *conns);
    int ep = epoll_create1(0);
    if (!latencies || !conns || ep < 0) {
        fprintf(stderr, "meltemi-loadgen: out of memory\n");
        return 1;
    }
    long sent = 0, completed = 0, errors = 0, bad_status = 0, stored = 0;
    int last_bad_status = 0;
    for (int c = 0; c < nconn; c++) {
        conns[c].fd = -1;
        if (reopen(ep, &conns[c], c, &target) < 0) {
            fprintf(stderr, "meltemi-loadgen: cannot connect to %s port %s: %s\n", argv[1], argv[2], strerror(errno));
            return 1;
        }
    }
    double t0 = now_s() + 0.01, end = t0 + seconds;
    for (int c = 0; c < nconn; c++)
        conns[c].due = due_time(t0, c, 0, nconn, rate);

    double stop;
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
                        cn->next++;
                        cn->due = due_time(t0, c, cn->next, nconn, rate);
                        reopen(ep, cn, c, &target);
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
        if ((now >= end && !busy) || now >= end + grace) {
            stop = now;
            break;
        }
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
            unsigned c = events[i].data.u32;
            conn_t *cn = &conns[c];
            ssize_t got = read(cn->fd, cn->buf + cn->len, sizeof cn->buf - cn->len);
            if (got <= 0) {
                if (got < 0 && errno == EAGAIN)
                    continue;
                if (cn->busy) { /* the request in flight is lost: on to the next one */
                    errors++;
                    cn->next++;
                    cn->due = due_time(t0, c, cn->next, nconn, rate);
                }
                reopen(ep, cn, c, &target);
                continue;
            }
            cn->len += got;
            if (!cn->busy) { /* bytes nobody asked for: the connection is out of step */
                errors++;
                reopen(ep, cn, c, &target);
                continue;
            }
            int done = take_response(cn, target.head_only);
            if (done < 0) {
                errors++;
                cn->next++;
                cn->due = due_time(t0, c, cn->next, nconn, rate);
                reopen(ep, cn, c, &target);
                continue;
            }
            if (done == 0)
                continue;
            double now_done = now_s();
            if (stored < capacity)
                latencies[stored++] = (uint32_t)((now_done - cn->due) * 1e6);
            completed++;
            if (cn->status >= 400) {
                bad_status++;
                last_bad_status = cn->status;
            }
            cn->busy = 0;
            cn->next++;
            cn->due = due_time(t0, c, cn->next, nconn, rate);
            if (cn->closing)
                reopen(ep, cn, c, &target);
        }
    }

    /* Requests due but not answered (in flight at the stop, or never sent because their connection stayed busy,
     * or whose connection failed) are charged the time from their due time to the stop. */
    long due = 0, missing = 0;
    for (int c = 0; c < nconn; c++) {
        for (long k = 0; due_time(t0, c, k, nconn, rate) < end; k++) {
            due++;
            if (k < conns[c].next)
                continue;
            missing++;
            if (stored < capacity)
                latencies[stored++] = (uint32_t)((stop - due_time(t0, c, k, nconn, rate)) * 1e6);
        }
    }
    qsort(latencies, stored, sizeof *latencies, cmp_u32);
#define PCT(p) (stored ? latencies[(long)((p) / 100.0 * (stored - 1))] : 0)
    printf("{\"rate\": %.3f, \"seconds\": %.3f, \"connections\": %d, \"due\": %ld, \"sent\": %ld, \"completed\": %ld, "
           "\"errors\": %ld, \"bad_status\": %ld, \"last_bad_status\": %d, \"missing\": %ld, \"p50_us\": %u, "
           "\"p90_us\": %u, \"p99_us\": %u, \"p999_us\": %u, \"max_us\": %u}\n",
           rate, seconds, nconn, due, sent, completed, errors, bad_status, last_bad_status, missing, PCT(50), PCT(90),
           PCT(99), PCT(99.9), stored ? latencies[stored - 1] : 0);
    return 0;
}
