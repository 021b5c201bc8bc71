/* Unit tests of src/core/loop/queue.c: the hand-off queue between the I/O thread
 * and the handler threads. Every wait is bounded so a lost wake-up fails the
 * test instead of hanging it. */
#include "queue.c"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

typedef struct item {
    mt_queue_item_t q;
    int value;
} item_t;

static int value_of(mt_queue_item_t *q) {
    return q ? ((item_t *)q)->value : -1;
}

static void sleep_ms(int ms) {
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000}, NULL);
}

/* Joins with a deadline: 0 when the thread ended in time. */
static int join_within(pthread_t t, int ms, void **ret) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)ms * 1000000;
    ts.tv_sec += ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    return pthread_timedjoin_np(t, ret, &ts);
}

static void test_fifo(void) {
    mt_queue_t q;
    is_int(mt_queue_init(&q), 0, "init");
    item_t items[5];
    for (int i = 0; i < 5; i++) {
        items[i].value = i;
        items[i].q.next = (mt_queue_item_t *)0x1; /* push must reset it */
    }
    for (int i = 0; i < 3; i++)
        mt_queue_push(&q, &items[i].q);
    int order_ok = 1;
    for (int i = 0; i < 3; i++)
        order_ok &= value_of(mt_queue_pop(&q)) == i;
    ok(order_ok, "items come out in the order they went in");
    ok(q.head == NULL && q.tail == NULL, "empty after popping everything");
    /* Emptying and refilling exercises the tail reset. */
    mt_queue_push(&q, &items[3].q);
    mt_queue_push(&q, &items[4].q);
    is_int(value_of(mt_queue_pop(&q)), 3, "refill after empty: first");
    is_int(value_of(mt_queue_pop(&q)), 4, "refill after empty: second");
    mt_queue_dispose(&q);
}

typedef struct popper {
    mt_queue_t *q;
    atomic_int done;
    mt_queue_item_t *got;
} popper_t;

static void *pop_one(void *arg) {
    popper_t *p = arg;
    p->got = mt_queue_pop(p->q);
    atomic_store(&p->done, 1);
    return NULL;
}

static void test_pop_blocks(void) {
    mt_queue_t q;
    mt_queue_init(&q);
    popper_t p = {.q = &q};
    pthread_t t;
    pthread_create(&t, NULL, pop_one, &p);
    sleep_ms(50);
    ok(!atomic_load(&p.done), "pop waits while the queue is empty");
    pthread_mutex_lock(&q.lock);
    int waiting = q.waiting;
    pthread_mutex_unlock(&q.lock);
    is_int(waiting, 1, "the waiter is counted");
    item_t it = {.value = 42};
    mt_queue_push(&q, &it.q);
    is_int(join_within(t, 1000, NULL), 0, "push wakes the waiter");
    is_int(value_of(p.got), 42, "the waiter gets the pushed item");
    is_int(q.waiting, 0, "no waiter left");
    mt_queue_dispose(&q);
}

/* The wake-up goes to the thread that went to sleep last (its caches and
 * thread state are the warm ones); the first to sleep stays asleep. */
static void test_last_waiter_woken_first(void) {
    mt_queue_t q;
    mt_queue_init(&q);
    popper_t first = {.q = &q}, second = {.q = &q};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, pop_one, &first);
    sleep_ms(50);
    pthread_create(&t2, NULL, pop_one, &second);
    sleep_ms(50);
    item_t a = {.value = 1}, b = {.value = 2};
    mt_queue_push(&q, &a.q);
    is_int(join_within(t2, 1000, NULL), 0, "the last thread to wait is woken");
    is_int(value_of(second.got), 1, "and takes the item");
    sleep_ms(50);
    ok(!atomic_load(&first.done), "the first thread to wait sleeps on");
    mt_queue_push(&q, &b.q);
    is_int(join_within(t1, 1000, NULL), 0, "the next push wakes it");
    is_int(value_of(first.got), 2, "and it takes the next item");
    is_int(q.waiting, 0, "no waiter left");
    mt_queue_dispose(&q);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* With registered consumers, a push wakes a sleeping one only when none is
 * running; a running one that makes no progress is covered by mt_queue_stalled. */
