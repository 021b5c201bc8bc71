/* libFuzzer driver for the WebSocket frame parser (ws_frame.c) and the
 * permessage-deflate decompressor (ws_deflate.c): every byte stream a
 * client can send after the handshake.
 *
 * Input: byte 0 chooses the configuration (bit 0: permessage-deflate
 * negotiated; bit 1: small limits; bit 2: client_no_context_takeover; bit
 * 3: the rest is a handshake instead, see fuzz_handshake; bit 4: a 15-bit
 * client window, else 8 + the top 3 bits), byte 1 seeds the split points,
 * the rest is the stream. The stream is parsed
 * twice, whole and in pieces of pseudo-random sizes, each piece handed to
 * the parser in a buffer of its exact size (reading past it is an ASan
 * report). Checks: the parser consumes no more than it was given, MORE
 * consumes everything, data lies inside the buffer, an error carries 1002,
 * 1007 or 1009, a control payload is at most 125 bytes, a message never
 * exceeds max_message (inflated or not), an uncompressed text message is
 * UTF-8 (so is a compressed one that inflated without error, once checked
 * by the caller's validation), and both parses give the same outcome:
 * events, messages, inflate results and close code. Every message is also
 * compressed as the server would send it and inflated as the client would:
 * the same bytes must come back. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws_deflate.h"
#include "ws_frame.h"
#include "ws_handshake.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

typedef struct run {
    mt_ws_parser_config_t cfg;
    mt_ws_parser_t parser;
    mt_ws_deflate_t deflate;
    mt_buf_t message;             /* the current message: plain bytes, or inflated ones */
    mt_ws_deflate_t server, peer; /* every message is sent back through these: a round trip */
    mt_buf_t z, back;
    int inflate_rc;    /* of the current compressed message */
    bool exact_window; /* the client's window is 15 bits: no stream can refer past it */
    uint64_t hash;     /* the outcome */
} run_t;

static void mix(run_t *r, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        r->hash = (r->hash ^ b[i]) * 0x100000001b3ull;
}

static void mix_int(run_t *r, long v) {
    mix(r, &v, sizeof v);
}

static void on_data(run_t *r, const mt_ws_event_t *ev) {
    CHECK(ev->opcode == MT_WS_TEXT || ev->opcode == MT_WS_BINARY);
    if (ev->compressed) {
        CHECK(r->cfg.deflate);
        if (r->inflate_rc == 0)
            r->inflate_rc = mt_ws_deflate_inflate(&r->deflate, ev->data, ev->len, ev->message_end, &r->message);
        CHECK(r->inflate_rc == 0 || r->inflate_rc == -EMSGSIZE || r->inflate_rc == -EBADMSG);
    } else {
        CHECK(mt_buf_append(&r->message, ev->data, ev->len) == 0);
    }
    CHECK(r->message.len <= r->cfg.max_message);
    if (!ev->message_end)
        return;
    mix_int(r, 'M');
    mix_int(r, ev->opcode);
    mix_int(r, ev->compressed);
    /* What zlib wrote before it found bad data may depend on how the input
     * was cut; so may the verdict on a stream that refers further back than
     * the negotiated window (zlib checks distances against the window only
     * across calls: within one call's output it lets them through).
     * Everything else must not. */
    if (!ev->compressed || r->exact_window) {
        mix_int(r, r->inflate_rc);
        if (r->inflate_rc != -EBADMSG)
            mix(r, r->message.data, r->message.len);
    }
    /* UTF-8 whole (whole characters at once) and a byte at a time (the
     * state carried between calls) must agree, on any bytes. */
    const uint8_t *m = (const uint8_t *)r->message.data;
    mt_ws_utf8_t u = {0}, v = {0};
    bool whole = mt_ws_utf8_feed(&u, m, r->message.len) && mt_ws_utf8_complete(&u);
    bool bytewise = true;
    for (size_t i = 0; i < r->message.len && bytewise; i++)
        bytewise = mt_ws_utf8_feed(&v, m + i, 1);
    CHECK(whole == (bytewise && mt_ws_utf8_complete(&v)));
    if (ev->opcode == MT_WS_TEXT && !ev->compressed)
        CHECK(whole);
    /* What the server would send back inflates, on the client's side, to
     * the same bytes (the server's context kept or not across messages). */
    if (r->message.len <= 4096) {
        r->z.len = r->back.len = 0;
        CHECK(mt_ws_deflate_compress(&r->server, r->message.data, r->message.len, &r->z) == 0);
        CHECK(r->z.len > 0);
        CHECK(mt_ws_deflate_inflate(&r->peer, r->z.data, r->z.len, true, &r->back) == 0);
        CHECK(r->back.len == r->message.len &&
              (r->back.len == 0 || memcmp(r->back.data, r->message.data, r->back.len) == 0));
    }
    r->message.len = 0;
    if (r->inflate_rc != 0) {
        /* A connection would be closed here; start afresh so the fuzzer
         * still reaches the frames after it. */
        mt_ws_deflate_params_t p = r->deflate.params;
        mt_ws_deflate_dispose(&r->deflate);
        mt_ws_deflate_init(&r->deflate, &p, 6, 8, 1 << 20, r->cfg.max_message);
    }
    r->inflate_rc = 0;
}

