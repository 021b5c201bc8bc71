/* Unit tests of src/core/websocket/ws_frame.c: the incremental frame parser, UTF-8
 * validation, unmasking, and the server frame serializer.
 *
 * Every stream of client frames is parsed whole, split in two at every
 * byte, and one byte at a time, and must give the same outcome each way (an
 * outcome is the list of whole messages and control frames, then the error
 * if any). Like the server, the driver keeps the unconsumed bytes
 * contiguous and, before every call, copies them so that they end right
 * before an unreadable page: an over-read crashes. */
#include "ws_frame.c"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guard.h"
#include "tap.h"

/* ---- outcomes ---- */

typedef struct out {
    char s[8192];
    size_t len;
} out_t;

static __attribute__((format(printf, 2, 3))) void out_add(out_t *o, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->s + o->len, sizeof o->s - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len = MT_MIN(o->len + (size_t)n, sizeof o->s - 1);
}

static void out_bytes(out_t *o, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n && i < 64; i++)
        out_add(o, p[i] >= 0x20 && p[i] < 0x7f && p[i] != '%' ? "%c" : "%%%02x", p[i]);
    if (n > 64)
        out_add(o, "...(%zu)", n);
}

static const mt_ws_parser_config_t default_config = {.max_frame = 1 << 20, .max_message = 1 << 21};

/* Parses input fed in pieces ending at the offsets of `cuts` (ascending,
 * the last one n) and describes what came out. */
static void parse_pieces(const mt_ws_parser_config_t *cfg, const uint8_t *input, size_t n, const size_t *cuts,
                         size_t ncuts, out_t *o) {
    mt_ws_parser_t p;
    mt_ws_parser_init(&p, cfg);
    o->len = 0;
    o->s[0] = '\0';
    uint8_t *pending = malloc(n + 1);
    size_t plen = 0, fed = 0;
    uint8_t *msg = malloc(n + 1);
    size_t mlen = 0;
    bool compressed = false;
    for (size_t c = 0; c < ncuts; c++) {
        memcpy(pending + plen, input + fed, cuts[c] - fed);
        plen += cuts[c] - fed;
        fed = cuts[c];
        for (;;) {
            guarded_t g;
            uint8_t *buf = guard_copy(&g, pending, plen);
            size_t used;
            mt_ws_event_t ev;
            mt_ws_parse_result_t r = mt_ws_parse(&p, buf, plen, &used, &ev);
            if (r == MT_WS_PARSE_DATA) {
                if (ev.data < buf || ev.data + ev.len > buf + plen)
                    out_add(o, "[data outside the buffer]");
                memcpy(msg + mlen, ev.data, ev.len);
                mlen += ev.len;
                compressed = ev.compressed;
                if (ev.message_end) {
                    out_add(o, "%s%s:", ev.opcode == MT_WS_TEXT ? "T" : "B", compressed ? "z" : "");
                    out_bytes(o, msg, mlen);
                    out_add(o, " ");
                    mlen = 0;
                }
            } else if (r == MT_WS_PARSE_CONTROL) {
                if (ev.opcode == MT_WS_CLOSE) {
                    out_add(o, "CLOSE:%u:", ev.close_code);
                    out_bytes(o, ev.reason, ev.reason_len);
                } else {
                    out_add(o, "%s:", ev.opcode == MT_WS_PING ? "PING" : "PONG");
                    out_bytes(o, ev.data, ev.len);
                }
                out_add(o, " ");
            } else if (r == MT_WS_PARSE_ERROR) {
                out_add(o, "E%u", p.close_code);
                guard_free(&g);
                goto done;
            }
            if (used > plen)
                out_add(o, "[consumed past the end]");
            memmove(pending, pending + used, plen - used);
            plen -= used;
            guard_free(&g);
            if (r == MT_WS_PARSE_MORE) {
                if (plen != 0)
                    out_add(o, "[MORE left bytes]");
                break;
            }
        }
    }
    if (plen || p.in_frame || p.hdr_len || p.in_message)
        out_add(o, "...");
done:
    free(pending);
    free(msg);
}

