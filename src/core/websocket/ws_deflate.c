#include "ws_deflate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

/* The four bytes a sync flush ends with; stripped when sending, appended
 * when receiving (RFC 7692 7.2.1, 7.2.2). */
static const uint8_t sync_tail[4] = {0x00, 0x00, 0xff, 0xff};

#define OUT_STEP 16384     /* output room asked for at a time */
#define IN_STEP (1u << 30) /* zlib counts in 32-bit units */
/* Each allocation carries its size in front of it, so zfree can count it;
 * 16 bytes keep the returned pointer aligned for anything. */
#define ALLOC_HEADER 16

static voidpf bounded_alloc(voidpf opaque, uInt items, uInt size) {
    mt_ws_deflate_t *d = opaque;
    size_t n;
    if (__builtin_mul_overflow((size_t)items, (size_t)size, &n) || n > d->mem_limit - d->mem_used)
        return Z_NULL;
    char *p = malloc(n + ALLOC_HEADER);
    if (p == NULL)
        return Z_NULL;
    memcpy(p, &n, sizeof n);
    d->mem_used += n;
    return p + ALLOC_HEADER;
}

static void bounded_free(voidpf opaque, voidpf ptr) {
    mt_ws_deflate_t *d = opaque;
    if (ptr == Z_NULL)
        return;
    char *p = (char *)ptr - ALLOC_HEADER;
    size_t n;
    memcpy(&n, p, sizeof n);
    d->mem_used -= n;
    free(p);
}

