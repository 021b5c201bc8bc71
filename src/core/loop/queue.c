#include "queue.h"

#include <errno.h>
#include <time.h>

int mt_queue_init(mt_queue_t *q) {
    q->head = q->tail = NULL;
    q->waiting = 0;
    q->consumers = 0;
    atomic_init(&q->last_progress_ms, 0);
    q->closed = false;
    int rc = pthread_mutex_init(&q->lock, NULL);
    if (rc)
        return -rc;
    /* A monotonic clock for mt_queue_pop_timed: wall-clock jumps don't stretch its waits. */
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&q->ready, &attr);
    pthread_condattr_destroy(&attr);
    if (rc) {
        pthread_mutex_destroy(&q->lock);
        return -rc;
    }
    return 0;
}

void mt_queue_dispose(mt_queue_t *q) {
    pthread_cond_destroy(&q->ready);
    pthread_mutex_destroy(&q->lock);
}

void mt_queue_push(mt_queue_t *q, mt_queue_item_t *item) {
    item->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    bool wake = q->waiting > 0 && (q->consumers == 0 || q->waiting >= q->consumers);
    pthread_mutex_unlock(&q->lock);
    if (wake)
        pthread_cond_signal(&q->ready);
}

void mt_queue_consumer_enter(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    q->consumers++;
    pthread_mutex_unlock(&q->lock);
}

void mt_queue_consumer_exit(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    q->consumers--;
    bool wake = q->head != NULL && q->waiting > 0;
    pthread_mutex_unlock(&q->lock);
    if (wake)
        pthread_cond_signal(&q->ready); /* what the leaving one would have taken */
}

void mt_queue_progress(mt_queue_t *q, int64_t now_ms) {
    atomic_store_explicit(&q->last_progress_ms, now_ms, memory_order_relaxed);
}

bool mt_queue_stall_possible(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    bool possible = q->head != NULL && q->waiting > 0;
    pthread_mutex_unlock(&q->lock);
    return possible;
}

bool mt_queue_stalled(mt_queue_t *q, int64_t now_ms, int stall_ms) {
    pthread_mutex_lock(&q->lock);
    bool stalled = q->head != NULL && q->waiting > 0 &&
                   now_ms - atomic_load_explicit(&q->last_progress_ms, memory_order_relaxed) >= stall_ms;
    pthread_mutex_unlock(&q->lock);
    return stalled;
}

void mt_queue_wake_one(mt_queue_t *q, int64_t now_ms) {
    atomic_store_explicit(&q->last_progress_ms, now_ms, memory_order_relaxed);
    pthread_cond_signal(&q->ready);
}

mt_queue_item_t *mt_queue_pop(mt_queue_t *q) {
    return mt_queue_pop_timed(q, -1);
}

mt_queue_item_t *mt_queue_pop_timed(mt_queue_t *q, int timeout_ms) {
    struct timespec deadline;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
        if (deadline.tv_nsec >= 1000000000) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock(&q->lock);
    while (q->head == NULL && !q->closed) {
        q->waiting++;
        int rc = timeout_ms < 0 ? pthread_cond_wait(&q->ready, &q->lock)
                                : pthread_cond_timedwait(&q->ready, &q->lock, &deadline);
        q->waiting--;
        if (rc == ETIMEDOUT)
            break;
    }
    mt_queue_item_t *item = q->head;
    if (item) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        atomic_store_explicit(&q->last_progress_ms, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                              memory_order_relaxed);
        q->head = item->next;
        if (q->head == NULL)
            q->tail = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

void mt_queue_close(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_mutex_unlock(&q->lock);
    pthread_cond_broadcast(&q->ready);
}
