/* Unit tests of src/core/api/ratelimit.c: GCRA's decisions (the burst, the
 * refill, Retry-After), keys and limits kept apart, the table's overflow
 * policy, and exact counts when threads and processes take at once. */
#include "ratelimit.c"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

#define SEC (1000000000ULL / MT_RL_TICK_NS) /* ticks per second */

static mt_ratelimit_t *table(size_t size) {
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    mt_ratelimit_t *rl = mem == MAP_FAILED ? NULL : mt_ratelimit_attach(mem, size);
    if (rl == NULL)
        ok(0, "test setup: a table of %zu bytes", size);
    return rl;
}

static int allowed_of(mt_ratelimit_t *rl, const mt_rate_t *r, const char *key, uint64_t now, int n) {
    int allowed = 0;
    mt_rate_result_t res;
    for (int i = 0; i < n; i++) {
        mt_ratelimit_take(rl, r, key, strlen(key), now, &res);
        allowed += res.allowed;
    }
    return allowed;
}

static void test_table(void) {
    char small[64 + 8 * 8];
    memset(small, 0, sizeof small);
    ok(mt_ratelimit_attach(small, 32) == NULL, "too small for one line");
    mt_ratelimit_t *rl = mt_ratelimit_attach(small, sizeof small);
    ok(rl && rl->nslots == 8, "zeroed memory becomes a table of one line (8 slots)");
    uint64_t k0 = rl->k0;
    ok(mt_ratelimit_attach(small, sizeof small) == rl && rl->k0 == k0, "a second attach keeps it as it is");
    ok(mt_ratelimit_attach(small, sizeof small - 1) == NULL, "a mapping shorter than the table is refused");
    size_t size = 1 << 20;
    rl = table(size);
    is_int(rl->nslots, 65536, "1 MiB: the largest power of two that fits");
}

static void test_gcra(void) {
    mt_ratelimit_t *rl = table(1 << 16);
    mt_rate_t r;
    mt_rate_init(&r, 1, 10, 1000000000ULL); /* 10 per second */
    is_int(r.interval, SEC / 10, "T = period / count");
    uint64_t t0 = 1000 * SEC;
    is_int(allowed_of(rl, &r, "a", t0, 25), 10, "a burst: exactly 10 of 25 pass");
    mt_rate_result_t res;
    mt_ratelimit_take(rl, &r, "a", 1, t0, &res);
    ok(!res.allowed, "the 26th is refused");
    is_int(res.retry, SEC / 10, "Retry after one interval");
    is_int(res.remaining, 0, "nothing remains");
    is_int(res.reset, SEC, "whole again after a second");
    mt_ratelimit_take(rl, &r, "a", 1, t0 + SEC / 10 - 1, &res);
    ok(!res.allowed, "just before one interval: still refused");
    mt_ratelimit_take(rl, &r, "a", 1, t0 + SEC / 10, &res);
    ok(res.allowed, "after one interval: one more");
    is_int(allowed_of(rl, &r, "a", t0 + SEC / 10, 5), 0, "and only one");
    is_int(allowed_of(rl, &r, "a", t0 + 3 * SEC, 25), 10, "idle long enough: the whole burst again");
    is_int(allowed_of(rl, &r, "b", t0, 25), 10, "another key has its own budget");
    mt_rate_t other;
    mt_rate_init(&other, 2, 10, 1000000000ULL);
    is_int(allowed_of(rl, &other, "a", t0 + 3 * SEC, 25), 10, "another limit counts the same key apart");
    mt_ratelimit_take(rl, &r, "fresh", 5, t0, &res);
    ok(res.allowed && res.remaining == 9, "a fresh key: allowed, 9 remain (got %u)", res.remaining);
    mt_rate_t one;
    mt_rate_init(&one, 3, 1, 60ULL * 1000000000ULL);
    is_int(allowed_of(rl, &one, "k", t0, 3), 1, "1 per minute: one");
    mt_ratelimit_take(rl, &one, "k", 1, t0 + SEC, &res);
    is_int(res.retry, 59 * SEC, "Retry-After 59 s a second later");
}

static void test_overflow(void) {
    /* One line of 8 slots: a ninth key in debt evicts the one with the least debt. */
    char mem[64 + 8 * 8];
    memset(mem, 0, sizeof mem);
    mt_ratelimit_t *rl = mt_ratelimit_attach(mem, sizeof mem);
    mt_rate_t r;
    mt_rate_init(&r, 1, 2, 1000000000ULL);
    uint64_t now = 5 * SEC;
    char key[8];
    for (int k = 0; k < 8; k++) {
        snprintf(key, sizeof key, "k%d", k);
        is_int(allowed_of(rl, &r, key, now + (uint64_t)k, k == 0 ? 2 : 1), k == 0 ? 2 : 1, "key %d takes", k);
    }
    is_int(allowed_of(rl, &r, "k0", now + 8, 1), 0, "k0 (two taken) is refused: the table remembers it");
    is_int(allowed_of(rl, &r, "new", now + 9, 2), 2, "a ninth key gets its burst");
    int remembered = 0;
    for (int k = 0; k < 8; k++) {
        snprintf(key, sizeof key, "k%d", k);
        remembered += allowed_of(rl, &r, key, now + 10, 1) == 0;
    }
    ok(remembered < 8, "one key lost its debt to it (allowed again): the table errs towards allowing");
    is_int(allowed_of(rl, &r, "k0", now + 2 * SEC, 2), 2, "expired slots are reused");
}

