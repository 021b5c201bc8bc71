/* Unit tests of src/core/compress/compress.c: Accept-Encoding negotiation, the type
 * allowlist, and the compressor, whose every output is decoded again with the
 * reference decoders (zlib's inflate, libbrotlidec, libzstd). */
#include "buf.c"
#include "compress.c"

#include <brotli/decode.h>

#include "tap.h"

/* ---- negotiation ------------------------------------------------------- */

typedef struct case_ {
    const char *accept;
    const char *enabled; /* comma-separated coding names */
    const char *expected;
} case_t;

/* tests/py/test_compress_codec.py reads this table too (between the markers,
 * one row per line), so both sides check the same matrix. */
static const case_t matrix[] = {
    /* matrix: begin */
    {"", "zstd,br,gzip", "identity"},
    {"gzip", "zstd,br,gzip", "gzip"},
    {"gzip, deflate, br", "zstd,br,gzip", "br"},
    {"gzip, deflate, br, zstd", "zstd,br,gzip", "zstd"},
    {"br;q=0.5, gzip;q=0.5", "zstd,br,gzip", "br"},
    {"gzip;q=0", "zstd,br,gzip", "identity"},
    {"gzip;q=0, br", "zstd,br,gzip", "br"},
    {"*", "zstd,br,gzip", "zstd"},
    {"*", "gzip", "gzip"},
    {"*;q=0", "zstd,br,gzip", "identity"},
    {"*;q=0, gzip", "zstd,br,gzip", "gzip"},
    {"gzip;q=0, *", "zstd,br,gzip", "zstd"},
    {"gzip;q=0, *", "gzip", "identity"},
    {"*, gzip;q=0", "gzip,br", "br"},
    {"identity;q=0", "zstd,br,gzip", "identity"},
    {"identity;q=0, gzip", "zstd,br,gzip", "gzip"},
    {"*, identity;q=0", "zstd,br,gzip", "zstd"},
    {"identity", "zstd,br,gzip", "identity"},
    {"GZIP", "zstd,br,gzip", "gzip"},
    {"Br;Q=0.9, GZip;q=1", "zstd,br,gzip", "gzip"},
    {"ZSTD;Q=0.7,BR;Q=0.7", "zstd,br,gzip", "zstd"},
    {"  gzip ; q=0.5 ,  br ; q=0.4  ", "zstd,br,gzip", "gzip"},
    {"\tgzip\t;\tq=0.5", "zstd,br,gzip", "gzip"},
    {",,, gzip ,,", "zstd,br,gzip", "gzip"},
    {"gzip;q=1.5, br;q=0.1", "zstd,br,gzip", "br"},
    {"gzip;q=0.1234, br;q=0.1", "zstd,br,gzip", "br"},
    {"gzip;q=abc", "zstd,br,gzip", "identity"},
    {"gzip;q=, br", "zstd,br,gzip", "br"},
    {"gzip;q=.5", "zstd,br,gzip", "identity"},
    {"gzip;q=1.001", "zstd,br,gzip", "identity"},
    {"br;q=-0.5, gzip", "zstd,br,gzip", "gzip"},
    {"gzip; q=0.5; q=0.6", "zstd,br,gzip", "identity"},
    {"gzip q=0.5", "zstd,br,gzip", "identity"},
    {"gzip;q=0.", "zstd,br,gzip", "identity"},
    {"gzip;q=1.", "zstd,br,gzip", "gzip"},
    {"gzip;q=1.000, br;q=1.0", "zstd,br,gzip", "br"},
    {"br;q=0.001", "zstd,br,gzip", "br"},
    {"br;q=0.000", "zstd,br,gzip", "identity"},
    {"gzip;", "zstd,br,gzip", "gzip"},
    {"gzip;q=0.8;level=1", "zstd,br,gzip", "gzip"},
    {"x-gzip", "zstd,br,gzip", "gzip"},
    {"X-GZIP;q=0.5, br;q=0.4", "zstd,br,gzip", "gzip"},
    {"x-gzip;q=0, gzip", "zstd,br,gzip", "identity"},
    {"deflate, compress", "zstd,br,gzip", "identity"},
    {"zstd, br, gzip", "gzip", "gzip"},
    {"zstd, br, gzip", "", "identity"},
    {"zstd;q=0.5, br;q=0.8", "zstd,gzip", "zstd"},
    {"zstd;q=0", "zstd", "identity"},
    {"gzip;q=0.5, br;q=0.5, zstd;q=0.5", "zstd,br,gzip", "zstd"},
    {"gzip;q=0.5, br;q=0.5, zstd;q=0.5", "br,gzip", "br"},
    {"gzip;q=0.5, identity;q=0.8", "zstd,br,gzip", "identity"},
    {"gzip;q=0.5, identity;q=0.5", "zstd,br,gzip", "gzip"},
    {"*;q=0.5, gzip", "gzip", "gzip"},
    {"*;q=0.8, gzip;q=0.5", "gzip", "identity"},
    {"br;q=0.9, *;q=0.1", "zstd,br,gzip", "br"},
    {"zstd;q=0.3, *;q=0.5", "zstd,br,gzip", "br"},
    {"gzip, deflate, br, zstd", "br", "br"},
    {"gzip, *;q=0", "zstd,br,gzip", "gzip"},
    /* matrix: end */
};

