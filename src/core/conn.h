/* A client connection, and the blocking I/O that a handler thread does on the
 * connection it owns (reading the request body, writing the response).
 *
 * Ownership: a connection belongs to exactly one thread at a time. The I/O
 * thread owns it while it is idle, reading a head or lingering; a handler
 * thread owns it from the moment it pops it off the queue until it hands it
 * back with mt_server_finish(). Only the I/O thread creates and frees
 * connections. The functions below are for the owning handler thread; they
 * block (poll with the configured timeouts) and must be called without the
 * GIL. */
#ifndef MT_CONN_H
#define MT_CONN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "buf.h"
#include "http1.h"
#include "queue.h"
#include "sock.h"

struct mt_server;

typedef enum mt_conn_state {
    MT_CONN_IDLE,   /* I/O thread: keep-alive, waiting for the first byte of a request */
    MT_CONN_HEAD,   /* I/O thread: part of a request head has arrived */
    MT_CONN_ACTIVE, /* a handler thread: queued or being answered */
    MT_CONN_LINGER, /* I/O thread: answered and shut down for writing; discarding input until EOF */
} mt_conn_state_t;

#define MT_KIND_CONN 1

typedef struct mt_conn {
    uint8_t kind; /* MT_KIND_CONN: epoll data points at structs that start with a kind */
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
    bool head_consumed;    /* the head's spans are no longer needed: rbuf may be compacted */
    bool continue_sent;    /* "100 Continue" went out for this request */
    uint32_t requests;     /* requests answered on this connection */
    mt_header_t headers[]; /* limits.max_headers entries, for req.headers */
} mt_conn_t;

static inline mt_conn_t *mt_conn_from_item(mt_queue_item_t *item) {
    return (mt_conn_t *)((char *)item - offsetof(mt_conn_t, qitem));
}

/* Makes `want` bytes of decoded body available in c->body (or fewer if the
 * body ends first), reading from the socket as needed. Sends "100 Continue"
 * first if the client asked for it. Returns the number of bytes available
 * (0 at the end of the body), -ETIMEDOUT (body timeout), -MT_ECLOSED (peer
 * closed early), -MT_EPROTO (bad framing: c->req.error_status says which) or
 * another negative errno. */
ssize_t mt_conn_body_fill(mt_conn_t *c, size_t want);

/* Drops body bytes the application read: c->body_pos += n. */
void mt_conn_body_consume(mt_conn_t *c, size_t n);

/* Reads and discards the rest of the request body, at most `limit` bytes, so
 * the connection can be kept alive. Returns 0 when the body ended, or a
 * negative value (the connection must then be closed). */
int mt_conn_body_skip(mt_conn_t *c, uint64_t limit);

/* Writes all of iov (modifying it), waiting while the socket is full (up to
 * the write timeout between progress). Returns 0, -ETIMEDOUT or -errno
 * (-EPIPE when the client went away). */
int mt_conn_writev(mt_conn_t *c, struct iovec *iov, int iovcnt);

/* Sends `count` bytes of file `fd` from *offset with sendfile(2), advancing
 * *offset. Returns 0 or a negative errno; -ENOSYS/-EINVAL if sendfile cannot
 * handle this file (the caller then falls back to read and write). */
int mt_conn_sendfile(mt_conn_t *c, int fd, off_t *offset, size_t count);

#endif
