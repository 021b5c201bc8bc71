/* Unit tests of src/core/websocket/ws_handshake.c: SHA-1 and the accept key, request
 * validation (RFC 6455 4.2.1), subprotocols and Origin, permessage-deflate
 * negotiation (RFC 7692 7.1) and the heads written. Requests go through the
 * real HTTP/1.1 parser first, as in the server. */
#include "buf.c"
#include "http1.c"
#include "ws_deflate.c"
#include "ws_handshake.c"

#include <stdio.h>

#include "tap.h"

static const mt_limits_t limits = {
    .max_request_line = 1024, .max_head_size = 8192, .max_headers = 32, .max_body_size = 1024, .max_chunk_ext = 64};

static const mt_ws_handshake_config_t deflate_cfg = {
    .deflate = true, .server_max_window_bits = 15, .client_max_window_bits = 15};

static char input[8192];
static mt_header_t headers[32];
static mt_request_t req;
static mt_buf_t body;
static mt_ws_handshake_t hs;

#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define BASE "GET /chat HTTP/1.1\r\nHost: server.example.com\r\n"
#define UPGRADE "Upgrade: websocket\r\nConnection: Upgrade\r\n"
#define GOOD BASE UPGRADE "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n"

/* Parses a request head (and the handshake in it); returns the result, or
 * -1 if the HTTP parser itself refused it. */
static int handshake(const char *raw, const mt_ws_handshake_config_t *cfg) {
    size_t n = strlen(raw);
    memcpy(input, raw, n);
    mt_buf_dispose(&body);
    mt_http1_init(&req, &limits, headers, &body);
    size_t stop;
    mt_parse_result_t r = mt_http1_parse(&req, input, 0, n, &stop);
    if (r == MT_PARSE_ERROR || !req.head_complete)
        return -1;
    static const mt_ws_handshake_config_t none = {0};
    return mt_ws_handshake_parse(&hs, &req, input, cfg ? cfg : &none);
}

