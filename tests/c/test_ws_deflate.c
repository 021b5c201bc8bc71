/* Unit tests of src/core/websocket/ws_deflate.c: RFC 7692's examples, round trips
 * with and without context takeover, inflating in pieces, the zip-bomb
 * bound (max_message) and the zlib memory bound (mem_limit). */
#include "buf.c"
#include "ws_deflate.c"

#include <stdio.h>

#include "tap.h"

#define MiB (1u << 20)

static mt_ws_deflate_params_t params(int sbits, int cbits, bool snct, bool cnct) {
    return (mt_ws_deflate_params_t){.server_max_window_bits = (uint8_t)sbits,
                                    .client_max_window_bits = (uint8_t)cbits,
                                    .server_no_context_takeover = snct,
                                    .client_no_context_takeover = cnct};
}

/* A peer that inflates what `server` compresses: its decompressor's window
 * and reset are the server's compressor's. */
static void peer_init(mt_ws_deflate_t *peer, const mt_ws_deflate_params_t *server) {
    mt_ws_deflate_params_t p = params(15, server->server_max_window_bits, false, server->server_no_context_takeover);
    mt_ws_deflate_init(peer, &p, 6, 8, 1 << 20, 64 * MiB);
}

static int inflate_all(mt_ws_deflate_t *d, const void *in, size_t n, mt_buf_t *out) {
    out->len = 0;
    return mt_ws_deflate_inflate(d, in, n, true, out);
}

static void test_rfc_examples(void) {
    mt_ws_deflate_t d;
    mt_ws_deflate_params_t p = params(15, 15, false, false);
    mt_ws_deflate_init(&d, &p, 6, 8, 1 << 20, MiB);
    mt_buf_t out;
    mt_buf_init(&out);
    /* RFC 7692 7.2.3.1 and 7.2.3.2: "Hello", then "Hello" again with the
     * first one's context. */
    static const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    ok(inflate_all(&d, hello, sizeof hello, &out) == 0 && out.len == 5 && memcmp(out.data, "Hello", 5) == 0,
       "7.2.3.1: a compressed \"Hello\"");
    ok(inflate_all(&d, again, sizeof again, &out) == 0 && out.len == 5 && memcmp(out.data, "Hello", 5) == 0,
       "7.2.3.2: the second \"Hello\", by context takeover");
    /* 7.2.3.3: a stored block. */
    static const uint8_t stored[] = {0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00};
    ok(inflate_all(&d, stored, sizeof stored, &out) == 0 && out.len == 5 && memcmp(out.data, "Hello", 5) == 0,
       "7.2.3.3: \"Hello\" in a stored block");
    mt_ws_deflate_dispose(&d);

    /* 7.2.3.4: a block with BFINAL set: the stream ends inside the message;
     * the next message starts a new one. */
    mt_ws_deflate_init(&d, &p, 6, 8, 1 << 20, MiB);
    static const uint8_t final[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    static const uint8_t final_pad[] = {0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00};
    ok(inflate_all(&d, final, sizeof final, &out) == 0 && out.len == 5 && memcmp(out.data, "Hello", 5) == 0,
       "7.2.3.4: \"Hello\" in a final block");
    ok(inflate_all(&d, hello, sizeof hello, &out) == 0 && out.len == 5 && memcmp(out.data, "Hello", 5) == 0,
       "... and a message after it inflates from a fresh stream");
    ok(inflate_all(&d, final_pad, sizeof final_pad, &out) == 0 && out.len == 5, "a final block and a byte after it");
    ok(inflate_all(&d, hello, sizeof hello, &out) == 0 && out.len == 5 && memcmp(out.data, "Hello", 5) == 0,
       "... and the next message still inflates");
    /* 7.2.3.6: an empty message may be a single 00 byte. */
    static const uint8_t empty[] = {0x00};
    ok(inflate_all(&d, empty, 1, &out) == 0 && out.len == 0, "7.2.3.6: an empty message");
    ok(inflate_all(&d, "", 0, &out) == 0 && out.len == 0, "an empty payload");

    static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff};
    is_int(inflate_all(&d, junk, sizeof junk, &out), -EBADMSG, "a reserved block type: -EBADMSG (close 1007)");
    mt_ws_deflate_dispose(&d);
    mt_buf_dispose(&out);
}

static void fill_text(uint8_t *p, size_t n, unsigned seed) {
    static const char *words[] = {"websocket ", "frame ", "deflate ", "window ", "meltemi ", "message ", "zlib "};
    size_t i = 0;
    while (i < n) {
        seed = seed * 1103515245 + 12345;
        const char *w = words[(seed >> 16) % 7];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (uint8_t)w[k];
    }
}

