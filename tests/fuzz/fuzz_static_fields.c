/* libFuzzer driver for the request-field parsers of the static handler
 * (static functions of static.c, included here, and conditional.c). It
 * covers path cleaning, Range, If-None-Match / If-Match lists, HTTP dates,
 * the path of a target, hashed names and content types, and the joining of
 * several Accept-Encoding fields.
 *
 * Input: byte 0 picks the parser, byte 1 a parameter of it (a buffer size,
 * a flag); the rest is the field. Fields are copied to buffers of their exact
 * size, so that reading past them is an ASan report. */
#include "../../src/core/static/static.c"

#include <ctype.h>

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

static void fuzz_clean_path(const char *raw, size_t n, unsigned param) {
    size_t cap = param ? param : n + 1; /* a small buffer, or one that always fits */
    char *out = malloc(cap);
    CHECK(out != NULL);
    ssize_t len = clean_path(raw, n, out, cap);
    if (len >= 0) {
        size_t o = (size_t)len;
        CHECK(o < cap && o <= n && out[o] == '\0');
        CHECK(o > 0 && out[0] != '/' && out[o - 1] != '/');
        size_t seg = 0;
        for (size_t i = 0; i <= o; i++) {
            if (i == o || out[i] == '/') {
                size_t sl = i - seg;
                CHECK(sl > 0);
                CHECK(!(sl == 1 && out[seg] == '.'));
                CHECK(!(sl == 2 && out[seg] == '.' && out[seg + 1] == '.'));
                seg = i + 1;
                continue;
            }
            unsigned char ch = (unsigned char)out[i];
            CHECK(ch >= 0x20 && ch != 0x7f && ch != '\\');
        }
    }
    free(out);
}

static void fuzz_range(const char *s, size_t n, unsigned param) {
    /* Sizes around the numbers the field is likely to hold. */
    static const uint64_t sizes[] = {0, 1, 2, 10, 100, 1000, 1024, 65536, UINT32_MAX, UINT64_MAX / 2, UINT64_MAX};
    uint64_t size = sizes[param % MT_ARRAY_SIZE(sizes)];
    uint64_t first = 0, last = 0;
    mt_range_result_t r = mt_range_parse(s, n, size, &first, &last);
    CHECK(r == MT_RANGE_IGNORE || r == MT_RANGE_ONE || r == MT_RANGE_UNSATISFIABLE);
    if (r == MT_RANGE_ONE)
        CHECK(size > 0 && first <= last && last < size);
}

static void fuzz_etags(const char *s, size_t n, unsigned param) {
    /* The list, then after a NUL byte the representation's tag. */
    const char *nul = memchr(s, '\0', n);
    const char *list = s, *etag = "\"0123-abcd\"";
    size_t ln = n, elen = strlen(etag);
    if (nul) {
        ln = (size_t)(nul - s);
        etag = nul + 1;
        elen = n - ln - 1;
    }
    bool strong = mt_etag_list_match(list, ln, etag, elen, true);
    bool weak = mt_etag_list_match(list, ln, etag, elen, false);
    CHECK(!strong || weak); /* the strong comparison is the stricter one */
    (void)param;
}

static void fuzz_date(const char *s, size_t n, unsigned param) {
    int64_t t = mt_http_date_parse(s, n);
    CHECK(t >= -1); /* seconds since the epoch, or -1 */
    if (t >= 0) {
        /* The numbers of an HTTP-date are unsigned digits: a sign is no date. */
        CHECK(memchr(s, '+', n) == NULL);
        for (size_t i = 0; i < n; i++) {
            bool letter_before = i > 0 && isalpha((unsigned char)s[i - 1]);
            bool letter_after = i + 1 < n && isalpha((unsigned char)s[i + 1]);
            CHECK(s[i] != '-' || letter_before || letter_after);
        }
    }
    if (t >= 0 && t < 253402300800) { /* before year 10000: the formatter's range */
        char back[MT_HTTP_DATE_LEN + 1];
        mt_http_date_format(back, (time_t)t);
        CHECK(mt_http_date_parse(back, MT_HTTP_DATE_LEN) == t);
    }
    (void)param;
}

static void fuzz_names(const char *s, size_t n, unsigned param) {
    mt_header_t headers[1];
    mt_request_t req = {.headers = headers, .target = {0, (uint32_t)n}};
    const char *path = NULL;
    size_t plen = mt_http1_target_path(&req, s, &path, NULL);
    if (plen)
        CHECK(path >= s && path + plen <= s + n);
    (void)hashed_name(s, n);
    const char *type = content_type(s, n);
    CHECK(type != NULL);
    (void)param;
}

/* Up to 8 header fields, one per line, Accept-Encoding or another name as the
 * bits of param say: the joined list goes to mt_compress_negotiate. */
static void fuzz_accept_fields(const char *s, size_t n, unsigned param) {
    static const char names[] = "Accept-EncodingAccept";
    mt_header_t headers[8];
    uint32_t nh = 0;
    size_t len = sizeof names - 1 + n;
    char *base = malloc(len);
    CHECK(base != NULL);
    memcpy(base, names, sizeof names - 1);
    memcpy(base + sizeof names - 1, s, n);
    size_t i = sizeof names - 1;
    while (nh < 8 && i <= len) {
        char *nl = memchr(base + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - base) : len;
        bool ae = (param >> nh & 1) == 0;
        headers[nh].name = (mt_span_t){ae ? 0 : 15, ae ? 15 : 6};
        headers[nh].value = (mt_span_t){(uint32_t)i, (uint32_t)(end - i)};
        nh++;
        if (nl == NULL)
            break;
        i = end + 1;
    }
    mt_request_t req = {.headers = headers, .nheaders = nh};
    mt_coding_t c = choose_coding(&req, base, MT_CODING_ALL);
    CHECK(c >= MT_CODING_IDENTITY && c <= MT_CODING_ZSTD);
    free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    if (size < 2)
        return 0;
    unsigned which = input[0] % 6, param = input[1];
    size_t n = size - 2;
    char *field = malloc(n ? n : 1);
    CHECK(field != NULL);
    memcpy(field, input + 2, n);
    switch (which) {
    case 0:
        fuzz_clean_path(field, n, param);
        break;
    case 1:
        fuzz_range(field, n, param);
        break;
    case 2:
        fuzz_etags(field, n, param);
        break;
    case 3:
        fuzz_date(field, n, param);
        break;
    case 4:
        fuzz_names(field, n, param);
        break;
    default:
        fuzz_accept_fields(field, n, param);
        break;
    }
    free(field);
    return 0;
}