static void test_consumers_and_stalls(void) {
    mt_queue_t q;
    mt_queue_init(&q);
    mt_queue_consumer_enter(&q); /* a consumer that is busy: it never pops here */
    mt_queue_consumer_enter(&q); /* the one that waits */
    popper_t p = {.q = &q};
    pthread_t t;
    pthread_create(&t, NULL, pop_one, &p);
    sleep_ms(50);
    item_t it = {.value = 7};
    mt_queue_progress(&q, now_ms());
    mt_queue_push(&q, &it.q);
    sleep_ms(100);
    ok(!atomic_load(&p.done), "a push leaves the sleeper asleep while another consumer runs");
    ok(mt_queue_stall_possible(&q), "a stall is possible: an item waits and a consumer sleeps");
    ok(!mt_queue_stalled(&q, now_ms(), 1000), "not stalled before the stall time");
    ok(mt_queue_stalled(&q, now_ms(), 50), "stalled after it");
    mt_queue_wake_one(&q, now_ms());
    ok(!mt_queue_stalled(&q, now_ms(), 50), "a wake-up counts as progress");
    is_int(join_within(t, 1000, NULL), 0, "wake_one wakes the sleeper");
    is_int(value_of(p.got), 7, "which takes the item");
    ok(!mt_queue_stall_possible(&q), "nothing waits any more");

    /* Every consumer asleep: a push wakes one at once. */
    popper_t p2 = {.q = &q};
    mt_queue_consumer_exit(&q); /* the busy one leaves: one consumer, and it will wait */
    pthread_create(&t, NULL, pop_one, &p2);
    sleep_ms(50);
    item_t it2 = {.value = 8};
    mt_queue_push(&q, &it2.q);
    is_int(join_within(t, 1000, NULL), 0, "with all consumers waiting, a push wakes one");
    is_int(value_of(p2.got), 8, "the pushed item");
    mt_queue_consumer_exit(&q);
    mt_queue_dispose(&q);
}

static void test_close(void) {
    mt_queue_t q;
    mt_queue_init(&q);
    popper_t p[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        p[i] = (popper_t){.q = &q, .got = (mt_queue_item_t *)0x1};
        pthread_create(&t[i], NULL, pop_one, &p[i]);
    }
    sleep_ms(30);
    mt_queue_close(&q);
    int all_joined = 1, all_null = 1;
    for (int i = 0; i < 3; i++) {
        all_joined &= join_within(t[i], 1000, NULL) == 0;
        all_null &= p[i].got == NULL;
    }
    ok(all_joined, "close wakes every waiter");
    ok(all_null, "pop returns NULL on a closed, empty queue");
    ok(mt_queue_pop(&q) == NULL, "pop after close does not block");
    mt_queue_dispose(&q);

    /* Items queued before the close are still handed out, then NULL. */
    mt_queue_init(&q);
    item_t a = {.value = 1}, b = {.value = 2};
    mt_queue_push(&q, &a.q);
    mt_queue_push(&q, &b.q);
    mt_queue_close(&q);
    is_int(value_of(mt_queue_pop(&q)), 1, "closed queue drains: first");
    is_int(value_of(mt_queue_pop(&q)), 2, "closed queue drains: second");
    ok(mt_queue_pop(&q) == NULL, "then NULL");
    mt_queue_dispose(&q);
}

/* Several producers and consumers: every item is delivered exactly once and
 * each producer's items stay in order for the consumer that gets them. */
enum { PRODUCERS = 3, CONSUMERS = 3, PER_PRODUCER = 3000 };
static item_t stress_items[PRODUCERS][PER_PRODUCER];
static atomic_int delivered[PRODUCERS * PER_PRODUCER];

typedef struct stress {
    mt_queue_t *q;
    int index;
    int out_of_order;
} stress_t;

