#include "conn.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "common.h"
#include "metrics.h"
#include "server.h"

/* Counts n bytes read from or written to the client in the worker's metrics slot (if any). */
static inline void count_bytes(mt_conn_t *c, bool in, size_t n) {
    mt_metrics_slot_t *m = c->server->config.metrics;
    if (m)
        mt_metrics_add(in ? &m->bytes_in : &m->bytes_out, n);
}

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
static ssize_t read_more(mt_conn_t *c, bool wait) {
    if (c->head_consumed && c->rpos) {
        /* With an access log, the head's spans are read once more after the
         * response: its bytes stay (at most max_head_size), the body read
         * so far goes. */
        size_t keep = 0;
        if (c->server->config.access_log) {
            const mt_request_t *r = &c->req;
            keep = r->target.off + r->target.len;
            if (r->nheaders)
                keep = MT_MAX(keep, r->headers[r->nheaders - 1].value.off + r->headers[r->nheaders - 1].value.len);
            keep = MT_MIN(keep, c->rpos);
        }
        memmove(c->rbuf.data + keep, c->rbuf.data + c->rpos, c->rbuf.len - c->rpos);
        c->rbuf.len -= c->rpos - keep;
        c->rpos = keep;
    }
    if (c->rbuf.cap - c->rbuf.len < 4096 && mt_buf_reserve(&c->rbuf, MT_BUF_BLOCK / 2) < 0)
        return -ENOMEM;
    for (;;) {
        ssize_t n = read(c->fd, c->rbuf.data + c->rbuf.len, c->rbuf.cap - c->rbuf.len);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            count_bytes(c, true, (size_t)n);
            return n;
        }
        if (n == 0)
            return -MT_ECLOSED;
        if (!wait && (errno == EAGAIN || errno == EWOULDBLOCK))
            return -EAGAIN;
        int rc = await_ready(c, POLLIN, c->server->config.body_timeout_ms);
        if (rc < 0)
            return rc;
    }
}

static ssize_t body_fill(mt_conn_t *c, size_t want, bool wait) {
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
        ssize_t n = read_more(c, wait);
        if (n < 0)
            return n;
    }
}

ssize_t mt_conn_body_fill(mt_conn_t *c, size_t want) {
    return body_fill(c, want, true);
}

