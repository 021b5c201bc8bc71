/* Byte buffers with recycled storage.
 *
 * A buffer is a (data, len, cap) triple. Storage of the standard size comes
 * from a process-wide free list, so a busy server reuses the same few blocks
 * instead of calling malloc per request. */
#ifndef MT_BUF_H
#define MT_BUF_H

#include <stddef.h>

#define MT_BUF_BLOCK 16384 /* size of a recycled block */

typedef struct mt_buf {
    char *data;
    size_t len;
    size_t cap;
} mt_buf_t;

/* Empties `buf` without storage (nothing to free). */
void mt_buf_init(mt_buf_t *buf);

/* Makes room for `extra` more bytes after `len`, taking a recycled block or
 * growing. Returns 0, or -ENOMEM (the buffer is unchanged). */
int mt_buf_reserve(mt_buf_t *buf, size_t extra);

/* Appends `n` bytes. Returns 0 or -ENOMEM. */
int mt_buf_append(mt_buf_t *buf, const void *data, size_t n);

/* Drops the first `n` bytes, moving the rest to the front. */
void mt_buf_consume(mt_buf_t *buf, size_t n);

/* Gives the storage back (to the free list when it is a standard block) and
 * empties the buffer. Safe on an empty buffer. Thread-safe. */
void mt_buf_dispose(mt_buf_t *buf);

/* Frees the blocks kept on the free list (at process exit). */
void mt_buf_pool_drain(void);

#endif
