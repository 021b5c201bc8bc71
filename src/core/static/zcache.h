/* The compressed-file cache: gzip, brotli and zstd copies of static files that
 * have no precompressed variant beside them, made once per file version and
 * kept within a byte budget, least recently used first out.
 *
 * A copy lives in a sealed memfd rather than on the heap, so the static
 * handler serves it exactly like a precompressed file: a small body is read
 * with pread into the head's buffer, a large one goes out by sendfile, and
 * what the socket does not take is queued as a file range on a duplicate of
 * the descriptor (so an evicted copy stays readable until its last send
 * ends, and its pages count against the budget only while it is cached).
 * The seals make the bytes immutable, so a queued range can never change.
 *
 * Threads: mt_zcache_get and mt_zcache_release may be called from the I/O
 * thread and any number of handler threads at once (static answers run on
 * the I/O thread, and on a handler thread for a request with a body). The
 * table has its own mutex, held for lookups and insertions only, never while
 * a file is read or compressed: a miss compresses on the calling thread with
 * a compressor of its own, so one thread's miss never stalls another's hit.
 * Two threads missing the same copy at once both compress it; the first to
 * finish is kept. No function here touches Python. */
#ifndef MT_ZCACHE_H
#define MT_ZCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "compress.h"

/* Files above this size are never compressed inline: the first request for
 * each coding pays the compression on the thread that answers it, usually
 * the I/O thread, where 1 MiB already costs ~40 ms at gzip 6 during which no
 * other connection of the worker is served. Larger files are for `precompress`. */
#define MT_ZCACHE_MAX_FILE (1 << 20)

/* At most this many copies are cached, whatever their size: each holds a
 * descriptor, next to the open-file cache's 1024. */
#define MT_ZCACHE_MAX_ITEMS 512

typedef struct mt_zcache_config {
    size_t budget;    /* bytes of compressed copies kept (pages, rounded up); 0 is refused */
    size_t min_size;  /* files smaller than this are not compressed (--compress-min-size) */
    unsigned codings; /* MT_CODING_MASK bits of the codings offered (--compress) */
    int levels[4];    /* indexed by mt_coding_t; < 0: the codec's default */
} mt_zcache_config_t;

/* A file version: what the static handler's open-file cache compares to
 * notice a changed file. A copy is found only under the same version. */
typedef struct mt_zcache_version {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
} mt_zcache_version_t;

typedef struct mt_zcache mt_zcache_t;
typedef struct mt_zcache_item mt_zcache_item_t;

/* A cache with the given configuration (copied). Returns NULL when out of
 * memory or when config->budget is 0 or no coding is offered. Free with
 * mt_zcache_destroy. */
mt_zcache_t *mt_zcache_create(const mt_zcache_config_t *config);

/* Frees zc and every cached copy (NULL is fine). No thread may hold an item. */
void mt_zcache_destroy(mt_zcache_t *zc);

/* The codings zc offers (MT_CODING_MASK bits); 0 for NULL. */
unsigned mt_zcache_codings(const mt_zcache_t *zc);

/* The level zc compresses `coding` at, as configured (< 0: the default). */
int mt_zcache_level(const mt_zcache_t *zc, mt_coding_t coding);

/* Whether zc compresses a file of this Content-Type (the list of
 * mt_compress_type_ok, shared with response compression) and size: between
 * min_size and MT_ZCACHE_MAX_FILE. False for NULL. Such a file's answers vary
 * with Accept-Encoding, whichever coding the client accepts. */
bool mt_zcache_eligible(const mt_zcache_t *zc, const char *content_type, off_t size);

/* The copy of file `fd` (at `version`, of `content_type`) in `coding`:
 * from the cache, or read and compressed now on the calling thread and
 * cached. On success returns 0, sets *zfd (the copy's memfd, valid until the
 * release) and *zsize, and *item to a reference the caller releases with
 * mt_zcache_release. Returns -ENOENT when there is no copy to serve: not
 * eligible, coding not offered, or compression that saves nothing or a copy
 * larger than the budget (remembered for that version, so it is not tried
 * again); -EIO when the file changed while it was read; -ENOMEM, -EMFILE or
 * another negative errno of memfd_create. Nothing is held after a failure. */
int mt_zcache_get(mt_zcache_t *zc, int fd, const mt_zcache_version_t *version, const char *content_type,
                  mt_coding_t coding, int *zfd, off_t *zsize, mt_zcache_item_t **item);

/* Drops a reference taken by mt_zcache_get (NULL is fine). */
void mt_zcache_release(mt_zcache_t *zc, mt_zcache_item_t *item);

#endif
