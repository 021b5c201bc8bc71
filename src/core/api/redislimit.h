/* Rate limits counted across machines in Redis: one atomic Lua script per
 * decision (EVALSHA; every limit of a route in the same call, so a refused
 * request counts against none of them), GCRA as in ratelimit.h, the clock
 * being Redis' own (TIME), so the machines' clocks need not agree.
 *
 * Connections: a pool of up to `pool` connections, each used by one thread
 * at a time (a thread waits at most `timeout_ms` for a free one). Every
 * connect, write and read is bounded by `timeout_ms`. A connection that
 * fails is closed; after a failure no connection is tried for a second (the
 * store counts as down), so a dead Redis costs each request nothing but the
 * policy's answer. The script is loaded on each new connection (SCRIPT
 * LOAD) and again when Redis answers NOSCRIPT (it restarted).
 *
 * Reports: when the store goes down, and then at most every 10 seconds
 * while it stays down, a line goes to standard error naming the address,
 * the error and the policy; another when it is back. */
#ifndef MT_REDISLIMIT_H
#define MT_REDISLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

#define MT_REDIS_MAX_LIMITS 8 /* limits of one decision */

typedef struct mt_redis_config {
    const char *host; /* a numeric IPv4/IPv6 address or a name, resolved once at create */
    int port;
    const char *password; /* NULL or "": no AUTH */
    int db;               /* SELECT db when not 0 */
    int timeout_ms;
    int pool;
    bool fail_open; /* when Redis cannot answer: allow (true) or refuse */
} mt_redis_config_t;

typedef struct mt_redislimit mt_redislimit_t;

typedef struct mt_redis_verdict {
    bool allowed;
    int refused_by; /* the index of the limit that refused */
    uint64_t retry; /* refused: ticks (MT_RL_TICK_NS) until a request would pass */
    uint64_t reset; /* refused: ticks until the refusing key's budget is whole */
} mt_redis_verdict_t;

/* Resolves the address; connects lazily. NULL with *err (a negative errno or
 * a getaddrinfo error text in errbuf). */
mt_redislimit_t *mt_redislimit_create(const mt_redis_config_t *cfg, char *errbuf, size_t errlen);
void mt_redislimit_destroy(mt_redislimit_t *r);

/* Decides one request under n limits (rates[i], keyed keys[i][0, klens[i])
 * — the Redis keys, already prefixed). Returns 0 with *v set, or a negative
 * errno when Redis could not decide (the caller applies the policy:
 * mt_redislimit_fail_open). Blocks for at most about 3 * timeout_ms. */
int mt_redislimit_take(mt_redislimit_t *r, int n, const mt_rate_t *const *rates, const char *const *keys,
                       const size_t *klens, mt_redis_verdict_t *v);

bool mt_redislimit_fail_open(const mt_redislimit_t *r);

#endif
