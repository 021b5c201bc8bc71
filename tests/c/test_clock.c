/* Unit tests of src/core/loop/clock.c: monotonic milliseconds and the cached dates. */
#include "clock.c"

#include <pthread.h>
#include <string.h>

#include "tap.h"

/* Runs `get` and formats the same second with strftime; retries when the
 * second changed in between so the comparison is never flaky. */
static void expected_now(const char *(*get)(void), const char *fmt, char *got, size_t glen, char *want, size_t wlen) {
    for (int attempt = 0; attempt < 5; attempt++) {
        time_t t0 = time(NULL);
        const char *s = get();
        time_t t1 = time(NULL);
        snprintf(got, glen, "%s", s);
        struct tm tm;
        gmtime_r(&t0, &tm);
        strftime(want, wlen, fmt, &tm);
        if (t0 == t1)
            return;
    }
}

static void test_http_date(void) {
    char got[64], want[64];
    expected_now(mt_clock_http_date, "%a, %d %b %Y %H:%M:%S GMT", got, sizeof got, want, sizeof want);
    is_int(strlen(got), MT_HTTP_DATE_LEN, "http date is %d characters", MT_HTTP_DATE_LEN);
    is_str(got, want, "http date matches strftime of gmtime (IMF-fixdate)");
    ok(mt_clock_http_date() == mt_clock_http_date(), "the same cached storage is returned");
}

static void test_log_date(void) {
    char got[64], want[64];
    expected_now(mt_clock_log_date, "%d/%b/%Y:%H:%M:%S +0000", got, sizeof got, want, sizeof want);
    is_int(strlen(got), MT_LOG_DATE_LEN, "log date is %d characters", MT_LOG_DATE_LEN);
    is_str(got, want, "log date matches strftime of gmtime (Common Log Format, UTC)");
}

static void test_iso_date(void) {
    char got[64], want[64];
    expected_now(mt_clock_iso_date, "%Y-%m-%dT%H:%M:%SZ", got, sizeof got, want, sizeof want);
    is_int(strlen(got), MT_ISO_DATE_LEN, "ISO date is %d characters", MT_ISO_DATE_LEN);
    is_str(got, want, "ISO date matches strftime of gmtime (ISO 8601, UTC)");
}

static void test_now_us(void) {
    int64_t a = mt_clock_now_us(), ms = mt_clock_now_ms(), b = mt_clock_now_us();
    ok(b >= a, "microseconds never go back");
    ok(a / 1000 <= ms + 1 && ms <= b / 1000 + 1, "microseconds and milliseconds share the clock");
}

/* The cache is only refreshed when the second changes: plant a marker in it
 * and see it kept within the second and replaced once the cached second is
 * stale. */
static void test_cache_refresh(void) {
    int kept = 0, replaced = 0;
    for (int attempt = 0; attempt < 5 && !kept; attempt++) {
        time_t t0 = time(NULL);
        mt_clock_http_date();
        memcpy(cache.http, "marker", 7);
        const char *s = mt_clock_http_date();
        kept = time(NULL) == t0 && strcmp(s, "marker") == 0;
    }
    ok(kept, "within one second the cached text is reused (no reformatting)");
    cache.second -= 1;
    memcpy(cache.http, "marker", 7);
    memcpy(cache.log, "marker", 7);
    const char *h = mt_clock_http_date();
    replaced = strlen(h) == MT_HTTP_DATE_LEN && strcmp(h, "marker") != 0;
    ok(replaced, "a stale second is reformatted");
    cache.second -= 1;
    memcpy(cache.log, "marker", 7);
    ok(strcmp(mt_clock_log_date(), "marker") != 0, "log date is refreshed with the http date");
}

static void *other_thread(void *arg) {
    const char **out = arg;
    out[0] = mt_clock_http_date();
    out[1] = strlen(out[0]) == MT_HTTP_DATE_LEN ? "ok" : "bad length";
    return NULL;
}

static void test_thread_local(void) {
    const char *mine = mt_clock_http_date();
    const char *theirs[2] = {NULL, NULL};
    pthread_t t;
    pthread_create(&t, NULL, other_thread, theirs);
    pthread_join(t, NULL);
    ok(theirs[0] != mine, "each thread has its own cache (no shared mutable storage)");
    is_str(theirs[1], "ok", "another thread's date is well formed");
}

static void test_monotonic(void) {
    int64_t prev = mt_clock_now_ms(), decreased = 0;
    for (int i = 0; i < 100000; i++) {
        int64_t now = mt_clock_now_ms();
        if (now < prev)
            decreased++;
        prev = now;
    }
    is_int(decreased, 0, "mt_clock_now_ms never goes backwards");

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t ref = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t now = mt_clock_now_ms();
    ok(now >= ref && now - ref < 50, "it is CLOCK_MONOTONIC in milliseconds (%lld vs %lld)", (long long)now,
       (long long)ref);

    int64_t t0 = mt_clock_now_ms();
    nanosleep(&(struct timespec){0, 20 * 1000000}, NULL);
    int64_t elapsed = mt_clock_now_ms() - t0;
    ok(elapsed >= 20 && elapsed < 1000, "a 20 ms sleep advances it by >= 20 ms (%lld)", (long long)elapsed);
}

int main(void) {
    test_http_date();
    test_log_date();
    test_iso_date();
    test_now_us();
    test_cache_refresh();
    test_thread_local();
    test_monotonic();
    return done_testing();
}
