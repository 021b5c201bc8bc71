/* libFuzzer driver for the response writer (respond.c, over the primitives of
 * http1_write.c): no status, fields or lengths an application supplies may
 * split the response or make a client read its framing differently from what
 * the writer meant. The head is built as the WSGI glue builds it, then read
 * back by llhttp in response mode, as a client that sent the request would:
 * it must parse as one head with the same status; its framing (Content-Length
 * or chunked) must be the writer's decision; a body sent as that framing says
 * must be read whole, and a second response after it must be read as the
 * next message (nothing smuggled in, nothing swallowed). Refused statuses
 * and fields write nothing. Chunk size lines read back as their size.
 *
 * Input: byte 0 holds flags (bit 0: HEAD, bit 1: HTTP/1.1, bit 2: keep-alive
 * allowed, bit 3: the server compresses, bit 4: the response varies by
 * Accept-Encoding, bit 5: the body's length is known), byte 1 that length;
 * then parts separated by 0xFE bytes: the status ("200 OK"), then names and
 * values in turn. */
#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "common.h"
#include "http1_write.h"
#include "respond.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "fuzz_response: CHECK failed at line %d: %s\n", __LINE__, #cond);                          \
            __builtin_trap();                                                                                          \
        }                                                                                                              \
    } while (0)

#define MAX_FIELDS 32
#define SENTINEL "HTTP/1.1 299 Next\r\nContent-Length: 0\r\n\r\n"

typedef struct part {
    const char *p;
    size_t n;
} part_t;

typedef struct readback {
    bool head_request;
    int messages;      /* completed */
    int first_status;  /* of the first message */
    uint64_t first_cl; /* its Content-Length, if any */
    uint8_t first_flags;
    size_t first_body;
    int fields;       /* field lines of the first head */
    int lengths, tes; /* Content-Length and Transfer-Encoding fields among them */
    bool in_first;
} readback_t;

