/* Unit tests of src/core/loop/buf.c: recycled byte buffers and their counters. */
#include "buf.c"

#include <pthread.h>
#include <stdint.h>

#include "tap.h"

/* The out-of-memory paths are tested with requests no allocator can satisfy;
 * ASan must then return NULL like malloc does instead of aborting. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "allocator_may_return_null=1";
}

static long acquired(void) {
    return atomic_load(&mt_counters.buffers_acquired);
}
static long released(void) {
    return atomic_load(&mt_counters.buffers_released);
}

static void fill_pattern(char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        p[i] = (char)((i * 31 + seed) & 0xff);
}

static int check_pattern(const char *p, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != (char)((i * 31 + seed) & 0xff))
            return 0;
    return 1;
}

static void test_init_and_reserve(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "init: no storage");
    long a0 = acquired();
    is_int(mt_buf_reserve(&b, 0), 0, "reserve(0) on an empty buffer succeeds");
    ok(b.data == NULL, "reserve(0) takes no storage");
    is_int(mt_buf_reserve(&b, 10), 0, "reserve(10)");
    is_int(b.cap, MT_BUF_BLOCK, "a small reserve takes one recycled block");
    is_int(acquired() - a0, 1, "buffers_acquired counts the block");
    char *before = b.data;
    is_int(mt_buf_reserve(&b, MT_BUF_BLOCK), 0, "reserve of exactly the block size fits");
    ok(b.data == before && b.cap == MT_BUF_BLOCK, "no reallocation while the request fits");
    long r0 = released();
    mt_buf_dispose(&b);
    is_int(released() - r0, 1, "dispose counts the release");
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "dispose empties the buffer");
    mt_buf_dispose(&b);
    is_int(released() - r0, 1, "dispose of an empty buffer is a no-op");
}

static void test_append_consume(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    is_int(mt_buf_append(&b, "hello ", 6), 0, "append");
    is_int(mt_buf_append(&b, "world", 5), 0, "append again");
    is_int(b.len, 11, "length adds up");
    ok(memcmp(b.data, "hello world", 11) == 0, "bytes are in order");
    is_int(mt_buf_append(&b, NULL, 0), 0, "appending nothing is fine");
    is_int(b.len, 11, "appending nothing changes nothing");
    mt_buf_consume(&b, 6);
    is_int(b.len, 5, "consume drops the front");
    ok(memcmp(b.data, "world", 5) == 0, "the rest moves to the front");
    mt_buf_consume(&b, 0);
    ok(b.len == 5 && memcmp(b.data, "world", 5) == 0, "consume(0) keeps everything");
    mt_buf_consume(&b, 100);
    is_int(b.len, 0, "consuming more than the length empties the buffer");
    ok(b.data != NULL && b.cap == MT_BUF_BLOCK, "consume keeps the storage");
    mt_buf_dispose(&b);
}

static void test_growth(void) {
    static char big[3 * MT_BUF_BLOCK + 7];
    fill_pattern(big, sizeof big, 7);
    mt_buf_t b;
    mt_buf_init(&b);
    long a0 = acquired(), r0 = released();

    /* Start in a pool block, then grow out of it: the block goes back to the
     * pool and the content must survive the copy. */
    is_int(mt_buf_append(&b, big, 100), 0, "append 100 bytes");
    is_int(b.cap, MT_BUF_BLOCK, "in a pool block");
    size_t pool_before = pool_count;
    is_int(mt_buf_append(&b, big + 100, MT_BUF_BLOCK), 0, "append past the block size");
    ok(b.cap >= 100 + MT_BUF_BLOCK && b.cap != MT_BUF_BLOCK, "capacity grew (%zu)", b.cap);
    is_int(pool_count, pool_before + 1, "the old block went back to the pool");
    ok(check_pattern(b.data, 100 + MT_BUF_BLOCK, 7), "content survives leaving the pool block");
    is_int(mt_buf_append(&b, big + 100 + MT_BUF_BLOCK, sizeof big - 100 - MT_BUF_BLOCK), 0, "grow again (realloc)");
    is_int(b.len, sizeof big, "all bytes are there");
    ok(check_pattern(b.data, sizeof big, 7), "content survives realloc");
    is_int(acquired() - a0, 1, "growing one buffer counts one acquisition");
    mt_buf_consume(&b, MT_BUF_BLOCK);
    ok(check_pattern(b.data, sizeof big - MT_BUF_BLOCK, 7 + 31 * MT_BUF_BLOCK), "consume in a large buffer");
    pool_before = pool_count;
    mt_buf_dispose(&b);
    is_int(pool_count, pool_before, "a large buffer is freed, not pooled");
    is_int(released() - r0, 1, "one release");

    /* An empty buffer asked for more than a block skips the pool. */
    is_int(mt_buf_reserve(&b, 2 * MT_BUF_BLOCK + 1), 0, "reserve 2 blocks + 1 on an empty buffer");
    ok(b.cap >= 2 * MT_BUF_BLOCK + 1, "capacity is enough (%zu)", b.cap);
    is_int(acquired() - a0, 2, "counted as acquired");
    mt_buf_dispose(&b);
    is_int(released() - r0, 2, "and released");
}

