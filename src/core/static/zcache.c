#include "zcache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "common.h"

#define ZCACHE_BUCKETS 1024 /* a power of two, about twice MT_ZCACHE_MAX_ITEMS */
#define ZCACHE_PAGE 4096    /* what a memfd's bytes cost, rounded up */

/* One coding of one file version: a sealed memfd, or a remembered refusal
 * (fd -1: compression saved nothing, or the copy exceeds the budget).
 * Reference-counted so an item evicted while a thread answers from it keeps
 * its descriptor until that answer has queued its own duplicate. */
struct mt_zcache_item {
    struct mt_zcache_item *hnext;       /* hash chain */
    struct mt_zcache_item *prev, *next; /* LRU list, most recently used first */
    int refs;                           /* the table's (while in_table) + one per user; under the lock */
    bool in_table;
    uint32_t hash;
    mt_zcache_version_t version;
    mt_coding_t coding;
    int fd;
    off_t size;
    size_t cost; /* bytes counted against the budget */
};

typedef struct mt_zcache_item item_t;

struct mt_zcache {
    mt_zcache_config_t config;
    pthread_mutex_t lock; /* guards everything below */
    item_t *buckets[ZCACHE_BUCKETS];
    item_t lru; /* sentinel of the LRU list */
    size_t bytes, count;
    unsigned long compressions; /* files compressed (the tests watch the cache with it) */
};

mt_zcache_t *mt_zcache_create(const mt_zcache_config_t *config) {
    if (config->budget == 0 || (config->codings & MT_CODING_ALL) == 0)
        return NULL;
    mt_zcache_t *zc = calloc(1, sizeof *zc);
    if (zc == NULL)
        return NULL;
    zc->config = *config;
    zc->config.codings &= MT_CODING_ALL;
    pthread_mutex_init(&zc->lock, NULL);
    zc->lru.next = zc->lru.prev = &zc->lru;
    return zc;
}

static void item_free(item_t *it) {
    if (it->fd >= 0)
        close(it->fd);
    free(it);
}

void mt_zcache_destroy(mt_zcache_t *zc) {
    if (zc == NULL)
        return;
    for (item_t *it = zc->lru.next, *next; it != &zc->lru; it = next) {
        next = it->next;
        item_free(it);
    }
    pthread_mutex_destroy(&zc->lock);
    free(zc);
}

unsigned mt_zcache_codings(const mt_zcache_t *zc) {
    return zc ? zc->config.codings : 0;
}

int mt_zcache_level(const mt_zcache_t *zc, mt_coding_t coding) {
    return coding < MT_ARRAY_SIZE(zc->config.levels) ? zc->config.levels[coding] : -1;
}

bool mt_zcache_eligible(const mt_zcache_t *zc, const char *content_type, off_t size) {
    return zc && size >= 0 && (size_t)size >= zc->config.min_size && size <= MT_ZCACHE_MAX_FILE &&
           mt_compress_type_ok(content_type, strlen(content_type));
}

/* ---- the table ---- */

static uint32_t hash_key(const mt_zcache_version_t *v, mt_coding_t coding) {
    uint64_t h = ((uint64_t)v->dev * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)v->ino * 0xc2b2ae3d27d4eb4full) ^ coding;
    return (uint32_t)(h ^ (h >> 32));
}

