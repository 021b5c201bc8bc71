/* Unit tests of src/core/loop/metrics.c: the slot arithmetic (status
 * classes, histogram buckets at their bounds, route clamping), route names,
 * exact totals under concurrent writers, and a slot shared with a child
 * process that is killed in the middle of counting. */
#include "metrics.c"

#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"

static uint64_t requests(const mt_metrics_slot_t *m, int route) {
    uint64_t status[MT_METRICS_CLASSES], buckets[MT_METRICS_BUCKETS + 1], sum;
    return mt_metrics_route_read(&m->routes[route], status, buckets, &sum);
}

static uint64_t bucket_total(const mt_metrics_slot_t *m, int route) {
    uint64_t status[MT_METRICS_CLASSES], buckets[MT_METRICS_BUCKETS + 1], sum, total = 0;
    mt_metrics_route_read(&m->routes[route], status, buckets, &sum);
    for (int i = 0; i <= MT_METRICS_BUCKETS; i++)
        total += buckets[i];
    return total;
}

static void test_classes(mt_metrics_slot_t *m) {
    is_int(mt_metrics_class(100), 1, "100 is 1xx");
    is_int(mt_metrics_class(204), 2, "204 is 2xx");
    is_int(mt_metrics_class(308), 3, "308 is 3xx");
    is_int(mt_metrics_class(499), 4, "499 is 4xx");
    is_int(mt_metrics_class(599), 5, "599 is 5xx");
    is_int(mt_metrics_class(99), 0, "99 is outside the classes");
    is_int(mt_metrics_class(600), 0, "600 is outside the classes");
    is_int(mt_metrics_class(0), 0, "0 is outside the classes");
    mt_metrics_slot_reset(m);
    int statuses[] = {200, 201, 404, 500, 503, 301, 101, 999};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        mt_metrics_request(m, MT_METRICS_ROUTE_WSGI, statuses[i], 100);
    const mt_metrics_route_t *r = &m->routes[MT_METRICS_ROUTE_WSGI];
    is_int(mt_metrics_get(&r->status[2]), 2, "two 2xx");
    is_int(mt_metrics_get(&r->status[4]), 1, "one 4xx");
    is_int(mt_metrics_get(&r->status[5]), 2, "two 5xx");
    is_int(mt_metrics_get(&r->status[3]), 1, "one 3xx");
    is_int(mt_metrics_get(&r->status[1]), 1, "one 1xx");
    is_int(mt_metrics_get(&r->status[0]), 1, "one outside the classes");
    is_int(requests(m, MT_METRICS_ROUTE_WSGI), 8, "the classes add up to the requests");
    is_int(bucket_total(m, MT_METRICS_ROUTE_WSGI), 8, "so do the buckets");
    is_int(mt_metrics_get(&r->duration_us), 800, "the durations add up");
    is_int(requests(m, MT_METRICS_ROUTE_STATIC), 0, "other routes are untouched");
}

static void test_buckets(mt_metrics_slot_t *m) {
    is_int(mt_metrics_bucket(-5), 0, "a negative duration is in the first bucket");
    is_int(mt_metrics_bucket(0), 0, "0 is in the first bucket");
    for (int i = 0; i < MT_METRICS_BUCKETS; i++) {
        is_int(mt_metrics_bucket(mt_metrics_bounds_us[i]), i, "a duration equal to bound %d is in its bucket (le)", i);
        is_int(mt_metrics_bucket(mt_metrics_bounds_us[i] + 1), i + 1, "one microsecond more is in the next");
    }
    is_int(mt_metrics_bucket(INT64_MAX), MT_METRICS_BUCKETS, "the longest durations are in the +Inf bucket");
    for (int i = 1; i < MT_METRICS_BUCKETS; i++)
        ok(mt_metrics_bounds_us[i] > mt_metrics_bounds_us[i - 1], "bound %d is above bound %d", i, i - 1);
    mt_metrics_slot_reset(m);
    mt_metrics_request(m, MT_METRICS_ROUTE_STATIC, 200, -1);
    mt_metrics_request(m, MT_METRICS_ROUTE_STATIC, 200, 20 * 1000 * 1000);
    const mt_metrics_route_t *r = &m->routes[MT_METRICS_ROUTE_STATIC];
    is_int(mt_metrics_get(&r->buckets[0]), 1, "an unknown duration counts as 0");
    is_int(mt_metrics_get(&r->buckets[MT_METRICS_BUCKETS]), 1, "20 s is above every bound");
    is_int(mt_metrics_get(&r->duration_us), 20 * 1000 * 1000, "and the sum holds only the known one");
}

