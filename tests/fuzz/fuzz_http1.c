/* libFuzzer driver for the request parser (http1.c): the request line and
 * head, the semantic checks, Content-Length and chunked bodies, trailers and
 * pipelined messages (mt_http1_next), with the server's limits or small ones.
 *
 * Input: byte 0 picks the limits, bytes 1-2 a split position; the rest is
 * what a client sends. The stream is parsed twice, as conn.c and server.c
 * do: once whole, once arriving in two reads split at that position. Every
 * message completed by both runs must read the same (method, target, fields,
 * framing, body), and each result must keep the parser's promises (spans
 * inside the message, the body of the declared length, an error status, the
 * path and query of the target inside it). */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "http1.h"

#define MAX_MESSAGES 64

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

static const mt_limits_t server_limits = {
    .max_request_line = 8190,
    .max_head_size = 65536,
    .max_headers = 100,
    .max_body_size = 1 << 20,
    .max_chunk_ext = 4096,
};

/* The limits of test_http_checklist.py, and tiny ones to reach every 4xx. */
static const mt_limits_t checklist_limits = {
    .max_request_line = 256,
    .max_head_size = 2048,
    .max_headers = 20,
    .max_body_size = 1 << 16,
    .max_chunk_ext = 4096,
};

static const mt_limits_t tiny_limits = {
    .max_request_line = 40,
    .max_head_size = 120,
    .max_headers = 4,
    .max_body_size = 32,
    .max_chunk_ext = 8,
};

/* FNV-1a over what a complete message means to the rest of the server. */
static uint64_t mix(uint64_t h, const void *p, size_t n) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t mix_span(uint64_t h, const char *base, mt_span_t span) {
    h = mix(h, &span.len, sizeof span.len);
    return mix(h, mt_span_ptr(base, span), span.len);
}

static void check_span(mt_span_t span, size_t from, size_t to) {
    CHECK(span.off >= from || span.len == 0);
    CHECK((size_t)span.off + span.len <= to);
}

/* Checks a completed message of data[from, stop) and returns its digest. */
static uint64_t complete_message(const mt_request_t *req, const char *data, size_t from, size_t stop,
                                 const mt_buf_t *body) {
    const mt_limits_t *lim = req->limits;
    CHECK(req->head_complete && req->message_complete);
    CHECK(req->error_status == 0);
    CHECK(stop > from);
    CHECK(req->nheaders <= lim->max_headers);
    CHECK(req->body_received == body->len);
    CHECK(body->len <= lim->max_body_size);
    if (!req->chunked)
        CHECK(req->content_length == body->len);
    CHECK(req->http_minor <= 1);
    CHECK(req->target.len > 0);
    check_span(req->method, from, stop);
    check_span(req->target, from, stop);
    for (uint32_t i = 0; i < req->nheaders; i++) {
        check_span(req->headers[i].name, from, stop);
        check_span(req->headers[i].value, from, stop);
        CHECK(req->headers[i].name.len > 0);
    }

    uint64_t h = 0xcbf29ce484222325ull;
    h = mix_span(h, data, req->method);
    h = mix_span(h, data, req->target);
    for (uint32_t i = 0; i < req->nheaders; i++) {
        h = mix_span(h, data, req->headers[i].name);
        h = mix_span(h, data, req->headers[i].value);
    }
    unsigned char flags[] = {req->http_minor, req->method_id, req->chunked, req->keep_alive, req->expect_continue};
    h = mix(h, flags, sizeof flags);
    h = mix(h, &req->content_length, sizeof req->content_length);
    h = mix(h, &stop, sizeof stop);
    h = mix(h, body->data, body->len);

    /* What the WSGI layer does with the target: PATH_INFO decoded in place. */
    char *path = malloc(req->target.len);
    CHECK(path != NULL);
    memcpy(path, mt_span_ptr(data, req->target), req->target.len);
    size_t plen = mt_http1_percent_decode(path, path, req->target.len);
    CHECK(plen <= req->target.len);
    free(path);
    (void)mt_span_ieq(data, req->target, "/", 1);

    /* The path and query the router and the environ are given: inside the
     * target, the path without '?' or '#', the query right after its '?'. */
    const char *tpath = NULL;
    mt_span_t query = {1, 1};
    size_t tlen = mt_http1_target_path(req, data, &tpath, &query);
    const char *target = mt_span_ptr(data, req->target);
    if (tlen) {
        CHECK(tpath >= target && tpath + tlen <= target + req->target.len);
        CHECK(tpath[0] == '/');
        CHECK(memchr(tpath, '?', tlen) == NULL && memchr(tpath, '#', tlen) == NULL);
    }
    if (query.len) {
        check_span(query, req->target.off, (size_t)req->target.off + req->target.len);
        CHECK(data[query.off - 1] == '?');
        CHECK(memchr(data + query.off, '#', query.len) == NULL);
    } else {
        CHECK(query.off == 0 || data[query.off - 1] == '?');
    }
    return h;
}

