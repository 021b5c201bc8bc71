/* Shared definitions of the pure-C core: error codes, counters, small helpers.
 * Nothing here (or anywhere under src/core) includes Python.h. */
#ifndef MT_COMMON_H
#define MT_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Errors beyond errno: core functions return 0 or a negative errno or -MT_E*. */
enum {
    MT_EBASE = 10000,
    MT_ETIMEDOUT_HEAD, /* the head did not arrive within head_timeout */
    MT_EBODYTOOLARGE,  /* the body grew past max_body_size */
    MT_EPROTO,         /* the peer broke the framing */
    MT_ECLOSED,        /* the peer closed the connection */
};

#define MT_LIKELY(x) __builtin_expect(!!(x), 1)
#define MT_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define MT_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MT_MIN(a, b) ((a) < (b) ? (a) : (b))
#define MT_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Optional whitespace of HTTP fields (RFC 9110 5.6.3): space or horizontal tab. */
static inline bool mt_is_ows(char c) {
    return c == ' ' || c == '\t';
}

/* Object counters of one worker process. They cost one relaxed atomic add per
 * event, so they stay on in release builds; tests assert that they balance
 * when a server stops. */
typedef struct mt_counters {
    atomic_long connections_opened;
    atomic_long connections_closed;
    atomic_long requests_started;
    atomic_long requests_finished;
    atomic_long buffers_acquired;
    atomic_long buffers_released;
    atomic_long output_bytes_queued;   /* bytes put on connections' output queues */
    atomic_long output_bytes_released; /* of those, written or dropped */
} mt_counters_t;

extern mt_counters_t mt_counters;

#define MT_COUNT(field) atomic_fetch_add_explicit(&mt_counters.field, 1, memory_order_relaxed)

#endif
