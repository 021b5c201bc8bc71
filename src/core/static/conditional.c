#include "conditional.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "clock.h"
#include "common.h"

void mt_http_date_format(char *out, time_t t) {
    static const char days[] = "SunMonTueWedThuFriSat", months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64]; /* roomier than the result, so the compiler sees no truncation */
    snprintf(buf, sizeof buf, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days + 3 * tm.tm_wday, tm.tm_mday,
             months + 3 * tm.tm_mon, (tm.tm_year + 1900) % 10000, tm.tm_hour, tm.tm_min, tm.tm_sec);
    memcpy(out, buf, MT_HTTP_DATE_LEN);
    out[MT_HTTP_DATE_LEN] = '\0';
}

bool mt_etag_list_match(const char *s, size_t n, const char *etag, size_t elen, bool strong) {
    size_t i = 0;
    for (;;) {
        while (i < n && (mt_is_ows(s[i]) || s[i] == ','))
            i++;
        if (i >= n)
            return false;
        if (s[i] == '*')
            return true;
        bool weak = n - i >= 2 && s[i] == 'W' && s[i + 1] == '/';
        if (weak)
            i += 2;
        if (i >= n || s[i] != '"')
            return false;
        const char *close = memchr(s + i + 1, '"', n - i - 1);
        if (close == NULL)
            return false;
        size_t len = (size_t)(close - (s + i)) + 1;
        if (!(strong && weak) && len == elen && memcmp(s + i, etag, elen) == 0)
            return true;
        i += len;
    }
}

int64_t mt_http_date_parse(const char *s, size_t n) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char buf[64], mon[4] = "";
    int d, y, hh, mm, ss, end = -1;
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    /* sscanf's %d takes a sign, and a date has none ("-1:00:00" is no hour,
     * "-0" no minute): a '-' is only the separator of RFC 850's "06-Nov-94",
     * next to a letter. */
    if (memchr(buf, '+', n))
        return -1;
    for (size_t i = 0; i < n; i++) {
        bool letter_before = i > 0 && isalpha((unsigned char)buf[i - 1]);
        bool letter_after = i + 1 < n && isalpha((unsigned char)buf[i + 1]);
        if (buf[i] == '-' && !letter_before && !letter_after)
            return -1;
    }
    if (sscanf(buf, "%*3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n", &d, mon, &y, &hh, &mm, &ss, &end) == 6 &&
        end == (int)n) {
    } else if ((end = -1, sscanf(buf, "%*[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n", &d, mon, &y, &hh, &mm, &ss,
                                 &end)) == 6 &&
               end == (int)n) {
        if (y < 0)
            return -1;
        y += y < 70 ? 2000 : 1900;
    } else if ((end = -1,
                sscanf(buf, "%*3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n", mon, &d, &hh, &mm, &ss, &y, &end)) == 6 &&
               end == (int)n) {
    } else {
        return -1;
    }
    const char *m = strlen(mon) == 3 ? strstr(months, mon) : NULL;
    if (m == NULL || (m - months) % 3 || d < 1 || d > 31 || hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 ||
        ss > 60 || y < 1970)
        return -1;
    struct tm tm = {
        .tm_year = y - 1900, .tm_mon = (int)(m - months) / 3, .tm_mday = d, .tm_hour = hh, .tm_min = mm, .tm_sec = ss};
    return (int64_t)timegm(&tm);
}

/* Digits of s[*i, n) as a number (saturating); false when there are none. */
static bool parse_pos(const char *s, size_t n, size_t *i, uint64_t *v) {
    size_t start = *i;
    *v = 0;
    for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++)
        *v = *v > UINT64_MAX / 20 ? UINT64_MAX / 2 : *v * 10 + (uint64_t)(s[*i] - '0');
    return *i > start;
}

/* A Range field against a representation of `size` bytes (RFC 9110 14.2):
 * one satisfiable range sets [*first, *last]; a field that is malformed, in
 * another unit or asks for several ranges is ignored (the whole file goes
 * out, which the RFC allows for multiple ranges). */
mt_range_result_t mt_range_parse(const char *s, size_t n, uint64_t size, uint64_t *first, uint64_t *last) {
    if (n < 6 || strncasecmp(s, "bytes=", 6) != 0)
        return MT_RANGE_IGNORE;
    size_t i = 6, elements = 0;
    uint64_t a = 0, b = 0;
    bool has_a = false, has_b = false;
    while (i < n) {
        while (i < n && (mt_is_ows(s[i]) || s[i] == ','))
            i++;
        if (i >= n)
            break;
        if (++elements > 1)
            return MT_RANGE_IGNORE;
        has_a = parse_pos(s, n, &i, &a);
        if (i >= n || s[i] != '-')
            return MT_RANGE_IGNORE;
        i++;
        has_b = parse_pos(s, n, &i, &b);
        while (i < n && mt_is_ows(s[i]))
            i++;
        if ((i < n && s[i] != ',') || (!has_a && !has_b) || (has_a && has_b && b < a))
            return MT_RANGE_IGNORE;
    }
    if (elements == 0)
        return MT_RANGE_IGNORE;
    if (!has_a) { /* suffix: the last b bytes */
        if (b == 0 || size == 0)
            return MT_RANGE_UNSATISFIABLE;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return MT_RANGE_ONE;
    }
    if (a >= size)
        return MT_RANGE_UNSATISFIABLE;
    *first = a;
    *last = has_b && b < size ? b : size - 1;
    return MT_RANGE_ONE;
}