static unsigned enabled_mask(const char *list) {
    unsigned mask = 0;
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        int c = mt_compress_coding_parse(p, len);
        if (c > 0)
            mask |= MT_CODING_MASK(c);
        p += len + (p[len] == ',');
    }
    return mask;
}

static void test_negotiation_matrix(void) {
    ok(MT_ARRAY_SIZE(matrix) >= 30, "the matrix has at least 30 rows (%zu)", MT_ARRAY_SIZE(matrix));
    for (size_t i = 0; i < MT_ARRAY_SIZE(matrix); i++) {
        const case_t *t = &matrix[i];
        mt_coding_t got = mt_compress_negotiate(t->accept, strlen(t->accept), enabled_mask(t->enabled));
        is_str(mt_compress_coding_name(got), t->expected, "negotiate '%s' with {%s}", t->accept, t->enabled);
    }
}

static void test_negotiation_edges(void) {
    is_int(mt_compress_negotiate(NULL, 0, MT_CODING_ALL), MT_CODING_IDENTITY, "no header: identity");
    /* The value is a slice: bytes after n are not part of it. */
    const char *s = "gzip, br";
    is_int(mt_compress_negotiate(s, 4, MT_CODING_ALL), MT_CODING_GZIP, "only n bytes are read");
    is_int(mt_compress_negotiate("gzip;q=0.5", 8, MT_CODING_ALL), MT_CODING_IDENTITY, "a q cut short is malformed");
    /* A value placed right before the end of its allocation: ASan catches an over-read. */
    char *tight = malloc(6);
    memcpy(tight, "br;q=1", 6);
    is_int(mt_compress_negotiate(tight, 6, MT_CODING_ALL), MT_CODING_BR, "no read past the end");
    memcpy(tight, "zstd;q", 6);
    is_int(mt_compress_negotiate(tight, 6, MT_CODING_ALL), MT_CODING_IDENTITY, "a q without value: entry ignored");
    free(tight);
    char nul[] = {'g', 'z', 'i', 'p', '\0', ',', 'b', 'r'};
    is_int(mt_compress_negotiate(nul, sizeof nul, MT_CODING_MASK(MT_CODING_BR)), MT_CODING_BR,
           "a NUL does not end the value");

    is_str(mt_compress_coding_name(MT_CODING_GZIP), "gzip", "name of gzip");
    is_str(mt_compress_coding_name(MT_CODING_BR), "br", "name of br");
    is_str(mt_compress_coding_name(MT_CODING_ZSTD), "zstd", "name of zstd");
    is_str(mt_compress_coding_name(MT_CODING_IDENTITY), "identity", "name of identity");
    is_str(mt_compress_coding_name((mt_coding_t)7), "identity", "an unknown coding is named identity");
    is_int(mt_compress_coding_parse("X-Gzip", 6), MT_CODING_GZIP, "parse x-gzip");
    is_int(mt_compress_coding_parse("Zstd", 4), MT_CODING_ZSTD, "parse zstd");
    is_int(mt_compress_coding_parse("gzipx", 5), -1, "parse rejects a longer token");
    is_int(mt_compress_coding_parse("gzi", 3), -1, "parse rejects a prefix");
    is_int(mt_compress_coding_parse("", 0), -1, "parse rejects empty");
}

