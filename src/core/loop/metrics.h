/* A worker's metrics slot: counters and gauges in memory the master shares
 * with its workers (docs/design.md, "Metrics"), read by the master, which
 * adds up the slots of all its workers for Prometheus.
 *
 * Ownership: the master creates the region (one slot per worker process it
 * may run at once) before it forks any worker, zeroes a slot before a new
 * worker gets it, and reads slots at any time. A worker writes only its own
 * slot, from any of its threads, with relaxed atomic adds and stores: no
 * lock, and nothing another process waits for, so a worker that dies at any
 * instruction leaves every counter a valid number. The route names are the
 * exception: the worker writes them before it serves, then publishes their
 * count (release); the master reads only that many (acquire).
 *
 * Routes are indexes: MT_METRICS_ROUTE_SERVER (the server's own answers:
 * protocol errors, 408), _STATIC, _WSGI (the WSGI application), _ASGI (the
 * ASGI application), then the typed API's route i at
 * MT_METRICS_ROUTE_API + i; API routes past the table share its last entry. */
#ifndef MT_METRICS_H
#define MT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum {
    MT_METRICS_ROUTE_SERVER = 0,
    MT_METRICS_ROUTE_STATIC = 1,
    MT_METRICS_ROUTE_WSGI = 2,
    MT_METRICS_ROUTE_ASGI = 3,
    MT_METRICS_ROUTE_API = 4,
};

#define MT_METRICS_ROUTES 128 /* route indexes per slot, the fixed kinds included */
#define MT_METRICS_NAME 120   /* bytes of a route's name, NUL included; longer names are cut */
#define MT_METRICS_CLASSES 6  /* [0] a status outside 100-599, [1..5] 1xx..5xx */
#define MT_METRICS_BUCKETS 12 /* finite upper bounds of the duration histogram */

/* The histogram's upper bounds, in microseconds, ascending. */
extern const int64_t mt_metrics_bounds_us[MT_METRICS_BUCKETS];

typedef _Atomic uint64_t mt_metric_t;

typedef struct mt_metrics_route {
    mt_metric_t status[MT_METRICS_CLASSES];
    /* Requests by duration: buckets[i] counts durations <= bounds[i] and >
     * bounds[i - 1] (not cumulative); buckets[MT_METRICS_BUCKETS] the rest. */
    mt_metric_t buckets[MT_METRICS_BUCKETS + 1];
    mt_metric_t duration_us; /* the sum of the durations */
} mt_metrics_route_t;

typedef struct mt_metrics_slot {
    /* Counters, added to by any thread of the worker. */
    mt_metric_t bytes_in;  /* read from client sockets */
    mt_metric_t bytes_out; /* written to client sockets */
    mt_metric_t connections_accepted;
    /* Gauges, stored by the I/O thread after each round of events (so at
     * least every 250 ms). */
    mt_metric_t connections; /* open client connections */
    mt_metric_t in_flight;   /* requests handed to the handler threads and not answered yet */
    mt_metric_t queued;      /* of those, the ones waiting for a handler thread */
    _Atomic int nnames;      /* names[0, nnames) are written */
    char names[MT_METRICS_ROUTES][MT_METRICS_NAME];
    mt_metrics_route_t routes[MT_METRICS_ROUTES];
} mt_metrics_slot_t;

/* Zeroes a slot that no process writes (the master, before handing it out). */
void mt_metrics_slot_reset(mt_metrics_slot_t *m);

/* Names route index MT_METRICS_ROUTE_API + i after names[i], for i < n (the
 * worker, before it serves); the fixed kinds keep theirs ("server",
 * "static", "wsgi"). Names past the table are dropped: its last entry is
 * named "other". Publishes the count last. */
void mt_metrics_slot_name_routes(mt_metrics_slot_t *m, const char *const *names, int n);

/* The route index of the API's route `route` (>= 0), clamped to the table. */
static inline int mt_metrics_api_route(int route) {
    return route < MT_METRICS_ROUTES - MT_METRICS_ROUTE_API ? MT_METRICS_ROUTE_API + route : MT_METRICS_ROUTES - 1;
}

static inline int mt_metrics_class(int status) {
    return status >= 100 && status < 600 ? status / 100 : 0;
}

/* The bucket of a duration (a negative one counts as 0). */
static inline int mt_metrics_bucket(int64_t duration_us) {
    int i = 0;
    while (i < MT_METRICS_BUCKETS && duration_us > mt_metrics_bounds_us[i])
        i++;
    return i;
}

static inline void mt_metrics_add(mt_metric_t *counter, uint64_t n) {
    atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

/* Counts one answered request: three relaxed adds. m may be NULL (metrics
 * off); route is clamped to the table. */
static inline void mt_metrics_request(mt_metrics_slot_t *m, int route, int status, int64_t duration_us) {
    if (m == NULL)
        return;
    if (route < 0 || route >= MT_METRICS_ROUTES)
        route = MT_METRICS_ROUTES - 1;
    if (duration_us < 0)
        duration_us = 0;
    mt_metrics_route_t *r = &m->routes[route];
    mt_metrics_add(&r->status[mt_metrics_class(status)], 1);
    mt_metrics_add(&r->buckets[mt_metrics_bucket(duration_us)], 1);
    mt_metrics_add(&r->duration_us, (uint64_t)duration_us);
}

static inline void mt_metrics_set(mt_metric_t *gauge, uint64_t value) {
    atomic_store_explicit(gauge, value, memory_order_relaxed);
}

static inline uint64_t mt_metrics_get(const mt_metric_t *metric) {
    return atomic_load_explicit((mt_metric_t *)metric, memory_order_relaxed);
}

/* The number of route names published (acquire: the names are complete). */
int mt_metrics_slot_names(const mt_metrics_slot_t *m);

/* Copies a route's counters with relaxed loads into plain numbers; returns
 * the route's request count (the sum of its status classes). */
uint64_t mt_metrics_route_read(const mt_metrics_route_t *r, uint64_t status[MT_METRICS_CLASSES],
                               uint64_t buckets[MT_METRICS_BUCKETS + 1], uint64_t *duration_us);

#endif
