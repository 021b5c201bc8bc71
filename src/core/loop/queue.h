/* The hand-off queue between a worker's I/O thread and its handler threads.
 *
 * A FIFO of intrusive items guarded by a mutex. The I/O thread pushes
 * connections whose request head is complete; handler threads pop them
 * (blocking, without the GIL). Closing the queue wakes every waiter; pop then
 * returns NULL once the queue is empty.
 *
 * Waiting handlers form a stack, each on a condition variable of its own, and
 * a wake-up goes to the one that went to sleep last: the handler that just
 * finished a request is the one that takes the next, its caches and its
 * thread state warm, while the others stay asleep. (One shared condition
 * variable wakes waiters in turn, so under a steady load every handler ran
 * and each wake-up moved the work to a cold thread.) */
#ifndef MT_QUEUE_H
#define MT_QUEUE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdbool.h>

typedef struct mt_queue_item {
    struct mt_queue_item *next;
} mt_queue_item_t;

/* A thread blocked in pop: on its own stack, linked while it waits. */
typedef struct mt_queue_waiter {
    struct mt_queue_waiter *next;
    pthread_cond_t wake;
    bool woken; /* taken off the stack by a wake-up (under the lock) */
} mt_queue_waiter_t;

typedef struct mt_queue {
    pthread_mutex_t lock;
    pthread_condattr_t cond_attr; /* CLOCK_MONOTONIC, for the waiters' timed waits */
    mt_queue_waiter_t *idle;      /* waiting threads, the last to wait first */
    mt_queue_item_t *head;
    mt_queue_item_t *tail;
    int waiting;   /* threads blocked in pop (the length of idle) */
    int consumers; /* threads registered with mt_queue_consumer_enter (0: none registered) */
    bool closed;
    _Atomic int length; /* items queued: written under the lock, read without it (mt_queue_length) */
    /* An eventfd written when a push finds the queue empty and when the queue
     * closes, for a consumer that waits in an event loop instead of in pop
     * (the ASGI loop, which takes items with mt_queue_trypop); -1: none. */
    int notify_fd;
    _Atomic int64_t last_progress_ms; /* when a consumer last took an item or reported progress */
} mt_queue_t;

int mt_queue_init(mt_queue_t *q);
void mt_queue_dispose(mt_queue_t *q);

/* Registers (enter) or unregisters (exit) a thread that pops items. With
 * registered consumers, a push wakes a waiting one only when all of them
 * wait: a consumer that is running takes the next item itself when it is
 * done, which saves a wake-up and a hand-off of the GIL per request. A
 * consumer that is busy too long is covered by mt_queue_stalled. */
void mt_queue_consumer_enter(mt_queue_t *q);
void mt_queue_consumer_exit(mt_queue_t *q);

/* Appends an item; wakes one waiting thread if needed (see above). Never fails. */
void mt_queue_push(mt_queue_t *q, mt_queue_item_t *item);

/* Notes that a consumer finished a piece of work (now, in ms). */
void mt_queue_progress(mt_queue_t *q, int64_t now_ms);

/* True when items wait while a consumer could be woken: the caller should
 * check mt_queue_stalled again within a few milliseconds. */
bool mt_queue_stall_possible(mt_queue_t *q);

/* True if items wait, a consumer sleeps, and no consumer made progress for
 * stall_ms: the running ones may be blocked (a sleep, a database query). */
bool mt_queue_stalled(mt_queue_t *q, int64_t now_ms, int stall_ms);

/* Wakes one waiting consumer (and counts that as progress, so that a stall
 * wakes at most one more consumer per stall_ms). */
void mt_queue_wake_one(mt_queue_t *q, int64_t now_ms);

/* The number of items queued, read without the lock (a moment's value). */
static inline int mt_queue_length(mt_queue_t *q) {
    return atomic_load_explicit(&q->length, memory_order_relaxed);
}

/* Removes the oldest item, waiting for one. Returns NULL when the queue is
 * closed and empty. */
mt_queue_item_t *mt_queue_pop(mt_queue_t *q);

/* Like mt_queue_pop, waiting at most timeout_ms (-1: forever); NULL on
 * timeout too. */
mt_queue_item_t *mt_queue_pop_timed(mt_queue_t *q, int timeout_ms);

/* Removes the oldest item without waiting: NULL when the queue is empty
 * (*closed then says whether it is closed too). */
mt_queue_item_t *mt_queue_trypop(mt_queue_t *q, bool *closed);

/* Marks the queue closed and wakes every waiter. */
void mt_queue_close(mt_queue_t *q);

#endif
