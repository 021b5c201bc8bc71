#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "accesslog.h"
#include "clock.h"
#include "common.h"
#include "metrics.h"
#include "requestid.h"
#include "respond.h"
#include "sock.h"

#define SWEEP_INTERVAL_MS 250
#define ACCEPT_BATCH 64
#define DRAIN_IDLE_GRACE_MS 1000

/* ---- connection life (I/O thread) ---- */

static void set_deadline(mt_conn_t *c, int timeout_ms) {
    atomic_store_explicit(&c->deadline_ms, mt_clock_now_ms() + timeout_ms, memory_order_relaxed);
}

/* Hands the connection to epoll for one readiness event. Whoever calls this
 * gives up ownership: from here on the I/O thread may take it. */
static void rearm(mt_server_t *s, mt_conn_t *c, int state) {
    atomic_store_explicit(&c->state, state, memory_order_release);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &c->src};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        /* Cannot happen for a valid fd; make the sweep close it. */
        atomic_store(&c->deadline_ms, 0);
    }
}

static const mt_conn_ops_t http1_ops;
static mt_conn_t *after_response(mt_server_t *s, mt_conn_t *c, bool keep_alive);
static void conn_on_event(mt_server_t *s, mt_io_source_t *src, uint32_t events);

static mt_conn_t *conn_create(mt_server_t *s, int fd, int listener, const mt_peer_t *peer) {
    mt_conn_t *c = s->free_conns;
    if (c)
        s->free_conns = c->next;
    else {
        c = malloc(sizeof *c + sizeof(mt_header_t) * s->config.limits.max_headers);
        if (c == NULL)
            return NULL;
    }
    if (mt_conn_init(c, s, fd) < 0) {
        free(c);
        return NULL;
    }
    c->src.on_event = conn_on_event;
    c->ops = &http1_ops;
    c->listener = listener;
    c->peer = *peer;
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    MT_COUNT(connections_opened);
    if (s->config.metrics)
        mt_metrics_add(&s->config.metrics->connections_accepted, 1);
    return c;
}