static void test_routes(mt_metrics_slot_t *m) {
    mt_metrics_slot_reset(m);
    is_int(mt_metrics_slot_names(m), MT_METRICS_ROUTE_API, "a reset slot names the fixed kinds");
    is_str(m->names[MT_METRICS_ROUTE_SERVER], "server", "route 0 is the server's own answers");
    is_str(m->names[MT_METRICS_ROUTE_STATIC], "static", "route 1 is static files");
    is_str(m->names[MT_METRICS_ROUTE_WSGI], "wsgi", "route 2 is the WSGI application");
    const char *names[] = {"/api/items/{id}", "/api/items"};
    mt_metrics_slot_name_routes(m, names, 2);
    is_int(mt_metrics_slot_names(m), MT_METRICS_ROUTE_API + 2, "two API routes named");
    is_str(m->names[mt_metrics_api_route(0)], "/api/items/{id}", "API route 0");
    is_str(m->names[mt_metrics_api_route(1)], "/api/items", "API route 1");

    int capacity = MT_METRICS_ROUTES - MT_METRICS_ROUTE_API;
    const char *many[MT_METRICS_ROUTES + 10];
    char texts[MT_METRICS_ROUTES + 10][16];
    for (int i = 0; i < capacity + 10; i++) {
        snprintf(texts[i], sizeof texts[i], "/r%d", i);
        many[i] = texts[i];
    }
    mt_metrics_slot_reset(m);
    mt_metrics_slot_name_routes(m, many, capacity);
    is_str(m->names[MT_METRICS_ROUTES - 1], texts[capacity - 1], "a table just full keeps its last name");
    mt_metrics_slot_name_routes(m, many, capacity + 10);
    is_int(mt_metrics_slot_names(m), MT_METRICS_ROUTES, "names stop at the table's end");
    is_str(m->names[MT_METRICS_ROUTES - 1], "other", "and its last entry is 'other' when routes were left out");
    is_int(mt_metrics_api_route(capacity + 5), MT_METRICS_ROUTES - 1, "a route past the table counts as 'other'");
    mt_metrics_request(m, 100000, 200, 1);
    mt_metrics_request(m, -3, 200, 1);
    is_int(requests(m, MT_METRICS_ROUTES - 1), 2, "out-of-range route indexes land on the last entry");

    char longname[300];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    const char *one[] = {longname};
    mt_metrics_slot_name_routes(m, one, 1);
    is_int(strlen(m->names[MT_METRICS_ROUTE_API]), MT_METRICS_NAME - 1, "a long name is cut, NUL-terminated");
}

#define THREADS 4
#define PER_THREAD 100000

static void *count_many(void *arg) {
    mt_metrics_slot_t *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        mt_metrics_request(m, MT_METRICS_ROUTE_WSGI, 200 + (i % 2) * 300, i % 3000);
        mt_metrics_add(&m->bytes_out, 3);
    }
    return NULL;
}

static void test_threads(mt_metrics_slot_t *m) {
    mt_metrics_slot_reset(m);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, count_many, m);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    const mt_metrics_route_t *r = &m->routes[MT_METRICS_ROUTE_WSGI];
    is_int(requests(m, MT_METRICS_ROUTE_WSGI), THREADS * PER_THREAD, "no request lost between %d threads", THREADS);
    is_int(mt_metrics_get(&r->status[2]), THREADS * PER_THREAD / 2, "half of them 2xx");
    is_int(bucket_total(m, MT_METRICS_ROUTE_WSGI), THREADS * PER_THREAD, "the histogram counts each once");
    is_int(mt_metrics_get(&m->bytes_out), 3LL * THREADS * PER_THREAD, "no byte lost");
}

/* A child counts in a shared slot and is killed at a random moment: what it
 * counted stays, every class and bucket a whole number, and the
 * histogram's count is the request count, to within the one request the
 * kill may have cut in half. */
static void test_killed_writer(void) {
    mt_metrics_slot_t *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    ok(m != MAP_FAILED, "a shared slot");
    if (m == MAP_FAILED)
        return;
    mt_metrics_slot_reset(m);
    pid_t pid = fork();
    if (pid == 0) {
        for (;;)
            mt_metrics_request(m, MT_METRICS_ROUTE_API, 200, 700);
    }
    while (requests(m, MT_METRICS_ROUTE_API) < 100000)
        usleep(1000);
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    ok(WIFSIGNALED(status), "the writer was killed");
    uint64_t before = requests(m, MT_METRICS_ROUTE_API);
    uint64_t hist = bucket_total(m, MT_METRICS_ROUTE_API);
    ok(before >= 100000, "its counts survive it (%llu)", (unsigned long long)before);
    ok(hist == before || hist + 1 == before, "the histogram agrees within the request cut short");
    is_int(mt_metrics_get(&m->routes[MT_METRICS_ROUTE_API].buckets[1]), hist,
           "every duration is in the bucket of 700 us");
    mt_metrics_slot_reset(m);
    is_int(requests(m, MT_METRICS_ROUTE_API), 0, "a reset slot is empty for the next worker");
    munmap(m, sizeof *m);
}

int main(void) {
    static mt_metrics_slot_t slot;
    test_classes(&slot);
    test_buckets(&slot);
    test_routes(&slot);
    test_threads(&slot);
    test_killed_writer();
    return done_testing();
}
