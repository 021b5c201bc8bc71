/* GCRA in shared memory (ratelimit.h). */
#include "ratelimit.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x6d742d726c763031ULL /* "mt-rlv01" */
#define TAT_MASK ((1ULL << MT_RL_TAT_BITS) - 1)
#define HEADER_SIZE 64

_Static_assert(offsetof(mt_ratelimit_t, slots) == HEADER_SIZE, "slots start on a cache line");

/* ---- SipHash-2-4 (Aumasson and Bernstein), written from the paper ---- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                                                                       \
    do {                                                                                                               \
        v0 += v1;                                                                                                      \
        v1 = ROTL(v1, 13);                                                                                             \
        v1 ^= v0;                                                                                                      \
        v0 = ROTL(v0, 32);                                                                                             \
        v2 += v3;                                                                                                      \
        v3 = ROTL(v3, 16);                                                                                             \
        v3 ^= v2;                                                                                                      \
        v0 += v3;                                                                                                      \
        v3 = ROTL(v3, 21);                                                                                             \
        v3 ^= v0;                                                                                                      \
        v2 += v1;                                                                                                      \
        v1 = ROTL(v1, 17);                                                                                             \
        v1 ^= v2;                                                                                                      \
        v2 = ROTL(v2, 32);                                                                                             \
    } while (0)

static uint64_t load_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t siphash(uint64_t k0, uint64_t k1, const uint8_t *in, size_t n) {
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
    size_t whole = n & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = load_le64(in + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    for (size_t i = 0; i < (n & 7); i++)
        b |= (uint64_t)in[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xff;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    return v0 ^ v1 ^ v2 ^ v3;
}

/* ---- the table ---- */

static int64_t monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

size_t mt_ratelimit_size(uint64_t nslots) {
    return HEADER_SIZE + (size_t)nslots * sizeof(uint64_t);
}

static void init_table(void *mem, size_t size) {
    uint64_t n = MT_RL_LINE;
    while (mt_ratelimit_size(n * 2) <= size)
        n *= 2;
    mt_ratelimit_t *rl = mem;
    uint64_t secret[2] = {0, 0};
    if (getrandom(secret, sizeof secret, 0) != (ssize_t)sizeof secret) {
        /* No entropy source: a secret from the clock and the address still
         * differs per table, if less unguessably. */
        secret[0] = (uint64_t)monotonic_ns() * 0x9e3779b97f4a7c15ULL;
        secret[1] = (uint64_t)(uintptr_t)mem ^ 0xd1b54a32d192ed03ULL;
    }
    rl->nslots = n;
    rl->epoch_ns = monotonic_ns();
    rl->k0 = secret[0];
    rl->k1 = secret[1];
    for (uint64_t i = 0; i < n; i++)
        atomic_store_explicit(&rl->slots[i], 0, memory_order_relaxed);
    atomic_store_explicit(&rl->magic, MAGIC, memory_order_release);
}

mt_ratelimit_t *mt_ratelimit_attach(void *mem, size_t size) {
    mt_ratelimit_t *rl = mem;
    if (mem == NULL || size < mt_ratelimit_size(MT_RL_LINE))
        return NULL;
    int64_t me = (int64_t)getpid();
    while (atomic_load_explicit(&rl->magic, memory_order_acquire) != MAGIC) {
        int64_t owner = 0;
        if (atomic_compare_exchange_strong(&rl->state, &owner, me)) {
            init_table(mem, size); /* nobody reads the header before magic is set */
            break;
        }
        if (owner != me && kill((pid_t)owner, 0) != 0 && errno == ESRCH) {
            /* The elected process died before it finished: take over. */
            atomic_compare_exchange_strong(&rl->state, &owner, 0);
            continue;
        }
        sched_yield();
    }
    if (atomic_load_explicit(&rl->magic, memory_order_acquire) != MAGIC || rl->nslots < MT_RL_LINE ||
        (rl->nslots & (rl->nslots - 1)) || mt_ratelimit_size(rl->nslots) > size)
        return NULL;
    return rl;
}

void mt_rate_init(mt_rate_t *r, uint64_t id, uint32_t count, uint64_t period_ns) {
    r->id = id;
    r->count = count ? count : 1;
    r->period = period_ns / MT_RL_TICK_NS;
    if (r->period == 0)
        r->period = 1;
    r->interval = r->period / r->count;
    if (r->interval == 0)
        r->interval = 1;
}

uint64_t mt_ratelimit_now(const mt_ratelimit_t *rl) {
    int64_t d = monotonic_ns() - rl->epoch_ns;
    return d > 0 ? (uint64_t)d / MT_RL_TICK_NS : 0;
}

static uint64_t tat_of(uint64_t word) {
    return word & TAT_MASK;
}

static void decide(const mt_rate_t *rate, uint64_t tat, uint64_t now, uint64_t *new_tat, mt_rate_result_t *out) {
    uint64_t base = tat > now ? tat : now;
    uint64_t next = base + rate->interval;
    out->allowed = next - now <= rate->period;
    uint64_t debt = out->allowed ? next - now : base - now;
    out->remaining = (uint32_t)((rate->period - (debt < rate->period ? debt : rate->period)) / rate->interval);
    out->reset = debt;
    /* Refused: allowed again once base - T would fit, i.e. at base + T - period. */
    out->retry = out->allowed ? 0 : next - rate->period - now;
    *new_tat = next;
}

void mt_ratelimit_take(mt_ratelimit_t *rl, const mt_rate_t *rate, const void *key, size_t klen, uint64_t now,
                       mt_rate_result_t *out) {
    uint64_t h = siphash(rl->k0 ^ rate->id, rl->k1, key, klen);
    uint64_t tag = h >> MT_RL_TAT_BITS;
    if (tag == 0)
        tag = 1; /* 0 marks an empty slot */
    tag <<= MT_RL_TAT_BITS;
    _Atomic uint64_t *line = &rl->slots[(h * MT_RL_LINE) & (rl->nslots - 1) & ~(uint64_t)(MT_RL_LINE - 1)];
    now &= TAT_MASK;
    for (;;) {
        int mine = -1, spare = -1, oldest = 0;
        uint64_t seen[MT_RL_LINE];
        for (int i = 0; i < MT_RL_LINE; i++) {
            seen[i] = atomic_load_explicit(&line[i], memory_order_acquire);
            if ((seen[i] & ~TAT_MASK) == tag) {
                mine = i;
                break;
            }
            if (spare < 0 && (seen[i] == 0 || tat_of(seen[i]) <= now))
                spare = i;
            if (tat_of(seen[i]) < tat_of(seen[oldest]))
                oldest = i;
        }
        /* Our own slot; else a free one (the key starts afresh); else the
         * one with the least debt, whose key is forgotten. */
        int slot = mine >= 0 ? mine : spare >= 0 ? spare : oldest;
        uint64_t old = seen[slot];
        uint64_t tat = mine >= 0 ? tat_of(old) : 0, next;
        decide(rate, tat, now, &next, out);
        if (!out->allowed && mine >= 0)
            return; /* nothing to record */
        uint64_t word = tag | ((out->allowed ? next : now) & TAT_MASK);
        if (atomic_compare_exchange_weak_explicit(&line[slot], &old, word, memory_order_acq_rel, memory_order_acquire))
            return;
        /* Another process changed the slot between the look and the swap:
         * decide again from what is there now. */
    }
}
