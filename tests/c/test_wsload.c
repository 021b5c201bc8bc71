/* Unit tests of src/loadgen/wsload.c: the client frames it writes, the server frames it reads, the handshake it
 * accepts. */
/* The generator is a program: its main is renamed so this file can have its own. */
#define main wsload_main
#include "wsload.c"
#undef main

#include "tap.h"

static void test_encode_small(void) {
    uint8_t out[64];
    size_t n = ws_encode(out, 1, (const uint8_t *)"Hello", 5, 0x37fa213d);
    /* RFC 6455 section 5.7: a masked "Hello" from the client. */
    const uint8_t expected[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    is_int(n, sizeof expected, "a 5-byte masked text frame is 11 bytes");
    ok(memcmp(out, expected, sizeof expected) == 0, "the bytes of RFC 6455's masked Hello example");
}

static void test_encode_lengths(void) {
    static uint8_t payload[70000], out[70100];
    memset(payload, 'x', sizeof payload);
    size_t n = ws_encode(out, 2, payload, 126, 0);
    is_int(out[1], 0x80 | 126, "126 bytes: the 16-bit length form, masked");
    is_int(out[2] << 8 | out[3], 126, "the 16-bit length");
    is_int(n, 2 + 2 + 4 + 126, "header, length, mask and payload");
    n = ws_encode(out, 2, payload, 70000, 0);
    is_int(out[1], 0x80 | 127, "70000 bytes: the 64-bit length form");
    is_int((out[7] << 16) | (out[8] << 8) | out[9], 70000, "the 64-bit length");
    is_int(n, 2 + 8 + 4 + 70000, "the whole frame");
}

static void test_parse(void) {
    ws_frame_t f;
    const uint8_t hello[] = {0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    is_int(ws_parse(hello, 1, 100, &f), 0, "one byte: incomplete");
    is_int(ws_parse(hello, 6, 100, &f), 0, "a payload byte short: incomplete");
    is_int(ws_parse(hello, sizeof hello, 100, &f), 1, "an unmasked text frame is complete");
    is_int(f.opcode, 1, "text");
    ok(f.fin, "final");
    is_int(f.header, 2, "a 2-byte header");
    is_int(f.payload, 5, "5 bytes of payload");
    uint8_t medium[4 + 300] = {0x82, 126, 0x01, 0x2c};
    is_int(ws_parse(medium, 3, 1000, &f), 0, "a cut 16-bit length: incomplete");
    is_int(ws_parse(medium, sizeof medium, 1000, &f), 1, "a 300-byte binary frame");
    is_int(f.header, 4, "a 4-byte header");
    is_int(f.payload, 300, "300 bytes");
    is_int(ws_parse(medium, sizeof medium, 200, &f), -1, "larger than the limit: invalid");
    const uint8_t masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    is_int(ws_parse(masked, sizeof masked, 100, &f), -1, "a masked server frame is invalid");
    const uint8_t rsv[] = {0xc1, 0x01, 'x'};
    is_int(ws_parse(rsv, sizeof rsv, 100, &f), -1, "a reserved bit set is invalid");
    const uint8_t ping[] = {0x89, 0x00};
    is_int(ws_parse(ping, sizeof ping, 100, &f), 1, "an empty ping");
    is_int(f.opcode, 9, "ping");
}

static void test_handshake(void) {
    ok(ws_handshake_ok("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
       "101 with the key's accept value");
    ok(ws_handshake_ok("HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept:s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
       "the header name in any case, no space");
    ok(!ws_handshake_ok(
           "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: AAAALMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"),
       "a wrong accept value is refused");
    ok(!ws_handshake_ok("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"), "no accept value");
    ok(!ws_handshake_ok("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"), "not 101");
}

static void test_percentile(void) {
    uint32_t values[100];
    for (int i = 0; i < 100; i++)
        values[i] = (uint32_t)(i + 1);
    is_int(percentile(values, 100, 50), 51, "median of 1..100 (nearest rank, rounded)");
    is_int(percentile(values, 100, 99), 99, "p99 of 1..100");
    is_int(percentile(values, 100, 100), 100, "p100 is the maximum");
    is_int(percentile(values, 0, 99), 0, "no samples: 0");
}

int main(void) {
    test_encode_small();
    test_encode_lengths();
    test_parse();
    test_handshake();
    test_percentile();
    return done_testing();
}