static void conn_close(mt_server_t *s, mt_conn_t *c) {
    if (c->ops->on_close)
        c->ops->on_close(s, c);
    close(c->fd); /* also removes it from epoll: the fd is never duplicated */
    mt_conn_dispose(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    c->next = s->free_conns;
    s->free_conns = c;
    MT_COUNT(connections_closed);
}

/* If part of the response is still queued, hands the connection to the I/O
 * thread, which writes the rest and then goes on as keep_alive says
 * (http1_on_flushed). Returns true then: the caller no longer owns c. After a
 * write error the queue is gone and *keep_alive is cleared. */
static bool flush_later(mt_server_t *s, mt_conn_t *c, bool *keep_alive) {
    pthread_mutex_lock(&c->out_lock);
    if (c->out_error)
        *keep_alive = false;
    bool pending = !mt_output_empty(&c->out);
    if (pending) {
        /* Only what the client pipelined is kept while the rest goes out:
         * thousands of slow downloads hold no request buffers. */
        mt_buf_consume(&c->rbuf, c->rpos);
        c->rpos = 0;
        if (c->rbuf.len == 0)
            mt_buf_dispose(&c->rbuf);
        mt_buf_dispose(&c->body);
        c->body_pos = 0;
        c->keep_alive_after = *keep_alive;
        atomic_store_explicit(&c->deadline_ms, c->out_progress_ms + s->config.write_timeout_ms, memory_order_relaxed);
        atomic_store_explicit(&c->state, MT_CONN_FLUSH, memory_order_release);
        mt_conn_arm_writable(c);
        if (c->out_error)
            atomic_store(&c->deadline_ms, 0); /* cannot happen for a valid fd; the sweep closes it */
    }
    pthread_mutex_unlock(&c->out_lock);
    return pending;
}

/* Sends what is in `out` (the server's own answers are small: they never
 * wait), then lingers: shut down for writing and discard input until the
 * client closes, so a pending request body does not turn our close into a
 * reset that destroys the answer. What the socket does not take at once is
 * written by the I/O thread first. */
static void answer_and_linger(mt_server_t *s, mt_conn_t *c, const char *out, size_t n) {
    if (n > 0) {
        struct iovec iov = {(void *)out, n};
        mt_conn_writev(c, &iov, 1);
    }
    bool keep_alive = false;
    if (flush_later(s, c, &keep_alive))
        return;
    shutdown(c->fd, SHUT_WR);
    mt_buf_dispose(&c->body);
    set_deadline(c, s->config.linger_ms);
    rearm(s, c, MT_CONN_LINGER);
}

static void answer_error(mt_server_t *s, mt_conn_t *c, int status, const char *reason) {
    mt_buf_t out;
    mt_buf_init(&out);
    if (mt_respond_error(&out, NULL, status, reason, false) == 0) {
        mt_server_record(s, c, status, mt_accesslog_body_length(out.data, out.len), false);
        answer_and_linger(s, c, out.data, out.len);
    } else {
        answer_and_linger(s, c, NULL, 0);
    }
    mt_buf_dispose(&out);
}

static void dispatch(mt_server_t *s, mt_conn_t *c) {
    atomic_store_explicit(&c->state, MT_CONN_ACTIVE, memory_order_relaxed);
    MT_COUNT(requests_started);
    mt_queue_push(&s->queue, &c->qitem);
}

/* A complete request on the I/O thread: answered here if the inline hook
 * can (a static file: no hand-off, no wake-up), and so on for what the
 * client pipelined; the first one it cannot answer goes to a handler. */
static void serve_or_dispatch(mt_server_t *s, mt_conn_t *c) {
    while (c) {
        bool keep_alive = false;
        if (s->config.answer_inline == NULL || !c->req.message_complete || mt_server_draining(s)) {
            dispatch(s, c);
            return;
        }
        atomic_store_explicit(&c->state, MT_CONN_ACTIVE, memory_order_relaxed);
        if (!s->config.answer_inline(s->config.inline_ctx, c, &keep_alive)) {
            MT_COUNT(requests_started);
            mt_queue_push(&s->queue, &c->qitem);
            return;
        }
        mt_server_record(s, c, c->answer_status, c->answer_bytes, true);
        c->answer_status = 0;
        MT_COUNT(requests_started);
        MT_COUNT(requests_finished);
        atomic_fetch_add_explicit(&s->requests_handled, 1, memory_order_relaxed);
        c->requests++;
        if (flush_later(s, c, &keep_alive))
            return;
        c = after_response(s, c, keep_alive);
    }
}

/* Parses what rbuf holds past rpos. Returns 1 when a request head is
 * complete, 0 when more input is needed, -1 after answering an error. */
static int parse_input(mt_server_t *s, mt_conn_t *c) {
    size_t stop;
    mt_parse_result_t r = mt_http1_parse(&c->req, c->rbuf.data, c->rpos, c->rbuf.len, &stop);
    c->rpos = stop;
    if (r == MT_PARSE_ERROR) {
        answer_error(s, c, c->req.error_status, c->req.error_reason);
        return -1;
    }
    if (!c->req.head_complete)
        return 0;
    if (c->head_us == 0) {
        c->head_us = mt_clock_now_us();
        if (s->config.request_id_header)
            mt_request_id_assign(c, s->config.request_id_header, s->config.request_id_header_len);
        mt_forwarded_resolve(s->config.trust, &c->peer, &c->req, c->rbuf.data, &c->fwd);
    }
    return 1;
}

static void http1_on_readable(mt_server_t *s, mt_conn_t *c) {
    int state = atomic_load_explicit(&c->state, memory_order_acquire);
    if (state == MT_CONN_LINGER) {
        char scratch[16384];
        for (int i = 0; i < 16; i++) {
            ssize_t n = read(c->fd, scratch, sizeof scratch);
            if (n > 0) {
                if (s->config.metrics)
                    mt_metrics_add(&s->config.metrics->bytes_in, (uint64_t)n);
                continue;
            }
            if (n < 0 && errno == EAGAIN) {
                rearm(s, c, MT_CONN_LINGER);
                return;
            }
            break;
        }
        conn_close(s, c);
        return;
    }
    /* Keep room for a whole head: it must stay contiguous for the parser's spans. */
    size_t room = c->rbuf.cap - c->rbuf.len;
    if (room < 2048 && mt_buf_reserve(&c->rbuf, room == 0 && c->rbuf.cap == 0 ? MT_BUF_BLOCK : c->rbuf.cap) < 0) {
        answer_error(s, c, 503, "out of memory");
        return;
    }
    ssize_t n = read(c->fd, c->rbuf.data + c->rbuf.len, c->rbuf.cap - c->rbuf.len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            rearm(s, c, state);
        else
            conn_close(s, c); /* closed or reset by the client between requests */
        return;
    }
    c->rbuf.len += (size_t)n;
    if (s->config.metrics)
        mt_metrics_add(&s->config.metrics->bytes_in, (uint64_t)n);
    if (state == MT_CONN_IDLE) {
        state = MT_CONN_HEAD;
        set_deadline(c, s->config.head_timeout_ms);
    }
    int r = parse_input(s, c);
    if (r > 0)
        serve_or_dispatch(s, c);
    else if (r == 0)
        rearm(s, c, state);
}

/* The answer to a connection refused for want of room: a clean 503, so the
 * client knows to retry, instead of a connection left in the backlog. */
static void busy_response(mt_buf_t *out) {
    out->len = 0;
    if (mt_respond_error(out, NULL, 503, "the server is at its connection limit", false) < 0)
        out->len = 0;
}

static void accept_batch(mt_server_t *s, mt_listener_t *l) {
    mt_buf_t busy;
    mt_buf_init(&busy);
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        mt_peer_t peer;
        int fd = mt_sock_accept(l->fd, &peer);
        if (fd < 0) {
            if (fd == -EMFILE || fd == -ENFILE) {
                busy_response(&busy);
                s->spare_fd = mt_sock_refuse_with_spare(l->fd, s->spare_fd, busy.data, busy.len);
            } else if (fd == -ECONNABORTED || fd == -EINTR) {
                continue;
            }
            break;
        }
        if (s->nconns >= s->config.max_connections) {
            busy_response(&busy);
            ssize_t ignored = write(fd, busy.data, busy.len);
            (void)ignored;
            close(fd);
            continue;
        }
        mt_conn_t *c = conn_create(s, fd, l->index, &peer);
        if (c == NULL) {
            close(fd);
            continue;
        }
        /* A client that connects and says nothing is dropped at the head timeout. */
        set_deadline(c, s->config.head_timeout_ms);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLONESHOT, .data.ptr = &c->src};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
            conn_close(s, c);
    }
    mt_buf_dispose(&busy);
}

