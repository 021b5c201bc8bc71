/* Content codings of response bodies: Accept-Encoding negotiation, the list of
 * content types worth compressing, and a reusable compressor for gzip, brotli
 * and zstd that appends to an mt_buf_t.
 *
 * A compressor belongs to one thread at a time (one per handler thread); the
 * negotiation and type functions are pure and thread-safe. */
#ifndef MT_COMPRESS_H
#define MT_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

typedef enum { MT_CODING_IDENTITY = 0, MT_CODING_GZIP = 1, MT_CODING_BR = 2, MT_CODING_ZSTD = 3 } mt_coding_t;

#define MT_CODING_MASK(c) (1u << (c))
#define MT_CODING_ALL (MT_CODING_MASK(MT_CODING_GZIP) | MT_CODING_MASK(MT_CODING_BR) | MT_CODING_MASK(MT_CODING_ZSTD))

/* The `flush` argument of mt_compressor_feed. */
enum {
    MT_COMPRESS_CONTINUE = 0, /* the compressor may keep the input buffered */
    MT_COMPRESS_FLUSH = 1,    /* all output so far must decode to all input so far */
    MT_COMPRESS_END = 2,      /* finish the stream (trailer, checksum) */
};

/* Chooses the coding of a response from an Accept-Encoding value (n bytes,
 * need not be NUL-terminated) as RFC 9110 12.5.3 says: q-values from 0 to 1
 * with up to 3 decimals (an entry with a malformed q is ignored), codings
 * case-insensitive, `x-gzip` as gzip, `*` for every enabled coding not listed
 * explicitly (so `*` never revives an explicitly refused coding), a coding
 * listed twice takes its lowest q. `enabled` is a mask of MT_CODING_MASK bits.
 * The acceptable (q > 0) enabled coding with the highest q wins, ties going to
 * zstd, then br, then gzip; identity wins only when the header gives it (by
 * name or through `*`) a q strictly higher than that. Returns
 * MT_CODING_IDENTITY when nothing is acceptable, and for a NULL or empty
 * value. Never fails. */
mt_coding_t mt_compress_negotiate(const char *accept, size_t n, unsigned enabled);

/* The token of a coding for Content-Encoding: "gzip", "br", "zstd" or
 * "identity" (also for out-of-range values). A static string. */
const char *mt_compress_coding_name(mt_coding_t c);

/* Parses a coding token ("gzip", "x-gzip", "br", "zstd", "identity";
 * case-insensitive, n bytes). Returns the coding, or -1 for anything else. */
int mt_compress_coding_parse(const char *name, size_t n);

/* Whether a Content-Type (n bytes, parameters ignored, case-insensitive) is
 * worth compressing: text/, JSON and XML in all their +suffix forms,
 * JavaScript, SVG, WebAssembly, uncompressed fonts and a few more. Formats
 * that are already compressed (images, video, archives, woff2) are not. */
bool mt_compress_type_ok(const char *content_type, size_t n);

/* A reusable compressor: one zlib stream, one brotli state and one zstd
 * context, each created the first time its coding is used and reset, not
 * freed, between responses. */
typedef struct mt_compressor mt_compressor_t;

/* Returns a new idle compressor (no coding state is allocated yet), or NULL
 * when out of memory. Free it with mt_compressor_destroy. */
mt_compressor_t *mt_compressor_create(void);

/* Frees the compressor and all its coding states. NULL is a no-op. */
void mt_compressor_destroy(mt_compressor_t *z);

/* Starts a new stream of `coding` at `level` (the coding's own scale: gzip
 * 1-9, br 0-11, zstd 1-22; < 0 means the default: gzip 6, br 4, zstd 3),
 * abandoning any unfinished stream. MT_CODING_IDENTITY passes input through
 * unchanged. Returns 0, -EINVAL (unknown coding, level out of range) or
 * -ENOMEM; after a failure the compressor is idle. */
int mt_compressor_begin(mt_compressor_t *z, mt_coding_t coding, int level);

/* Compresses n bytes (n may be 0) of the stream begun last, appending the
 * output to `out` (which the caller owns; it may already hold bytes). `flush`
 * is MT_COMPRESS_CONTINUE, MT_COMPRESS_FLUSH (Z_SYNC_FLUSH,
 * BROTLI_OPERATION_FLUSH, ZSTD_e_flush: for streamed chunks and server-sent
 * events) or MT_COMPRESS_END, after which the compressor is idle until the
 * next begin. Returns 0, -EINVAL (no stream begun, bad flush) or -ENOMEM; on
 * failure `out` may hold part of the output and the stream is abandoned. */
int mt_compressor_feed(mt_compressor_t *z, const void *in, size_t n, int flush, mt_buf_t *out);

/* Compresses a whole body in one stream (begin + feed with MT_COMPRESS_END).
 * Knowing the size up front, it sizes brotli's window and zstd's parameters
 * to it, and zstd records the size in the frame. Same returns as begin/feed. */
int mt_compressor_whole(mt_compressor_t *z, mt_coding_t coding, int level, const void *in, size_t n, mt_buf_t *out);

#endif
