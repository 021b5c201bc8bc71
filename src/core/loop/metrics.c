#include "metrics.h"

#include <stdbool.h>
#include <string.h>

#include "common.h"

/* From half a millisecond to ten seconds, about 2.5x apart: an answer
 * given in C lands in the first buckets, a database view in the middle. */
const int64_t mt_metrics_bounds_us[MT_METRICS_BUCKETS] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 1000000, 2500000, 10000000,
};

static const char *const fixed_names[MT_METRICS_ROUTE_API] = {"server", "static", "wsgi", "asgi"};

void mt_metrics_slot_reset(mt_metrics_slot_t *m) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < MT_METRICS_ROUTE_API; i++)
        strcpy(m->names[i], fixed_names[i]);
    atomic_store_explicit(&m->nnames, MT_METRICS_ROUTE_API, memory_order_release);
}

void mt_metrics_slot_name_routes(mt_metrics_slot_t *m, const char *const *names, int n) {
    int last = MT_METRICS_ROUTES - 1;
    bool overflow = n > MT_METRICS_ROUTES - MT_METRICS_ROUTE_API;
    int count = MT_METRICS_ROUTE_API;
    for (int i = 0; i < n && count <= last; i++) {
        const char *name = overflow && count == last ? "other" : names[i];
        size_t len = MT_MIN(strlen(name), (size_t)MT_METRICS_NAME - 1);
        memcpy(m->names[count], name, len);
        m->names[count][len] = '\0';
        count++;
    }
    atomic_store_explicit(&m->nnames, count, memory_order_release);
}

int mt_metrics_slot_names(const mt_metrics_slot_t *m) {
    return atomic_load_explicit((_Atomic int *)&m->nnames, memory_order_acquire);
}

uint64_t mt_metrics_route_read(const mt_metrics_route_t *r, uint64_t status[MT_METRICS_CLASSES],
                               uint64_t buckets[MT_METRICS_BUCKETS + 1], uint64_t *duration_us) {
    uint64_t total = 0;
    /* A request counted meanwhile may show in some of these and not yet
     * in others: the master reads idle slots exactly, busy ones within the
     * requests in progress. */
    for (int i = 0; i <= MT_METRICS_BUCKETS; i++)
        buckets[i] = mt_metrics_get(&r->buckets[i]);
    *duration_us = mt_metrics_get(&r->duration_us);
    for (int i = 0; i < MT_METRICS_CLASSES; i++)
        total += status[i] = mt_metrics_get(&r->status[i]);
    return total;
}