/* HTTP/1.1's deadline: a late head gets 408; every late connection is shut
 * down, and epoll reports it (readable, or writable with an error), so the
 * event handler closes it. A connection that a handler is handing back may
 * be seen here between its state store and its epoll_ctl: that is why this
 * never closes a descriptor itself. */
static void http1_on_timeout(mt_server_t *s, mt_conn_t *c) {
    if (atomic_load_explicit(&c->state, memory_order_acquire) == MT_CONN_HEAD) {
        mt_buf_t out;
        mt_buf_init(&out);
        if (mt_respond_error(&out, NULL, 408, "the request head did not arrive in time", false) == 0) {
            mt_server_record(s, c, 408, mt_accesslog_body_length(out.data, out.len), false);
            ssize_t n = write(c->fd, out.data, out.len);
            if (n > 0 && s->config.metrics)
                mt_metrics_add(&s->config.metrics->bytes_out, (uint64_t)n);
        }
        mt_buf_dispose(&out);
    }
    shutdown(c->fd, SHUT_RDWR);
}

/* The queued rest of a response went out (rc 0) or could not (rc < 0),
 * while the I/O thread owned the connection. */
static void http1_on_flushed(mt_server_t *s, mt_conn_t *c, int rc) {
    if (rc < 0) {
        conn_close(s, c);
        return;
    }
    c = after_response(s, c, c->keep_alive_after);
    if (c)
        serve_or_dispatch(s, c);
}

static void http1_on_close(mt_server_t *s, mt_conn_t *c) {}

static const mt_conn_ops_t http1_ops = {
    .name = "http/1.1",
    .on_readable = http1_on_readable,
    .on_flushed = http1_on_flushed,
    .on_timeout = http1_on_timeout,
    .on_close = http1_on_close,
};

/* An upgraded protocol's connection: its queued output is written, then its
 * protocol reads. The protocol re-arms with mt_server_rearm_open (or closes
 * with mt_server_close); a connection that was only writable is re-armed
 * here. */