typedef struct run {
    uint64_t digest[MAX_MESSAGES];
    int messages;
    int error_status;
} run_t;

/* Parses data[0, n) arriving in reads that end at cut[0] < cut[1] < ... = n,
 * as the server does: after each read, parse, and after each complete
 * message, start the next one right behind it. */
static void parse_stream(const mt_limits_t *lim, const char *data, size_t n, const size_t *cuts, int ncuts,
                         run_t *out) {
    mt_header_t *headers = calloc(lim->max_headers, sizeof *headers);
    CHECK(headers != NULL);
    mt_buf_t body;
    mt_buf_init(&body);
    mt_request_t req;
    mt_http1_init(&req, lim, headers, &body);
    memset(out, 0, sizeof *out);

    size_t pos = 0, from = 0;
    for (int c = 0; c < ncuts && out->error_status == 0 && out->messages < MAX_MESSAGES; c++) {
        size_t end = cuts[c];
        while (out->messages < MAX_MESSAGES) {
            size_t stop = (size_t)-1;
            mt_parse_result_t r = mt_http1_parse(&req, data, pos, end, &stop);
            CHECK(stop >= pos && stop <= end);
            if (r == MT_PARSE_ERROR) {
                int s = req.error_status;
                CHECK(s == 400 || s == 413 || s == 414 || s == 431 || s == 501 || s == 505);
                CHECK(req.error_reason != NULL && req.error_reason[0] != '\0');
                out->error_status = s;
                break;
            }
            if (r == MT_PARSE_INCOMPLETE) {
                CHECK(stop == end);
                CHECK(!req.message_complete);
                if (req.head_complete) {
                    CHECK(req.body_received == body.len);
                    CHECK(body.len <= lim->max_body_size);
                }
                pos = stop;
                break;
            }
            CHECK(r == MT_PARSE_COMPLETE);
            out->digest[out->messages++] = complete_message(&req, data, from, stop, &body);
            body.len = 0;
            mt_http1_next(&req, stop);
            pos = from = stop;
            if (pos == end)
                break;
        }
    }
    mt_buf_dispose(&body);
    free(headers);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    if (size < 3)
        return 0;
    const mt_limits_t *lim = input[0] % 3 == 0 ? &server_limits : input[0] % 3 == 1 ? &checklist_limits : &tiny_limits;
    const char *data = (const char *)input + 3;
    size_t n = size - 3;
    if (n == 0)
        return 0;
    size_t split = ((size_t)input[1] << 8 | input[2]) % n;

    static run_t whole, split_run;
    size_t one[1] = {n};
    parse_stream(lim, data, n, one, 1, &whole);
    if (split == 0)
        return 0;
    size_t two[2] = {split, n};
    parse_stream(lim, data, n, two, 2, &split_run);

    /* The same bytes make the same messages, however they arrive. */
    int common = whole.messages < split_run.messages ? whole.messages : split_run.messages;
    for (int i = 0; i < common; i++)
        CHECK(whole.digest[i] == split_run.digest[i]);
    if (whole.error_status == 0 && split_run.error_status == 0)
        CHECK(whole.messages == split_run.messages);
    /* A message that one run completes, the other does not refuse: a verdict
     * that depends on where the reads end is a request that one server takes
     * and another refuses. (Which error a request with several gets, a 400 or
     * a 414, may depend on it.) */
    if (whole.error_status)
        CHECK(split_run.messages <= whole.messages);
    if (split_run.error_status)
        CHECK(whole.messages <= split_run.messages);
    return 0;
}
