/* Unit tests of src/core/static/conditional.c: HTTP dates, entity-tag lists and the
 * Range field, as pure functions (test_static.c checks them through requests). */
#include "clock.c"
#include "conditional.c"

#include <string.h>

#include "tap.h"

static void test_dates(void) {
    is_int(mt_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 29), 784111777, "IMF-fixdate parsed");
    is_int(mt_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", 30), 784111777, "RFC 850 date parsed");
    is_int(mt_http_date_parse("Sun Nov  6 08:49:37 1994", 24), 784111777, "asctime date parsed");
    is_int(mt_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMTx", 30), -1, "trailing garbage refused");
    is_int(mt_http_date_parse("Sun, 06 Foo 1994 08:49:37 GMT", 29), -1, "unknown month refused");
    is_int(mt_http_date_parse("Sun, 06 Nov 1994 -8:49:37 GMT", 29), -1, "a signed hour refused");
    is_int(mt_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", 200), -1, "a field longer than any date refused");
    char out[MT_HTTP_DATE_LEN + 1];
    mt_http_date_format(out, 784111777);
    is_str(out, "Sun, 06 Nov 1994 08:49:37 GMT", "IMF-fixdate formatted");
    is_int(mt_http_date_parse(out, strlen(out)), 784111777, "a formatted date parses back");
}

static bool match(const char *list, const char *etag, bool strong) {
    return mt_etag_list_match(list, strlen(list), etag, strlen(etag), strong);
}

static void test_etags(void) {
    ok(match("\"a\"", "\"a\"", true), "a strong tag matches itself strongly");
    ok(match("W/\"a\"", "\"a\"", false), "a weak tag matches weakly");
    ok(!match("W/\"a\"", "\"a\"", true), "a weak tag never matches strongly");
    ok(match("\"x\", \"y\" ,\"a\"", "\"a\"", true), "found further in a list, spaces and commas free");
    ok(match("*", "\"a\"", true), "* matches any current representation");
    ok(!match("\"a", "\"a\"", true), "an unterminated tag matches nothing");
    ok(!match("a", "\"a\"", false), "an unquoted tag matches nothing");
    ok(!match("", "\"a\"", false), "an empty list matches nothing");
    ok(!match("\"ab\"", "\"a\"", false), "a longer tag is another tag");
}

static mt_range_result_t range(const char *field, uint64_t size, uint64_t *first, uint64_t *last) {
    return mt_range_parse(field, strlen(field), size, first, last);
}

static void test_ranges(void) {
    uint64_t a = 0, b = 0;
    ok(range("bytes=0-9", 100, &a, &b) == MT_RANGE_ONE && a == 0 && b == 9, "a closed range");
    ok(range("bytes=90-", 100, &a, &b) == MT_RANGE_ONE && a == 90 && b == 99, "an open range to the end");
    ok(range("bytes=-10", 100, &a, &b) == MT_RANGE_ONE && a == 90 && b == 99, "a suffix range");
    ok(range("bytes=-1000", 100, &a, &b) == MT_RANGE_ONE && a == 0 && b == 99, "a suffix longer than the file");
    ok(range("bytes=50-1000", 100, &a, &b) == MT_RANGE_ONE && a == 50 && b == 99, "an end past the file is cut");
    is_int(range("bytes=100-", 100, &a, &b), MT_RANGE_UNSATISFIABLE, "a start at the end: 416");
    is_int(range("bytes=-0", 100, &a, &b), MT_RANGE_UNSATISFIABLE, "an empty suffix: 416");
    is_int(range("bytes=0-1,5-6", 100, &a, &b), MT_RANGE_IGNORE, "several ranges: the whole file");
    is_int(range("items=0-1", 100, &a, &b), MT_RANGE_IGNORE, "another unit: ignored");
    is_int(range("bytes=5-1", 100, &a, &b), MT_RANGE_IGNORE, "an inverted range: ignored");
    is_int(range("bytes=-", 100, &a, &b), MT_RANGE_IGNORE, "no positions: ignored");
    is_int(range("bytes=1-2x", 100, &a, &b), MT_RANGE_IGNORE, "trailing garbage: ignored");
    ok(range("bytes=99999999999999999999999-", 100, &a, &b) == MT_RANGE_UNSATISFIABLE,
       "a start beyond 64 bits saturates instead of wrapping");
}

int main(void) {
    test_dates();
    test_etags();
    test_ranges();
    return done_testing();
}