static void open_on_event(mt_server_t *s, mt_conn_t *c, uint32_t events) {
    if (c->out_armed && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
        bool flushing;
        int rc = mt_conn_on_writable(c, &flushing);
        if (rc < 0 && rc != -EAGAIN) {
            conn_close(s, c);
            return;
        }
    }
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) || c->input_pending) {
        c->input_pending = false;
        c->ops->on_readable(s, c);
    } else {
        mt_server_rearm_open(s, c);
    }
}

/* epoll reported a connection. While a handler owns it (ACTIVE) or the I/O
 * thread writes its queued output (FLUSH), only EPOLLOUT is armed. */
static void conn_on_event(mt_server_t *s, mt_io_source_t *src, uint32_t events) {
    mt_conn_t *c = (mt_conn_t *)src;
    int state = atomic_load_explicit(&c->state, memory_order_acquire);
    if (state == MT_CONN_OPEN) {
        open_on_event(s, c, events);
        return;
    }
    if (state != MT_CONN_ACTIVE && state != MT_CONN_FLUSH) {
        c->ops->on_readable(s, c);
        return;
    }
    bool flushing;
    int rc = mt_conn_on_writable(c, &flushing);
    if (!flushing)
        return; /* the handler that owns it goes on; a failure reaches it at its next write */
    if (rc == -EAGAIN)
        set_deadline(c, s->config.write_timeout_ms);
    else
        c->ops->on_flushed(s, c, rc);
}

/* Calls on_timeout for connections whose deadline passed (not those a
 * handler owns: it keeps its own time). */
static void sweep(mt_server_t *s, int64_t now) {
    s->last_sweep_ms = now;
    for (mt_conn_t *c = s->conns; c; c = c->next) {
        int state = atomic_load_explicit(&c->state, memory_order_acquire);
        if (state == MT_CONN_ACTIVE || atomic_load_explicit(&c->deadline_ms, memory_order_relaxed) > now)
            continue;
        atomic_store_explicit(&c->deadline_ms, INT64_MAX, memory_order_relaxed);
        c->ops->on_timeout(s, c);
    }
}

/* Gives up this process's reference to each listening socket, so that once
 * the master and the other workers have given up theirs (a final stop), the
 * socket closes and a new client is refused at once instead of waiting in a
 * backlog that nobody accepts from. On a reload the master keeps its
 * reference and the replacement accepts what queues meanwhile. The
 * descriptors belong to Python's socket objects, which close them later:
 * /dev/null is put in their place (dup3), so no descriptor number is freed
 * for another file while Python still holds it. Without a spare descriptor
 * for /dev/null, the listeners stay as they were. */
static void release_listeners(mt_server_t *s) {
    int placeholder = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (placeholder < 0)
        return;
    for (int i = 0; i < s->nlisteners; i++)
        if (s->listeners[i].fd != placeholder)
            dup3(placeholder, s->listeners[i].fd, O_CLOEXEC);
    close(placeholder);
}

static void begin_drain(mt_server_t *s) {
    if (atomic_load(&s->draining))
        return;
    atomic_store(&s->draining, true);
    for (int i = 0; i < s->nlisteners; i++)
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listeners[i].fd, NULL);
    release_listeners(s);
    /* Idle keep-alive connections get a short grace: a client in the middle
     * of a steady load sends its next request at once and gets it answered
     * (with "Connection: close"), instead of racing our close. */
    int64_t grace = mt_clock_now_ms() + MT_MIN(DRAIN_IDLE_GRACE_MS, s->config.keepalive_timeout_ms);
    for (mt_conn_t *c = s->conns; c; c = c->next)
        if (atomic_load(&c->state) == MT_CONN_IDLE && atomic_load(&c->deadline_ms) > grace)
            atomic_store(&c->deadline_ms, grace);
}

static void listener_on_event(mt_server_t *s, mt_io_source_t *src, uint32_t events) {
    /* A listener reported in the batch that began the drain is no socket any more. */
    if (!atomic_load(&s->draining))
        accept_batch(s, (mt_listener_t *)src);
}

static void wake_on_event(mt_server_t *s, mt_io_source_t *src, uint32_t events) {
    uint64_t value;
    ssize_t ignored = read(s->wake_fd, &value, sizeof value);
    (void)ignored;
    if (atomic_load(&s->shutdown_requested))
        begin_drain(s);
}

