#include "buf.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* The free list holds at most this many blocks; beyond that, blocks are freed.
 * It is shared by the I/O thread and the handler threads, hence the mutex
 * (held for two pointer moves). */
#define POOL_MAX 1024

typedef struct free_block {
    struct free_block *next;
} free_block_t;

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static free_block_t *pool_head;
static size_t pool_count;

static char *block_take(void) {
    pthread_mutex_lock(&pool_lock);
    free_block_t *block = pool_head;
    if (block) {
        pool_head = block->next;
        pool_count--;
    }
    pthread_mutex_unlock(&pool_lock);
    return block ? (char *)block : malloc(MT_BUF_BLOCK);
}

static void block_give(char *data) {
    pthread_mutex_lock(&pool_lock);
    if (pool_count < POOL_MAX) {
        free_block_t *block = (free_block_t *)data;
        block->next = pool_head;
        pool_head = block;
        pool_count++;
        data = NULL;
    }
    pthread_mutex_unlock(&pool_lock);
    free(data);
}

void mt_buf_init(mt_buf_t *buf) {
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
}

int mt_buf_reserve(mt_buf_t *buf, size_t extra) {
    if (buf->cap - buf->len >= extra)
        return 0;
    if (extra > SIZE_MAX / 2 - buf->len)
        return -ENOMEM;
    size_t need = buf->len + extra;
    if (buf->data == NULL && need <= MT_BUF_BLOCK) {
        buf->data = block_take();
        if (buf->data == NULL)
            return -ENOMEM;
        buf->cap = MT_BUF_BLOCK;
        MT_COUNT(buffers_acquired);
        return 0;
    }
    size_t cap = buf->cap ? buf->cap : MT_BUF_BLOCK;
    while (cap < need)
        cap *= 2;
    char *data;
    if (buf->cap == MT_BUF_BLOCK) {
        /* Leaving the recycled size: copy out of the pool block. */
        data = malloc(cap);
        if (data == NULL)
            return -ENOMEM;
        memcpy(data, buf->data, buf->len);
        block_give(buf->data);
    } else {
        if (buf->data == NULL)
            MT_COUNT(buffers_acquired);
        data = realloc(buf->data, cap);
        if (data == NULL) {
            if (buf->data == NULL)
                MT_COUNT(buffers_released);
            return -ENOMEM;
        }
    }
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int mt_buf_append(mt_buf_t *buf, const void *data, size_t n) {
    int rc = mt_buf_reserve(buf, n);
    if (rc < 0)
        return rc;
    if (n)
        memcpy(buf->data + buf->len, data, n);
    buf->len += n;
    return 0;
}

void mt_buf_consume(mt_buf_t *buf, size_t n) {
    if (n >= buf->len) {
        buf->len = 0;
        return;
    }
    memmove(buf->data, buf->data + n, buf->len - n);
    buf->len -= n;
}

void mt_buf_dispose(mt_buf_t *buf) {
    if (buf->data == NULL)
        return;
    if (buf->cap == MT_BUF_BLOCK)
        block_give(buf->data);
    else
        free(buf->data);
    MT_COUNT(buffers_released);
    mt_buf_init(buf);
}

void mt_buf_pool_drain(void) {
    pthread_mutex_lock(&pool_lock);
    free_block_t *block = pool_head;
    pool_head = NULL;
    pool_count = 0;
    pthread_mutex_unlock(&pool_lock);
    while (block) {
        free_block_t *next = block->next;
        free(block);
        block = next;
    }
}

/* The process's object counters live here, beside the first thing they count. */
mt_counters_t mt_counters;