static int check(const mt_ws_parser_config_t *cfg, const uint8_t *input, size_t n, const char *want, const char *what) {
    out_t whole, other;
    size_t cut = n;
    parse_pieces(cfg, input, n, &cut, 1, &whole);
    int same = 1;
    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    for (size_t i = 1; i < n && same; i++) {
        size_t two[2] = {i, n};
        parse_pieces(cfg, input, n, two, 2, &other);
        if (strcmp(other.s, whole.s) != 0) {
            diag("split at %zu: %s", i, other.s);
            same = 0;
        }
    }
    if (same && n < 4096) {
        for (size_t i = 0; i < n; i++)
            cuts[i] = i + 1;
        parse_pieces(cfg, input, n, cuts, n, &other);
        if (strcmp(other.s, whole.s) != 0) {
            diag("byte at a time: %s", other.s);
            same = 0;
        }
    }
    free(cuts);
    int pass = same && strcmp(whole.s, want) == 0;
    ok(pass, "%s", what);
    if (!pass)
        diag("got '%s', want '%s'", whole.s, want);
    return pass;
}

/* ---- building client frames ---- */

typedef struct stream {
    uint8_t b[300000];
    size_t n;
} stream_t;

static stream_t st;

/* Appends a client frame: b0 is FIN|RSV|opcode; masked with a fixed key
 * unless `unmasked`; `form` forces the 16-bit (2) or 64-bit (8) length. */
