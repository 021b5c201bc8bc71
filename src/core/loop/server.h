/* A worker's HTTP server: the I/O thread (epoll, accept, head parsing,
 * timeouts, errors answered in C) and the hand-off of parsed requests to
 * handler threads.
 *
 * Threads: mt_server_start() spawns the I/O thread, which never runs Python.
 * Handler threads call mt_server_next() to take a connection with a complete
 * request head, answer it with the conn.h functions, and give it back with
 * mt_server_finish(). mt_server_shutdown() may be called from any thread or a
 * signal handler. */
#ifndef MT_SERVER_H
#define MT_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "conn.h"
#include "http1.h"
#include "queue.h"

/* How parsed requests reach the handler threads: the mechanisms, each
 * chosen by meltemi/config.py (options dispatch, stall_ms, sched_batch; the
 * rule and its measurements are in docs/design.md, "Dispatch policy"). */
typedef struct mt_dispatch_policy {
    bool wake_each;   /* every queued request wakes a sleeping handler; else only when none runs */
    int stall_ms;     /* wake one more handler when requests waited this long while the busy ones
                         are blocked (state not R in /proc); 0: never */
    bool sched_batch; /* the I/O thread and the handler threads run under SCHED_BATCH */
} mt_dispatch_policy_t;

typedef struct mt_server_config {
    mt_limits_t limits;
    int head_timeout_ms;      /* from the first byte of a head to its end */
    int body_timeout_ms;      /* between two reads of the body */
    int keepalive_timeout_ms; /* idle time between requests */
    int write_timeout_ms;     /* between two writes that made progress */
    int linger_ms;            /* discarding input after the answer before a close */
    uint32_t max_connections;
    size_t output_high_water; /* a producer waits while its connection queues more than this */
    size_t output_low_water;  /* ... until the I/O thread brought it down to this */
    mt_dispatch_policy_t dispatch;
    /* Answers in C on the I/O thread, before any hand-off: called for a
     * request whose head and body have arrived whole. Returns true when it
     * answered (*keep_alive then says whether the connection stays open);
     * false leaves the request to a handler thread. It must not block: what
     * it writes goes through mt_conn_writev/mt_conn_sendfile, which never
     * wait on the I/O thread. NULL: every request goes to a handler. */
    bool (*answer_inline)(void *ctx, mt_conn_t *c, bool *keep_alive);
    void *inline_ctx;
    /* The access log (accesslog.h), or NULL: off. Read-only; the server logs
     * the answers it gives itself and those of answer_inline. */
    const struct mt_accesslog *access_log;
    /* The field a request id is taken from (lowercase), or NULL: no request
     * ids. Each complete head gets one (requestid.h), echoed in the response
     * in the field `request_id_name` (the same name, as configured). */
    const char *request_id_header;
    const char *request_id_name;
    size_t request_id_header_len;
    /* This worker's slot of the metrics the master shares (metrics.h), or
     * NULL: off. Every thread adds to it; the I/O thread stores its gauges. */
    struct mt_metrics_slot *metrics;
    /* The project-wide CORS policy (cors.h), or NULL. Read-only; the
     * server itself never calls into it: the producers of answers and
     * answer_inline do (preflights are answered there). */
    const struct mt_cors *cors;
    /* The peers whose Forwarded / X-Forwarded-* fields are heard
     * (forwarded.h), or NULL: nobody's. Read-only. */
    const struct mt_trust *trust;
    /* Called (out_lock held, usually on the I/O thread) when the output queue
     * of a connection whose producer asked with mt_conn_output_full drained
     * below the low mark or failed; it must only note the connection and
     * wake its producer's event loop. NULL: no event-loop producers. */
    void (*on_drained)(void *ctx, mt_conn_t *c);
    void *drained_ctx;
} mt_server_config_t;

typedef struct mt_listener {
    mt_io_source_t src;
    int fd;
    int index;
} mt_listener_t;

#define MT_MAX_HANDLERS 256

/* A handler thread, as the I/O thread's stall check sees it. */
typedef struct mt_handler_slot {
    _Atomic int tid;  /* 0: free */
    atomic_bool busy; /* answering a request (not waiting for one) */
} mt_handler_slot_t;

