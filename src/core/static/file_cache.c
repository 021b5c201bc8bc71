/* The open-file cache of the static file handler: see file_cache.h. */
#include "file_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "clock.h"
#include "conditional.h"

#define CACHE_BUCKETS 2048 /* a power of two, about twice the capacity the static handler asks for */

struct mt_file_cache {
    pthread_mutex_t lock; /* guards everything below and the entries' refs, links and checked_ms */
    mt_file_t *buckets[CACHE_BUCKETS];
    mt_file_t lru; /* sentinel of the LRU list */
    size_t count, capacity;
    int ttl_ms;
    unsigned long opens; /* files looked up on disk (the tests watch the cache with it) */
};

mt_file_cache_t *mt_file_cache_create(size_t capacity, int ttl_ms) {
    mt_file_cache_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    pthread_mutex_init(&st->lock, NULL);
    st->lru.next = st->lru.prev = &st->lru;
    st->capacity = capacity;
    st->ttl_ms = ttl_ms;
    return st;
}

/* ---- opening a path without leaving the root ----
 *
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) (Linux 5.6+, used on this
 * kernel): the kernel refuses every resolution that would leave the root, be
 * it through "..", an absolute path, an absolute symlink or a relative one
 * that climbs out, and /proc magic links. Relative symlinks that stay inside
 * the root are followed. Where openat2 is missing (ENOSYS, or EPERM from a
 * seccomp filter), each component is opened with O_NOFOLLOW instead: no
 * symlink is followed at all, so no realpath check is needed, at the price of
 * not serving symlinks inside the root either. Paths reaching here never
 * start with '/' nor contain "", "." or ".." segments (clean_path). O_NONBLOCK
 * keeps a FIFO from blocking the open; it is refused as non-regular after. */
static atomic_bool openat2_missing;

static int open_walk(int root_fd, const char *path) {
    int dir = root_fd;
    for (;;) {
        const char *slash = strchr(path, '/');
        int fd;
        if (slash == NULL) {
            fd = openat(dir, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW | O_CLOEXEC);
        } else {
            char name[256];
            size_t len = (size_t)(slash - path);
            if (len >= sizeof name) {
                fd = -1;
                errno = ENAMETOOLONG;
            } else {
                memcpy(name, path, len);
                name[len] = '\0';
                fd = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            }
        }
        int err = errno;
        if (dir != root_fd)
            close(dir);
        if (fd < 0 || slash == NULL)
            return fd < 0 ? -err : fd;
        dir = fd;
        path = slash + 1;
    }
}

static int open_beneath(int root_fd, const char *path) {
    if (!atomic_load_explicit(&openat2_missing, memory_order_relaxed)) {
        struct open_how how = {
            .flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
            .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
        };
        int fd = (int)syscall(SYS_openat2, root_fd, path, &how, sizeof how);
        if (fd >= 0 || errno != ENOSYS)
            return fd >= 0 ? fd : -errno;
        atomic_store(&openat2_missing, true);
    }
    return open_walk(root_fd, path);
}

void mt_file_cache_probe(int root_fd) {
    struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
    int fd = (int)syscall(SYS_openat2, root_fd, ".", &how, sizeof how);
    if (fd >= 0)
        close(fd);
    else if (errno == ENOSYS || errno == EPERM)
        atomic_store(&openat2_missing, true);
}

static uint32_t hash_path(const void *owner, const char *path, size_t len) {
    uint32_t h = 2166136261u ^ (uint32_t)(uintptr_t)owner;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)path[i]) * 16777619u;
    return h;
}

static void lru_unlink(mt_file_t *e) {
    e->prev->next = e->next;
    e->next->prev = e->prev;
}

static void lru_push(mt_file_cache_t *st, mt_file_t *e) {
    e->next = st->lru.next;
    e->prev = &st->lru;
    st->lru.next->prev = e;
    st->lru.next = e;
}

static mt_file_t *table_find(mt_file_cache_t *st, const void *owner, uint32_t h, const char *path, size_t len) {
    for (mt_file_t *e = st->buckets[h & (CACHE_BUCKETS - 1)]; e; e = e->hnext)
        if (e->hash == h && e->owner == owner && e->path_len == len && memcmp(e->path, path, len) == 0)
            return e;
    return NULL;
}

/* Takes e out of the table; returns it if that dropped its last reference
 * (the caller frees it after unlocking), else NULL. Under the lock. */
static mt_file_t *table_remove(mt_file_cache_t *st, mt_file_t *e) {
    mt_file_t **p = &st->buckets[e->hash & (CACHE_BUCKETS - 1)];
    while (*p != e)
        p = &(*p)->hnext;
    *p = e->hnext;
    lru_unlink(e);
    e->in_table = false;
    st->count--;
    return --e->refs == 0 ? e : NULL;
}

static void file_free(mt_file_t *e) {
    if (e->fd >= 0)
        close(e->fd);
    free(e);
}

void mt_file_release(mt_file_cache_t *st, mt_file_t *e) {
    pthread_mutex_lock(&st->lock);
    bool last = --e->refs == 0;
    pthread_mutex_unlock(&st->lock);
    if (last)
        file_free(e);
}