ssize_t mt_conn_body_fill_nowait(mt_conn_t *c, size_t want) {
    return body_fill(c, want, false);
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

/* ---- output ---- */

__thread bool mt_conn_never_wait;

static void abstime_after(struct timespec *ts, int64_t ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

void mt_conn_arm_writable(mt_conn_t *c) {
    if (c->out_armed)
        return;
    /* An upgraded protocol's connection also keeps reading meanwhile. */
    bool open = atomic_load_explicit(&c->state, memory_order_relaxed) == MT_CONN_OPEN;
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLONESHOT | (open ? EPOLLIN : 0), .data.ptr = &c->src};
    if (epoll_ctl(c->server->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0 &&
        (errno != ENOENT || epoll_ctl(c->server->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)) {
        c->out_error = -errno;
        return;
    }
    c->out_armed = true;
}

/* Tells an event-loop producer that waits for the low mark (out_lock held). */
static void drained(mt_conn_t *c) {
    pthread_cond_broadcast(&c->out_drained);
    if (c->drain_notify) {
        c->drain_notify = false;
        const mt_server_config_t *cfg = &c->server->config;
        if (cfg->on_drained)
            cfg->on_drained(cfg->drained_ctx, c);
    }
}

/* Fails every later write with rc and drops what was queued (out_lock held). */
static int fail_output(mt_conn_t *c, int rc) {
    if (c->out_error == 0)
        c->out_error = rc;
    mt_output_clear(&c->out);
    drained(c);
    return c->out_error;
}

bool mt_conn_output_full(mt_conn_t *c) {
    pthread_mutex_lock(&c->out_lock);
    bool full = c->out_error == 0 && c->out.memory > c->server->config.output_high_water;
    if (full)
        c->drain_notify = true;
    pthread_mutex_unlock(&c->out_lock);
    return full;
}

void mt_conn_fail(mt_conn_t *c, int rc) {
    pthread_mutex_lock(&c->out_lock);
    fail_output(c, rc);
    pthread_mutex_unlock(&c->out_lock);
}

/* Waits (out_lock held) until the queue holds at most `mark` bytes of memory
 * (0: until it is empty), the write fails, or no byte went out for the write
 * timeout. Returns 0 or a negative errno. */
static int wait_below(mt_conn_t *c, size_t mark) {
    const mt_server_config_t *cfg = &c->server->config;
    while (c->out_error == 0 && (mark ? c->out.memory > mark : !mt_output_empty(&c->out))) {
        int64_t left = c->out_progress_ms + cfg->write_timeout_ms - mt_clock_now_ms();
        if (left <= 0)
            return fail_output(c, -ETIMEDOUT);
        struct timespec ts;
        abstime_after(&ts, left);
        pthread_cond_timedwait(&c->out_drained, &c->out_lock, &ts);
    }
    return c->out_error;
}

/* Drops the first n bytes of iov (n no more than it holds). */
static void iov_advance(struct iovec **iov, int *iovcnt, size_t n) {
    while (*iovcnt > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*iovcnt)--;
    }
    if (*iovcnt > 0 && n > 0) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
    /* Empty entries at the end mean nothing is left. */
    while (*iovcnt > 0 && (*iov)->iov_len == 0) {
        (*iov)++;
        (*iovcnt)--;
    }
}

static int conn_writev(mt_conn_t *c, struct iovec *iov, int iovcnt, int flags) {
    const mt_server_config_t *cfg = &c->server->config;
    iov_advance(&iov, &iovcnt, 0);
    pthread_mutex_lock(&c->out_lock);
    int rc = c->out_error;
    while (rc == 0 && iovcnt > 0) {
        if (mt_output_empty(&c->out)) {
            /* Nothing queued: the socket first (the fast path, no copy). */
            int batch = iovcnt > IOV_MAX ? IOV_MAX : iovcnt;
            size_t batch_len = 0;
            for (int i = 0; i < batch; i++)
                batch_len += iov[i].iov_len;
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)batch};
            ssize_t n = flags ? sendmsg(c->fd, &msg, flags) : writev(c->fd, iov, batch);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno != EAGAIN) {
                rc = fail_output(c, -errno);
                break;
            }
            c->out_progress_ms = mt_clock_now_ms();
            if (n > 0) {
                count_bytes(c, false, (size_t)n);
                iov_advance(&iov, &iovcnt, (size_t)n);
                if ((size_t)n == batch_len)
                    continue; /* all taken: write the next batch, if any */
            }
            /* A short write means the socket is full: queue the rest. */
        }
        size_t room = cfg->output_high_water > c->out.memory ? cfg->output_high_water - c->out.memory : 0;
        if (mt_conn_never_wait)
            room = SIZE_MAX;
        if (room > 0) {
            ssize_t taken = mt_output_append_iov(&c->out, iov, MT_MIN(iovcnt, IOV_MAX), room);
            if (taken < 0) {
                rc = fail_output(c, (int)taken);
                break;
            }
            iov_advance(&iov, &iovcnt, (size_t)taken);
            mt_conn_arm_writable(c);
            rc = c->out_error;
            continue;
        }
        rc = wait_below(c, cfg->output_low_water);
    }
    pthread_mutex_unlock(&c->out_lock);
    return rc;
}

int mt_conn_writev(mt_conn_t *c, struct iovec *iov, int iovcnt) {
    return conn_writev(c, iov, iovcnt, 0);
}

int mt_conn_writev_more(mt_conn_t *c, struct iovec *iov, int iovcnt) {
    return conn_writev(c, iov, iovcnt, MSG_MORE | MSG_NOSIGNAL);
}

