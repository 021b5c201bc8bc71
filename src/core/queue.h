/* The hand-off queue between a worker's I/O thread and its handler threads.
 *
 * A FIFO of intrusive items guarded by a mutex and a condition variable. The
 * I/O thread pushes connections whose request head is complete; handler
 * threads pop them (blocking, without the GIL). Closing the queue wakes every
 * waiter; pop then returns NULL once the queue is empty. */
#ifndef MT_QUEUE_H
#define MT_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

typedef struct mt_queue_item {
    struct mt_queue_item *next;
} mt_queue_item_t;

typedef struct mt_queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    mt_queue_item_t *head;
    mt_queue_item_t *tail;
    int waiting; /* threads blocked in pop: push signals only when > 0 */
    bool closed;
} mt_queue_t;

int mt_queue_init(mt_queue_t *q);
void mt_queue_dispose(mt_queue_t *q);

/* Appends an item; wakes one waiting thread. Never fails. */
void mt_queue_push(mt_queue_t *q, mt_queue_item_t *item);

/* Removes the oldest item, waiting for one. Returns NULL when the queue is
 * closed and empty. */
mt_queue_item_t *mt_queue_pop(mt_queue_t *q);

/* Like mt_queue_pop, waiting at most timeout_ms (-1: forever); NULL on
 * timeout too. */
mt_queue_item_t *mt_queue_pop_timed(mt_queue_t *q, int timeout_ms);

/* Marks the queue closed and wakes every waiter. */
void mt_queue_close(mt_queue_t *q);

#endif