static void test_pool_reuse(void) {
    mt_buf_t a, b;
    mt_buf_init(&a);
    mt_buf_init(&b);
    mt_buf_reserve(&a, 1);
    char *block = a.data;
    mt_buf_dispose(&a);
    mt_buf_reserve(&b, 1);
    ok(b.data == block, "the next buffer reuses the block just given back");
    mt_buf_dispose(&b);

    /* The pool is bounded: past POOL_MAX, blocks are freed. */
    mt_buf_pool_drain();
    is_int(pool_count, 0, "drain empties the pool");
    enum { N = POOL_MAX + 5 };
    static mt_buf_t bufs[N];
    for (int i = 0; i < N; i++) {
        mt_buf_init(&bufs[i]);
        mt_buf_reserve(&bufs[i], 1);
    }
    for (int i = 0; i < N; i++)
        mt_buf_dispose(&bufs[i]);
    is_int(pool_count, POOL_MAX, "the pool keeps at most POOL_MAX blocks");
    mt_buf_pool_drain();
    ok(pool_count == 0 && pool_head == NULL, "drain frees them");
}

static void test_out_of_memory(void) {
    mt_buf_t b;
    mt_buf_init(&b);
    long a0 = acquired(), r0 = released();
    is_int(mt_buf_reserve(&b, SIZE_MAX), -ENOMEM, "reserve(SIZE_MAX) fails cleanly");
    ok(b.data == NULL && b.cap == 0, "buffer unchanged");
    /* Small enough to pass the overflow check, too large for any allocator. */
    is_int(mt_buf_reserve(&b, SIZE_MAX / 4), -ENOMEM, "an impossible allocation gives -ENOMEM");
    ok(b.data == NULL && b.len == 0 && b.cap == 0, "empty buffer unchanged after -ENOMEM");
    is_int(acquired() - a0, released() - r0, "a failed allocation leaves the counters balanced");

    mt_buf_append(&b, "abc", 3);
    char *data = b.data;
    is_int(mt_buf_reserve(&b, SIZE_MAX / 4), -ENOMEM, "growing a pool block fails with -ENOMEM");
    ok(b.data == data && b.len == 3 && b.cap == MT_BUF_BLOCK && memcmp(b.data, "abc", 3) == 0,
       "pool block buffer unchanged after -ENOMEM");
    mt_buf_append(&b, NULL, 0);
    is_int(mt_buf_reserve(&b, 2 * MT_BUF_BLOCK), 0, "leave the pool block");
    data = b.data;
    size_t cap = b.cap;
    is_int(mt_buf_reserve(&b, SIZE_MAX / 4), -ENOMEM, "growing a heap buffer fails with -ENOMEM");
    ok(b.data == data && b.cap == cap && b.len == 3 && memcmp(b.data, "abc", 3) == 0,
       "heap buffer unchanged after -ENOMEM");
    is_int(mt_buf_append(&b, "x", SIZE_MAX - 1), -ENOMEM, "append of an impossible size fails");
    is_int(b.len, 3, "and appends nothing");
    mt_buf_dispose(&b);
    is_int(acquired() - a0, released() - r0, "counters balanced");
}

/* Handler threads and the I/O thread share the pool: hammer it from several
 * threads and check nothing is lost or handed out twice (ASan would see a
 * double use as a use-after-free or corrupted pattern). */
static void *churn(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    int bad = 0;
    for (int i = 0; i < 2000; i++) {
        mt_buf_t b;
        mt_buf_init(&b);
        size_t n = 1 + (i * 7919u + seed) % (i % 10 == 0 ? 3 * MT_BUF_BLOCK : 512);
        if (mt_buf_reserve(&b, n) < 0)
            return (void *)1;
        fill_pattern(b.data, n, seed + i);
        b.len = n;
        sched_yield();
        if (!check_pattern(b.data, n, seed + i))
            bad = 1;
        mt_buf_dispose(&b);
    }
    return (void *)(uintptr_t)bad;
}

static void test_threads(void) {
    pthread_t t[4];
    long a0 = acquired(), r0 = released();
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i * 101));
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        bad |= r != NULL;
    }
    ok(!bad, "no buffer was shared between threads");
    is_int(acquired() - a0, 4 * 2000, "every acquisition counted");
    is_int(released() - r0, 4 * 2000, "every release counted");
}

int main(void) {
    test_init_and_reserve();
    test_append_consume();
    test_growth();
    test_pool_reuse();
    test_out_of_memory();
    test_threads();
    mt_buf_pool_drain();
    is_int(acquired(), released(), "buffers_acquired == buffers_released at the end");
    return done_testing();
}