static void test_types(void) {
    static const char *const yes[] = {
        "text/html",
        "text/html; charset=utf-8",
        "TEXT/CSS",
        "text/plain;charset=us-ascii",
        "text/event-stream",
        "  text/javascript ",
        "application/json",
        "Application/JSON; charset=utf-8",
        "application/problem+json",
        "application/vnd.api+json",
        "application/ld+json",
        "application/manifest+json",
        "application/javascript",
        "application/xml",
        "application/atom+xml",
        "application/rss+xml",
        "application/xhtml+xml",
        "image/svg+xml",
        "application/wasm",
        "font/ttf",
        "image/x-icon",
    };
    static const char *const no[] = {
        "",
        "text/",
        "image/png",
        "image/jpeg",
        "image/webp",
        "video/mp4",
        "audio/mpeg",
        "application/octet-stream",
        "application/zip",
        "application/gzip",
        "application/pdf",
        "font/woff2",
        "font/woff",
        "application/jsonx",
        "application/json5x",
        "xapplication/json",
        "+json",
        "json",
        "multipart/form-data; boundary=x",
        "application/x-json-but-this-name-is-longer-than-any-type-we-look-at-so-it-is-refused-"
        "without-copying-past-the-buffer-of-128-bytes+json",
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(yes); i++)
        ok(mt_compress_type_ok(yes[i], strlen(yes[i])), "compressible: '%s'", yes[i]);
    for (size_t i = 0; i < MT_ARRAY_SIZE(no); i++)
        ok(!mt_compress_type_ok(no[i], strlen(no[i])), "not compressible: '%s'", no[i]);
    ok(!mt_compress_type_ok(NULL, 0), "no content type: not compressible");
    ok(mt_compress_type_ok("text/html, garbage", 9), "only n bytes are read");
}

/* ---- reference decoders ------------------------------------------------ */

typedef struct decoder {
    mt_coding_t coding;
    z_stream zs;
    BrotliDecoderState *br;
    ZSTD_DCtx *zd;
    bool finished; /* the end of the stream was decoded */
    bool failed;
} decoder_t;

static void decoder_init(decoder_t *d, mt_coding_t coding) {
    memset(d, 0, sizeof *d);
    d->coding = coding;
    if (coding == MT_CODING_GZIP)
        inflateInit2(&d->zs, 15 + 16); /* gzip only, not zlib */
    else if (coding == MT_CODING_BR)
        d->br = BrotliDecoderCreateInstance(NULL, NULL, NULL);
    else if (coding == MT_CODING_ZSTD)
        d->zd = ZSTD_createDCtx();
}

static void decoder_dispose(decoder_t *d) {
    if (d->coding == MT_CODING_GZIP)
        inflateEnd(&d->zs);
    BrotliDecoderDestroyInstance(d->br);
    ZSTD_freeDCtx(d->zd);
}

/* Decodes n more bytes, appending all the output they allow to `out`. Bytes
 * after the end of the stream are a failure. */