typedef struct worker_arg {
    mt_ratelimit_t *rl;
    const mt_rate_t *rate;
    uint64_t now;
    int tries;
    int allowed;
} worker_arg_t;

static void *take_many(void *p) {
    worker_arg_t *a = p;
    mt_rate_result_t res;
    char key[16];
    for (int i = 0; i < a->tries; i++) {
        mt_ratelimit_take(a->rl, a->rate, "shared", 6, a->now, &res);
        a->allowed += res.allowed;
        /* Other keys on the way, so lines see traffic beside ours. */
        snprintf(key, sizeof key, "n%d", i % 64);
        mt_ratelimit_take(a->rl, a->rate, key, strlen(key), a->now, &res);
    }
    return NULL;
}

static void test_threads(void) {
    mt_ratelimit_t *rl = table(1 << 16);
    mt_rate_t r;
    mt_rate_init(&r, 7, 1000, 60ULL * 1000000000ULL);
    enum { N = 8 };
    pthread_t t[N];
    worker_arg_t args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (worker_arg_t){rl, &r, 100 * SEC, 5000, 0};
        pthread_create(&t[i], NULL, take_many, &args[i]);
    }
    int total = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        total += args[i].allowed;
    }
    is_int(total, 1000, "8 threads, 40,000 tries at one instant: exactly 1,000 allowed");
}

static void test_processes(void) {
    mt_ratelimit_t *rl = table(1 << 16);
    mt_rate_t r;
    mt_rate_init(&r, 9, 500, 60ULL * 1000000000ULL);
    enum { N = 4 };
    int fds[2];
    if (pipe(fds) != 0)
        ok(0, "test setup: a pipe");
    uint64_t now = mt_ratelimit_now(rl);
    for (int i = 0; i < N; i++) {
        if (fork() == 0) {
            worker_arg_t a = {rl, &r, now, 3000, 0};
            take_many(&a);
            ssize_t w = write(fds[1], &a.allowed, sizeof a.allowed);
            _exit(w == sizeof a.allowed ? 0 : 1);
        }
    }
    int total = 0;
    for (int i = 0; i < N; i++) {
        int n = 0;
        if (read(fds[0], &n, sizeof n) == sizeof n)
            total += n;
        wait(NULL);
    }
    is_int(total, 500, "4 processes on one shared mapping: exactly 500 allowed");
    /* A process killed in the middle of its takes leaves whole words. */
    pid_t pid = fork();
    if (pid == 0) {
        worker_arg_t a = {rl, &r, now, 1 << 30, 0};
        take_many(&a);
        _exit(0);
    }
    usleep(20000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    mt_rate_t fresh;
    mt_rate_init(&fresh, 10, 50, 60ULL * 1000000000ULL);
    is_int(allowed_of(rl, &fresh, "after", now, 80), 50, "after a SIGKILL mid-take the table still counts exactly");
}

static void test_attach_race(void) {
    size_t size = 1 << 16;
    char *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    enum { N = 6 };
    int fds[2];
    if (pipe(fds) != 0)
        ok(0, "test setup: a pipe");
    for (int i = 0; i < N; i++) {
        if (fork() == 0) {
            mt_ratelimit_t *rl = mt_ratelimit_attach(mem, size);
            uint64_t k0 = rl ? rl->k0 : 0;
            ssize_t w = write(fds[1], &k0, sizeof k0);
            _exit(w == sizeof k0 ? 0 : 1);
        }
    }
    uint64_t first = 0;
    int same = 0;
    for (int i = 0; i < N; i++) {
        uint64_t k0 = 0;
        if (read(fds[0], &k0, sizeof k0) == sizeof k0) {
            if (i == 0)
                first = k0;
            same += k0 == first && k0 != 0;
        }
        wait(NULL);
    }
    is_int(same, N, "6 processes attaching at once see one initialisation (one secret)");
    /* An initialiser that died before finishing: the next one takes over. */
    char *stale = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    ((mt_ratelimit_t *)stale)->state = pid; /* elected, then gone */
    ok(mt_ratelimit_attach(stale, size) != NULL, "a dead initialiser is taken over");
}

int main(void) {
    test_table();
    test_gcra();
    test_overflow();
    test_threads();
    test_processes();
    test_attach_race();
    return done_testing();
}