void mt_file_expire(mt_file_cache_t *st, mt_file_t *e) {
    pthread_mutex_lock(&st->lock);
    e->checked_ms = INT64_MIN / 2;
    pthread_mutex_unlock(&st->lock);
}

static bool same_file(const mt_file_t *e, const struct stat *sb) {
    return e->dev == sb->st_dev && e->ino == sb->st_ino && e->size == sb->st_size &&
           e->mtime.tv_sec == sb->st_mtim.tv_sec && e->mtime.tv_nsec == sb->st_mtim.tv_nsec &&
           e->ctime.tv_sec == sb->st_ctim.tv_sec && e->ctime.tv_nsec == sb->st_ctim.tv_nsec;
}

/* Opens path under root_fd and enters the result in the cache, replacing an older
 * entry for the same path. Returns a referenced entry, or NULL with *err set
 * for failures worth a 503 rather than a 404 (out of descriptors or memory). */
static mt_file_t *cache_open(mt_file_cache_t *st, const void *owner, int root_fd, uint32_t h, const char *path,
                             size_t len, int64_t now, int *err) {
    int fd = open_beneath(root_fd, path);
    struct stat sb;
    if (fd >= 0 && (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode))) {
        close(fd);
        fd = -EISDIR; /* a directory, FIFO, socket or device: not ours to serve */
    }
    if (fd == -EMFILE || fd == -ENFILE || fd == -ENOMEM) {
        *err = fd;
        return NULL;
    }
    mt_file_t *e = calloc(1, sizeof *e + len + 1);
    if (e == NULL) {
        if (fd >= 0)
            close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    e->fd = fd >= 0 ? fd : -1;
    if (fd >= 0) {
        e->dev = sb.st_dev;
        e->ino = sb.st_ino;
        e->size = sb.st_size;
        e->mtime = sb.st_mtim;
        e->ctime = sb.st_ctim;
        unsigned long long mtime_ns = (unsigned long long)sb.st_mtim.tv_sec * 1000000000ull + sb.st_mtim.tv_nsec;
        snprintf(e->tag, sizeof e->tag, "%llx-%llx-%llx", (unsigned long long)sb.st_size, mtime_ns,
                 (unsigned long long)sb.st_ino);
        mt_http_date_format(e->last_modified, sb.st_mtim.tv_sec);
    }
    e->checked_ms = now;
    e->hash = h;
    e->owner = owner;
    e->path_len = len;
    memcpy(e->path, path, len);
    e->refs = 2; /* the table's and the caller's */
    e->in_table = true;

    mt_file_t *dead = NULL;
    pthread_mutex_lock(&st->lock);
    st->opens++;
    mt_file_t *old = table_find(st, owner, h, path, len);
    if (old && (old = table_remove(st, old)) != NULL) {
        old->hnext = dead;
        dead = old;
    }
    mt_file_t **bucket = &st->buckets[h & (CACHE_BUCKETS - 1)];
    e->hnext = *bucket;
    *bucket = e;
    lru_push(st, e);
    st->count++;
    while (st->count > st->capacity) {
        mt_file_t *victim = table_remove(st, st->lru.prev);
        if (victim) {
            victim->hnext = dead;
            dead = victim;
        }
    }
    pthread_mutex_unlock(&st->lock);
    while (dead) {
        mt_file_t *next = dead->hnext;
        file_free(dead);
        dead = next;
    }
    return e;
}

mt_file_t *mt_file_cache_get(mt_file_cache_t *st, const void *owner, int root_fd, const char *path, size_t len,
                             int *err) {
    uint32_t h = hash_path(owner, path, len);
    int64_t now = mt_clock_now_ms();
    pthread_mutex_lock(&st->lock);
    mt_file_t *e = table_find(st, owner, h, path, len);
    bool fresh = false;
    if (e) {
        e->refs++;
        lru_unlink(e);
        lru_push(st, e);
        fresh = now - e->checked_ms < st->ttl_ms;
    }
    pthread_mutex_unlock(&st->lock);
    if (fresh) {
        /* One fstat on the open descriptor still catches a file rewritten in
         * place (same inode, new size or mtime): serving the old length of
         * new bytes under the old strong ETag would poison caches. */
        struct stat sb;
        if (e->fd < 0 || (fstat(e->fd, &sb) == 0 && same_file(e, &sb)))
            return e;
    }
    if (e) {
        /* The stat only decides whether to look again: a file that changed,
         * wherever the path now leads, is reopened under the rules above. */
        struct stat sb;
        bool exists = fstatat(root_fd, path, &sb, 0) == 0;
        if (e->fd >= 0 ? exists && same_file(e, &sb) : !exists) {
            pthread_mutex_lock(&st->lock);
            e->checked_ms = now;
            pthread_mutex_unlock(&st->lock);
            return e;
        }
        mt_file_release(st, e);
    }
    return cache_open(st, owner, root_fd, h, path, len, now, err);
}

void mt_file_cache_destroy(mt_file_cache_t *st) {
    if (st == NULL)
        return;
    while (st->lru.next != &st->lru) {
        mt_file_t *e = table_remove(st, st->lru.next);
        if (e)
            file_free(e);
    }
    pthread_mutex_destroy(&st->lock);
    free(st);
}