int mt_conn_sendfile(mt_conn_t *c, int fd, off_t *offset, size_t count) {
    pthread_mutex_lock(&c->out_lock);
    int rc = c->out_error;
    bool sent = false;
    while (rc == 0 && count > 0 && mt_output_empty(&c->out)) {
        ssize_t n = sendfile(c->fd, fd, offset, MT_MIN(count, (size_t)1 << 30));
        if (n > 0) {
            count -= (size_t)n;
            sent = true;
            count_bytes(c, false, (size_t)n);
            c->out_progress_ms = mt_clock_now_ms();
            continue;
        }
        if (n == 0) {
            rc = fail_output(c, -ENODATA); /* the file is shorter than announced */
            break;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN)
            break;
        if ((errno == EINVAL || errno == ENOSYS) && !sent) {
            rc = -errno; /* not a failure of the connection: the caller copies instead */
            pthread_mutex_unlock(&c->out_lock);
            return rc;
        }
        rc = fail_output(c, -errno);
    }
    if (rc == 0 && count > 0) {
        if (mt_output_empty(&c->out))
            c->out_progress_ms = mt_clock_now_ms();
        rc = mt_output_append_file(&c->out, fd, *offset, count);
        if (rc < 0)
            rc = fail_output(c, rc);
        else {
            *offset += (off_t)count;
            mt_conn_arm_writable(c);
            rc = c->out_error;
        }
    }
    pthread_mutex_unlock(&c->out_lock);
    return rc;
}

int mt_conn_drain(mt_conn_t *c) {
    pthread_mutex_lock(&c->out_lock);
    int rc = wait_below(c, 0);
    pthread_mutex_unlock(&c->out_lock);
    return rc;
}

int mt_conn_on_writable(mt_conn_t *c, bool *flushing) {
    pthread_mutex_lock(&c->out_lock);
    *flushing = atomic_load_explicit(&c->state, memory_order_relaxed) == MT_CONN_FLUSH;
    c->out_armed = false;
    size_t written = 0;
    int rc = c->out_error;
    if (rc == 0)
        rc = mt_output_write(&c->out, c->fd, &written);
    if (written) {
        c->out_progress_ms = mt_clock_now_ms();
        count_bytes(c, false, written);
    }
    if (rc == -EAGAIN) {
        mt_conn_arm_writable(c);
        if (c->out_error)
            rc = fail_output(c, c->out_error);
        else if (c->out.memory <= c->server->config.output_low_water)
            drained(c);
    } else if (rc < 0) {
        rc = fail_output(c, rc);
    } else {
        drained(c);
    }
    pthread_mutex_unlock(&c->out_lock);
    return rc;
}

/* ---- life ---- */

int mt_conn_init(mt_conn_t *c, struct mt_server *s, int fd) {
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&c->out_drained, &attr);
    pthread_condattr_destroy(&attr);
    if (rc)
        return -rc;
    if ((rc = pthread_mutex_init(&c->out_lock, NULL))) {
        pthread_cond_destroy(&c->out_drained);
        return -rc;
    }
    c->src.on_event = NULL;
    c->ops = NULL;
    c->proto = NULL;
    c->server = s;
    c->fd = fd;
    atomic_init(&c->state, MT_CONN_IDLE);
    atomic_init(&c->deadline_ms, 0);
    mt_buf_init(&c->rbuf);
    mt_buf_init(&c->body);
    c->rpos = 0;
    c->body_pos = 0;
    c->head_consumed = false;
    c->continue_sent = false;
    c->input_pending = false;
    c->requests = 0;
    c->head_us = 0;
    c->request_id_len = 0;
    c->fwd.client.len = 0;
    c->fwd.https = -1;
    c->fwd.host.len = 0;
    c->answer_status = 0;
    c->answer_bytes = 0;
    c->metric_route = 0;
    c->cors = NULL;
    mt_output_init(&c->out);
    c->out_armed = false;
    c->drain_notify = false;
    c->keep_alive_after = false;
    c->out_error = 0;
    c->out_progress_ms = 0;
    mt_http1_init(&c->req, &s->config.limits, c->headers, &c->body);
    return 0;
}

void mt_conn_dispose(mt_conn_t *c) {
    mt_output_clear(&c->out);
    mt_buf_dispose(&c->rbuf);
    mt_buf_dispose(&c->body);
    pthread_mutex_destroy(&c->out_lock);
    pthread_cond_destroy(&c->out_drained);
}