static void test_round_trip(void) {
    static const struct {
        int sbits;
        bool snct;
        int level, mem_level;
    } cases[] = {{15, false, 6, 8}, {15, true, 6, 8}, {9, false, 1, 1}, {12, true, 9, 9}, {10, false, 6, 5}};
    static uint8_t msg[300000];
    int all = 1;
    for (size_t c = 0; c < MT_ARRAY_SIZE(cases); c++) {
        mt_ws_deflate_params_t p = params(cases[c].sbits, 15, cases[c].snct, false);
        mt_ws_deflate_t server, peer;
        is_int(mt_ws_deflate_init(&server, &p, cases[c].level, cases[c].mem_level, 1 << 20, MiB), 0, "init");
        peer_init(&peer, &p);
        mt_buf_t z, back;
        mt_buf_init(&z);
        mt_buf_init(&back);
        size_t sizes[] = {0, 1, 5, 0, 300, 70000, sizeof msg, 5};
        for (size_t k = 0; k < MT_ARRAY_SIZE(sizes); k++) {
            fill_text(msg, sizes[k], (unsigned)(k + c));
            z.len = 0;
            int rc = mt_ws_deflate_compress(&server, msg, sizes[k], &z);
            /* Inflated in pieces of varying size, the way frames arrive. */
            back.len = 0;
            size_t pos = 0, step = 1;
            int irc = 0;
            while (irc == 0 && pos < z.len) {
                size_t take = MT_MIN(step, z.len - pos);
                irc = mt_ws_deflate_inflate(&peer, z.data + pos, take, pos + take == z.len, &back);
                pos += take;
                step = step * 3 + 1;
            }
            if (z.len == 0)
                irc = mt_ws_deflate_inflate(&peer, NULL, 0, true, &back);
            bool same =
                rc == 0 && irc == 0 && back.len == sizes[k] && (sizes[k] == 0 || !memcmp(back.data, msg, sizes[k]));
            if (!same)
                diag("case %zu size %zu: rc %d irc %d len %zu", c, sizes[k], rc, irc, back.len);
            all &= same;
        }
        ok(all, "round trip, %d-bit window, level %d, memLevel %d, %s context takeover", cases[c].sbits, cases[c].level,
           cases[c].mem_level, cases[c].snct ? "no" : "with");
        ok(server.mem_used <= mt_ws_deflate_memory(&p, cases[c].mem_level),
           "zlib's memory (%zu) within the estimate (%zu)", server.mem_used,
           mt_ws_deflate_memory(&p, cases[c].mem_level));
        mt_ws_deflate_dispose(&server);
        mt_ws_deflate_dispose(&peer);
        ok(server.mem_used == 0 && peer.mem_used == 0, "dispose gives every byte back");
        mt_buf_dispose(&z);
        mt_buf_dispose(&back);
    }

    /* The same message twice: with context takeover the second refers to
     * the first and is tiny; without, both are the same bytes. */
    fill_text(msg, 2000, 7);
    for (int snct = 0; snct <= 1; snct++) {
        mt_ws_deflate_params_t p = params(15, 15, snct, false);
        mt_ws_deflate_t d;
        mt_ws_deflate_init(&d, &p, 6, 8, 1 << 20, MiB);
        mt_buf_t a, b;
        mt_buf_init(&a);
        mt_buf_init(&b);
        mt_ws_deflate_compress(&d, msg, 2000, &a);
        mt_ws_deflate_compress(&d, msg, 2000, &b);
        if (snct)
            ok(a.len == b.len && memcmp(a.data, b.data, a.len) == 0,
               "server_no_context_takeover: each message compressed from scratch");
        else
            ok(b.len < a.len / 4, "context takeover: the repeat costs %zu bytes instead of %zu", b.len, a.len);
        mt_ws_deflate_dispose(&d);
        mt_buf_dispose(&a);
        mt_buf_dispose(&b);
    }

    /* What we send decodes with plain zlib once the tail is put back. */
    mt_ws_deflate_params_t p = params(15, 15, false, false);
    mt_ws_deflate_t d;
    mt_ws_deflate_init(&d, &p, 6, 8, 1 << 20, MiB);
    mt_buf_t z;
    mt_buf_init(&z);
    mt_ws_deflate_compress(&d, "Hello", 5, &z);
    ok(z.len == 7 && memcmp(z.data, "\xf2\x48\xcd\xc9\xc9\x07\x00", 7) == 0,
       "\"Hello\" compresses to RFC 7692 7.2.3.1's bytes");
    z.len = 0;
    mt_ws_deflate_compress(&d, "", 0, &z);
    ok(z.len == 1 && z.data[0] == 0, "an empty message compresses to one 00 byte");
    mt_ws_deflate_dispose(&d);
    mt_buf_dispose(&z);
}