void mt_server_thread_batch(void) {
    /* SCHED_BATCH turns off wake-up preemption for this thread: a thread
     * woken by the other (a handler by a queued request, the I/O thread by a
     * readable socket) waits for the running one to block instead of
     * preempting it at once. Under load each side then works through a batch
     * per switch rather than switching twice per request. Lowering a
     * thread's policy needs no privilege; failure changes nothing. */
    struct sched_param param = {0};
    sched_setscheduler(0, SCHED_BATCH, &param);
}

/* The calling handler thread's slot in s->handlers, or -1. */
static __thread int handler_slot = -1;

/* True unless a busy handler thread is running or runnable (state R in
 * /proc): then it is making progress, or would if it had the CPU, and
 * another thread would only compete with it for the CPU and the GIL. */
static bool handlers_blocked(mt_server_t *s) {
    int n = MT_MIN(atomic_load(&s->nhandlers), MT_MAX_HANDLERS);
    for (int i = 0; i < n; i++) {
        int tid = atomic_load(&s->handlers[i].tid);
        if (tid == 0 || !atomic_load(&s->handlers[i].busy))
            continue;
        char path[64], stat[256];
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, stat, sizeof stat - 1);
        close(fd);
        if (len <= 0)
            continue;
        stat[len] = '\0';
        const char *end = strrchr(stat, ')'); /* the name may hold spaces and parentheses */
        if (end && end[1] == ' ' && end[2] == 'R')
            return false;
    }
    return true;
}

/* Stores the gauges of the metrics slot (I/O thread, after each round of
 * events): plain stores, no lock. In flight: requests queued for a handler
 * thread, and the handler threads busy with one. */
static void publish_gauges(mt_server_t *s, mt_metrics_slot_t *m) {
    int queued = mt_queue_length(&s->queue);
    int busy = 0;
    int n = MT_MIN(atomic_load_explicit(&s->nhandlers, memory_order_relaxed), MT_MAX_HANDLERS);
    for (int i = 0; i < n; i++)
        busy += atomic_load_explicit(&s->handlers[i].tid, memory_order_relaxed) != 0 &&
                atomic_load_explicit(&s->handlers[i].busy, memory_order_relaxed);
    mt_metrics_set(&m->connections, s->nconns);
    mt_metrics_set(&m->queued, (uint64_t)queued);
    mt_metrics_set(&m->in_flight, (uint64_t)(queued + busy));
}

static void *io_main(void *arg) {
    mt_server_t *s = arg;
    mt_conn_never_wait = true;
    if (s->config.dispatch.sched_batch)
        mt_server_thread_batch();
    /* A handler that took no new work for stall_ms while requests wait may be
     * blocked (a sleep, a query): then another one is woken. */
    int stall_ms = s->config.dispatch.stall_ms;
    struct epoll_event events[256];
    for (;;) {
        /* Requests wait while handlers that could take them sleep: the
         * running handler may be blocked, look again soon. */
        int timeout = SWEEP_INTERVAL_MS;
        if (stall_ms > 0 && mt_queue_stall_possible(&s->queue))
            timeout = MT_MIN(stall_ms, SWEEP_INTERVAL_MS);
        int n = epoll_wait(s->epfd, events, MT_ARRAY_SIZE(events), timeout);
        for (int i = 0; i < n; i++) {
            mt_io_source_t *src = events[i].data.ptr;
            src->on_event(s, src, events[i].events);
        }
        int64_t now = mt_clock_now_ms();
        if (stall_ms > 0 && mt_queue_stalled(&s->queue, now, stall_ms) && handlers_blocked(s))
            mt_queue_wake_one(&s->queue, now);
        if (now - s->last_sweep_ms >= SWEEP_INTERVAL_MS)
            sweep(s, now);
        if (s->config.metrics)
            publish_gauges(s, s->config.metrics);
        if (atomic_load(&s->draining) && s->nconns == 0)
            break;
    }
    if (s->config.metrics)
        publish_gauges(s, s->config.metrics);
    mt_queue_close(&s->queue);
    atomic_store(&s->io_done, true);
    return NULL;
}

/* ---- public API ---- */

