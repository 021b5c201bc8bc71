/* libFuzzer driver for the request body as the application reads it
 * (conn.c over http1.c): Content-Length and chunked bodies decoded on
 * demand from the socket, in reads of sizes the fuzzer picks, with the
 * input buffer compacted between reads as a long body streams through.
 *
 * Input: byte 0 picks the limits and whether the body is read or skipped
 * (mt_conn_body_skip, as the server does for a body the application left
 * unread), byte 1 the size of the application's reads, byte 2 how many
 * socket reads the stream arrives in; the rest is what the client sends.
 * The I/O thread's part is played first: bytes are handed over until the
 * head is complete. The rest goes through a SOCK_SEQPACKET socketpair, one
 * packet per read, so the fuzzer decides where each read() ends.
 *
 * The verdict must be the one of a parse of the whole stream at once: the
 * same body bytes when that parse completes the message, -MT_EPROTO when it
 * fails, -MT_ECLOSED when the stream ends first. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "common.h"
#include "conn.h"
#include "http1.h"
#include "server.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

#define MAX_PACKETS 48

/* conn.c reads only c->server->config. The timeouts never fire: all input is
 * written (and the write side shut) before the first read. */
static mt_server_t server_small = {.config = {.limits = {.max_request_line = 256,
                                                         .max_head_size = 2048,
                                                         .max_headers = 20,
                                                         .max_body_size = 1 << 16,
                                                         .max_chunk_ext = 64},
                                              .body_timeout_ms = 1000,
                                              .write_timeout_ms = 1000,
                                              .output_high_water = 65536,
                                              .output_low_water = 16384}};
static mt_server_t server_tiny = {.config = {.limits = {.max_request_line = 64,
                                                        .max_head_size = 256,
                                                        .max_headers = 6,
                                                        .max_body_size = 40,
                                                        .max_chunk_ext = 8},
                                             .body_timeout_ms = 1000,
                                             .write_timeout_ms = 1000,
                                             .output_high_water = 65536,
                                             .output_low_water = 16384}};

