/* Unit tests of src/core/http1/requestid.c: which incoming ids are kept, the
 * generated ones, and the id a parsed request gets. */
#include "buf.c"
#include "clock.c"
#include "http1.c"
#include "requestid.c"

#include <pthread.h>
#include <stdlib.h>

#include "tap.h"

static const mt_limits_t limits = {
    .max_request_line = 1024, .max_head_size = 8192, .max_headers = 32, .max_body_size = 1 << 20, .max_chunk_ext = 256};

static void test_valid(void) {
    ok(mt_request_id_valid("abc-123_XYZ.~:/+=", 17), "visible ASCII is kept");
    ok(mt_request_id_valid("0123456789abcdef0123456789abcdef", 32), "a UUID-like hex id is kept");
    ok(!mt_request_id_valid("", 0), "empty is replaced");
    ok(!mt_request_id_valid("a b", 3), "a space is replaced");
    ok(!mt_request_id_valid("a\"b", 3), "a quote is replaced");
    ok(!mt_request_id_valid("a\\b", 3), "a backslash is replaced");
    ok(!mt_request_id_valid("a\x01", 2), "a control is replaced");
    ok(!mt_request_id_valid("caf\xc3\xa9", 5), "non-ASCII is replaced");
    char longest[MT_REQUEST_ID_MAX + 1];
    memset(longest, 'a', sizeof longest);
    ok(mt_request_id_valid(longest, MT_REQUEST_ID_MAX), "%d bytes are kept", MT_REQUEST_ID_MAX);
    ok(!mt_request_id_valid(longest, MT_REQUEST_ID_MAX + 1), "%d bytes are replaced", MT_REQUEST_ID_MAX + 1);
}

static void test_generate(void) {
    char a[MT_REQUEST_ID_GENERATED_LEN + 1] = {0}, b[MT_REQUEST_ID_GENERATED_LEN + 1] = {0};
    mt_request_id_generate(a);
    mt_request_id_generate(b);
    is_int(strspn(a, "0123456789abcdef"), MT_REQUEST_ID_GENERATED_LEN, "32 lowercase hex digits: %s", a);
    ok(strcmp(a, b) != 0, "two ids differ");
    ok(mt_request_id_valid(a, MT_REQUEST_ID_GENERATED_LEN), "a generated id would be kept");
}

static void *generate_one(void *out) {
    mt_request_id_generate(out);
    return NULL;
}

static void test_threads_differ(void) {
    char a[MT_REQUEST_ID_GENERATED_LEN + 1] = {0}, b[MT_REQUEST_ID_GENERATED_LEN + 1] = {0};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, generate_one, a);
    pthread_join(t1, NULL);
    pthread_create(&t2, NULL, generate_one, b);
    pthread_join(t2, NULL);
    ok(strcmp(a, b) != 0, "each thread seeds its own generator (first ids differ)");
}

/* The id a connection gets for `head`. */
static const char *assigned(const char *head) {
    static char id[MT_REQUEST_ID_MAX + 1];
    mt_conn_t *c = calloc(1, sizeof *c + sizeof(mt_header_t) * limits.max_headers);
    mt_buf_t body;
    mt_buf_init(&body);
    mt_http1_init(&c->req, &limits, c->headers, &body);
    mt_buf_init(&c->rbuf);
    mt_buf_append(&c->rbuf, head, strlen(head));
    size_t stop;
    if (mt_http1_parse(&c->req, c->rbuf.data, 0, c->rbuf.len, &stop) != MT_PARSE_COMPLETE)
        ok(0, "test setup: the head parses");
    mt_request_id_assign(c, "x-request-id", 12);
    memcpy(id, c->request_id, c->request_id_len);
    id[c->request_id_len] = '\0';
    mt_buf_dispose(&c->rbuf);
    mt_buf_dispose(&body);
    free(c);
    return id;
}

static void test_assign(void) {
    is_str(assigned("GET / HTTP/1.1\r\nHost: h\r\nX-Request-ID: incoming-1\r\n\r\n"), "incoming-1",
           "a sane incoming id is kept");
    is_str(assigned("GET / HTTP/1.1\r\nHost: h\r\nx-request-id:  spaced  \r\n\r\n"), "spaced",
           "the field is matched without case, its value without surrounding whitespace");
    const char *id = assigned("GET / HTTP/1.1\r\nHost: h\r\nX-Request-ID: has space\r\n\r\n");
    is_int(strlen(id), MT_REQUEST_ID_GENERATED_LEN, "an insane one is replaced by a generated one");
    id = assigned("GET / HTTP/1.1\r\nHost: h\r\nX-Request-ID: a\r\nX-Request-ID: b\r\n\r\n");
    is_int(strlen(id), MT_REQUEST_ID_GENERATED_LEN, "a field given twice is replaced");
    id = assigned("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    is_int(strlen(id), MT_REQUEST_ID_GENERATED_LEN, "none: one is generated");
}

int main(void) {
    test_valid();
    test_generate();
    test_threads_differ();
    test_assign();
    return done_testing();
}