static void frame_ex(int b0, const void *payload, size_t n, bool unmasked, int form) {
    static const uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t *o = st.b + st.n;
    size_t h = 0;
    o[h++] = (uint8_t)b0;
    uint8_t m = unmasked ? 0 : 0x80;
    if (n < 126 && form == 0) {
        o[h++] = (uint8_t)(m | n);
    } else if (n <= 0xffff && form != 8) {
        o[h++] = m | 126;
        o[h++] = (uint8_t)(n >> 8);
        o[h++] = (uint8_t)n;
    } else {
        o[h++] = m | 127;
        for (int i = 0; i < 8; i++)
            o[h++] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    }
    if (!unmasked) {
        memcpy(o + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < n; i++)
        o[h + i] = ((const uint8_t *)payload)[i] ^ (unmasked ? 0 : key[i & 3]);
    st.n += h + n;
}

static void frame(int b0, const char *payload) {
    frame_ex(b0, payload, strlen(payload), false, 0);
}

#define FIN 0x80
#define RSV1 0x40

static void reset(void) {
    st.n = 0;
}

#define CHECK(want, ...)                                                                                               \
    do {                                                                                                               \
        char what_[256];                                                                                               \
        snprintf(what_, sizeof what_, __VA_ARGS__);                                                                    \
        check(&default_config, st.b, st.n, want, what_);                                                               \
    } while (0)

/* ---- tests ---- */

static void test_rfc_examples(void) {
    /* RFC 6455 5.7: a masked "Hello", then the same split in two frames. */
    static const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    check(&default_config, hello, sizeof hello, "T:Hello ", "RFC 6455 5.7: a single-frame masked text message");
    reset();
    frame(MT_WS_TEXT, "Hel");
    frame(FIN | MT_WS_CONTINUATION, "lo");
    CHECK("T:Hello ", "a fragmented text message");
    reset();
    frame(MT_WS_TEXT, "Hel");
    frame(FIN | MT_WS_PING, "are you there");
    frame(MT_WS_CONTINUATION, "l");
    frame(FIN | MT_WS_PONG, "");
    frame(FIN | MT_WS_CONTINUATION, "o");
    frame(FIN | MT_WS_BINARY, "next");
    CHECK("PING:are you there PONG: T:Hello B:next ", "control frames in the middle of a fragmented message");
    reset();
    frame(FIN | MT_WS_TEXT, "");
    frame(MT_WS_BINARY, "");
    frame(FIN | MT_WS_CONTINUATION, "");
    frame(FIN | MT_WS_PING, "");
    CHECK("T: B: PING: ", "empty messages and frames");
}

static void test_lengths(void) {
    static uint8_t big[70000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    reset();
    frame_ex(FIN | MT_WS_BINARY, big, 126, false, 0);
    out_t o;
    size_t cut = st.n;
    parse_pieces(&default_config, st.b, st.n, &cut, 1, &o);
    ok(strstr(o.s, "...(126)") != NULL, "16-bit length, 126 bytes");
    reset();
    frame_ex(FIN | MT_WS_BINARY, big, 65535, false, 0);
    frame_ex(FIN | MT_WS_BINARY, big, 65536, false, 0);
    frame_ex(FIN | MT_WS_BINARY, big, 5, false, 8);
    frame_ex(FIN | MT_WS_BINARY, big, 3, false, 2);
    cut = st.n;
    parse_pieces(&default_config, st.b, st.n, &cut, 1, &o);
    ok(strstr(o.s, "...(65535) B:") && strstr(o.s, "...(65536) B:%00%07%0e%15%1c B:%00%07%0e "),
       "16-bit, 64-bit and non-minimal length forms: %s", o.s);

    /* The payload of a 64 KiB message, split at a few hundred points: the
     * unmasking (8 bytes at a time) must match byte-wise XOR from every
     * offset. */
    reset();
    frame_ex(FIN | MT_WS_BINARY, big, sizeof big, false, 0);
    int good = 1;
    for (size_t at = 1; at < 400 && good; at += 7) {
        mt_ws_parser_t p;
        mt_ws_parser_init(&p, &default_config);
        static uint8_t copy[sizeof st.b];
        memcpy(copy, st.b, st.n);
        size_t pos = 0, got = 0;
        size_t cuts[3] = {at, at + 13, st.n};
        for (int c = 0; c < 3; c++) {
            while (pos < cuts[c]) {
                size_t used;
                mt_ws_event_t ev;
                mt_ws_parse_result_t r = mt_ws_parse(&p, copy + pos, cuts[c] - pos, &used, &ev);
                if (r == MT_WS_PARSE_DATA) {
                    good &= memcmp(ev.data, big + got, ev.len) == 0;
                    got += ev.len;
                }
                pos += used;
                if (r == MT_WS_PARSE_MORE)
                    break;
            }
        }
        good &= got == sizeof big;
    }
    ok(good, "unmasking from every offset matches the payload");

    uint8_t bad[] = {0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    check(&default_config, bad, sizeof bad, "E1002", "64-bit length with its top bit set: 1002");
    uint8_t huge[] = {0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    check(&default_config, huge, sizeof huge, "E1009", "a 2^63-1 byte frame: 1009 from the header");
}

static void test_limits(void) {
    mt_ws_parser_config_t cfg = {.max_frame = 10, .max_message = 16};
    reset();
    frame(FIN | MT_WS_TEXT, "0123456789");
    check(&cfg, st.b, st.n, "T:0123456789 ", "a frame of exactly max_frame");
    reset();
    frame(FIN | MT_WS_TEXT, "0123456789a");
    check(&cfg, st.b, st.n, "E1009", "a frame over max_frame: 1009");
    reset();
    frame(MT_WS_TEXT, "01234567");
    frame(FIN | MT_WS_CONTINUATION, "01234567");
    check(&cfg, st.b, st.n, "T:0123456701234567 ", "a message of exactly max_message");
    reset();
    frame(MT_WS_TEXT, "01234567");
    frame(MT_WS_CONTINUATION, "01234567");
    frame(FIN | MT_WS_CONTINUATION, "x");
    check(&cfg, st.b, st.n, "E1009", "a fragmented message over max_message: 1009");
    reset();
    frame(MT_WS_TEXT, "01234567");
    frame(FIN | MT_WS_PING, "0123456789abcdefghij");
    frame(FIN | MT_WS_CONTINUATION, "01234567");
    check(&cfg, st.b, st.n, "PING:0123456789abcdefghij T:0123456701234567 ",
          "control frames do not count against the limits");
    /* A compressed message may take a little more on the wire than
     * max_message (stored blocks add 5 bytes per 64 KiB): 1/1024 + 64. */
    mt_ws_parser_config_t zc = {.max_frame = 1 << 20, .max_message = 1024, .deflate = true};
    static char wire[1200];
    memset(wire, 'w', sizeof wire);
    reset();
    frame_ex(FIN | RSV1 | MT_WS_BINARY, wire, 1024 + 1 + 64, false, 0);
    out_t o;
    size_t cut = st.n;
    parse_pieces(&zc, st.b, st.n, &cut, 1, &o);
    ok(strncmp(o.s, "Bz:", 3) == 0, "a compressed message up to max_message + 1/1024 + 64 on the wire passes");
    reset();
    frame_ex(FIN | RSV1 | MT_WS_BINARY, wire, 1024 + 1 + 64 + 1, false, 0);
    check(&zc, st.b, st.n, "E1009", "one byte more: 1009");
    reset();
    frame_ex(FIN | MT_WS_BINARY, wire, 1025, false, 0);
    check(&zc, st.b, st.n, "E1009", "an uncompressed one gets no slack");

    /* After an error the parser stays failed, consuming nothing. */
    mt_ws_parser_t p;
    mt_ws_parser_init(&p, &cfg);
    uint8_t bad[] = {0x83, 0x80, 1, 2, 3, 4, 0x81, 0x80, 1, 2, 3, 4};
    size_t used;
    mt_ws_event_t ev;
    ok(mt_ws_parse(&p, bad, sizeof bad, &used, &ev) == MT_WS_PARSE_ERROR && p.close_code == 1002,
       "an error: MT_WS_PARSE_ERROR and close_code 1002");
    ok(mt_ws_parse(&p, bad + 6, 6, &used, &ev) == MT_WS_PARSE_ERROR && used == 0 && p.close_code == 1002,
       "every later call fails the same way and consumes nothing");

    /* The limit is checked from the header: nothing of the payload is needed. */
    uint8_t head[] = {0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4};
    check(&cfg, head, sizeof head, "E1009", "1009 as soon as the header is complete");
}

static void test_protocol_errors(void) {
    reset();
    frame_ex(FIN | MT_WS_TEXT, "hi", 2, true, 0);
    CHECK("E1002", "an unmasked client frame: 1002");
    reset();
    frame(FIN | 0x20 | MT_WS_TEXT, "hi");
    CHECK("E1002", "RSV2: 1002");
    reset();
    frame(FIN | 0x10 | MT_WS_TEXT, "hi");
    CHECK("E1002", "RSV3: 1002");
    reset();
    frame(FIN | RSV1 | MT_WS_TEXT, "hi");
    CHECK("E1002", "RSV1 without permessage-deflate: 1002");
    mt_ws_parser_config_t z = default_config;
    z.deflate = true;
    reset();
    frame(RSV1 | MT_WS_TEXT, "a");
    frame(FIN | MT_WS_CONTINUATION, "b");
    frame(FIN | MT_WS_BINARY, "c");
    check(&z, st.b, st.n, "Tz:ab B:c ", "RSV1 on a message's first frame with deflate: the message is compressed");
    reset();
    frame(RSV1 | MT_WS_TEXT, "a");
    frame(FIN | RSV1 | MT_WS_CONTINUATION, "b");
    check(&z, st.b, st.n, "E1002", "RSV1 on a continuation frame: 1002");
    reset();
    frame(FIN | RSV1 | MT_WS_PING, "a");
    check(&z, st.b, st.n, "E1002", "RSV1 on a control frame: 1002");
    reset();
    frame(FIN | RSV1 | MT_WS_TEXT, "\xff");
    check(&z, st.b, st.n, "Tz:%ff ", "a compressed text message is left to validate after inflating");
    reset();
    frame(FIN | MT_WS_TEXT, "\xff");
    check(&z, st.b, st.n, "E1007", "an uncompressed one is validated with deflate on too");
    for (int op = 3; op <= 0xf; op++) {
        if (op >= 8 && op <= 0xa)
            continue;
        reset();
        frame(FIN | op, "x");
        CHECK("E1002", "opcode 0x%x: 1002", op);
    }
    reset();
    frame(MT_WS_PING, "x");
    CHECK("E1002", "a fragmented ping: 1002");
    reset();
    static char c126[126];
    memset(c126, 'p', sizeof c126);
    frame_ex(FIN | MT_WS_PING, c126, 126, false, 0);
    CHECK("E1002", "a 126-byte ping: 1002");
    reset();
    frame_ex(FIN | MT_WS_PING, c126, 125, false, 0);
    out_t o;
    size_t cut = st.n;
    parse_pieces(&default_config, st.b, st.n, &cut, 1, &o);
    ok(strncmp(o.s, "PING:", 5) == 0 && strstr(o.s, "...(125)"), "a 125-byte ping is fine");
    reset();
    frame(FIN | MT_WS_CONTINUATION, "x");
    CHECK("E1002", "a continuation without a message: 1002");
    reset();
    frame(MT_WS_TEXT, "x");
    frame(FIN | MT_WS_TEXT, "y");
    CHECK("E1002", "a new text frame inside a fragmented message: 1002");
    reset();
    frame(MT_WS_BINARY, "x");
    frame(MT_WS_BINARY, "y");
    CHECK("E1002", "a new binary frame inside a fragmented message: 1002");
    reset();
    frame(FIN | MT_WS_TEXT, "ok");
    frame_ex(FIN | MT_WS_TEXT, "no", 2, true, 0);
    frame(FIN | MT_WS_TEXT, "never");
    CHECK("T:ok E1002", "what precedes an error is reported, nothing after it");
}

static void test_utf8(void) {
    static const struct {
        const char *s;
        bool valid;
        const char *what;
    } cases[] = {
        {"", true, "empty"},
        {"plain ascii, long enough for the 8-byte path", true, "ASCII"},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true, "Greek (Autobahn 6.2)"},
        {"\xf0\x9f\x98\x80", true, "U+1F600"},
        {"\xf4\x8f\xbf\xbf", true, "U+10FFFF"},
        {"\xef\xbf\xbf", true, "U+FFFF"},
        {"\xed\x9f\xbf", true, "U+D7FF"},
        {"\xee\x80\x80", true, "U+E000"},
        {"\xf4\x90\x80\x80", false, "U+110000"},
        {"\xed\xa0\x80", false, "a surrogate (U+D800)"},
        {"\xed\xbf\xbf", false, "a surrogate (U+DFFF)"},
        {"\xc0\x80", false, "overlong NUL"},
        {"\xc1\xbf", false, "overlong 2-byte"},
        {"\xe0\x9f\xbf", false, "overlong 3-byte"},
        {"\xf0\x8f\xbf\xbf", false, "overlong 4-byte"},
        {"\x80", false, "a lone continuation byte"},
        {"\xf5\x80\x80\x80", false, "F5"},
        {"\xff", false, "FF"},
        {"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64", false,
         "Autobahn 6.3.1 (a surrogate inside)"},
        {"\xe1\xbd", false, "truncated at the end"},
        {"abcdefgh\xe1\xbd"
         "abcdefgh",
         false, "truncated in the middle of ASCII runs"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        size_t n = strlen(cases[i].s);
        mt_ws_utf8_t u = {0};
        bool v = mt_ws_utf8_feed(&u, (const uint8_t *)cases[i].s, n) && mt_ws_utf8_complete(&u);
        /* Fed a byte at a time, the answer must be the same. */
        mt_ws_utf8_t w = {0};
        bool bytewise = true;
        for (size_t k = 0; k < n && bytewise; k++)
            bytewise = mt_ws_utf8_feed(&w, (const uint8_t *)cases[i].s + k, 1);
        bytewise = bytewise && mt_ws_utf8_complete(&w);
        ok(v == cases[i].valid && bytewise == v, "UTF-8 %s: %s", cases[i].what, cases[i].valid ? "valid" : "invalid");
    }

    reset();
    frame(FIN | MT_WS_TEXT, "caf\xc3\xa9");
    CHECK("T:caf%c3%a9 ", "UTF-8 text");
    reset();
    frame(MT_WS_TEXT, "caf\xc3");
    frame(FIN | MT_WS_PING, "");
    frame(FIN | MT_WS_CONTINUATION, "\xa9");
    CHECK("PING: T:caf%c3%a9 ", "a character split across fragments (with a ping between)");
    reset();
    frame(MT_WS_TEXT, "caf\xc3");
    CHECK("...", "half a character at the end of a frame is not an error yet");
    reset();
    frame(FIN | MT_WS_TEXT, "caf\xc3");
    CHECK("E1007", "half a character at the end of a message: 1007");
    reset();
    frame(MT_WS_TEXT, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80");
    CHECK("E1007", "fail fast: invalid UTF-8 in the first fragment, before the message ends: 1007");
    reset();
    frame(FIN | MT_WS_BINARY, "\xff\xfe");
    CHECK("B:%ff%fe ", "binary messages are not validated");
}

static void test_close(void) {
    reset();
    frame(FIN | MT_WS_CLOSE, "");
    CHECK("CLOSE:1005: ", "a close without a payload: reported as 1005");
    reset();
    frame(FIN | MT_WS_CLOSE, "\x03\xe8"
                             "bye");
    CHECK("CLOSE:1000:bye ", "a close with a code and a reason");
    reset();
    frame(FIN | MT_WS_CLOSE, "\x03");
    CHECK("E1002", "a close payload of one byte: 1002");
    static const struct {
        unsigned code;
        bool valid;
    } codes[] = {{0, false},    {999, false},  {1000, true}, {1001, true},  {1002, true},  {1003, true},  {1004, false},
                 {1005, false}, {1006, false}, {1007, true}, {1008, true},  {1009, true},  {1010, true},  {1011, true},
                 {1012, true},  {1013, true},  {1014, true}, {1015, false}, {1016, false}, {2000, false}, {2999, false},
                 {3000, true},  {3999, true},  {4000, true}, {4999, true},  {5000, false}, {65535, false}};
    for (size_t i = 0; i < MT_ARRAY_SIZE(codes); i++) {
        reset();
        uint8_t pl[2] = {(uint8_t)(codes[i].code >> 8), (uint8_t)codes[i].code};
        frame_ex(FIN | MT_WS_CLOSE, pl, 2, false, 0);
        char want[32];
        snprintf(want, sizeof want, codes[i].valid ? "CLOSE:%u: " : "E1002", codes[i].code);
        CHECK(want, "close code %u: %s", codes[i].code, codes[i].valid ? "accepted" : "1002");
    }
    reset();
    frame(FIN | MT_WS_CLOSE, "\x03\xe8\xed\xa0\x80");
    CHECK("E1007", "a close reason that is not UTF-8: 1007");
    reset();
    frame(MT_WS_TEXT, "part");
    frame(FIN | MT_WS_CLOSE, "\x03\xe9");
    CHECK("CLOSE:1001: ...", "a close in the middle of a fragmented message (which stays unfinished)");
}

static void test_serialize(void) {
    uint8_t h[10];
    ok(mt_ws_frame_header(h, MT_WS_TEXT, true, false, 5) == 2 && h[0] == 0x81 && h[1] == 5, "5 bytes: 2-byte header");
    ok(mt_ws_frame_header(h, MT_WS_BINARY, true, true, 125) == 2 && h[0] == 0xc2 && h[1] == 125,
       "125 bytes, RSV1: 2-byte header");
    ok(mt_ws_frame_header(h, MT_WS_TEXT, false, false, 126) == 4 && h[0] == 0x01 && h[1] == 126 && h[2] == 0 &&
           h[3] == 126,
       "126 bytes: 16-bit length, not FIN");
    ok(mt_ws_frame_header(h, MT_WS_BINARY, true, false, 65535) == 4 && h[2] == 0xff && h[3] == 0xff,
       "65535 bytes: 16-bit length");
    ok(mt_ws_frame_header(h, MT_WS_BINARY, true, false, 65536) == 10 && h[1] == 127 && h[7] == 1 && h[8] == 0 &&
           h[9] == 0,
       "65536 bytes: 64-bit length");
    ok(mt_ws_frame_header(h, MT_WS_PONG, true, false, 0) == 2 && h[0] == 0x8a && h[1] == 0, "an empty pong");

    uint8_t pl[MT_WS_MAX_CONTROL];
    is_int(mt_ws_close_payload(pl, 1000, "bye", 3), 5, "close payload: code and reason");
    ok(pl[0] == 0x03 && pl[1] == 0xe8 && memcmp(pl + 2, "bye", 3) == 0, "... in network order");
    is_int(mt_ws_close_payload(pl, 1005, "", 0), -EINVAL, "1005 may not be sent");
    is_int(mt_ws_close_payload(pl, 1012, "", 0), 2, "1012 (service restart) may be sent by the server");
    is_int(mt_ws_close_payload(pl, 1015, "", 0), -EINVAL, "1015 may not be sent");
    is_int(mt_ws_close_payload(pl, 1000, "\xff", 1), -EINVAL, "a reason that is not UTF-8 is refused");
    char long_reason[200];
    memset(long_reason, 'a', sizeof long_reason);
    memcpy(long_reason + 122, "\xc3\xa9", 2); /* straddles the 123-byte cut */
    int n = mt_ws_close_payload(pl, 1001, long_reason, sizeof long_reason);
    is_int(n, 124, "a long reason is cut before the character that would straddle 123 bytes");
}

int main(void) {
    test_rfc_examples();
    test_lengths();
    test_limits();
    test_protocol_errors();
    test_utf8();
    test_close();
    test_serialize();
    return done_testing();
}
