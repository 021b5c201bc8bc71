#include "clock.h"

#include <stdio.h>
#include <time.h>

static const char weekdays[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int64_t mt_clock_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mt_clock_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

typedef struct date_cache {
    time_t second;
    char http[MT_HTTP_DATE_LEN + 16]; /* + room that the compiler cannot prove unused */
    char log[MT_LOG_DATE_LEN + 16];
    char iso[80]; /* snprintf of unbounded ints: room the compiler can prove */
} date_cache_t;

static __thread date_cache_t cache = {.second = -1};

static void refresh(void) {
    time_t now = time(NULL); /* vDSO: no system call */
    if (now == cache.second)
        return;
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(cache.http, sizeof cache.http, "%s, %02d %s %04d %02d:%02d:%02d GMT", weekdays[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(cache.log, sizeof cache.log, "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday, months[tm.tm_mon],
             tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    snprintf(cache.iso, sizeof cache.iso, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cache.second = now;
}

const char *mt_clock_http_date(void) {
    refresh();
    return cache.http;
}

const char *mt_clock_log_date(void) {
    refresh();
    return cache.log;
}

const char *mt_clock_iso_date(void) {
    refresh();
    return cache.iso;
}