int mt_server_init(mt_server_t *s, const mt_server_config_t *config, const int *listen_fds, int nlisteners) {
    memset(s, 0, sizeof *s);
    s->config = *config;
    s->epfd = -1;
    s->wake_fd = -1;
    s->spare_fd = -1;
    int rc = mt_queue_init(&s->queue);
    if (rc < 0)
        return rc;
    s->listeners = calloc((size_t)MT_MAX(nlisteners, 1), sizeof *s->listeners);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->spare_fd = mt_sock_spare_open();
    if (s->listeners == NULL || s->epfd < 0 || s->wake_fd < 0) {
        rc = s->listeners == NULL ? -ENOMEM : -errno;
        goto error;
    }
    s->wake_src.on_event = wake_on_event;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &s->wake_src};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &ev) < 0) {
        rc = -errno;
        goto error;
    }
    for (int i = 0; i < nlisteners; i++) {
        mt_listener_t *l = &s->listeners[i];
        l->src.on_event = listener_on_event;
        l->fd = listen_fds[i];
        l->index = i;
        /* EPOLLEXCLUSIVE: a socket shared by several workers (a Unix socket)
         * wakes one of them per connection, not all. */
        struct epoll_event lev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &l->src};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, l->fd, &lev) < 0) {
            rc = -errno;
            goto error;
        }
    }
    s->nlisteners = nlisteners;
    s->last_sweep_ms = mt_clock_now_ms();
    return 0;
error:
    mt_server_dispose(s);
    return rc;
}

int mt_server_start(mt_server_t *s) {
    int rc = pthread_create(&s->io_thread, NULL, io_main, s);
    if (rc)
        return -rc;
    s->io_started = true;
    return 0;
}

void mt_server_shutdown(mt_server_t *s) {
    atomic_store(&s->shutdown_requested, true);
    uint64_t one = 1;
    ssize_t ignored = write(s->wake_fd, &one, sizeof one);
    (void)ignored;
}

bool mt_server_draining(const mt_server_t *s) {
    return atomic_load_explicit(&((mt_server_t *)s)->shutdown_requested, memory_order_relaxed);
}

void mt_server_handler_enter(mt_server_t *s) {
    int slot = atomic_fetch_add(&s->nhandlers, 1);
    if (slot < MT_MAX_HANDLERS) {
        atomic_store(&s->handlers[slot].busy, true);
        atomic_store(&s->handlers[slot].tid, (int)gettid());
        handler_slot = slot;
    }
    if (!s->config.dispatch.wake_each)
        mt_queue_consumer_enter(&s->queue);
}

void mt_server_handler_exit(mt_server_t *s) {
    if (handler_slot >= 0) {
        atomic_store(&s->handlers[handler_slot].tid, 0);
        atomic_store(&s->handlers[handler_slot].busy, false);
        handler_slot = -1;
    }
    if (!s->config.dispatch.wake_each)
        mt_queue_consumer_exit(&s->queue);
}

mt_conn_t *mt_server_next(mt_server_t *s) {
    return mt_server_next_timed(s, -1);
}

mt_conn_t *mt_server_next_timed(mt_server_t *s, int timeout_ms) {
    if (handler_slot >= 0)
        atomic_store_explicit(&s->handlers[handler_slot].busy, false, memory_order_relaxed);
    mt_queue_item_t *item = mt_queue_pop_timed(&s->queue, timeout_ms);
    if (handler_slot >= 0 && item)
        atomic_store_explicit(&s->handlers[handler_slot].busy, true, memory_order_relaxed);
    return item ? mt_conn_from_item(item) : NULL;
}

/* What follows a response, by the connection's owner (a handler thread, or
 * the I/O thread after writing the queued rest): a pipelined next request is
 * returned (complete head, still owned by the caller); otherwise the
 * connection goes back to epoll, to linger or to wait for the next request,
 * and NULL is returned. */
static mt_conn_t *after_response(mt_server_t *s, mt_conn_t *c, bool keep_alive) {
    if (!keep_alive || mt_server_draining(s)) {
        answer_and_linger(s, c, NULL, 0);
        return NULL;
    }
    /* Keep the bytes the client pipelined after this request, at offset 0. */
    mt_buf_consume(&c->rbuf, c->rpos);
    c->rpos = 0;
    c->body_pos = 0;
    c->body.len = 0;
    c->head_consumed = false;
    c->continue_sent = false;
    c->head_us = 0;
    c->request_id_len = 0;
    c->cors = NULL;
    c->fwd.client.len = 0;
    c->fwd.https = -1;
    c->fwd.host.len = 0;
    mt_http1_next(&c->req, 0);
    if (c->rbuf.len > 0) {
        int r = parse_input(s, c);
        if (r < 0)
            return NULL;
        if (r > 0)
            return c;
        set_deadline(c, s->config.head_timeout_ms);
        rearm(s, c, MT_CONN_HEAD);
        return NULL;
    }
    /* Idle: give the blocks back to the pool while the client thinks. */
    mt_buf_dispose(&c->rbuf);
    mt_buf_dispose(&c->body);
    set_deadline(c, s->config.keepalive_timeout_ms);
    rearm(s, c, MT_CONN_IDLE);
    return NULL;
}

