/* libFuzzer driver for Accept-Encoding negotiation (compress.c), and for the
 * other pure parsers there: coding tokens and Content-Type.
 *
 * Input: byte 0 is the mask of enabled codings (its low bits, as
 * MT_CODING_MASK), the rest the field value. The value is copied to a buffer
 * of its exact size, so that reading past it is an ASan report. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "compress.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    if (size < 1)
        return 0;
    unsigned enabled = (unsigned)input[0] & (MT_CODING_ALL | 1u);
    size_t n = size - 1;
    char *value = malloc(n ? n : 1);
    CHECK(value != NULL);
    memcpy(value, input + 1, n);

    mt_coding_t c = mt_compress_negotiate(value, n, enabled);
    CHECK(c >= MT_CODING_IDENTITY && c <= MT_CODING_ZSTD);
    CHECK(c == MT_CODING_IDENTITY || (enabled & MT_CODING_MASK(c)));
    CHECK(mt_compress_negotiate(value, n, 0) == MT_CODING_IDENTITY);
    /* The result depends only on the enabled codings, not on bits beyond them. */
    CHECK(mt_compress_negotiate(value, n, enabled | ~(MT_CODING_ALL | 1u)) == c);
    /* Disabling a coding the client did not get changes nothing else: what
     * won still wins among fewer candidates. */
    if (c != MT_CODING_IDENTITY) {
        for (int other = MT_CODING_GZIP; other <= MT_CODING_ZSTD; other++)
            if (other != (int)c && (enabled & MT_CODING_MASK(other)))
                CHECK(mt_compress_negotiate(value, n, enabled & ~MT_CODING_MASK(other)) == c);
    }

    const char *name = mt_compress_coding_name(c);
    CHECK(mt_compress_coding_parse(name, strlen(name)) == (int)c);
    int parsed = mt_compress_coding_parse(value, n);
    CHECK(parsed >= -1 && parsed <= MT_CODING_ZSTD);
    (void)mt_compress_coding_name((mt_coding_t)input[0]);
    (void)mt_compress_type_ok(value, n);

    free(value);
    return 0;
}