static void decoder_feed(decoder_t *d, const void *in, size_t n, mt_buf_t *out) {
    if (d->failed)
        return;
    if (d->coding == MT_CODING_IDENTITY) {
        mt_buf_append(out, in, n);
        return;
    }
    if (d->finished) {
        d->failed = n > 0;
        return;
    }
    if (d->coding == MT_CODING_GZIP) {
        d->zs.next_in = (Bytef *)in;
        d->zs.avail_in = (uInt)n;
        for (;;) {
            mt_buf_reserve(out, 65536);
            d->zs.next_out = (Bytef *)out->data + out->len;
            d->zs.avail_out = (uInt)(out->cap - out->len);
            uInt before = d->zs.avail_out;
            int rc = inflate(&d->zs, Z_SYNC_FLUSH);
            out->len += before - d->zs.avail_out;
            if (rc == Z_STREAM_END) {
                d->finished = true;
                d->failed = d->zs.avail_in > 0;
                return;
            }
            if (rc != Z_OK && rc != Z_BUF_ERROR) {
                d->failed = true;
                return;
            }
            if (d->zs.avail_in == 0 && d->zs.avail_out > 0)
                return;
        }
    } else if (d->coding == MT_CODING_BR) {
        size_t avail_in = n;
        const uint8_t *next_in = in;
        for (;;) {
            mt_buf_reserve(out, 65536);
            size_t avail_out = out->cap - out->len;
            uint8_t *next_out = (uint8_t *)out->data + out->len;
            size_t before = avail_out;
            BrotliDecoderResult r =
                BrotliDecoderDecompressStream(d->br, &avail_in, &next_in, &avail_out, &next_out, NULL);
            out->len += before - avail_out;
            if (r == BROTLI_DECODER_RESULT_SUCCESS) {
                d->finished = true;
                d->failed = avail_in > 0;
                return;
            }
            if (r == BROTLI_DECODER_RESULT_ERROR) {
                d->failed = true;
                return;
            }
            if (r == BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT)
                return;
        }
    } else {
        ZSTD_inBuffer ib = {in, n, 0};
        for (;;) {
            mt_buf_reserve(out, 65536);
            ZSTD_outBuffer ob = {out->data + out->len, out->cap - out->len, 0};
            size_t r = ZSTD_decompressStream(d->zd, &ob, &ib);
            out->len += ob.pos;
            if (ZSTD_isError(r)) {
                d->failed = true;
                return;
            }
            if (r == 0) {
                d->finished = true;
                d->failed = ib.pos < ib.size;
                return;
            }
            if (ib.pos == ib.size && ob.pos < ob.size)
                return;
        }
    }
}

/* Whether `enc` decodes to exactly the n bytes at `want`, as one whole stream. */
static bool decodes_to(mt_coding_t coding, const mt_buf_t *enc, const void *want, size_t n) {
    decoder_t d;
    mt_buf_t out;
    mt_buf_init(&out);
    decoder_init(&d, coding);
    decoder_feed(&d, enc->data, enc->len, &out);
    bool same = !d.failed && (d.finished || coding == MT_CODING_IDENTITY) && out.len == n &&
                (n == 0 || memcmp(out.data, want, n) == 0);
    decoder_dispose(&d);
    mt_buf_dispose(&out);
    return same;
}

/* ---- inputs ------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill_random(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)rng();
}

/* JSON-like text: what compresses in practice. */
static void fill_text(unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        char item[96];
        uint64_t r = rng();
        int k = snprintf(item, sizeof item, "{\"id\": %u, \"name\": \"user%u\", \"active\": %s}, ",
                         (unsigned)(r % 100000), (unsigned)((r >> 20) % 1000), (r >> 40) & 1 ? "true" : "false");
        for (int j = 0; j < k && i < n; j++)
            p[i++] = (unsigned char)item[j];
    }
}

static const mt_coding_t codings[] = {MT_CODING_GZIP, MT_CODING_BR, MT_CODING_ZSTD, MT_CODING_IDENTITY};

/* ---- the compressor ---------------------------------------------------- */

