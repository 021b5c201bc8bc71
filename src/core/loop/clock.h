/* Time: a monotonic clock for deadlines and the cached HTTP Date header. */
#ifndef MT_CLOCK_H
#define MT_CLOCK_H

#include <stdint.h>

#define MT_HTTP_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */
#define MT_LOG_DATE_LEN 26  /* "06/Nov/1994:08:49:37 +0000" */
#define MT_ISO_DATE_LEN 20  /* "1994-11-06T08:49:37Z" */

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t mt_clock_now_ms(void);

/* Microseconds on CLOCK_MONOTONIC (vDSO: no system call), for durations. */
int64_t mt_clock_now_us(void);

/* The current time as an IMF-fixdate (RFC 9110), formatted at most once per
 * second per thread (the cache is thread-local, so no lock). Returns a pointer
 * to MT_HTTP_DATE_LEN characters valid until the thread's next call. */
const char *mt_clock_http_date(void);

/* The current time in the Common Log Format's "[%d/%b/%Y:%H:%M:%S %z]" form,
 * UTC, cached the same way. MT_LOG_DATE_LEN characters. */
const char *mt_clock_log_date(void);

/* The current time in ISO 8601 ("1994-11-06T08:49:37Z"), UTC, cached the
 * same way. MT_ISO_DATE_LEN characters. */
const char *mt_clock_iso_date(void);

#endif
