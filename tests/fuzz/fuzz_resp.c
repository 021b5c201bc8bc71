/* libFuzzer driver for the RESP reply parser (resp.c): whatever a Redis
 * server (or something posing as one) sends, the parser reads only inside
 * the input, never says "done" beyond it, and every string it returns lies
 * within it. Parses reply after reply, as the client does. */
#include "resp.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

static void check_value(const mt_resp_value_t *v, const char *s, size_t n) {
    if (v->type == MT_RESP_STATUS || v->type == MT_RESP_ERROR || v->type == MT_RESP_BULK)
        CHECK(v->str >= s && v->str + v->len <= s + n);
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    char *s = malloc(size ? size : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    size_t pos = 0;
    while (pos < size) {
        mt_resp_reply_t r;
        size_t used = 0;
        if (mt_resp_parse(s + pos, size - pos, &r, &used) != MT_RESP_DONE)
            break;
        CHECK(used > 0 && used <= size - pos);
        check_value(&r.top, s + pos, size - pos);
        CHECK(r.n >= 0 && r.n <= MT_RESP_MAX_ITEMS);
        for (int i = 0; i < r.n; i++)
            check_value(&r.items[i], s + pos, size - pos);
        pos += used;
    }
    free(s);
    return 0;
}