static void test_round_trips(void) {
    static const size_t sizes[] = {0, 1, 100, 10 * 1024, 300 * 1024, 3 * 1024 * 1024 + 7};
    size_t max = sizes[MT_ARRAY_SIZE(sizes) - 1];
    unsigned char *text = malloc(max), *noise = malloc(max);
    fill_text(text, max);
    fill_random(noise, max);
    mt_compressor_t *z = mt_compressor_create();
    ok(z != NULL, "create");
    for (size_t c = 0; c < MT_ARRAY_SIZE(codings); c++) {
        const char *name = mt_compress_coding_name(codings[c]);
        for (size_t s = 0; s < MT_ARRAY_SIZE(sizes); s++) {
            for (int kind = 0; kind < 2; kind++) {
                const unsigned char *in = kind ? noise : text;
                size_t n = sizes[s];
                mt_buf_t out;
                mt_buf_init(&out);
                int rc = mt_compressor_whole(z, codings[c], -1, in, n, &out);
                ok(rc == 0 && decodes_to(codings[c], &out, in, n), "%s whole, %zu bytes of %s: round trip (%zu B)",
                   name, n, kind ? "noise" : "text", out.len);
                if (kind == 0 && n == 10 * 1024 && codings[c] != MT_CODING_IDENTITY)
                    ok(out.len < n / 4, "%s: 10 KB of text shrinks to %zu B", name, out.len);
                mt_buf_dispose(&out);

                /* The same input streamed in uneven pieces, no flush until the end. */
                rc = mt_compressor_begin(z, codings[c], -1);
                size_t off = 0, piece = 1;
                while (rc == 0 && off < n) {
                    size_t take = MT_MIN(piece, n - off);
                    rc = mt_compressor_feed(z, in + off, take, MT_COMPRESS_CONTINUE, &out);
                    off += take;
                    piece = piece * 3 + 1;
                }
                if (rc == 0)
                    rc = mt_compressor_feed(z, NULL, 0, MT_COMPRESS_END, &out);
                ok(rc == 0 && decodes_to(codings[c], &out, in, n), "%s streamed, %zu bytes of %s: round trip", name, n,
                   kind ? "noise" : "text");
                mt_buf_dispose(&out);
            }
        }
    }
    mt_compressor_destroy(z);
    free(text);
    free(noise);
}

static void test_containers(void) {
    mt_compressor_t *z = mt_compressor_create();
    mt_buf_t out;
    mt_buf_init(&out);
    const char *body = "hello, hello, hello, hello";
    size_t n = strlen(body);
    is_int(mt_compressor_whole(z, MT_CODING_GZIP, -1, body, n, &out), 0, "gzip whole");
    ok(out.len > 18 && (unsigned char)out.data[0] == 0x1f && (unsigned char)out.data[1] == 0x8b,
       "gzip: the gzip container (magic 1f 8b), not raw zlib");
    out.len = 0;
    is_int(mt_compressor_whole(z, MT_CODING_ZSTD, -1, body, n, &out), 0, "zstd whole");
    is_int(ZSTD_getFrameContentSize(out.data, out.len), n, "zstd whole: the frame records the size");
    out.len = 0;
    is_int(mt_compressor_begin(z, MT_CODING_ZSTD, -1), 0, "zstd streamed");
    is_int(mt_compressor_feed(z, body, 5, MT_COMPRESS_CONTINUE, &out), 0, "zstd streamed: 5 bytes");
    is_int(mt_compressor_feed(z, NULL, 0, MT_COMPRESS_END, &out), 0,
           "zstd streamed: end (the size pledged by the whole call before does not stay)");
    ok(ZSTD_getFrameContentSize(out.data, out.len) == ZSTD_CONTENTSIZE_UNKNOWN, "zstd streamed: no size in the frame");
    ok(decodes_to(MT_CODING_ZSTD, &out, body, 5), "zstd streamed: round trip");

    /* Output is appended after what the buffer holds. */
    mt_buf_t pre;
    mt_buf_init(&pre);
    mt_buf_append(&pre, "HEAD", 4);
    is_int(mt_compressor_whole(z, MT_CODING_BR, -1, body, n, &pre), 0, "br whole after existing bytes");
    ok(memcmp(pre.data, "HEAD", 4) == 0, "existing bytes are kept");
    mt_buf_consume(&pre, 4);
    ok(decodes_to(MT_CODING_BR, &pre, body, n), "br: the appended output decodes");
    mt_buf_dispose(&pre);

    /* Every level of every coding round-trips. */
    static const int max_level[] = {0, 9, 11, 22};
    static const int min_level[] = {0, 0, 0, 1};
    unsigned char *in = malloc(50000);
    fill_text(in, 50000);
    for (size_t c = 0; c < 3; c++) {
        int good = 0, total = 0;
        for (int level = min_level[codings[c]]; level <= max_level[codings[c]]; level++) {
            out.len = 0;
            total++;
            good += mt_compressor_whole(z, codings[c], level, in, 50000, &out) == 0 &&
                    decodes_to(codings[c], &out, in, 50000);
        }
        is_int(good, total, "%s: every level from %d to %d round-trips", mt_compress_coding_name(codings[c]),
               min_level[codings[c]], max_level[codings[c]]);
    }
    free(in);
    mt_buf_dispose(&out);
    mt_compressor_destroy(z);
}