static void *produce(void *arg) {
    stress_t *s = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        stress_items[s->index][i].value = s->index * PER_PRODUCER + i;
        mt_queue_push(s->q, &stress_items[s->index][i].q);
        if (i % 512 == 0)
            sched_yield();
    }
    return NULL;
}

static void *consume(void *arg) {
    stress_t *s = arg;
    int last[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        last[i] = -1;
    mt_queue_item_t *it;
    while ((it = mt_queue_pop(s->q)) != NULL) {
        int v = value_of(it);
        atomic_fetch_add(&delivered[v], 1);
        int producer = v / PER_PRODUCER, seq = v % PER_PRODUCER;
        if (seq <= last[producer])
            s->out_of_order++;
        last[producer] = seq;
    }
    return NULL;
}

static void test_stress(void) {
    mt_queue_t q;
    mt_queue_init(&q);
    pthread_t pt[PRODUCERS], ct[CONSUMERS];
    stress_t ps[PRODUCERS], cs[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        cs[i] = (stress_t){.q = &q, .index = i};
        pthread_create(&ct[i], NULL, consume, &cs[i]);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (stress_t){.q = &q, .index = i};
        pthread_create(&pt[i], NULL, produce, &ps[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(pt[i], NULL);
    /* Closing right after the last push must not lose queued items. */
    mt_queue_close(&q);
    int joined = 1, disorder = 0;
    for (int i = 0; i < CONSUMERS; i++) {
        joined &= join_within(ct[i], 5000, NULL) == 0;
        disorder += cs[i].out_of_order;
    }
    ok(joined, "consumers finish after close");
    int once = 1;
    for (int i = 0; i < PRODUCERS * PER_PRODUCER; i++)
        once &= atomic_load(&delivered[i]) == 1;
    ok(once, "each of %d items delivered exactly once", PRODUCERS * PER_PRODUCER);
    is_int(disorder, 0, "per producer, each consumer sees items in FIFO order");
    mt_queue_dispose(&q);
}

/* An event-loop consumer (the ASGI loop): the eventfd is written when a push
 * finds the queue empty and when it closes; trypop never waits. */
static void test_notify_and_trypop(void) {
    mt_queue_t q;
    mt_queue_init(&q);
    int efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    q.notify_fd = efd;
    item_t items[3] = {{.value = 1}, {.value = 2}, {.value = 3}};
    bool closed = true;
    ok(mt_queue_trypop(&q, &closed) == NULL && !closed, "trypop on an empty queue: NULL at once, not closed");
    uint64_t count = 0;
    ok(read(efd, &count, sizeof count) < 0 && errno == EAGAIN, "no notification before a push");
    for (int i = 0; i < 3; i++)
        mt_queue_push(&q, &items[i].q);
    ok(read(efd, &count, sizeof count) == sizeof count && count == 1,
       "one notification for pushes onto a non-empty queue");
    is_int(value_of(mt_queue_trypop(&q, &closed)), 1, "trypop takes the oldest");
    is_int(value_of(mt_queue_trypop(&q, &closed)), 2, "then the next");
    is_int(value_of(mt_queue_trypop(&q, &closed)), 3, "then the last");
    ok(mt_queue_trypop(&q, &closed) == NULL, "then NULL");
    mt_queue_push(&q, &items[0].q);
    ok(read(efd, &count, sizeof count) == sizeof count && count == 1, "a push onto the emptied queue notifies again");
    mt_queue_close(&q);
    ok(read(efd, &count, sizeof count) == sizeof count, "closing notifies");
    is_int(value_of(mt_queue_trypop(&q, &closed)), 1, "a closed queue still gives what it holds");
    ok(mt_queue_trypop(&q, &closed) == NULL && closed, "then NULL, closed");
    close(efd);
    mt_queue_dispose(&q);
}

int main(void) {
    test_notify_and_trypop();
    test_fifo();
    test_pop_blocks();
    test_last_waiter_woken_first();
    test_consumers_and_stalls();
    test_close();
    test_stress();
    return done_testing();
}