/* Parses input[0, n) cut at the given offsets. */
static uint64_t parse(const uint8_t *flags, const uint8_t *input, size_t n, const size_t *cuts, size_t ncuts) {
    run_t r = {.hash = 0xcbf29ce484222325ull};
    bool small = flags[0] & 2;
    r.cfg = (mt_ws_parser_config_t){
        .max_frame = small ? 64 : 4096, .max_message = small ? 200 : 8192, .deflate = flags[0] & 1};
    mt_ws_parser_init(&r.parser, &r.cfg);
    mt_ws_deflate_params_t p = {.server_max_window_bits = 15,
                                .client_max_window_bits = (uint8_t)(flags[0] & 16 ? 15 : 8 + (flags[0] >> 5)),
                                .client_no_context_takeover = flags[0] & 4};
    CHECK(mt_ws_deflate_init(&r.deflate, &p, 6, 8, 1 << 20, r.cfg.max_message) == 0);
    r.exact_window = p.client_max_window_bits == 15;
    /* The server's side of the round trip, its window and reset from the
     * flags' top bits; the peer inflates with that window. */
    mt_ws_deflate_params_t sp = {.server_max_window_bits = (uint8_t)(9 + (flags[0] >> 5) % 7),
                                 .client_max_window_bits = 15,
                                 .server_no_context_takeover = flags[0] & 4};
    mt_ws_deflate_params_t pp = {.server_max_window_bits = 15,
                                 .client_max_window_bits = sp.server_max_window_bits,
                                 .client_no_context_takeover = sp.server_no_context_takeover};
    CHECK(mt_ws_deflate_init(&r.server, &sp, 1 + flags[1] % 9, 1 + (flags[1] >> 4) % 9, 1 << 20, 8192) == 0);
    CHECK(mt_ws_deflate_init(&r.peer, &pp, 6, 8, 1 << 20, 8192) == 0);
    mt_buf_init(&r.z);
    mt_buf_init(&r.back);
    mt_buf_init(&r.message);
    uint8_t *pending = malloc(n ? n : 1);
    size_t plen = 0, fed = 0;
    for (size_t c = 0; c < ncuts; c++) {
        memcpy(pending + plen, input + fed, cuts[c] - fed);
        plen += cuts[c] - fed;
        fed = cuts[c];
        for (;;) {
            uint8_t *buf = malloc(plen ? plen : 1);
            memcpy(buf, pending, plen);
            size_t used = 0;
            mt_ws_event_t ev;
            mt_ws_parse_result_t res = mt_ws_parse(&r.parser, buf, plen, &used, &ev);
            CHECK(used <= plen);
            if (res == MT_WS_PARSE_DATA) {
                CHECK(ev.data >= buf && ev.data + ev.len <= buf + used);
                on_data(&r, &ev);
            } else if (res == MT_WS_PARSE_CONTROL) {
                CHECK(ev.opcode == MT_WS_CLOSE || ev.opcode == MT_WS_PING || ev.opcode == MT_WS_PONG);
                CHECK(ev.len <= MT_WS_MAX_CONTROL);
                mix_int(&r, 'C');
                mix_int(&r, ev.opcode);
                mix(&r, ev.data, ev.len);
                if (ev.opcode == MT_WS_CLOSE) {
                    CHECK(ev.close_code == MT_WS_CLOSE_NO_STATUS || mt_ws_close_code_valid(ev.close_code));
                    mix_int(&r, ev.close_code);
                }
            } else if (res == MT_WS_PARSE_ERROR) {
                uint16_t code = r.parser.close_code;
                CHECK(code == MT_WS_CLOSE_PROTOCOL_ERROR || code == MT_WS_CLOSE_INVALID_DATA ||
                      code == MT_WS_CLOSE_TOO_BIG);
                CHECK(r.parser.error != NULL);
                mix_int(&r, 'E');
                mix_int(&r, code);
                /* It stays failed. */
                size_t again;
                CHECK(mt_ws_parse(&r.parser, buf, plen, &again, &ev) == MT_WS_PARSE_ERROR && again == 0);
                free(buf);
                goto done;
            } else {
                CHECK(res == MT_WS_PARSE_MORE && used == plen);
            }
            /* Unmasking happened in buf: keep the parser's view of the bytes. */
            memmove(pending, pending + used, plen - used);
            plen -= used;
            free(buf);
            if (res == MT_WS_PARSE_MORE)
                break;
        }
    }
    mix_int(&r, 'P');
    mix_int(&r, (long)plen);
done:
    free(pending);
    mt_buf_dispose(&r.message);
    mt_ws_deflate_dispose(&r.deflate);
    CHECK(r.deflate.mem_used == 0);
    mt_ws_deflate_dispose(&r.server);
    mt_ws_deflate_dispose(&r.peer);
    mt_buf_dispose(&r.z);
    mt_buf_dispose(&r.back);
    return r.hash;
}

