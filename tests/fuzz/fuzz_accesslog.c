/* libFuzzer driver for the access log's formatter (accesslog.c): whatever a
 * client put in the target, the Referer, the User-Agent or the request id,
 * a line is one line (one '\n', at its end), holds no control byte, is
 * printable ASCII in the text formats, and valid UTF-8 in JSON (checked here
 * with a decoder of the driver's own, not the escaper's).
 *
 * Input: byte 0 picks the format, then the fields, separated by 0xfe 0xfe
 * (target, referer, user agent, request id, method); a missing field is
 * absent (NULL). */
#include "accesslog.h"

#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

/* Strict UTF-8 (RFC 3629): returns whether s[0, n) is valid. */
static int valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += len;
    }
    return 1;
}

/* The next field of data[*at, n), up to the separator; NULL past the end. */
static const char *next_field(const uint8_t *data, size_t n, size_t *at, size_t *len) {
    if (*at > n)
        return NULL;
    const char *start = (const char *)data + *at;
    size_t i = *at;
    while (i < n && !(data[i] == 0xfe && i + 1 < n && data[i + 1] == 0xfe))
        i++;
    *len = i - *at;
    *at = i + 2;
    return start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1)
        return 0;
    mt_accesslog_format_t format = (mt_accesslog_format_t)(data[0] % 3);
    size_t at = 1;
    mt_accesslog_entry_t e = {.peer = "192.0.2.1", .http_minor = 1, .status = 200, .bytes = size, .duration_us = 1500};
    e.target = next_field(data, size, &at, &e.target_len);
    e.referer = next_field(data, size, &at, &e.referer_len);
    e.user_agent = next_field(data, size, &at, &e.user_agent_len);
    e.request_id = next_field(data, size, &at, &e.request_id_len);
    e.method = next_field(data, size, &at, &e.method_len);
    if (e.method == NULL) {
        e.method = "GET";
        e.method_len = 3;
    }
    mt_buf_t out;
    mt_buf_init(&out);
    CHECK(mt_accesslog_format(&out, format, &e) == 0);
    const unsigned char *line = (const unsigned char *)out.data;
    CHECK(out.len > 0 && line[out.len - 1] == '\n');
    for (size_t i = 0; i + 1 < out.len; i++) {
        CHECK(line[i] != '\n' && line[i] >= 0x20 && line[i] != 0x7f);
        if (format != MT_ACCESSLOG_JSON)
            CHECK(line[i] < 0x7f);
    }
    if (format == MT_ACCESSLOG_JSON)
        CHECK(valid_utf8(line, out.len) && line[0] == '{' && line[out.len - 2] == '}');
    mt_buf_dispose(&out);

    /* The escaper alone, on the whole input, into a buffer of exactly 6 * n. */
    char *escaped = malloc(6 * size);
    CHECK(escaped != NULL);
    size_t n = mt_accesslog_json_escape(escaped, (const char *)data, size);
    CHECK(n <= 6 * size);
    CHECK(valid_utf8((const unsigned char *)escaped, n));
    for (size_t i = 0; i < n; i++) {
        unsigned char b = (unsigned char)escaped[i];
        CHECK(b >= 0x20 && b != 0x7f);
        if (b == '"')
            CHECK(i > 0 && escaped[i - 1] == '\\');
    }
    free(escaped);
    return 0;
}
