/* The open-file cache of the static file handler: paths looked up under a
 * root directory without ever leaving it, the open descriptor (or the miss)
 * remembered and revalidated cheaply.
 *
 * Lookups: openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) where the kernel
 * has it (symlinks inside the root followed, none that leaves it), else a
 * walk that opens each component with O_NOFOLLOW (no symlink followed at
 * all). Only regular files are entries with a descriptor; anything else is
 * remembered as a miss. An entry younger than the cache's TTL is checked with
 * one fstat on its descriptor (a file rewritten in place is noticed at once);
 * an older one with one fstatat of the path; a changed file is reopened.
 *
 * Threads: the static handler runs on the I/O thread and on handler threads,
 * so the cache has a mutex of its own, held only for table and reference
 * updates, never around a system call that may wait for the disk. Entries are
 * reference-counted: one evicted or replaced while a thread sends from it
 * keeps its descriptor until mt_file_release drops the last reference. The
 * fields below `checked_ms` are fixed once an entry is made, and may be read
 * without the lock by a thread holding a reference. */
#ifndef MT_FILE_CACHE_H
#define MT_FILE_CACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "clock.h"

typedef struct mt_file_cache mt_file_cache_t;

/* A cached lookup of one path under one owner (a static mount): an open
 * regular file, or a remembered miss (fd -1). */
typedef struct mt_file {
    struct mt_file *hnext;       /* hash chain (under the lock) */
    struct mt_file *prev, *next; /* LRU list, most recently used first (under the lock) */
    int refs;                    /* the table's reference (while in_table) + one per user (under the lock) */
    bool in_table;
    int64_t checked_ms; /* when the entry was last known to match the file system (under the lock) */
    int fd;             /* the open file, or -1: nothing servable at this path */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    uint32_t hash;
    const void *owner; /* the key's owner, as given to mt_file_cache_get (the static handler's mount) */
    char tag[64];      /* the ETag's opaque part: size, mtime and inode in hex (and a compressed copy's level) */
    char last_modified[MT_HTTP_DATE_LEN + 1];
    size_t path_len;
    char path[];
} mt_file_t;

/* A cache of at most `capacity` entries (open descriptors and misses), each
 * trusted for ttl_ms before it is revalidated with an fstatat. NULL when out
 * of memory. */
mt_file_cache_t *mt_file_cache_create(size_t capacity, int ttl_ms);

/* Frees the cache and its entries (no entry may still be referenced). */
void mt_file_cache_destroy(mt_file_cache_t *fc);

/* Decides, once per root, whether openat2 can be used here (ENOSYS, or EPERM
 * from a seccomp filter, mean the O_NOFOLLOW walk). */
void mt_file_cache_probe(int root_fd);

/* The entry for path[0, len) (no leading '/', no "", "." or ".." segment)
 * under root_fd, keyed by (owner, path), with a reference the caller gives
 * back with mt_file_release. NULL with *err set only for failures worth a 503
 * rather than a 404 (out of descriptors or memory); a missing file is an
 * entry with fd -1. */
mt_file_t *mt_file_cache_get(mt_file_cache_t *fc, const void *owner, int root_fd, const char *path, size_t len,
                             int *err);

/* Drops a reference taken by mt_file_cache_get. */
void mt_file_release(mt_file_cache_t *fc, mt_file_t *f);

/* Makes the next lookup of f's path check the file system again (the file
 * turned out to change while it was being sent). */
void mt_file_expire(mt_file_cache_t *fc, mt_file_t *f);

#endif