static int clamp(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* zlib accepts an 8-bit raw window for inflating; a client whose zlib
 * silently widened its 8-bit window to 9 bits (older zlib does) would then
 * send distances we could not resolve, so we inflate with at least 9. */
static int inflate_bits(const mt_ws_deflate_params_t *p) {
    return p->client_max_window_bits < 9 ? 9 : p->client_max_window_bits;
}

int mt_ws_deflate_init(mt_ws_deflate_t *d, const mt_ws_deflate_params_t *params, int level, int mem_level,
                       size_t mem_limit, size_t max_message) {
    memset(d, 0, sizeof *d);
    if (params->server_max_window_bits < 9 || params->server_max_window_bits > 15 ||
        params->client_max_window_bits < 8 || params->client_max_window_bits > 15)
        return -EINVAL;
    d->params = *params;
    d->level = clamp(level, 1, 9);
    d->mem_level = clamp(mem_level, 1, 9);
    d->mem_limit = mem_limit;
    /* max_message + 1 must not wrap (see inflate_some). */
    d->max_message = MT_MIN(max_message, SIZE_MAX / 2);
    return 0;
}

void mt_ws_deflate_dispose(mt_ws_deflate_t *d) {
    if (d->def_ready)
        deflateEnd(&d->def);
    if (d->inf_ready)
        inflateEnd(&d->inf);
    d->def_ready = d->inf_ready = false;
}

size_t mt_ws_deflate_memory(const mt_ws_deflate_params_t *params, int mem_level) {
    mem_level = clamp(mem_level, 1, 9);
    /* zlib.h gives (1 << (windowBits + 2)) + (1 << (memLevel + 9)) for
     * deflate; zlib 1.3.1 keeps its literal buffer in 5 bytes per symbol
     * instead of 4, hence 5 << (memLevel + 7) here. The fixed states are
     * under 6 KiB (deflate) and 8 KiB (inflate). */
    size_t def = ((size_t)1 << (params->server_max_window_bits + 2)) + ((size_t)5 << (mem_level + 7)) + 6144;
    size_t inf = ((size_t)1 << inflate_bits(params)) + 8192;
    return def + inf;
}

static int setup_deflate(mt_ws_deflate_t *d) {
    if (d->def_ready)
        return 0;
    memset(&d->def, 0, sizeof d->def);
    d->def.zalloc = bounded_alloc;
    d->def.zfree = bounded_free;
    d->def.opaque = d;
    int rc = deflateInit2(&d->def, d->level, Z_DEFLATED, -(int)d->params.server_max_window_bits, d->mem_level,
                          Z_DEFAULT_STRATEGY);
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    d->def_ready = true;
    return 0;
}

static int setup_inflate(mt_ws_deflate_t *d) {
    if (d->inf_ready)
        return 0;
    memset(&d->inf, 0, sizeof d->inf);
    d->inf.zalloc = bounded_alloc;
    d->inf.zfree = bounded_free;
    d->inf.opaque = d;
    int rc = inflateInit2(&d->inf, -inflate_bits(&d->params));
    if (rc != Z_OK)
        return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    d->inf_ready = true;
    return 0;
}

int mt_ws_deflate_compress(mt_ws_deflate_t *d, const void *in, size_t n, mt_buf_t *out) {
    /* An empty message is one 00 byte (RFC 7692 7.2.3.6): an empty stored
     * block once the tail is appended, which leaves both windows as they
     * were. zlib itself would write nothing: it refuses a second sync flush
     * without new input. */
    if (n == 0)
        return mt_buf_append(out, "", 1);
    int rc = setup_deflate(d);
    if (rc < 0)
        return rc;
    size_t start = out->len;
    const Bytef *next = in;
    size_t left = n;
    for (;;) {
        uInt chunk = (uInt)MT_MIN(left, (size_t)IN_STEP);
        d->def.next_in = (Bytef *)next;
        d->def.avail_in = chunk;
        int flush = chunk == left ? Z_SYNC_FLUSH : Z_NO_FLUSH;
        /* deflateBound does not count the flush marker: room for it too. */
        if (mt_buf_reserve(out, deflateBound(&d->def, chunk) + 16) < 0)
            return -ENOMEM;
        do {
            if (out->cap == out->len && mt_buf_reserve(out, OUT_STEP) < 0)
                return -ENOMEM;
            d->def.next_out = (Bytef *)out->data + out->len;
            d->def.avail_out = (uInt)MT_MIN(out->cap - out->len, (size_t)IN_STEP);
            size_t room = d->def.avail_out;
            rc = deflate(&d->def, flush);
            out->len += room - d->def.avail_out;
            if (rc == Z_MEM_ERROR)
                return -ENOMEM;
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                return -EINVAL;
            /* A sync flush is complete when zlib left output room unused. */
        } while (d->def.avail_in > 0 || (flush == Z_SYNC_FLUSH && d->def.avail_out == 0));
        next += chunk;
        left -= chunk;
        if (left == 0)
            break;
    }
    /* The flush ends the payload with an empty stored block, 00 00 ff ff. */
    if (out->len - start < 4 || memcmp(out->data + out->len - 4, sync_tail, 4) != 0)
        return -EINVAL;
    out->len -= 4;
    if (d->params.server_no_context_takeover && deflateReset(&d->def) != Z_OK)
        return -EINVAL;
    return 0;
}

/* Inflates n bytes into out, never past max_message in total. zlib may
 * hold output back when the room it was given filled up: the loop goes on
 * until the input is consumed and the last call left room unused. */
static int inflate_some(mt_ws_deflate_t *d, const uint8_t *in, size_t n, mt_buf_t *out) {
    while (n > 0) {
        uInt chunk = (uInt)MT_MIN(n, (size_t)IN_STEP);
        d->inf.next_in = (Bytef *)in;
        d->inf.avail_in = chunk;
        for (;;) {
            if (d->stream_ended && d->inf.avail_in > 0)
                d->stream_ended = false; /* bytes after a final block start a new stream */
            /* One byte more than the message may still take: inflating into
             * it means the message is too big, and nothing grows further. */
            size_t want = MT_MIN(d->max_message - d->inflated + 1, (size_t)OUT_STEP);
            if (out->cap - out->len < want && mt_buf_reserve(out, want) < 0)
                return -ENOMEM;
            d->inf.next_out = (Bytef *)out->data + out->len;
            d->inf.avail_out = (uInt)MT_MIN(want, out->cap - out->len);
            size_t room = d->inf.avail_out;
            int rc = inflate(&d->inf, Z_SYNC_FLUSH);
            size_t got = room - d->inf.avail_out;
            out->len += got;
            d->inflated += got;
            if (d->inflated > d->max_message) {
                out->len -= d->inflated - d->max_message;
                return -EMSGSIZE;
            }
            if (rc == Z_STREAM_END) {
                /* The client ended the deflate stream (a block with BFINAL):
                 * what follows starts a new one, as after a reset. */
                if (inflateReset(&d->inf) != Z_OK)
                    return -EINVAL;
                d->stream_ended = true;
                if (d->inf.avail_in == 0)
                    break;
                continue;
            }
            if (rc == Z_MEM_ERROR)
                return -ENOMEM;
            if (rc != Z_OK && rc != Z_BUF_ERROR)
                return -EBADMSG;
            if (d->inf.avail_in == 0 && d->inf.avail_out > 0)
                break;
            if (got == 0 && rc == Z_BUF_ERROR) {
                if (d->inf.avail_in > 0 && d->inf.avail_out > 0)
                    return -EBADMSG; /* input and room, no progress: not deflate */
                if (d->inf.avail_in == 0)
                    break;
            }
        }
        in += chunk;
        n -= chunk;
    }
    return 0;
}

int mt_ws_deflate_inflate(mt_ws_deflate_t *d, const void *in, size_t n, bool fin, mt_buf_t *out) {
    int rc = setup_inflate(d);
    if (rc < 0)
        return rc;
    rc = inflate_some(d, in, n, out);
    /* The tail completes the sync flush the sender stripped; after a final
     * block there is nothing to complete (and the tail would open a stored
     * block in the next stream). */
    if (rc == 0 && fin && !d->stream_ended)
        rc = inflate_some(d, sync_tail, sizeof sync_tail, out);
    if (rc == 0 && fin) {
        d->inflated = 0;
        d->stream_ended = false;
        if (d->params.client_no_context_takeover && inflateReset(&d->inf) != Z_OK)
            return -EINVAL;
    }
    return rc;
}