typedef struct mt_server {
    mt_server_config_t config;
    mt_handler_slot_t handlers[MT_MAX_HANDLERS];
    atomic_int nhandlers;
    int epfd;
    int wake_fd; /* eventfd: shutdown requests */
    mt_io_source_t wake_src;
    int spare_fd;
    mt_listener_t *listeners;
    int nlisteners;
    mt_queue_t queue;
    mt_conn_t *conns;      /* open connections (I/O thread only) */
    mt_conn_t *free_conns; /* recycled connection structs (I/O thread only) */
    uint32_t nconns;
    int64_t last_sweep_ms;
    atomic_bool shutdown_requested;
    atomic_bool draining;
    atomic_long requests_handled;
    pthread_t io_thread;
    bool io_started;
    atomic_bool io_done;
} mt_server_t;

/* Prepares a server over caller-owned listening sockets (non-blocking,
 * listening; never closed by the server). Returns 0 or a negative errno. */
int mt_server_init(mt_server_t *s, const mt_server_config_t *config, const int *listen_fds, int nlisteners);

/* Starts the I/O thread. Returns 0 or a negative errno. */
int mt_server_start(mt_server_t *s);

/* Asks for a graceful stop: no more accepting, idle connections closed,
 * requests in flight answered (with "Connection: close") and then the I/O
 * thread exits. Async-signal-safe and idempotent. */
void mt_server_shutdown(mt_server_t *s);

/* True once a graceful stop began: responses should close their connection. */
bool mt_server_draining(const mt_server_t *s);

/* Blocks until a connection with a complete request head is ready and takes
 * ownership of it; NULL once the server has stopped. */
mt_conn_t *mt_server_next(mt_server_t *s);

/* A handler thread registers before its first mt_server_next and
 * unregisters when it stops taking requests. Unless the policy is
 * wake_each, it registers as a queue consumer (see mt_queue_consumer_enter:
 * with registered handlers, only an idle worker or a blocked handler wakes
 * another). Under sched_batch, the caller should also call
 * mt_server_thread_batch. */
void mt_server_handler_enter(mt_server_t *s);
void mt_server_handler_exit(mt_server_t *s);

/* Like mt_server_next, waiting at most timeout_ms: NULL on timeout too. */
mt_conn_t *mt_server_next_timed(mt_server_t *s, int timeout_ms);

/* Gives a connection back after its request was answered. If part of the
 * response is still queued, the connection goes to the I/O thread, which
 * writes the rest and then does what follows here; NULL is returned. With
 * keep_alive, parses what the client already pipelined: if another complete
 * head is there, returns the connection again (still owned by the caller, to
 * answer next); otherwise hands it back to the I/O thread and returns NULL.
 * Without keep_alive (or after a write error), shuts the connection down for
 * writing and lets the I/O thread linger and close it. */
mt_conn_t *mt_server_finish(mt_server_t *s, mt_conn_t *c, bool keep_alive);

/* Hands a connection the caller owns (a handler, after answering 101) to
 * another protocol: from now on the I/O thread calls `ops` for it, with
 * `proto` as its state, and reads on from the bytes already in c->rbuf past
 * c->rpos. The HTTP/1.1 request counts as finished. */
void mt_server_upgrade(mt_server_t *s, mt_conn_t *c, const mt_conn_ops_t *ops, void *proto);

/* For an upgraded protocol, on the I/O thread: waits for the next bytes from
 * the client (and for room to write what is queued). Its on_readable ends
 * with this or with mt_server_close. Writes from the I/O thread never wait
 * (mt_conn_writev queues what the socket does not take); a protocol that
 * must bound its queue stops reading until it drained. */
void mt_server_rearm_open(mt_server_t *s, mt_conn_t *c);

/* Closes and frees a connection the I/O thread owns (calls ops->on_close). */
void mt_server_close(mt_server_t *s, mt_conn_t *c);

/* Records an answered request on connection c: its access log line
 * (mt_accesslog_conn, with `status`, `bytes` of body and `head_parsed`) and
 * its metrics (the route c->metric_route, the status, the duration since
 * c->head_us), then resets c->metric_route. Every answer is recorded here,
 * once, whoever gave it. */
void mt_server_record(mt_server_t *s, mt_conn_t *c, int status, unsigned long long bytes, bool head_parsed);

/* Waits up to timeout_ms (-1: forever) for the I/O thread to exit. Returns 0,
 * or -ETIMEDOUT. */
int mt_server_join(mt_server_t *s, int timeout_ms);

/* Puts the calling thread under SCHED_BATCH (no wake-up preemption). */
void mt_server_thread_batch(void);

/* Releases everything; the I/O thread must have exited (or never started). */
void mt_server_dispose(mt_server_t *s);

#endif
