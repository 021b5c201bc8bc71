#include "queue.h"

#include <errno.h>
#include <time.h>
#include <unistd.h>

int mt_queue_init(mt_queue_t *q) {
    q->head = q->tail = NULL;
    q->waiting = 0;
    q->consumers = 0;
    atomic_init(&q->last_progress_ms, 0);
    atomic_init(&q->length, 0);
    q->closed = false;
    q->notify_fd = -1;
    q->idle = NULL;
    int rc = pthread_mutex_init(&q->lock, NULL);
    if (rc)
        return -rc;
    /* A monotonic clock for mt_queue_pop_timed: wall-clock jumps don't stretch its waits. */
    pthread_condattr_init(&q->cond_attr);
    pthread_condattr_setclock(&q->cond_attr, CLOCK_MONOTONIC);
    return 0;
}

void mt_queue_dispose(mt_queue_t *q) {
    pthread_condattr_destroy(&q->cond_attr);
    pthread_mutex_destroy(&q->lock);
}

/* Wakes the thread that went to sleep last, if any (lock held). The waiter
 * is signalled under the lock: it lives on its own stack and may return (and
 * destroy its condition variable) as soon as the lock is free. */
static void wake_last_idle(mt_queue_t *q) {
    mt_queue_waiter_t *w = q->idle;
    if (w == NULL)
        return;
    q->idle = w->next;
    q->waiting--;
    w->woken = true;
    pthread_cond_signal(&w->wake);
}

/* Wakes an event-loop consumer (lock held): it takes items until the queue is
 * empty, so one write per transition from empty is enough. */
static void notify(mt_queue_t *q) {
    uint64_t one = 1;
    ssize_t n;
    do
        n = write(q->notify_fd, &one, sizeof one);
    while (n < 0 && errno == EINTR);
}

void mt_queue_push(mt_queue_t *q, mt_queue_item_t *item) {
    item->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->notify_fd >= 0 && q->head == NULL)
        notify(q);
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    /* Only writers hold the lock: a plain load and store, no locked add. */
    atomic_store_explicit(&q->length, atomic_load_explicit(&q->length, memory_order_relaxed) + 1, memory_order_relaxed);
    if (q->waiting > 0 && (q->consumers == 0 || q->waiting >= q->consumers))
        wake_last_idle(q);
    pthread_mutex_unlock(&q->lock);
}

void mt_queue_consumer_enter(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    q->consumers++;
    pthread_mutex_unlock(&q->lock);
}

void mt_queue_consumer_exit(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    q->consumers--;
    if (q->head != NULL)
        wake_last_idle(q); /* what the leaving one would have taken */
    pthread_mutex_unlock(&q->lock);
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
    pthread_mutex_lock(&q->lock);
    wake_last_idle(q);
    pthread_mutex_unlock(&q->lock);
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
    /* A wake-up may find the queue empty again (a running consumer took the
     * item first): then the thread waits again, on top of the stack. */
    bool timed_out = false;
    while (q->head == NULL && !q->closed && !timed_out) {
        mt_queue_waiter_t me = {.next = q->idle, .woken = false};
        pthread_cond_init(&me.wake, &q->cond_attr);
        q->idle = &me;
        q->waiting++;
        while (!me.woken && !q->closed && !timed_out) {
            int rc = timeout_ms < 0 ? pthread_cond_wait(&me.wake, &q->lock)
                                    : pthread_cond_timedwait(&me.wake, &q->lock, &deadline);
            timed_out = rc == ETIMEDOUT;
        }
        if (!me.woken) { /* timed out or closed: still on the stack */
            mt_queue_waiter_t **p = &q->idle;
            while (*p != &me)
                p = &(*p)->next;
            *p = me.next;
            q->waiting--;
        }
        pthread_cond_destroy(&me.wake);
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
        atomic_store_explicit(&q->length, atomic_load_explicit(&q->length, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

void mt_queue_close(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    if (q->notify_fd >= 0)
        notify(q);
    for (mt_queue_waiter_t *w = q->idle; w; w = w->next)
        pthread_cond_signal(&w->wake); /* each sees `closed` and leaves the stack itself */
    pthread_mutex_unlock(&q->lock);
}

mt_queue_item_t *mt_queue_trypop(mt_queue_t *q, bool *closed) {
    pthread_mutex_lock(&q->lock);
    mt_queue_item_t *item = q->head;
    if (item) {
        q->head = item->next;
        if (q->head == NULL)
            q->tail = NULL;
        atomic_store_explicit(&q->length, atomic_load_explicit(&q->length, memory_order_relaxed) - 1,
                              memory_order_relaxed);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        atomic_store_explicit(&q->last_progress_ms, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                              memory_order_relaxed);
    }
    *closed = q->closed;
    pthread_mutex_unlock(&q->lock);
    return item;
}