/* memcmp may not be given a null pointer, even for zero bytes. */
static bool same(const mt_buf_t *a, const mt_buf_t *b) {
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* `a` is the start of `b`. */
static bool prefix(const mt_buf_t *a, const mt_buf_t *b) {
    return a->len <= b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

typedef enum verdict { BODY_COMPLETE, BODY_ERROR, BODY_TRUNCATED, HEAD_ONLY } verdict_t;

/* The reference: the stream parsed in one call, up to the end of the first
 * message. HEAD_ONLY: the head itself is incomplete or refused (fuzz_http1's
 * ground), so there is no body to compare. */
static verdict_t reference(const mt_limits_t *lim, const char *data, size_t n, mt_buf_t *body) {
    mt_header_t *headers = calloc(lim->max_headers, sizeof *headers);
    CHECK(headers != NULL);
    mt_request_t req;
    mt_http1_init(&req, lim, headers, body);
    size_t stop = 0;
    mt_parse_result_t r = mt_http1_parse(&req, data, 0, n, &stop);
    verdict_t v;
    if (!req.head_complete)
        v = HEAD_ONLY;
    else if (r == MT_PARSE_ERROR)
        v = BODY_ERROR;
    else if (r == MT_PARSE_COMPLETE)
        v = BODY_COMPLETE;
    else
        v = BODY_TRUNCATED;
    free(headers);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    if (size < 4)
        return 0;
    mt_server_t *server = input[0] & 1 ? &server_tiny : &server_small;
    bool skip = input[0] & 2;
    static const size_t wants[] = {1, 2, 3, 7, 16, 100, 4096, 65536};
    size_t want = wants[input[1] % MT_ARRAY_SIZE(wants)];
    unsigned packets = 1 + input[2] % MAX_PACKETS;
    const char *data = (const char *)input + 3;
    size_t n = size - 3;
    const mt_limits_t *lim = &server->config.limits;

    mt_buf_t expected;
    mt_buf_init(&expected);
    verdict_t v = reference(lim, data, n, &expected);
    if (v == HEAD_ONLY) {
        mt_buf_dispose(&expected);
        return 0;
    }

    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0);
    CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
    CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);

    mt_conn_t *c = calloc(1, sizeof *c + sizeof(mt_header_t) * lim->max_headers);
    CHECK(c != NULL);
    CHECK(mt_conn_init(c, server, sv[0]) == 0);
    atomic_init(&c->state, MT_CONN_ACTIVE);

    /* The I/O thread's part: reads of `piece` bytes parsed as they come
     * until the head is complete; body bytes of the last one come along. */
    size_t piece = n / packets + 1, handed = 0, stop = 0;
    mt_parse_result_t r = MT_PARSE_INCOMPLETE;
    while (!c->req.head_complete && r != MT_PARSE_ERROR) {
        CHECK(handed < n);
        size_t len = MT_MIN(piece, n - handed);
        CHECK(mt_buf_append(&c->rbuf, data + handed, len) == 0);
        handed += len;
        r = mt_http1_parse(&c->req, c->rbuf.data, c->rpos, c->rbuf.len, &stop);
        c->rpos = stop;
    }
    /* The reference saw a complete head, so this run does too. */
    CHECK(c->req.head_complete);
    c->head_consumed = true;
    /* An error in the body bytes that came with the head is the server's to
     * answer before any hand-off. */
    if (r == MT_PARSE_ERROR) {
        CHECK(v == BODY_ERROR);
        goto done;
    }

    /* The rest arrives in `packets` reads, then the client shuts its side. */
    for (size_t off = handed; off < n;) {
        size_t len = MT_MIN(piece, n - off);
        CHECK(write(sv[1], data + off, len) == (ssize_t)len);
        off += len;
    }
    CHECK(shutdown(sv[1], SHUT_WR) == 0);

    ssize_t rc;
    mt_buf_t got;
    mt_buf_init(&got);
    if (skip) {
        rc = mt_conn_body_skip(c, UINT64_MAX / 2);
        CHECK(rc <= 0);
        /* A client waiting for "100 Continue" is not drained: the server closes. */
        if (rc == -EAGAIN) {
            CHECK(c->req.expect_continue && !c->continue_sent);
            goto checked;
        }
    } else {
        for (;;) {
            rc = mt_conn_body_fill(c, want);
            if (rc <= 0)
                break;
            CHECK((size_t)rc <= want);
            CHECK(c->body.len - c->body_pos >= (size_t)rc);
            CHECK(mt_buf_append(&got, c->body.data + c->body_pos, (size_t)rc) == 0);
            mt_conn_body_consume(c, (size_t)rc);
            /* Never more decoded than read from the client, and within the limit. */
            CHECK(got.len <= n && got.len <= lim->max_body_size);
        }
    }

    switch (v) {
    case BODY_COMPLETE:
        CHECK(rc == 0);
        CHECK(c->req.message_complete);
        if (!skip)
            CHECK(same(&got, &expected));
        break;
    case BODY_ERROR:
        CHECK(rc == -MT_EPROTO);
        CHECK(c->req.error_status >= 400 && c->req.error_status <= 505);
        if (!skip) /* what was handed to the application before the error is a prefix of it */
            CHECK(prefix(&got, &expected));
        break;
    case BODY_TRUNCATED:
        /* A body cut short is never taken as whole. */
        CHECK(rc == -MT_ECLOSED);
        CHECK(!c->req.message_complete);
        /* A read that asked for more than came fails whole; what went before is the body's start. */
        if (!skip)
            CHECK(prefix(&got, &expected));
        break;
    case HEAD_ONLY:
        break;
    }
checked:
    mt_buf_dispose(&got);

done:
    close(sv[0]);
    close(sv[1]);
    mt_conn_dispose(c);
    free(c);
    mt_buf_dispose(&expected);
    return 0;
}