mt_conn_t *mt_server_finish(mt_server_t *s, mt_conn_t *c, bool keep_alive) {
    MT_COUNT(requests_finished);
    mt_queue_progress(&s->queue, mt_clock_now_ms());
    atomic_fetch_add_explicit(&s->requests_handled, 1, memory_order_relaxed);
    c->requests++;
    if (flush_later(s, c, &keep_alive))
        return NULL;
    c = after_response(s, c, keep_alive);
    if (c)
        MT_COUNT(requests_started);
    return c;
}

void mt_server_upgrade(mt_server_t *s, mt_conn_t *c, const mt_conn_ops_t *ops, void *proto) {
    MT_COUNT(requests_finished);
    atomic_fetch_add_explicit(&s->requests_handled, 1, memory_order_relaxed);
    c->requests++;
    /* What the client sent after the upgrade request is the new protocol's. */
    mt_buf_consume(&c->rbuf, c->rpos);
    c->rpos = 0;
    mt_buf_dispose(&c->body);
    c->ops = ops;
    c->proto = proto;
    set_deadline(c, s->config.keepalive_timeout_ms);
    pthread_mutex_lock(&c->out_lock);
    atomic_store_explicit(&c->state, MT_CONN_OPEN, memory_order_release);
    if (mt_output_empty(&c->out)) {
        pthread_mutex_unlock(&c->out_lock);
        /* Bytes already read are the protocol's at once: no EPOLLIN may
         * come for them, so an EPOLLOUT (at once: the socket has room)
         * brings the I/O thread to them. */
        if (c->rbuf.len > 0) {
            c->input_pending = true;
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLONESHOT, .data.ptr = &c->src};
            if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
                atomic_store(&c->deadline_ms, 0);
            return;
        }
        rearm(s, c, MT_CONN_OPEN);
        return;
    }
    c->input_pending = c->rbuf.len > 0;
    mt_conn_arm_writable(c); /* EPOLLIN too, in this state */
    pthread_mutex_unlock(&c->out_lock);
}

void mt_server_rearm_open(mt_server_t *s, mt_conn_t *c) {
    pthread_mutex_lock(&c->out_lock);
    if (mt_output_empty(&c->out) || c->out_error) {
        pthread_mutex_unlock(&c->out_lock);
        rearm(s, c, MT_CONN_OPEN);
        return;
    }
    c->out_armed = false; /* re-armed with both interests */
    mt_conn_arm_writable(c);
    pthread_mutex_unlock(&c->out_lock);
}

void mt_server_close(mt_server_t *s, mt_conn_t *c) {
    conn_close(s, c);
}

void mt_server_record(mt_server_t *s, mt_conn_t *c, int status, unsigned long long bytes, bool head_parsed) {
    mt_accesslog_conn(s->config.access_log, c, status, bytes, head_parsed);
    if (s->config.metrics)
        mt_metrics_request(s->config.metrics, c->metric_route, status, c->head_us ? mt_clock_now_us() - c->head_us : 0);
    c->metric_route = MT_METRICS_ROUTE_SERVER;
}

int mt_server_join(mt_server_t *s, int timeout_ms) {
    if (!s->io_started)
        return 0;
    if (timeout_ms < 0) {
        pthread_join(s->io_thread, NULL);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_timedjoin_np(s->io_thread, NULL, &ts) != 0)
            return -ETIMEDOUT;
    }
    s->io_started = false;
    return 0;
}

void mt_server_dispose(mt_server_t *s) {
    while (s->conns)
        conn_close(s, s->conns);
    while (s->free_conns) {
        mt_conn_t *next = s->free_conns->next;
        free(s->free_conns);
        s->free_conns = next;
    }
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    free(s->listeners);
    s->listeners = NULL;
    s->epfd = s->wake_fd = s->spare_fd = -1;
    mt_queue_dispose(&s->queue);
}