/* After MT_COMPRESS_FLUSH, what was written so far decodes to all the input so
 * far: a server-sent event reaches the browser when it is sent. */
static void test_flush(void) {
    mt_compressor_t *z = mt_compressor_create();
    size_t max = 200000;
    unsigned char *in = malloc(max);
    fill_text(in, max);
    static const size_t pieces[] = {0, 1, 7, 16, 300, 4096, 70000, 1, 0, 20000};
    for (size_t c = 0; c < MT_ARRAY_SIZE(codings); c++) {
        const char *name = mt_compress_coding_name(codings[c]);
        decoder_t d;
        decoder_init(&d, codings[c]);
        mt_buf_t enc, dec;
        mt_buf_init(&enc);
        mt_buf_init(&dec);
        int rc = mt_compressor_begin(z, codings[c], -1);
        size_t off = 0, checked = 0, synced = 0;
        for (size_t i = 0; i < MT_ARRAY_SIZE(pieces) && rc == 0; i++) {
            size_t before = enc.len;
            rc = mt_compressor_feed(z, in + off, pieces[i], MT_COMPRESS_FLUSH, &enc);
            off += pieces[i];
            decoder_feed(&d, enc.data + before, enc.len - before, &dec);
            checked++;
            synced += !d.failed && !d.finished && dec.len == off && (off == 0 || memcmp(dec.data, in, off) == 0);
        }
        is_int(rc, 0, "%s: feeds with flush succeed", name);
        is_int(synced, checked, "%s: after each flush the output decodes to the input so far", name);

        /* Server-sent events: tiny chunks, each flushed on its own. */
        synced = 0;
        for (int i = 0; i < 50 && rc == 0; i++) {
            char event[64];
            int k = snprintf(event, sizeof event, "data: {\"tick\": %d}\n\n", i);
            size_t before = enc.len;
            rc = mt_compressor_feed(z, event, (size_t)k, MT_COMPRESS_FLUSH, &enc);
            size_t had = dec.len;
            decoder_feed(&d, enc.data + before, enc.len - before, &dec);
            synced += dec.len == had + (size_t)k && memcmp(dec.data + had, event, (size_t)k) == 0;
        }
        is_int(synced, 50, "%s: 50 flushed events each arrive whole", name);
        size_t expected_len = dec.len;
        size_t before = enc.len;
        rc = mt_compressor_feed(z, NULL, 0, MT_COMPRESS_END, &enc);
        decoder_feed(&d, enc.data + before, enc.len - before, &dec);
        ok(rc == 0 && !d.failed && (d.finished || codings[c] == MT_CODING_IDENTITY) && dec.len == expected_len,
           "%s: the end closes the stream and adds no data", name);
        decoder_dispose(&d);
        mt_buf_dispose(&enc);
        mt_buf_dispose(&dec);
    }
    free(in);
    mt_compressor_destroy(z);
}