static int on_field(llhttp_t *p, const char *at, size_t n) {
    readback_t *r = p->data;
    if (r->messages == 0) {
        r->fields++;
        r->lengths += n == 14 && strncasecmp(at, "content-length", 14) == 0;
        r->tes += n == 17 && strncasecmp(at, "transfer-encoding", 17) == 0;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    readback_t *r = p->data;
    if (r->messages == 0) {
        r->first_status = p->status_code;
        r->first_cl = p->content_length;
        r->first_flags = (uint8_t)p->flags;
        /* A response to HEAD has no body, whatever its fields say. */
        return r->head_request && p->status_code >= 200 ? 1 : 0;
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
    readback_t *r = p->data;
    if (r->messages == 0)
        r->first_body += n;
    return 0;
}

/* The first message ends the parse: what follows must be exactly the next
 * response the test put there. */
static int on_message_complete(llhttp_t *p) {
    ((readback_t *)p->data)->messages++;
    return HPE_PAUSED;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    if (size < 2)
        return 0;
    unsigned flags = input[0];
    long long known = flags & 32 ? input[1] : -1;
    part_t parts[1 + 2 * MAX_FIELDS];
    int nparts = 0;
    const char *s = (const char *)input + 2, *end = (const char *)input + size;
    while (nparts < (int)MT_ARRAY_SIZE(parts)) {
        const char *sep = memchr(s, 0xFE, (size_t)(end - s));
        parts[nparts++] = (part_t){s, (size_t)((sep ? sep : end) - s)};
        if (!sep)
            break;
        s = sep + 1;
    }

    mt_request_t req = {.method_id = flags & 1 ? HTTP_HEAD : HTTP_GET, .http_minor = flags & 2 ? 1 : 0};
    mt_respond_t head;
    mt_respond_init(&head, &req, flags & 4);
    mt_buf_t out;
    mt_buf_init(&out);
    if (mt_respond_status_line(&head, &out, parts[0].p, parts[0].n) != 0) {
        CHECK(out.len == 0); /* nothing of a refused status is written */
        mt_buf_dispose(&out);
        return 0;
    }
    int code = head.status;
    CHECK(code >= 100 && code <= 999);
    head.compressing = flags & 8;
    head.vary = flags & 16;
    bool refused = false;
    for (int i = 1; i + 1 < nparts; i += 2) {
        size_t before = out.len;
        int rc = mt_respond_field(&head, &out, parts[i].p, parts[i].n, parts[i + 1].p, parts[i + 1].n);
        if (rc != 0) {
            CHECK(rc == -EINVAL || rc == MT_RESPOND_EBADLENGTH);
            CHECK(out.len == before); /* nothing of a refused field is written */
            refused = true;
            break; /* the glue answers 500 instead */
        }
    }
    CHECK(mt_respond_end(&head, &out, head.compressing ? "gzip" : NULL, known) == 0);
    if (refused) {
        mt_buf_dispose(&out);
        return 0;
    }

    char line[24];
    size_t chunk = nparts > 1 ? parts[1].n * 2654435761u : 0;
    size_t len = mt_http1_chunk_size_line(line, chunk);
    CHECK(len >= 3 && len <= 18 && line[len - 2] == '\r' && line[len - 1] == '\n');
    CHECK(strtoull(line, NULL, 16) == chunk);

    /* The framing the writer meant. */
    long long declared = head.compressing ? -1 : head.declared_length;
    bool no_length = code < 200 || code == 204;
    long long length = no_length ? -1 : declared >= 0 ? declared : code != 304 ? known : -1;
    bool close_delimited = !head.no_body && length < 0 && !head.chunked;
    CHECK(!head.chunked || (!head.no_body && req.http_minor == 1));
    CHECK(!close_delimited || !head.keep_alive);
    size_t head_len = out.len;
    /* A body as the framing says (kept small), then the next response. */
    bool send_body = !head.no_body && (length < 0 || length <= 4096);
    if (send_body && head.chunked) {
        CHECK(mt_buf_append(&out, "5\r\nhello\r\n0\r\n\r\n", 15) == 0);
    } else if (send_body) {
        size_t n = length >= 0 ? (size_t)length : 7;
        CHECK(mt_buf_reserve(&out, n) == 0);
        memset(out.data + out.len, 'b', n);
        out.len += n;
    }
    bool sentinel = send_body && !close_delimited && code != 101;
    if (head.no_body && code != 101)
        sentinel = true;
    if (sentinel)
        CHECK(mt_buf_append(&out, SENTINEL, sizeof SENTINEL - 1) == 0);

    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_header_field = on_field;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    /* A "Connection: close" response may still be followed by our sentinel:
     * the close is not under test, the framing is. */
    llhttp_set_lenient_keep_alive(&parser, 1);
    readback_t r = {.head_request = req.method_id == HTTP_HEAD};
    parser.data = &r;
    size_t parsed = send_body || sentinel ? out.len : head_len;
    llhttp_errno_t err = llhttp_execute(&parser, out.data, parsed);
    if (code == 101) {
        /* A protocol switch: llhttp stops after the head, as a client would. */
        CHECK(err == HPE_OK || err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE);
        CHECK(r.first_status == 101);
        mt_buf_dispose(&out);
        return 0;
    }
    if (close_delimited && send_body) {
        CHECK(err == HPE_OK);
        err = llhttp_finish(&parser);
    }
    CHECK(err == HPE_OK || err == HPE_PAUSED);
    /* One head, read with the writer's status and framing. */
    CHECK(r.first_status == code);
    CHECK(r.lengths <= 1 && r.tes <= 1);
    int lines = 0;
    for (size_t i = 0; i + 1 < head_len; i++)
        lines += out.data[i] == '\r' && out.data[i + 1] == '\n';
    CHECK(r.fields == lines - 2); /* the status line and the blank line end with CRLF too */
    if (length >= 0 && !no_length)
        CHECK(r.lengths == 1 && (r.first_flags & F_CONTENT_LENGTH) && r.first_cl == (uint64_t)length);
    if (head.chunked)
        CHECK((r.first_flags & F_CHUNKED) && r.lengths == 0);
    if (r.first_flags & F_CHUNKED)
        CHECK(head.chunked || req.method_id == HTTP_HEAD);
    if (no_length)
        CHECK(r.lengths == 0);
    if (send_body || sentinel) {
        /* The message ends where the writer meant: its whole body read, and
         * (1xx being interim, 304/HEAD bodiless) the next response intact. */
        CHECK(r.messages == 1);
        size_t want = head.no_body ? 0 : head.chunked ? 5 : length >= 0 ? (size_t)length : 7;
        CHECK(r.first_body == want);
        if (sentinel) {
            CHECK(err == HPE_PAUSED);
            size_t consumed = (size_t)(llhttp_get_error_pos(&parser) - out.data);
            CHECK(consumed + sizeof SENTINEL - 1 == out.len);
            CHECK(memcmp(out.data + consumed, SENTINEL, sizeof SENTINEL - 1) == 0);
        }
    }
    mt_buf_dispose(&out);
    return 0;
}