static bool same_version(const mt_zcache_version_t *a, const mt_zcache_version_t *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void unlink_lru(item_t *it) {
    it->prev->next = it->next;
    it->next->prev = it->prev;
}

static void push_lru(mt_zcache_t *zc, item_t *it) {
    it->next = zc->lru.next;
    it->prev = &zc->lru;
    zc->lru.next->prev = it;
    zc->lru.next = it;
}

/* The item of this file and coding, whatever its version. Under the lock. */
static item_t *find_item(mt_zcache_t *zc, uint32_t h, const mt_zcache_version_t *v, mt_coding_t coding) {
    for (item_t *it = zc->buckets[h & (ZCACHE_BUCKETS - 1)]; it; it = it->hnext)
        if (it->hash == h && it->coding == coding && it->version.dev == v->dev && it->version.ino == v->ino)
            return it;
    return NULL;
}

/* Takes it out of the table, onto *dead if that dropped its last reference
 * (the caller frees the list after unlocking). Under the lock. */
static void remove_item(mt_zcache_t *zc, item_t *it, item_t **dead) {
    item_t **p = &zc->buckets[it->hash & (ZCACHE_BUCKETS - 1)];
    while (*p != it)
        p = &(*p)->hnext;
    *p = it->hnext;
    unlink_lru(it);
    it->in_table = false;
    zc->count--;
    zc->bytes -= it->cost;
    if (--it->refs == 0) {
        it->hnext = *dead;
        *dead = it;
    }
}

static void free_items(item_t *dead) {
    while (dead) {
        item_t *next = dead->hnext;
        item_free(dead);
        dead = next;
    }
}

/* Enters `fresh` (which the caller holds one reference to) unless another
 * thread entered the same version meanwhile; returns the item to use,
 * referenced, and frees the loser. */
static item_t *insert_item(mt_zcache_t *zc, item_t *fresh) {
    item_t *dead = NULL, *use = fresh;
    pthread_mutex_lock(&zc->lock);
    item_t *old = find_item(zc, fresh->hash, &fresh->version, fresh->coding);
    if (old && same_version(&old->version, &fresh->version)) {
        old->refs++;
        use = old;
    } else {
        if (old)
            remove_item(zc, old, &dead);
        item_t **bucket = &zc->buckets[fresh->hash & (ZCACHE_BUCKETS - 1)];
        fresh->hnext = *bucket;
        *bucket = fresh;
        push_lru(zc, fresh);
        fresh->in_table = true;
        fresh->refs++;
        zc->count++;
        zc->bytes += fresh->cost;
        /* The newcomer is at the head and fits the budget by itself, so
         * evicting from the tail always ends before reaching it. */
        while (zc->bytes > zc->config.budget || zc->count > MT_ZCACHE_MAX_ITEMS)
            remove_item(zc, zc->lru.prev, &dead);
    }
    pthread_mutex_unlock(&zc->lock);
    if (use != fresh)
        item_free(fresh);
    free_items(dead);
    return use;
}

/* ---- compressing ---- */

/* Reads the whole file into buf and checks, after the read, that it still is
 * `version`: a file rewritten during the read would otherwise be cached as a
 * mix of two versions under the newer one's name. */
static int read_file(int fd, const mt_zcache_version_t *version, mt_buf_t *buf) {
    size_t size = (size_t)version->size;
    int rc = mt_buf_reserve(buf, size);
    if (rc < 0)
        return rc;
    while (buf->len < size) {
        ssize_t n = pread(fd, buf->data + buf->len, size - buf->len, (off_t)buf->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -EIO;
        buf->len += (size_t)n;
    }
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return -errno;
    mt_zcache_version_t now = {sb.st_dev, sb.st_ino, sb.st_size, sb.st_mtim, sb.st_ctim};
    return same_version(&now, version) ? 0 : -EIO;
}

/* A sealed memfd holding data[0, n). Returns the descriptor or a negative errno. */
static int make_memfd(const char *data, size_t n) {
    int fd = memfd_create("meltemi-zcache", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, data + done, n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            close(fd);
            return -err;
        }
        done += (size_t)w;
    }
    if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* A new item (one reference, the caller's) for version and coding: the
 * compressed copy of file fd, or a refusal when it would not pay. */
static int compress_file(mt_zcache_t *zc, int fd, const mt_zcache_version_t *version, mt_coding_t coding,
                         item_t **out) {
    mt_buf_t plain, packed;
    mt_buf_init(&plain);
    mt_buf_init(&packed);
    mt_compressor_t *z = NULL;
    item_t *it = calloc(1, sizeof *it);
    int rc = it ? read_file(fd, version, &plain) : -ENOMEM;
    if (rc < 0)
        goto error;
    /* A compressor per miss: compressors belong to one thread, and sharing
     * one under a lock would make the I/O thread wait for a handler's miss. */
    if ((z = mt_compressor_create()) == NULL) {
        rc = -ENOMEM;
        goto error;
    }
    if ((rc = mt_compressor_whole(z, coding, zc->config.levels[coding], plain.data, plain.len, &packed)) < 0)
        goto error;
    it->fd = -1;
    if (packed.len < plain.len && packed.len <= zc->config.budget) {
        if ((rc = make_memfd(packed.data, packed.len)) < 0)
            goto error;
        it->fd = rc;
        it->size = (off_t)packed.len;
        it->cost = (packed.len + ZCACHE_PAGE - 1) / ZCACHE_PAGE * ZCACHE_PAGE;
        if (it->cost > zc->config.budget)
            it->cost = zc->config.budget;
    }
    it->hash = hash_key(version, coding);
    it->version = *version;
    it->coding = coding;
    it->refs = 1;
    pthread_mutex_lock(&zc->lock);
    zc->compressions++;
    pthread_mutex_unlock(&zc->lock);
    mt_compressor_destroy(z);
    mt_buf_dispose(&plain);
    mt_buf_dispose(&packed);
    *out = it;
    return 0;
error:
    free(it);
    mt_compressor_destroy(z);
    mt_buf_dispose(&plain);
    mt_buf_dispose(&packed);
    return rc;
}

/* ---- lookups ---- */

int mt_zcache_get(mt_zcache_t *zc, int fd, const mt_zcache_version_t *version, const char *content_type,
                  mt_coding_t coding, int *zfd, off_t *zsize, mt_zcache_item_t **item) {
    *item = NULL;
    if (coding == MT_CODING_IDENTITY || !(mt_zcache_codings(zc) & MT_CODING_MASK(coding)) ||
        !mt_zcache_eligible(zc, content_type, version->size))
        return -ENOENT;
    uint32_t h = hash_key(version, coding);
    item_t *it = NULL, *dead = NULL;
    pthread_mutex_lock(&zc->lock);
    item_t *found = find_item(zc, h, version, coding);
    if (found && same_version(&found->version, version)) {
        found->refs++;
        unlink_lru(found);
        push_lru(zc, found);
        it = found;
    } else if (found) {
        remove_item(zc, found, &dead); /* an older version of the file: never served again */
    }
    pthread_mutex_unlock(&zc->lock);
    free_items(dead);
    if (it == NULL) {
        int rc = compress_file(zc, fd, version, coding, &it);
        if (rc < 0)
            return rc;
        it = insert_item(zc, it);
    }
    if (it->fd < 0) {
        mt_zcache_release(zc, it);
        return -ENOENT;
    }
    *zfd = it->fd;
    *zsize = it->size;
    *item = it;
    return 0;
}

void mt_zcache_release(mt_zcache_t *zc, mt_zcache_item_t *item) {
    if (item == NULL)
        return;
    pthread_mutex_lock(&zc->lock);
    bool last = --item->refs == 0;
    pthread_mutex_unlock(&zc->lock);
    if (last)
        item_free(item);
}
