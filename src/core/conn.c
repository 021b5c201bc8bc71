#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "clock.h"
#include "common.h"
#include "server.h"

/* Waits for `events` on the connection's socket for up to timeout_ms.
 * Returns 0 when ready, -ETIMEDOUT, or -errno. */
static int wait_for(mt_conn_t *c, short events, int timeout_ms) {
    struct pollfd pfd = {.fd = c->fd, .events = events};
    for (;;) {
        int n = poll(&pfd, 1, timeout_ms);
        if (n > 0)
            return 0; /* readable, writable, or an error/hangup that the next call reports */
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* After a read or write that failed with errno set: 0 to try again (it was
 * interrupted, or the socket became ready in time), or a negative errno. */
static int await_ready(mt_conn_t *c, short events, int timeout_ms) {
    if (errno == EINTR)
        return 0;
    if (errno != EAGAIN)
        return -errno;
    return wait_for(c, events, timeout_ms);
}

static int send_continue(mt_conn_t *c) {
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = {(void *)line, sizeof line - 1};
    c->continue_sent = true;
    return mt_conn_writev(c, &iov, 1);
}

/* Reads more raw input into rbuf, blocking up to the body timeout. Before
 * reading, drops the bytes already parsed so rbuf does not grow with the
 * body. Returns bytes read (> 0), -MT_ECLOSED, -ETIMEDOUT or -errno. */
static ssize_t read_more(mt_conn_t *c) {
    if (c->head_consumed && c->rpos) {
        mt_buf_consume(&c->rbuf, c->rpos);
        c->rpos = 0;
    }
    if (c->rbuf.cap - c->rbuf.len < 4096 && mt_buf_reserve(&c->rbuf, MT_BUF_BLOCK / 2) < 0)
        return -ENOMEM;
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf.data + c->rbuf.len, c->rbuf.cap - c->rbuf.len);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            return n;
        }
        if (n == 0)
            return -MT_ECLOSED;
        int rc = await_ready(c, POLLIN, c->server->config.body_timeout_ms);
        if (rc < 0)
            return rc;
    }
}

ssize_t mt_conn_body_fill(mt_conn_t *c, size_t want) {
    if (c->req.expect_continue && !c->continue_sent && !c->req.message_complete) {
        int rc = send_continue(c);
        if (rc < 0)
            return rc;
    }
    for (;;) {
        size_t available = c->body.len - c->body_pos;
        if (available >= want || c->req.message_complete)
            return (ssize_t)MT_MIN(available, want);
        if (c->rpos < c->rbuf.len) {
            size_t stop;
            mt_parse_result_t r = mt_http1_parse(&c->req, c->rbuf.data, c->rpos, c->rbuf.len, &stop);
            c->rpos = stop;
            if (r == MT_PARSE_ERROR)
                return -MT_EPROTO;
            continue;
        }
        /* Drop what the application already read, so the body buffer holds
         * at most one read's worth beyond what was asked for. */
        if (c->body_pos) {
            mt_buf_consume(&c->body, c->body_pos);
            c->body_pos = 0;
        }
        ssize_t n = read_more(c);
        if (n < 0)
            return n;
    }
}

void mt_conn_body_consume(mt_conn_t *c, size_t n) {
    c->body_pos += n;
    if (c->body_pos >= c->body.len)
        c->body_pos = c->body.len = 0;
}

int mt_conn_body_skip(mt_conn_t *c, uint64_t limit) {
    if (c->req.expect_continue && !c->continue_sent && !c->req.message_complete)
        return -EAGAIN; /* the client waits for our go-ahead that will not come: close instead */
    uint64_t skipped = 0;
    for (;;) {
        size_t available = c->body.len - c->body_pos;
        skipped += available;
        mt_conn_body_consume(c, available);
        if (c->req.message_complete)
            return 0;
        if (skipped > limit)
            return -EFBIG;
        ssize_t n = mt_conn_body_fill(c, (size_t)MT_MIN((uint64_t)65536, limit - skipped + 1));
        if (n < 0)
            return (int)n;
    }
}

int mt_conn_writev(mt_conn_t *c, struct iovec *iov, int iovcnt) {
    while (iovcnt > 0) {
        ssize_t n = writev(c->fd, iov, iovcnt > IOV_MAX ? IOV_MAX : iovcnt);
        if (n < 0) {
            int rc = await_ready(c, POLLOUT, c->server->config.write_timeout_ms);
            if (rc < 0)
                return rc;
            continue;
        }
        size_t done = (size_t)n;
        while (iovcnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

int mt_conn_sendfile(mt_conn_t *c, int fd, off_t *offset, size_t count) {
    while (count > 0) {
        ssize_t n = sendfile(c->fd, fd, offset, MT_MIN(count, (size_t)1 << 30));
        if (n > 0) {
            count -= (size_t)n;
            continue;
        }
        if (n == 0)
            return -ENODATA; /* the file is shorter than announced */
        int rc = await_ready(c, POLLOUT, c->server->config.write_timeout_ms);
        if (rc < 0)
            return rc;
    }
    return 0;
}
