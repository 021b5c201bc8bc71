#include "output.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <unistd.h>

#include "common.h"

/* Small remainders share a segment; a larger one gets a segment of its size. */
#define SEG_MIN_CAP 4096
/* How much of a file one pread takes when sendfile cannot read it. */
#define FALLBACK_CHUNK 65536
#define WRITE_IOVS 64

struct mt_out_seg {
    mt_out_seg_t *next;
    int fd;       /* file segment: the duplicated descriptor; memory segment: -1 */
    off_t offset; /* file segment: where the rest starts */
    size_t len;   /* bytes left to write */
    size_t pos;   /* memory segment: where they start in data */
    size_t cap;   /* memory segment: size of data */
    char data[];
};

void mt_output_init(mt_output_t *o) {
    o->head = o->tail = NULL;
    o->memory = o->pending = 0;
}

static void push(mt_output_t *o, mt_out_seg_t *seg) {
    seg->next = NULL;
    if (o->tail)
        o->tail->next = seg;
    else
        o->head = seg;
    o->tail = seg;
}

static void released(size_t n) {
    atomic_fetch_add_explicit(&mt_counters.output_bytes_released, (long)n, memory_order_relaxed);
}

/* Frees the head segment, whose bytes were all written or dropped. */
static void pop(mt_output_t *o) {
    mt_out_seg_t *seg = o->head;
    o->head = seg->next;
    if (o->head == NULL)
        o->tail = NULL;
    if (seg->fd >= 0)
        close(seg->fd);
    free(seg);
}

ssize_t mt_output_append_iov(mt_output_t *o, const struct iovec *iov, int iovcnt, size_t limit) {
    size_t total = 0;
    for (int i = 0; i < iovcnt && total < limit; i++)
        total += iov[i].iov_len;
    total = MT_MIN(total, limit);
    if (total == 0)
        return 0;
    mt_out_seg_t *seg = o->tail;
    size_t room = seg && seg->fd < 0 ? seg->cap - seg->pos - seg->len : 0;
    if (room < total) {
        /* Compact the tail in place when that makes the room. */
        if (seg && seg->fd < 0 && seg->cap - seg->len >= total && seg->pos) {
            memmove(seg->data, seg->data + seg->pos, seg->len);
            seg->pos = 0;
        } else {
            size_t cap = MT_MAX(total, (size_t)SEG_MIN_CAP);
            seg = malloc(sizeof *seg + cap);
            if (seg == NULL)
                return -ENOMEM;
            seg->fd = -1;
            seg->offset = 0;
            seg->len = seg->pos = 0;
            seg->cap = cap;
            push(o, seg);
        }
    }
    char *dst = seg->data + seg->pos + seg->len;
    size_t left = total;
    for (int i = 0; i < iovcnt && left > 0; i++) {
        size_t n = MT_MIN(iov[i].iov_len, left);
        memcpy(dst, iov[i].iov_base, n);
        dst += n;
        left -= n;
    }
    seg->len += total;
    o->memory += total;
    o->pending += total;
    atomic_fetch_add_explicit(&mt_counters.output_bytes_queued, (long)total, memory_order_relaxed);
    return (ssize_t)total;
}

int mt_output_append_file(mt_output_t *o, int fd, off_t offset, size_t count) {
    if (count == 0)
        return 0;
    mt_out_seg_t *seg = malloc(sizeof *seg);
    if (seg == NULL)
        return -ENOMEM;
    seg->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (seg->fd < 0) {
        int rc = -errno;
        free(seg);
        return rc;
    }
    seg->offset = offset;
    seg->len = count;
    seg->pos = seg->cap = 0;
    push(o, seg);
    o->pending += count;
    atomic_fetch_add_explicit(&mt_counters.output_bytes_queued, (long)count, memory_order_relaxed);
    return 0;
}

/* Marks n bytes of the head segments as written (memory segments only). */
static void advance_memory(mt_output_t *o, size_t n) {
    released(n);
    o->pending -= n;
    o->memory -= n;
    while (n > 0) {
        mt_out_seg_t *seg = o->head;
        size_t step = MT_MIN(n, seg->len);
        seg->pos += step;
        seg->len -= step;
        n -= step;
        if (seg->len == 0)
            pop(o);
    }
}

/* For a file that sendfile cannot read (some file systems): the next piece
 * is read into a memory segment put in front of the file segment. */
static int file_to_memory(mt_output_t *o) {
    mt_out_seg_t *file = o->head;
    size_t want = MT_MIN(file->len, (size_t)FALLBACK_CHUNK);
    mt_out_seg_t *seg = malloc(sizeof *seg + want);
    if (seg == NULL)
        return -ENOMEM;
    ssize_t n;
    do
        n = pread(file->fd, seg->data, want, file->offset);
    while (n < 0 && errno == EINTR);
    if (n <= 0) {
        free(seg);
        return n == 0 ? -ENODATA : -errno;
    }
    seg->fd = -1;
    seg->offset = 0;
    seg->pos = 0;
    seg->len = seg->cap = (size_t)n;
    file->offset += n;
    file->len -= (size_t)n;
    seg->next = file;
    o->head = seg;
    o->memory += (size_t)n;
    if (file->len == 0) {
        /* The whole rest of the file is in memory now. */
        seg->next = file->next;
        if (o->tail == file)
            o->tail = seg;
        close(file->fd);
        free(file);
    }
    return 0;
}

int mt_output_write(mt_output_t *o, int sock, size_t *written) {
    *written = 0;
    while (o->head) {
        mt_out_seg_t *seg = o->head;
        ssize_t n;
        if (seg->fd < 0) {
            struct iovec iov[WRITE_IOVS];
            int cnt = 0;
            for (mt_out_seg_t *s = seg; s && s->fd < 0 && cnt < WRITE_IOVS; s = s->next)
                iov[cnt++] = (struct iovec){s->data + s->pos, s->len};
            n = writev(sock, iov, cnt);
            if (n > 0) {
                advance_memory(o, (size_t)n);
                *written += (size_t)n;
                continue;
            }
        } else {
            n = sendfile(sock, seg->fd, &seg->offset, MT_MIN(seg->len, (size_t)1 << 30));
            if (n > 0) {
                seg->len -= (size_t)n;
                o->pending -= (size_t)n;
                released((size_t)n);
                *written += (size_t)n;
                if (seg->len == 0)
                    pop(o);
                continue;
            }
            if (n == 0)
                return -ENODATA;
            if (errno == EINVAL || errno == ENOSYS) {
                int rc = file_to_memory(o);
                if (rc < 0)
                    return rc;
                continue;
            }
        }
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 ? -errno : -EIO;
    }
    return 0;
}

void mt_output_clear(mt_output_t *o) {
    released(o->pending);
    while (o->head)
        pop(o);
    o->memory = o->pending = 0;
}