static void test_bounds(void) {
    /* A bomb: 64 MiB of zeros is about 64 KiB of deflate. */
    mt_ws_deflate_params_t p = params(15, 15, false, false);
    mt_ws_deflate_t d;
    mt_ws_deflate_init(&d, &p, 9, 9, 1 << 20, 64 * MiB);
    uint8_t *zeros = calloc(1, 64 * MiB);
    mt_buf_t bomb, out;
    mt_buf_init(&bomb);
    mt_buf_init(&out);
    is_int(mt_ws_deflate_compress(&d, zeros, 64 * MiB, &bomb), 0, "a 64 MiB message of zeros compresses");
    diag("64 MiB of zeros: %zu bytes", bomb.len);
    mt_ws_deflate_dispose(&d);
    free(zeros);

    mt_ws_deflate_init(&d, &p, 6, 8, 1 << 20, MiB);
    int rc = mt_ws_deflate_inflate(&d, bomb.data, bomb.len, true, &out);
    is_int(rc, -EMSGSIZE, "inflating it with max_message 1 MiB: -EMSGSIZE (close 1009)");
    ok(out.len <= MiB && out.cap <= 2 * MiB + MT_BUF_BLOCK, "output held at the limit: %zu bytes, capacity %zu",
       out.len, out.cap);
    mt_ws_deflate_dispose(&d);

    /* The same bomb arriving in frames of 1000 bytes stops just as early. */
    mt_ws_deflate_init(&d, &p, 6, 8, 1 << 20, MiB);
    out.len = 0;
    size_t pos = 0;
    rc = 0;
    while (rc == 0 && pos < bomb.len) {
        size_t take = MT_MIN((size_t)1000, bomb.len - pos);
        rc = mt_ws_deflate_inflate(&d, bomb.data + pos, take, pos + take == bomb.len, &out);
        pos += take;
    }
    ok(rc == -EMSGSIZE && pos < bomb.len / 8, "in frames, it stops after %zu of %zu bytes", pos, bomb.len);
    mt_ws_deflate_dispose(&d);

    /* A message of exactly max_message inflates. */
    mt_ws_deflate_init(&d, &p, 6, 8, 1 << 20, 1000);
    mt_ws_deflate_t peer;
    peer_init(&peer, &p);
    peer.max_message = 1000;
    mt_buf_t z;
    mt_buf_init(&z);
    uint8_t msg[1001];
    fill_text(msg, sizeof msg, 3);
    mt_ws_deflate_compress(&d, msg, 1000, &z);
    out.len = 0;
    is_int(mt_ws_deflate_inflate(&peer, z.data, z.len, true, &out), 0, "a message of exactly max_message inflates");
    z.len = 0;
    mt_ws_deflate_compress(&d, msg, 1001, &z);
    out.len = 0;
    is_int(mt_ws_deflate_inflate(&peer, z.data, z.len, true, &out), -EMSGSIZE, "one byte more: -EMSGSIZE");
    mt_ws_deflate_dispose(&d);
    mt_ws_deflate_dispose(&peer);
    mt_buf_dispose(&z);

    /* zlib's memory: a 15-bit window with memLevel 8 needs about 270 KiB;
     * a 64 KiB bound refuses it cleanly, and the estimate is enough. */
    mt_ws_deflate_init(&d, &p, 6, 8, 64 * 1024, MiB);
    z.len = 0;
    is_int(mt_ws_deflate_compress(&d, "Hello", 5, &z), -ENOMEM, "a compressor over mem_limit: -ENOMEM");
    is_int((long long)d.mem_used, 0, "... holding nothing");
    mt_ws_deflate_dispose(&d);
    size_t need = mt_ws_deflate_memory(&p, 8);
    mt_ws_deflate_init(&d, &p, 6, 8, need, MiB);
    is_int(mt_ws_deflate_compress(&d, "Hello", 5, &z), 0, "mt_ws_deflate_memory (%zu) is enough for both", need);
    out.len = 0;
    is_int(mt_ws_deflate_inflate(&d, z.data, z.len, true, &out), 0, "... streams");
    ok(d.mem_used <= need, "%zu bytes used", d.mem_used);
    mt_ws_deflate_dispose(&d);
    mt_ws_deflate_params_t small = params(9, 9, true, true);
    diag("memory: 15/15 memLevel 8: %zu; 9/9 memLevel 1: %zu", need, mt_ws_deflate_memory(&small, 1));
    mt_ws_deflate_params_t bad = params(8, 15, false, false);
    is_int(mt_ws_deflate_init(&d, &bad, 6, 8, need, MiB), -EINVAL, "an 8-bit compressor window: -EINVAL");
    mt_buf_dispose(&z);
    mt_buf_dispose(&bomb);
    mt_buf_dispose(&out);
}

int main(void) {
    test_rfc_examples();
    test_round_trip();
    test_bounds();
    mt_buf_pool_drain();
    return done_testing();
}