static void test_sha1(void) {
    static const struct {
        const char *in;
        const char *hex;
    } v[] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        /* 55, 56 and 64 bytes: the padding's edge cases (digests from Python's hashlib). */
        {"0123456789012345678901234567890123456789012345678901234", "9f3a4ce7f66b1b74c34da2c5d732c39f81e0f8df"},
        {"00000000000000000000000000000000000000000000000000000000", "2a04b5125ba4030ef13232ecf1b72849f6ec9e97"},
        {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(v); i++) {
        sha1_t s;
        uint8_t d[20];
        sha1_init(&s);
        sha1_update(&s, v[i].in, strlen(v[i].in));
        sha1_final(&s, d);
        char hex[41];
        for (int k = 0; k < 20; k++)
            snprintf(hex + 2 * k, 3, "%02x", d[k]);
        is_str(hex, v[i].hex, "SHA-1 of a %zu-byte vector", strlen(v[i].in));
    }
    /* A million 'a's, fed in uneven pieces. */
    sha1_t s;
    uint8_t d[20];
    char a[1000];
    memset(a, 'a', sizeof a);
    sha1_init(&s);
    for (size_t done = 0, step = 1; done < 1000000; done += step, step = step % 997 + 1)
        sha1_update(&s, a, MT_MIN(step, 1000000 - done));
    sha1_final(&s, d);
    char hex[41];
    for (int k = 0; k < 20; k++)
        snprintf(hex + 2 * k, 3, "%02x", d[k]);
    is_str(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f", "SHA-1 of a million 'a's, fed in uneven pieces");

    char accept[MT_WS_ACCEPT_LEN + 1];
    mt_ws_accept_key(KEY, strlen(KEY), accept);
    is_str(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "RFC 6455 1.3: the example's Sec-WebSocket-Accept");
}

static void test_valid(void) {
    is_int(handshake(GOOD "Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n", NULL),
           MT_WS_HANDSHAKE_OK, "RFC 6455's example request");
    is_str(hs.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "accept key");
    ok(hs.has_origin && hs.origin.len == 18 && memcmp(input + hs.origin.off, "http://example.com", 18) == 0,
       "Origin is offered to the application");
    ok(hs.nprotocols == 2 && memcmp(input + hs.protocols[0].off, "chat", 4) == 0 && hs.protocols[0].len == 4 &&
           memcmp(input + hs.protocols[1].off, "superchat", 9) == 0,
       "subprotocols, in the client's order");
    ok(!hs.deflate, "no extension offered, none negotiated");
    char out[1024];
    int n = mt_ws_handshake_accept(&hs, input, "superchat", 9, out, sizeof out);
    is_str(n > 0 ? out : "",
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: superchat\r\n\r\n",
           "the 101 head with the chosen subprotocol");
    is_int(mt_ws_handshake_accept(&hs, input, "other", 5, out, sizeof out), -EINVAL,
           "a subprotocol the client did not offer is refused");
    is_int(mt_ws_handshake_accept(&hs, input, "chat", 4, out, 40), -ENOSPC, "a short buffer: -ENOSPC");

    is_int(handshake("GET / HTTP/1.1\r\nhost: a\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\n"
                     "sec-websocket-key: " KEY "\r\nsec-websocket-version: 13\r\n\r\n",
                     NULL),
           MT_WS_HANDSHAKE_OK, "names and tokens are case-insensitive; Connection is a list (Firefox's form)");
    ok(!hs.has_origin && hs.nprotocols == 0, "no Origin, no subprotocol");
    is_int(handshake(BASE "Connection: keep-alive\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                          "Sec-WebSocket-Key:  " KEY " \r\nSec-WebSocket-Version: 13\r\n\r\n",
                     NULL),
           MT_WS_HANDSHAKE_OK, "Connection over two fields; OWS around the key");
    is_int(handshake(GOOD "Sec-WebSocket-Protocol: a\r\nSec-WebSocket-Protocol: b, , c\r\n\r\n", NULL),
           MT_WS_HANDSHAKE_OK, "subprotocols over two fields, empty elements skipped");
    is_int(hs.nprotocols, 3, "three subprotocols");
}

static void test_refused(void) {
    static const struct {
        const char *req;
        int want;
        const char *what;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", MT_WS_HANDSHAKE_NOT_WEBSOCKET, "no Upgrade: an ordinary request"},
        {"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n", MT_WS_HANDSHAKE_NOT_WEBSOCKET,
         "Upgrade to something else: an ordinary request"},
        {"POST /chat HTTP/1.1\r\nHost: a\r\n" UPGRADE "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "POST"},
        {"GET /chat HTTP/1.0\r\nHost: a\r\n" UPGRADE "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "HTTP/1.0"},
        {BASE "Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: " KEY
              "\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "Connection without upgrade"},
        {BASE "Upgrade: websocket\r\nConnection: upgraded\r\nSec-WebSocket-Key: " KEY
              "\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "Connection: upgraded is not the upgrade token"},
        {BASE UPGRADE "Sec-WebSocket-Key: " KEY "\r\n\r\n", MT_WS_HANDSHAKE_BAD_VERSION, "no version: 426"},
        {BASE UPGRADE "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n", MT_WS_HANDSHAKE_BAD_VERSION,
         "version 8: 426"},
        {BASE UPGRADE "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13, 8\r\n\r\n", MT_WS_HANDSHAKE_BAD_VERSION,
         "a version list: 426"},
        {BASE UPGRADE "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "the version twice"},
        {BASE UPGRADE "Sec-WebSocket-Version: 13\r\n\r\n", MT_WS_HANDSHAKE_BAD_REQUEST, "no key"},
        {GOOD "Sec-WebSocket-Key: " KEY "\r\n\r\n", MT_WS_HANDSHAKE_BAD_REQUEST, "the key twice"},
        {BASE UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "a key of 23 characters"},
        {BASE UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "a key without padding"},
        {BASE UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "a key with non-zero padding bits"},
        {BASE UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25j*Q==\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "a key outside the alphabet"},
        {BASE UPGRADE "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==dGhl\r\nSec-WebSocket-Version: 13\r\n\r\n",
         MT_WS_HANDSHAKE_BAD_REQUEST, "a key of more than 16 bytes"},
        {"GET /chat HTTP/1.1\r\nHost: a\r\n" UPGRADE "Sec-WebSocket-Key: " KEY
         "\r\nSec-WebSocket-Version: 13\r\nContent-Length: 3\r\n\r\nabc",
         MT_WS_HANDSHAKE_BAD_REQUEST, "a body"},
        {GOOD "Sec-WebSocket-Protocol: chat, \"quoted\"\r\n\r\n", MT_WS_HANDSHAKE_BAD_REQUEST,
         "a subprotocol that is not a token"},
        {GOOD "Sec-WebSocket-Protocol: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\r\n\r\n", MT_WS_HANDSHAKE_BAD_REQUEST,
         "17 subprotocols"},
        {GOOD "Origin: http://a\r\nOrigin: http://b\r\n\r\n", MT_WS_HANDSHAKE_BAD_REQUEST, "two Origins"},
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(cases); i++) {
        int r = handshake(cases[i].req, NULL);
        ok(r == cases[i].want, "%s: %d%s%s", cases[i].what, r, hs.error ? ", " : "", hs.error ? hs.error : "");
    }
    char out[512];
    handshake(BASE UPGRADE "Sec-WebSocket-Key: " KEY "\r\nSec-WebSocket-Version: 8\r\n\r\n", NULL);
    int n = mt_ws_handshake_refuse(MT_WS_HANDSHAKE_BAD_VERSION, &hs, out, sizeof out);
    ok(n > 0 && strncmp(out, "HTTP/1.1 426 ", 13) == 0 && strstr(out, "\r\nSec-WebSocket-Version: 13\r\n") &&
           strstr(out, "\r\nUpgrade: websocket\r\n") && strstr(out, "\r\nConnection: close\r\n"),
       "426 names version 13 and the Upgrade it requires");
    handshake(BASE UPGRADE "Sec-WebSocket-Version: 13\r\n\r\n", NULL);
    n = mt_ws_handshake_refuse(MT_WS_HANDSHAKE_BAD_REQUEST, &hs, out, sizeof out);
    const char *body_start = n > 0 ? strstr(out, "\r\n\r\n") : NULL;
    char cl[48];
    snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", body_start ? strlen(body_start + 4) : 0);
    ok(n > 0 && strncmp(out, "HTTP/1.1 400 ", 13) == 0 && strstr(out, cl), "400 with a Content-Length that is right");
    is_int(mt_ws_handshake_refuse(MT_WS_HANDSHAKE_BAD_REQUEST, &hs, out, 20), -ENOSPC, "short buffer: -ENOSPC");
}

/* Negotiates one Sec-WebSocket-Extensions value; returns the extension
 * line of the 101 ("" when none was accepted). */
static const char *negotiate(const char *ext, const mt_ws_handshake_config_t *cfg) {
    static char raw[2048], out[2048];
    snprintf(raw, sizeof raw, GOOD "Sec-WebSocket-Extensions: %s\r\n\r\n", ext);
    if (handshake(raw, cfg) != MT_WS_HANDSHAKE_OK)
        return "(handshake failed)";
    if (mt_ws_handshake_accept(&hs, input, NULL, 0, out, sizeof out) < 0)
        return "(accept failed)";
    char *line = strstr(out, "Sec-WebSocket-Extensions: ");
    if (!line)
        return "";
    line += 26;
    *strstr(line, "\r\n") = '\0';
    return line;
}

static void test_deflate(void) {
    is_str(negotiate("permessage-deflate", &deflate_cfg), "permessage-deflate", "a bare offer");
    ok(hs.deflate && hs.params.server_max_window_bits == 15 && hs.params.client_max_window_bits == 15 &&
           !hs.params.server_no_context_takeover && !hs.params.client_no_context_takeover,
       "... 15-bit windows, context takeover both ways");
    is_str(negotiate("permessage-deflate", NULL), "", "deflate disabled: the offer is declined");
    is_str(negotiate("permessage-deflate; client_max_window_bits", &deflate_cfg),
           "permessage-deflate; client_max_window_bits=15",
           "Chrome's offer: client_max_window_bits gets a value in the answer");
    mt_ws_handshake_config_t small = {.deflate = true,
                                      .server_max_window_bits = 12,
                                      .client_max_window_bits = 10,
                                      .server_no_context_takeover = true,
                                      .client_no_context_takeover = true};
    is_str(negotiate("permessage-deflate; client_max_window_bits", &small),
           "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10",
           "our smaller windows: the client's is asked for, ours is used silently");
    ok(hs.params.server_max_window_bits == 12 && hs.params.client_max_window_bits == 10,
       "... 12-bit compressor, 10-bit decompressor");
    is_str(negotiate("permessage-deflate", &small),
           "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
           "without client_max_window_bits in the offer, none in the answer (and a 15-bit decompressor)");
    is_int(hs.params.client_max_window_bits, 15, "... 15");
    mt_ws_handshake_config_t bounded = small;
    bounded.mem_level = 1;
    bounded.server_max_window_bits = 9;
    bounded.client_max_window_bits = 9;
    bounded.max_memory = 20000;
    is_str(negotiate("permessage-deflate", &bounded), "",
           "a memory bound that a 15-bit client window would pass: declined");
    is_str(negotiate("permessage-deflate; client_max_window_bits", &bounded),
           "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9",
           "the same bound with a client that lets us choose: accepted");
    ok(mt_ws_deflate_memory(&hs.params, 1) <= 20000, "... within it (%zu)", mt_ws_deflate_memory(&hs.params, 1));
    is_str(negotiate("permessage-deflate; server_max_window_bits=10; client_max_window_bits=9", &deflate_cfg),
           "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9", "window bits offered");
    is_str(negotiate("permessage-deflate; server_max_window_bits=\"10\"", &deflate_cfg),
           "permessage-deflate; server_max_window_bits=10", "a quoted value");
    is_str(negotiate("permessage-deflate; server_max_window_bits=15", &small),
           "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12",
           "an offer over our maximum: ours, named in the answer");
    is_str(negotiate("permessage-deflate; server_no_context_takeover; client_no_context_takeover", &deflate_cfg),
           "permessage-deflate; server_no_context_takeover; client_no_context_takeover", "no context takeover asked");
    ok(hs.params.server_no_context_takeover && hs.params.client_no_context_takeover, "... and recorded");
    is_str(negotiate("permessage-deflate; server_max_window_bits=8, permessage-deflate", &deflate_cfg),
           "permessage-deflate", "an 8-bit server window (zlib cannot) is declined; the next offer accepted");
    is_str(negotiate("permessage-deflate; client_max_window_bits=8", &deflate_cfg),
           "permessage-deflate; client_max_window_bits=8", "an 8-bit client window is fine");
    static const char *declined[] = {
        "permessage-deflate; server_max_window_bits",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=010",
        "permessage-deflate; client_max_window_bits=0",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
        "permessage-deflate; unknown_param",
        "permessage-deflate; server_max_window_bits=\"1 0\"",
        "x-webkit-deflate-frame",
        "permessage-deflate; ;",
        "permessage-deflate; server_max_window_bits=\"10",
        "foo; bar=\"unterminated, permessage-deflate",
    };
    for (size_t i = 0; i < MT_ARRAY_SIZE(declined); i++)
        is_str(negotiate(declined[i], &deflate_cfg), "", "declined: %s", declined[i]);
    is_str(negotiate("foo, permessage-deflate; unknown, permessage-deflate; client_no_context_takeover", &deflate_cfg),
           "permessage-deflate; client_no_context_takeover", "the first acceptable offer wins");
    static char raw[2048];
    snprintf(raw, sizeof raw,
             GOOD "Sec-WebSocket-Extensions: foo; a=1\r\nSec-WebSocket-Extensions: permessage-deflate; "
                  "server_no_context_takeover\r\n\r\n");
    is_int(handshake(raw, &deflate_cfg), MT_WS_HANDSHAKE_OK, "offers over two fields");
    ok(hs.deflate && hs.params.server_no_context_takeover, "... the second field's is accepted");
}

int main(void) {
    test_sha1();
    test_valid();
    test_refused();
    test_deflate();
    mt_buf_dispose(&body);
    mt_buf_pool_drain();
    return done_testing();
}
