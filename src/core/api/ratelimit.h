/* Rate limits counted across the processes of one machine: GCRA (the generic
 * cell rate algorithm) over a fixed-size table in shared memory.
 *
 * A limit of `count` requests per `period` lets a key spend `count` requests
 * at once, then one more every period / count (the emission interval T). The
 * state of a key is one number, its theoretical arrival time (TAT): a request
 * at `now` is allowed when max(TAT, now) + T - now <= period, and then moves
 * TAT there. A key whose TAT has passed is in the same state as a key never
 * seen, so a slot whose TAT is in the past is free for any key.
 *
 * The table: a header (magic, size, clock epoch, hash secret) and 2^k slots
 * of one 64-bit word each, grouped in lines of MT_RL_LINE slots (one cache
 * line). A word holds a key's tag (MT_RL_TAG_BITS of a keyed SipHash-2-4 of
 * the limit's id and the key) and its TAT (the rest, in MT_RL_TICK_NS units
 * since the epoch); 0 is an empty slot. Other bits of the hash choose the
 * line. Every change is one compare-and-swap of one word, so the table is
 * lock-free, and a process that dies at any point leaves only whole words
 * behind: nothing to repair, no lock to recover.
 *
 * Overflow: a key looks only at its line. It takes its own slot (same tag),
 * else an empty or expired one, else, when all MT_RL_LINE slots hold keys
 * still in debt, the slot with the smallest TAT (that key starts afresh: the
 * table errs towards allowing, never towards refusing a key it lost track
 * of). Two keys with the same line and tag share a budget (probability about
 * 2^-MT_RL_TAG_BITS per pair of keys on a line; the secret, drawn per table,
 * keeps clients from choosing such collisions).
 *
 * Who owns what: the master process maps the memory (shared, anonymous,
 * zero-filled) before it forks workers; it never touches it otherwise. The
 * first worker that attaches initialises the header (a compare-and-swap of
 * `state` from 0 to its pid elects it; the others wait until `magic` is set,
 * and take over if the elected pid died meanwhile). Workers inherit the
 * mapping; it lives until the last process that maps it exits, across
 * reloads and worker replacements. */
#ifndef MT_RATELIMIT_H
#define MT_RATELIMIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MT_RL_LINE 8
#define MT_RL_TAG_BITS 20
#define MT_RL_TAT_BITS (64 - MT_RL_TAG_BITS)
#define MT_RL_TICK_NS 10000ULL /* 10 us: 2^44 ticks are 5.5 years */

typedef struct mt_ratelimit {
    _Atomic uint64_t magic; /* MT_RL_MAGIC once initialised */
    _Atomic int64_t state;  /* 0: untouched; else the pid initialising it */
    uint64_t nslots;        /* a power of two, a multiple of MT_RL_LINE */
    int64_t epoch_ns;       /* CLOCK_MONOTONIC at init */
    uint64_t k0, k1;        /* the hash secret */
    uint64_t pad[2];
    _Atomic uint64_t slots[]; /* at offset 64 */
} mt_ratelimit_t;

/* One limit: `count` requests per `period_ticks`, and an id that keeps its
 * keys apart from other limits' (the same address under two limits counts
 * twice). */
typedef struct mt_rate {
    uint64_t id;
    uint32_t count;
    uint64_t period;   /* in ticks */
    uint64_t interval; /* period / count, at least 1 */
} mt_rate_t;

typedef struct mt_rate_result {
    bool allowed;
    uint32_t remaining; /* requests the key may still make at once */
    uint64_t reset;     /* ticks until the key's budget is whole again */
    uint64_t retry;     /* refused: ticks until a request would be allowed */
} mt_rate_result_t;

/* Bytes of a table of nslots slots (a power of two >= MT_RL_LINE). */
size_t mt_ratelimit_size(uint64_t nslots);

/* The table in mem[0, size): shared memory that is zero-filled or already a
 * table. The first caller initialises it (the largest power-of-two number of
 * slots that fits, the clock epoch, a fresh secret); the others wait for
 * that. NULL when the memory is too small or holds something else. */
mt_ratelimit_t *mt_ratelimit_attach(void *mem, size_t size);

/* Fills r for `count` per `period_ns` (count >= 1, period >= 1 tick). */
void mt_rate_init(mt_rate_t *r, uint64_t id, uint32_t count, uint64_t period_ns);

/* Ticks since the table's epoch. */
uint64_t mt_ratelimit_now(const mt_ratelimit_t *rl);

/* Takes one request for key[0, klen) under `rate` at `now` (ticks): decides,
 * and when allowed records it. Lock-free; any thread of any process. */
void mt_ratelimit_take(mt_ratelimit_t *rl, const mt_rate_t *rate, const void *key, size_t klen, uint64_t now,
                       mt_rate_result_t *out);

#endif
