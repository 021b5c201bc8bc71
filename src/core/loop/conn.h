/* A client connection: its state and ownership, its output queue, and the
 * I/O that a handler thread does on the connection it owns (reading the
 * request body, producing the response).
 *
 * Ownership: a connection belongs to exactly one thread at a time. The I/O
 * thread owns it while it is idle, reading a head, flushing the rest of a
 * response, or lingering; a handler thread owns it from the moment it pops it
 * off the queue until it hands it back with mt_server_finish(). Only the I/O
 * thread creates and frees connections.
 *
 * Writes never wait on the socket. A producer (the owning handler thread)
 * writes what the socket takes at once and queues the rest on the
 * connection's output queue (output.h); the I/O thread writes the queue when
 * epoll reports the socket writable. The queue is guarded by `out_lock`, the
 * one lock the I/O thread and the owner share. A producer whose queue holds
 * more than the high-water mark of memory waits on `out_drained` (a condition
 * variable, never the socket) until the I/O thread brought it below the low
 * mark; a client that does not read for the write timeout fails the wait.
 * The body reads below still wait for the socket (poll, body timeout) and
 * must be called without the GIL. */
#ifndef MT_CONN_H
#define MT_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"
#include "forwarded.h"
#include "http1.h"
#include "output.h"
#include "queue.h"
#include "sock.h"

struct mt_server;

/* The longest request id kept: a longer incoming one is replaced. */
#define MT_REQUEST_ID_MAX 128

typedef enum mt_conn_state {
    MT_CONN_IDLE,   /* I/O thread: keep-alive, waiting for the first byte of a request */
    MT_CONN_HEAD,   /* I/O thread: part of a request head has arrived */
    MT_CONN_ACTIVE, /* a handler thread: queued or being answered */
    MT_CONN_FLUSH,  /* I/O thread: answered; writing the queued rest of the response */
    MT_CONN_LINGER, /* I/O thread: answered and shut down for writing; discarding input until EOF */
    MT_CONN_OPEN,   /* I/O thread: an upgraded protocol's, reading and writing (c->ops) */
} mt_conn_state_t;

struct mt_conn;

/* What the I/O thread does with a connection's events: one table per
 * protocol (HTTP/1.1 in server.c; an upgrade installs another). Every entry
 * runs on the I/O thread, for a connection it owns. */
typedef struct mt_conn_ops {
    const char *name;
    void (*on_readable)(struct mt_server *s, struct mt_conn *c);
    /* The output queue drained (or failed) while the I/O thread owned it. */
    void (*on_flushed)(struct mt_server *s, struct mt_conn *c, int rc);
    /* The deadline passed (the sweep, every 250 ms). */
    void (*on_timeout)(struct mt_server *s, struct mt_conn *c);
    /* The connection is about to be freed: release the protocol's state. */
    void (*on_close)(struct mt_server *s, struct mt_conn *c);
} mt_conn_ops_t;

/* What epoll's data points at: a connection, a listening socket or the
 * server's wake-up eventfd, each starting with its event function. */
typedef struct mt_io_source {
    void (*on_event)(struct mt_server *s, struct mt_io_source *src, uint32_t events);
} mt_io_source_t;

typedef struct mt_conn {
    mt_io_source_t src; /* first: epoll's data.ptr */
    const mt_conn_ops_t *ops;
    void *proto; /* the state of an upgraded protocol (NULL for HTTP/1.1) */
    mt_queue_item_t qitem;
    struct mt_conn *prev, *next; /* the server's list of open connections (I/O thread only) */
    struct mt_server *server;
    int fd;
    int listener; /* index of the listening socket it came from */
    mt_peer_t peer;

    /* State and deadline are read by the I/O thread's timeout sweep while a
     * handler may be handing the connection back, hence atomics. */
    _Atomic int state;
    _Atomic int64_t deadline_ms;

    mt_buf_t rbuf; /* raw input: the current head (contiguous), then body and pipelined bytes */
    size_t rpos;   /* rbuf[0, rpos) has been parsed */
    mt_buf_t body; /* decoded body bytes not yet read by the application: body[body_pos, len) */
    size_t body_pos;
    mt_request_t req;
    bool head_consumed; /* the head's spans are no longer needed: rbuf may be compacted */
    bool continue_sent; /* "100 Continue" went out for this request */
    bool input_pending; /* MT_CONN_OPEN: rbuf holds bytes the protocol has not seen yet */
    uint32_t requests;  /* requests answered on this connection */
    int64_t head_us;    /* when the current request's head was complete (mt_clock_now_us), 0: not yet */
    /* The current request's id (taken from the configured header or
     * generated; see requestid.h), for the application, the response and
     * the access log. */
    uint8_t request_id_len;
    char request_id[MT_REQUEST_ID_MAX];
    /* What the trusted proxies say about the current request (forwarded.h),
     * resolved with the request id; cleared between requests. */
    mt_forwarded_t fwd;
    /* What an answer given in C sent (static files, the API's C answers),
     * set by its producer for the access log. */
    int answer_status;
    unsigned long long answer_bytes;
    /* The metrics route index (metrics.h) of the current request, set by
     * whoever routes it; MT_METRICS_ROUTE_SERVER (0) until then. */
    int metric_route;
    /* The CORS policy of the API whose route matched the current request
     * (cors.h), or NULL; the project's policy takes precedence where it
     * applies. Set by the API glue, reset per request. */
    const struct mt_cors *cors;

    /* Output: the queue and what the I/O thread and the producer share,
     * under out_lock. */
    pthread_mutex_t out_lock;
    pthread_cond_t out_drained; /* the queue went below the low mark, or failed */
    mt_output_t out;
    bool out_armed;          /* EPOLLOUT is armed (or its event is on its way) */
    bool drain_notify;       /* an event-loop producer waits for the low mark: call the server's on_drained */
    bool keep_alive_after;   /* MT_CONN_FLUSH: what to do once the queue is written */
    int out_error;           /* the first write error (negative errno), then every write fails with it */
    int64_t out_progress_ms; /* when bytes last went out (or the queue began) */
    mt_header_t headers[];   /* limits.max_headers entries, for req.headers */
} mt_conn_t;

