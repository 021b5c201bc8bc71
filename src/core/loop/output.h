/* A connection's output queue: the bytes of responses that did not fit into
 * the socket at once, in order, waiting for the I/O thread to write them when
 * the socket becomes writable again.
 *
 * A queue holds two kinds of segments: memory (bytes copied in; the producer
 * keeps nothing alive for the queue) and file ranges (a duplicated
 * descriptor, sent with sendfile(2); the producer may close its own
 * descriptor at once). Only memory segments cost memory, so the water marks
 * of conn.h count those alone.
 *
 * Threads: the queue has no lock of its own. It belongs to its connection
 * and is guarded by the connection's output lock (conn.h); the functions here
 * are plain data structure operations plus non-blocking system calls. */
#ifndef MT_OUTPUT_H
#define MT_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct mt_out_seg mt_out_seg_t;

typedef struct mt_output {
    mt_out_seg_t *head, *tail;
    size_t memory;  /* bytes held in memory segments */
    size_t pending; /* bytes not yet written, memory and file alike */
} mt_output_t;

/* An empty queue (nothing to free). */
void mt_output_init(mt_output_t *o);

/* Copies the bytes of iov (iovcnt entries, skipping the first `skip` bytes)
 * to the end of the queue, at most `limit` bytes. Returns the number of bytes
 * taken, or -ENOMEM (nothing was taken). */
ssize_t mt_output_append_iov(mt_output_t *o, const struct iovec *iov, int iovcnt, size_t limit);

/* Queues [offset, offset + count) of file `fd`, on a duplicate of the
 * descriptor (the caller keeps its own). Returns 0, -ENOMEM or -errno (dup
 * failed: nothing was queued). */
int mt_output_append_file(mt_output_t *o, int fd, off_t offset, size_t count);

/* Writes queued bytes to socket `sock` without blocking, until the queue is
 * empty or the socket is full. *written gets the number of bytes that went
 * out. Returns 0 (empty), -EAGAIN (the socket is full: the rest stays
 * queued), -ENODATA (a queued file turned out shorter than its range) or
 * another negative errno (the connection is broken). */
int mt_output_write(mt_output_t *o, int sock, size_t *written);

/* Drops everything still queued (closing duplicated descriptors). */
void mt_output_clear(mt_output_t *o);

static inline bool mt_output_empty(const mt_output_t *o) {
    return o->head == NULL;
}

#endif
