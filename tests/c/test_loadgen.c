/* Unit tests of src/loadgen/loadgen.c: how the generator delimits responses (Content-Length, chunked, no body). */
/* The generator is a program: its main is renamed so this file can have its own. */
#define main loadgen_main
#include "loadgen.c"
#undef main

#include "tap.h"

static conn_t *conn_with(const char *bytes) {
    static conn_t cn;
    memset(&cn, 0, sizeof cn);
    cn.body_left = -1;
    cn.busy = 1;
    cn.len = strlen(bytes);
    memcpy(cn.buf, bytes, cn.len);
    return &cn;
}

static void test_content_length(void) {
    conn_t *cn = conn_with("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel");
    is_int(take_response(cn, 0), 0, "a body short of its Content-Length is incomplete");
    is_int(cn->body_left, 2, "two bytes of the body are still to come");
    memcpy(cn->buf + cn->len, "lo", 2);
    cn->len += 2;
    is_int(take_response(cn, 0), 1, "the rest of the body completes the response");
    is_int(cn->status, 200, "status 200");
    is_int(cn->len, 0, "nothing is left in the buffer");
    is_int(cn->body_left, -1, "the next read starts with a head");
}

static void test_statuses_and_close(void) {
    conn_t *cn = conn_with("HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    is_int(take_response(cn, 0), 1, "an empty 500 is complete");
    is_int(cn->status, 500, "its status is read");
    ok(cn->closing, "Connection: close is noticed");
    cn = conn_with("HTTP/1.1 204 No Content\r\n\r\n");
    is_int(take_response(cn, 0), 1, "a 204 has no body");
    cn = conn_with("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n");
    is_int(take_response(cn, 1), 1, "the answer to HEAD has no body whatever its Content-Length");
    cn = conn_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nbody");
    is_int(take_response(cn, 0), -1, "a body delimited by the end of the connection cannot be delimited");
    cn = conn_with("garbage\r\n\r\n");
    is_int(take_response(cn, 0), -1, "something that is not HTTP/1.x is unusable");
}

static void test_chunked(void) {
    const char *whole = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n";
    conn_t *cn = conn_with(whole);
    is_int(take_response(cn, 0), 1, "a chunked body with an extension is complete");
    is_int(cn->len, 0, "and consumed");
    cn = conn_with("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    is_int(take_response(cn, 0), 0, "a chunk short of its size is incomplete");
    is_int(chunked_length("0\r\nTrailer: 1\r\n\r\n", 17), 17, "trailers end with an empty line");
    is_int(chunked_length("0\r\nTrailer: 1\r\n", 15), 0, "trailers without their empty line are incomplete");
    is_int(chunked_length("zz\r\n", 4), -1, "a size that is not hexadecimal is malformed");
}

int main(void) {
    test_content_length();
    test_statuses_and_close();
    test_chunked();
    return done_testing();
}
