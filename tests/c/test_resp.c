/* Unit tests of src/core/api/resp.c: commands as Redis reads them, and
 * every reply kind, whole, cut at every byte, and malformed. */
#include "buf.c"
#include "resp.c"

#include <stdlib.h>

#include "tap.h"

static mt_resp_result_t parse(const char *s, mt_resp_reply_t *r, size_t *used) {
    /* Right before nothing: a copy of exactly strlen(s) bytes, so ASan sees an over-read. */
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    mt_resp_result_t rc = mt_resp_parse(copy, n, r, used);
    static char keep[4096];
    if (rc == MT_RESP_DONE && n < sizeof keep) {
        /* Point the strings at a copy that outlives the buffer. */
        memcpy(keep, copy, n);
        if (r->top.str)
            r->top.str = keep + (r->top.str - copy);
        for (int i = 0; i < r->n; i++)
            if (r->items[i].type == MT_RESP_BULK || r->items[i].type == MT_RESP_STATUS ||
                r->items[i].type == MT_RESP_ERROR)
                r->items[i].str = keep + (r->items[i].str - copy);
    }
    free(copy);
    return rc;
}

static void test_command(void) {
    mt_buf_t out;
    mt_buf_init(&out);
    const char *argv[] = {"EVALSHA", "abc", "1", "k\r\n"};
    size_t lens[] = {7, 3, 1, 3};
    is_int(mt_resp_command(&out, 4, argv, lens), 0, "encodes");
    ok(out.len == 42 && memcmp(out.data, "*4\r\n$7\r\nEVALSHA\r\n$3\r\nabc\r\n$1\r\n1\r\n$3\r\nk\r\n\r\n", 42) == 0,
       "an array of bulk strings, binary-safe");
    mt_buf_dispose(&out);
}

static void test_replies(void) {
    mt_resp_reply_t r;
    size_t used = 0;
    ok(parse("+OK\r\n", &r, &used) == MT_RESP_DONE && r.top.type == MT_RESP_STATUS && r.top.len == 2 && used == 5,
       "status");
    ok(parse("-NOSCRIPT No matching script\r\n", &r, &used) == MT_RESP_DONE && r.top.type == MT_RESP_ERROR &&
           memcmp(r.top.str, "NOSCRIPT", 8) == 0,
       "error");
    ok(parse(":-42\r\n", &r, &used) == MT_RESP_DONE && r.top.integer == -42, "integer");
    ok(parse("$5\r\nhe\r\no\r\n", &r, &used) == MT_RESP_DONE && r.top.len == 5 && memcmp(r.top.str, "he\r\no", 5) == 0,
       "bulk, with CRLF inside");
    ok(parse("$-1\r\n", &r, &used) == MT_RESP_DONE && r.top.type == MT_RESP_NIL, "nil bulk");
    ok(parse("*-1\r\n", &r, &used) == MT_RESP_DONE && r.top.type == MT_RESP_NIL, "nil array");
    ok(parse("*4\r\n:0\r\n:2\r\n:1500000\r\n$2\r\nab\r\n", &r, &used) == MT_RESP_DONE && r.n == 4 &&
           r.items[2].integer == 1500000 && r.items[3].len == 2,
       "array of scalars");
    ok(parse("*0\r\n", &r, &used) == MT_RESP_DONE && r.top.type == MT_RESP_ARRAY && r.n == 0, "empty array");
    ok(parse(":1\r\n:2\r\n", &r, &used) == MT_RESP_DONE && used == 4, "one reply at a time");
}

static void test_incomplete(void) {
    const char *whole = "*3\r\n:1\r\n$3\r\nabc\r\n+OK\r\n";
    char part[64];
    int bad = 0;
    for (size_t k = 0; k < strlen(whole); k++) {
        memcpy(part, whole, k);
        part[k] = '\0';
        mt_resp_reply_t r;
        size_t used;
        bad += parse(part, &r, &used) != MT_RESP_INCOMPLETE;
    }
    is_int(bad, 0, "every prefix is incomplete");
}

static void test_malformed(void) {
    static const char *const cases[] = {
        "!oops\r\n",          "+OK\n",
        ":12a\r\n",           ":\r\n",
        "$3\r\nabcd\r\n",     "$-2\r\n",
        "$2000000\r\n",       "*9\r\n",
        "*1\r\n*1\r\n:1\r\n", ":1234567890123456789\r\n",
        "+a\nb\r\n",          "$1\r\nab\r\n",
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        mt_resp_reply_t r;
        size_t used;
        is_int(parse(cases[i], &r, &used), MT_RESP_BAD, "malformed %zu refused", i);
    }
}

int main(void) {
    test_command();
    test_replies();
    test_incomplete();
    test_malformed();
    return done_testing();
}