/* The rest as the fields of an upgrade request: one field value per line,
 * named in turn from the list below (after a valid key and version, so
 * the extension and subprotocol parsing is reached). Checks: a result from
 * the enum, spans inside the input, negotiated parameters in the ranges
 * ws_deflate accepts, a 101 head that fits and ends its head, a refusal
 * that fits. */
static void fuzz_handshake(const uint8_t *input, size_t n) {
    static const char *names[] = {
        "sec-websocket-extensions", "sec-websocket-protocol", "origin", "connection", "upgrade",
        "sec-websocket-version",    "sec-websocket-key"};
    static const char fixed[] = "upgradewebsocketupgrade13dGhlIHNhbXBsZSBub25jZQ==";
    char *base = malloc(sizeof fixed + 512 + n);
    memcpy(base, fixed, sizeof fixed);
    size_t blen = sizeof fixed;
    memcpy(base + blen, input, n);
    /* The names live after the input, so every span points into base. */
    size_t off[7];
    size_t w = blen + n;
    for (size_t i = 0; i < 7; i++) {
        off[i] = w;
        memcpy(base + w, names[i], strlen(names[i]));
        w += strlen(names[i]);
    }
    mt_header_t headers[32] = {
        {{(uint32_t)off[3], 10}, {0, 7}},  /* connection: upgrade */
        {{(uint32_t)off[4], 7}, {7, 9}},   /* upgrade: websocket */
        {{(uint32_t)off[5], 21}, {23, 2}}, /* sec-websocket-version: 13 */
        {{(uint32_t)off[6], 17}, {25, 24}} /* sec-websocket-key */
    };
    uint32_t nh = 4;
    size_t start = 0;
    for (size_t i = 0; i <= n && nh < 32; i++) {
        if (i == n || input[i] == '\n') {
            size_t k = (nh - 4) % 7;
            headers[nh++] = (mt_header_t){{(uint32_t)off[k], (uint32_t)strlen(names[k])},
                                          {(uint32_t)(blen + start), (uint32_t)(i - start)}};
            start = i + 1;
        }
    }
    mt_request_t req = {.headers = headers, .nheaders = nh, .http_minor = 1, .method_id = HTTP_GET, .host_count = 1};
    mt_ws_handshake_config_t cfg = {.deflate = true,
                                    .server_max_window_bits = (uint8_t)(n % 16),
                                    .client_max_window_bits = (uint8_t)(n % 13 + 3),
                                    .client_no_context_takeover = n & 1};
    mt_ws_handshake_t hs;
    mt_ws_handshake_result_t r = mt_ws_handshake_parse(&hs, &req, base, &cfg);
    CHECK(r == MT_WS_HANDSHAKE_OK || r == MT_WS_HANDSHAKE_BAD_REQUEST || r == MT_WS_HANDSHAKE_BAD_VERSION ||
          r == MT_WS_HANDSHAKE_NOT_WEBSOCKET);
    char out[2048];
    if (r == MT_WS_HANDSHAKE_OK) {
        CHECK(hs.nprotocols <= MT_WS_MAX_PROTOCOLS);
        for (uint32_t i = 0; i < hs.nprotocols; i++)
            CHECK(hs.protocols[i].len > 0 && hs.protocols[i].off + hs.protocols[i].len <= blen + n);
        if (hs.has_origin)
            CHECK(hs.origin.off + hs.origin.len <= blen + n);
        if (hs.deflate) {
            mt_ws_deflate_t d;
            CHECK(mt_ws_deflate_init(&d, &hs.params, 6, 8, 1 << 20, 1024) == 0);
            mt_ws_deflate_dispose(&d);
        }
        const char *proto = hs.nprotocols ? base + hs.protocols[0].off : NULL;
        int len = mt_ws_handshake_accept(&hs, base, proto, hs.nprotocols ? hs.protocols[0].len : 0, out, sizeof out);
        CHECK(len > 0 && (size_t)len < sizeof out && strlen(out) == (size_t)len);
        CHECK(memcmp(out + len - 4, "\r\n\r\n", 4) == 0);
        /* No CR or LF inside a field: the head has exactly its lines. */
        CHECK(strstr(out, "\r\n\r\n") == out + len - 4);
    } else if (r != MT_WS_HANDSHAKE_NOT_WEBSOCKET) {
        CHECK(hs.error != NULL);
        int len = mt_ws_handshake_refuse(r, &hs, out, sizeof out);
        CHECK(len > 0 && (size_t)len < sizeof out);
    }
    free(base);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2)
        return 0;
    if (data[0] & 8) {
        fuzz_handshake(data + 2, size - 2);
        return 0;
    }
    const uint8_t *input = data + 2;
    size_t n = size - 2;
    size_t whole = n;
    uint64_t a = parse(data, input, n, &whole, 1);

    size_t *cuts = malloc((n + 1) * sizeof *cuts);
    size_t ncuts = 0, pos = 0;
    uint32_t seed = data[1] * 2654435761u + 1;
    while (pos < n) {
        seed = seed * 1103515245u + 12345u;
        size_t step = 1 + (seed >> 16) % (data[1] & 1 ? 3 : 17);
        pos = pos + step < n ? pos + step : n;
        cuts[ncuts++] = pos;
    }
    if (ncuts == 0)
        cuts[ncuts++] = 0;
    uint64_t b = parse(data, input, n, cuts, ncuts);
    free(cuts);
    CHECK(a == b);
    return 0;
}