/* One compressor serves many responses, codings and levels mixed, with
 * streams abandoned halfway; ASan's leak check runs at exit. */
static void test_reuse(void) {
    mt_compressor_t *z = mt_compressor_create();
    unsigned char *in = malloc(20000);
    fill_text(in, 20000);
    int good = 0, total = 0;
    for (int i = 0; i < 600; i++) {
        mt_coding_t coding = codings[i % 4];
        int level = i % 7 == 0 ? 1 : -1;
        size_t n = (size_t)(rng() % 20000);
        mt_buf_t out;
        mt_buf_init(&out);
        if (i % 5 == 0) {
            /* Abandoned halfway (the client went away); the next begin resets. */
            mt_compressor_begin(z, coding, level);
            mt_compressor_feed(z, in, n / 2, MT_COMPRESS_CONTINUE, &out);
            out.len = 0;
        }
        total++;
        good += mt_compressor_whole(z, coding, level, in, n, &out) == 0 && decodes_to(coding, &out, in, n);
        mt_buf_dispose(&out);
    }
    is_int(good, total, "600 responses on one compressor, all round-trip");
    mt_compressor_destroy(z);
    free(in);
    mt_compressor_destroy(NULL);
    ok(1, "destroy(NULL) is a no-op");
}

static void test_errors(void) {
    mt_compressor_t *z = mt_compressor_create();
    mt_buf_t out;
    mt_buf_init(&out);
    is_int(mt_compressor_feed(z, "x", 1, MT_COMPRESS_END, &out), -EINVAL, "feed before begin");
    is_int(mt_compressor_begin(z, (mt_coding_t)9, -1), -EINVAL, "unknown coding");
    is_int(mt_compressor_begin(z, MT_CODING_GZIP, 10), -EINVAL, "gzip level 10");
    is_int(mt_compressor_begin(z, MT_CODING_BR, 12), -EINVAL, "br level 12");
    is_int(mt_compressor_begin(z, MT_CODING_ZSTD, 0), -EINVAL, "zstd level 0");
    is_int(mt_compressor_begin(z, MT_CODING_ZSTD, 23), -EINVAL, "zstd level 23");
    is_int(mt_compressor_feed(z, "x", 1, MT_COMPRESS_END, &out), -EINVAL, "feed after a failed begin");
    is_int(mt_compressor_begin(z, MT_CODING_GZIP, -1), 0, "begin gzip");
    is_int(mt_compressor_feed(z, "x", 1, 3, &out), -EINVAL, "an unknown flush mode");
    is_int(mt_compressor_feed(z, "x", 1, MT_COMPRESS_END, &out), -EINVAL, "the stream was abandoned");
    is_int(mt_compressor_begin(z, MT_CODING_GZIP, -1), 0, "begin gzip again");
    is_int(mt_compressor_feed(z, NULL, 1, MT_COMPRESS_END, &out), -EINVAL, "NULL input with a length");
    out.len = 0;
    is_int(mt_compressor_begin(z, MT_CODING_BR, -1), 0, "begin br");
    is_int(mt_compressor_feed(z, "abc", 3, MT_COMPRESS_END, &out), 0, "end br");
    is_int(mt_compressor_feed(z, "abc", 3, MT_COMPRESS_CONTINUE, &out), -EINVAL, "feed after the end");
    ok(decodes_to(MT_CODING_BR, &out, "abc", 3), "the ended stream is intact");
    mt_buf_dispose(&out);
    mt_compressor_destroy(z);
}

int main(void) {
    test_negotiation_matrix();
    test_negotiation_edges();
    test_types();
    test_round_trips();
    test_containers();
    test_flush();
    test_reuse();
    test_errors();
    mt_buf_pool_drain();
    return done_testing();
}