static inline mt_conn_t *mt_conn_from_item(mt_queue_item_t *item) {
    return (mt_conn_t *)((char *)item - offsetof(mt_conn_t, qitem));
}

/* Set on the I/O thread: its writes never wait for the queue to drain (it is
 * the thread that drains it); what it produces is queued whole. */
extern __thread bool mt_conn_never_wait;

/* Prepares a connection struct over socket `fd` (state MT_CONN_IDLE, no
 * buffers, the HTTP/1.1 ops). Returns 0 or a negative errno. */
int mt_conn_init(mt_conn_t *c, struct mt_server *s, int fd);

/* Frees what the connection holds (buffers, the output queue, its lock); does
 * not close the socket. */
void mt_conn_dispose(mt_conn_t *c);

/* Makes `want` bytes of decoded body available in c->body (or fewer if the
 * body ends first), reading from the socket as needed. Sends "100 Continue"
 * first if the client asked for it. Returns the number of bytes available
 * (0 at the end of the body), -ETIMEDOUT (body timeout), -MT_ECLOSED (peer
 * closed early), -MT_EPROTO (bad framing: c->req.error_status says which) or
 * another negative errno. */
ssize_t mt_conn_body_fill(mt_conn_t *c, size_t want);

/* Drops body bytes the application read: c->body_pos += n. */
void mt_conn_body_consume(mt_conn_t *c, size_t n);

/* Like mt_conn_body_fill, for a producer that must not block (the ASGI
 * loop): returns -EAGAIN instead of waiting for the socket, and never times
 * out (the caller keeps the body timeout). */
ssize_t mt_conn_body_fill_nowait(mt_conn_t *c, size_t want);

/* Reads and discards the rest of the request body, at most `limit` bytes, so
 * the connection can be kept alive. Returns 0 when the body ended, or a
 * negative value (the connection must then be closed). */
int mt_conn_body_skip(mt_conn_t *c, uint64_t limit);

/* Puts all of iov (modifying it) on its way: written at once as far as the
 * socket takes it, the rest copied to the output queue. Waits (on a
 * condition, not the socket) only while the queue holds more than the
 * high-water mark, until the I/O thread brings it below the low mark.
 * Returns 0, -ETIMEDOUT (no progress for the write timeout) or -errno (-EPIPE
 * when the client went away); after a failure every later call fails too. */
int mt_conn_writev(mt_conn_t *c, struct iovec *iov, int iovcnt);

/* Like mt_conn_writev, for a head that a file's bytes follow at once
 * (mt_conn_sendfile): the kernel may hold the bytes back (MSG_MORE) to send
 * them in the same packets as the file's first bytes. */
int mt_conn_writev_more(mt_conn_t *c, struct iovec *iov, int iovcnt);

/* Puts `count` bytes of file `fd` from *offset on their way, advancing
 * *offset: sent at once with sendfile(2) as far as the socket takes them, the
 * rest queued as a file range (on a duplicate of fd: the caller may close
 * its descriptor at once) that the I/O thread sends. Never waits. Returns 0
 * or a negative errno; -ENOSYS/-EINVAL if sendfile cannot handle this file
 * and nothing was sent (the caller then falls back to mt_conn_writev). */
int mt_conn_sendfile(mt_conn_t *c, int fd, off_t *offset, size_t count);

/* For a producer that must not wait (the ASGI loop, whose writes never
 * wait: mt_conn_never_wait): true when the queue holds more than the
 * high-water mark. The I/O thread then calls the server's on_drained hook
 * once, when the queue is back under the low mark or failed. False after a
 * write error (the next write reports it). */
bool mt_conn_output_full(mt_conn_t *c);

/* Fails the connection's output with rc (a negative errno) as a write error
 * would: the queue is dropped and every later write fails. */
void mt_conn_fail(mt_conn_t *c, int rc);

/* Waits until everything queued went out (or failed), like a producer over
 * the high-water mark but down to zero. Returns 0 or the write error. */
int mt_conn_drain(mt_conn_t *c);

/* I/O thread, on EPOLLOUT: writes the queue, re-arms EPOLLOUT if bytes are
 * left, wakes a waiting producer. Returns 0 (drained), -EAGAIN (more queued)
 * or the write error (the queue was dropped). *flushing tells whether the
 * connection was in MT_CONN_FLUSH (read under the lock that the hand-over to
 * that state takes): only then does the I/O thread own it. */
int mt_conn_on_writable(mt_conn_t *c, bool *flushing);

/* Arms EPOLLOUT for the connection's socket (out_lock held). */
void mt_conn_arm_writable(mt_conn_t *c);

#endif
