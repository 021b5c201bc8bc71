/* libFuzzer driver for the response head writer (http1_write.c): what an
 * application puts in its status and header fields must never split the
 * response. The accepted parts are written as the server writes them, then
 * the head is read back by llhttp as a client would: it must parse, with the
 * same status code and exactly the fields that were accepted, each with its
 * name and (trimmed) value. Chunk size lines read back as their size.
 *
 * Input: parts separated by 0xFE bytes: the status ("200 OK"), then names and
 * values in turn. */
#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "buf.h"
#include "common.h"
#include "http1_write.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

#define MAX_FIELDS 32

typedef struct part {
    const char *p;
    size_t n;
} part_t;

typedef struct readback {
    part_t names[MAX_FIELDS + 4];
    part_t values[MAX_FIELDS + 4];
    int nfields;
    bool in_value;
    bool head_done;
} readback_t;

/* llhttp reports a name or value in pieces only across calls; the head is
 * parsed in one call, so each arrives whole. */
static int on_field(llhttp_t *p, const char *at, size_t n) {
    readback_t *r = p->data;
    CHECK(r->nfields < MAX_FIELDS + 4);
    r->names[r->nfields] = (part_t){at, n};
    r->values[r->nfields] = (part_t){at + n, 0};
    r->in_value = true;
    return 0;
}

static int on_value(llhttp_t *p, const char *at, size_t n) {
    readback_t *r = p->data;
    r->values[r->nfields] = (part_t){at, n};
    return 0;
}

static int on_value_complete(llhttp_t *p) {
    readback_t *r = p->data;
    r->nfields++;
    r->in_value = false;
    return 0;
}

static int on_headers_complete(llhttp_t *p) {
    ((readback_t *)p->data)->head_done = true;
    return 1; /* no body: only the head is under test */
}

static part_t trim(part_t v) {
    while (v.n && (v.p[0] == ' ' || v.p[0] == '\t'))
        v.p++, v.n--;
    while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t'))
        v.n--;
    return v;
}

static bool same(part_t a, part_t b) {
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size) {
    part_t parts[1 + 2 * MAX_FIELDS];
    int nparts = 0;
    const char *s = (const char *)input, *end = s + size;
    while (nparts < (int)MT_ARRAY_SIZE(parts)) {
        const char *sep = memchr(s, 0xFE, (size_t)(end - s));
        parts[nparts++] = (part_t){s, (size_t)((sep ? sep : end) - s)};
        if (!sep)
            break;
        s = sep + 1;
    }

    mt_buf_t out;
    mt_buf_init(&out);
    int code = 0;
    if (mt_http1_write_status(&out, parts[0].p, parts[0].n, &code) != 0) {
        CHECK(out.len == 0); /* nothing of a refused status is written */
        mt_buf_dispose(&out);
        return 0;
    }
    CHECK(code >= 100 && code <= 999);
    part_t names[MAX_FIELDS], values[MAX_FIELDS];
    int accepted = 0;
    for (int i = 1; i + 1 < nparts; i += 2) {
        /* The framing fields are response.c's: it checks Content-Length and
         * drops Transfer-Encoding before the writer sees them. */
        if ((parts[i].n == 14 && strncasecmp(parts[i].p, "content-length", 14) == 0) ||
            (parts[i].n == 17 && strncasecmp(parts[i].p, "transfer-encoding", 17) == 0))
            continue;
        size_t before = out.len;
        if (mt_http1_write_field(&out, parts[i].p, parts[i].n, parts[i + 1].p, parts[i + 1].n) == 0) {
            names[accepted] = parts[i];
            values[accepted] = trim(parts[i + 1]);
            accepted++;
        } else {
            CHECK(out.len == before); /* nothing of a refused field is written */
        }
    }
    char line[24];
    size_t chunk = nparts > 1 ? parts[1].n * 2654435761u : 0;
    size_t len = mt_http1_chunk_size_line(line, chunk);
    CHECK(len >= 3 && len <= 18 && line[len - 2] == '\r' && line[len - 1] == '\n');
    CHECK(strtoull(line, NULL, 16) == chunk);
    CHECK(mt_http1_write_raw(&out, "\r\n", 2) == 0);

    llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_header_field = on_field;
    settings.on_header_value = on_value;
    settings.on_header_value_complete = on_value_complete;
    settings.on_headers_complete = on_headers_complete;
    llhttp_t parser;
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    readback_t r = {0};
    parser.data = &r;
    llhttp_errno_t err = llhttp_execute(&parser, out.data, out.len);
    /* The whole head parses and ends where the server ended it: no field
     * became two, no line ended early. */
    CHECK(err == HPE_OK || err == HPE_PAUSED_UPGRADE);
    CHECK(r.head_done);
    CHECK(parser.status_code == code);
    CHECK(r.nfields == accepted);
    for (int i = 0; i < accepted; i++) {
        CHECK(same(r.names[i], names[i]));
        CHECK(same(trim(r.values[i]), values[i]));
    }
    mt_buf_dispose(&out);
    return 0;
}
