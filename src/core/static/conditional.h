/* HTTP validators and ranges (RFC 9110 sections 5.6.7, 8.8, 13 and 14): the
 * date format, entity-tag lists and the Range field, as the static file
 * handler evaluates conditional and range requests.
 *
 * Pure functions over caller-owned bytes: no allocation, no shared state,
 * callable from any thread. */
#ifndef MT_CONDITIONAL_H
#define MT_CONDITIONAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Writes t as an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") and a NUL into
 * out (MT_HTTP_DATE_LEN + 1 bytes, clock.h), without the locale that strftime
 * would consult. */
void mt_http_date_format(char *out, time_t t);

/* An HTTP-date (IMF-fixdate, or the obsolete RFC 850 and asctime forms that
 * recipients must accept) in seconds since the epoch, or -1 when s[0, n) is
 * none of them. */
int64_t mt_http_date_parse(const char *s, size_t n);

/* True when the entity-tag list s[0, n) ("*", or tags separated by commas)
 * holds etag[0, elen) (quotes included): weak comparison (a W/ prefix is
 * ignored) or strong (a weak tag never matches). A malformed list matches
 * from its start up to the first malformed element. */
bool mt_etag_list_match(const char *s, size_t n, const char *etag, size_t elen, bool strong);

typedef enum mt_range_result {
    MT_RANGE_IGNORE,        /* malformed, another unit, or several ranges: send the whole representation */
    MT_RANGE_ONE,           /* one satisfiable range: [*first, *last] */
    MT_RANGE_UNSATISFIABLE, /* 416 */
} mt_range_result_t;

/* A Range field s[0, n) against a representation of `size` bytes (RFC 9110
 * 14.2): one satisfiable range sets [*first, *last]; a field that is
 * malformed, in another unit or asks for several ranges is ignored (the RFC
 * allows sending the whole representation for multiple ranges). */
mt_range_result_t mt_range_parse(const char *s, size_t n, uint64_t size, uint64_t *first, uint64_t *last);

#endif
