#include "queue.h"

int mt_queue_init(mt_queue_t *q) {
    q->head = q->tail = NULL;
    q->waiting = 0;
    q->closed = false;
    int rc = pthread_mutex_init(&q->lock, NULL);
    if (rc)
        return -rc;
    rc = pthread_cond_init(&q->ready, NULL);
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
    int waiting = q->waiting;
    pthread_mutex_unlock(&q->lock);
    if (waiting)
        pthread_cond_signal(&q->ready);
}

mt_queue_item_t *mt_queue_pop(mt_queue_t *q) {
    pthread_mutex_lock(&q->lock);
    while (q->head == NULL && !q->closed) {
        q->waiting++;
        pthread_cond_wait(&q->ready, &q->lock);
        q->waiting--;
    }
    mt_queue_item_t *item = q->head;
    if (item) {
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
