/* permessage-deflate (RFC 7692) for one WebSocket connection, server side:
 * raw deflate with zlib, one compressor for the messages we send and one
 * decompressor for the messages the client sends.
 *
 * A message is compressed whole (Z_SYNC_FLUSH, the trailing 00 00 ff ff
 * stripped, RFC 7692 7.2.1) and inflated piece by piece as its frames arrive
 * (the tail appended at the end of the message, 7.2.2). Context takeover is
 * kept or dropped per direction, as negotiated.
 *
 * Memory is bounded per connection in two ways: zlib's own allocations go
 * through counting allocators that refuse to pass `mem_limit` (so a
 * negotiated window that does not fit fails cleanly with -ENOMEM instead of
 * growing), and an inflated message stops at `max_message` bytes
 * (-EMSGSIZE, close 1009): a few kilobytes of zip bomb never make the
 * output buffer grow past the limit (mt_buf_t's doubling aside).
 *
 * Thread rules: a mt_ws_deflate_t belongs to its connection's owner (the I/O
 * thread for an upgraded connection); nothing in it is shared. */
#ifndef MT_WS_DEFLATE_H
#define MT_WS_DEFLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "buf.h"

/* What the handshake agreed on (ws_handshake.c fills it). Window bits are
 * the base-2 logarithm of the LZ77 window. */
typedef struct mt_ws_deflate_params {
    bool server_no_context_takeover; /* our compressor is reset after every message */
    bool client_no_context_takeover; /* the client resets its own: we reset our decompressor too */
    uint8_t server_max_window_bits;  /* 9..15: our compressor's window (zlib has no raw 8-bit window) */
    uint8_t client_max_window_bits;  /* 8..15: the window the client compresses with */
} mt_ws_deflate_params_t;

typedef struct mt_ws_deflate {
    mt_ws_deflate_params_t params;
    int level;          /* zlib compression level, 1..9 */
    int mem_level;      /* zlib memLevel of the compressor, 1..9 */
    size_t mem_limit;   /* bytes zlib may hold for both streams together */
    size_t mem_used;    /* bytes zlib holds now */
    size_t max_message; /* inflated bytes per message */
    size_t inflated;    /* of the current incoming message */
    bool def_ready, inf_ready;
    bool stream_ended; /* the client's last block had BFINAL set: no tail to append */
    z_stream def, inf;
} mt_ws_deflate_t;

/* Prepares `d` for a connection (allocates nothing yet: each stream is set
 * up by its first use). `level` 1..9 and `mem_level` 1..9 are zlib's;
 * out-of-range values are clamped. Returns 0, or -EINVAL for window bits
 * outside the ranges above. */
int mt_ws_deflate_init(mt_ws_deflate_t *d, const mt_ws_deflate_params_t *params, int level, int mem_level,
                       size_t mem_limit, size_t max_message);

/* Frees zlib's state. Safe after a failed or no init of a zeroed struct. */
void mt_ws_deflate_dispose(mt_ws_deflate_t *d);

/* The bytes zlib allocates for these parameters (compressor and
 * decompressor), as zlib's documentation computes them plus its fixed state,
 * for choosing a mem_limit or declining parameters that would not fit. */
size_t mt_ws_deflate_memory(const mt_ws_deflate_params_t *params, int mem_level);

/* Compresses a whole message of n bytes and appends its payload (to be sent
 * with RSV1 set on the first frame) to `out`. Returns 0, or -ENOMEM (out of
 * memory or over mem_limit; the stream is then unusable: close with 1011). */
int mt_ws_deflate_compress(mt_ws_deflate_t *d, const void *in, size_t n, mt_buf_t *out);

/* Inflates the next n bytes of the payload of an incoming compressed message
 * (frames' payloads in order, already unmasked), appending to `out`; `fin`
 * marks the end of the message. Returns 0; -EMSGSIZE when the message would
 * inflate past max_message (close 1009; `out` holds at most max_message
 * bytes of it); -EBADMSG for data that is not deflate (close 1007); -ENOMEM
 * (close 1011). After an error the stream is unusable. A client that
 * compresses with a larger window than it agreed to may get either 0 or
 * -EBADMSG depending on how its frames were cut: zlib checks distances
 * against the window only across calls (never reading outside its
 * memory); with a 15-bit window no stream can refer past it. */
int mt_ws_deflate_inflate(mt_ws_deflate_t *d, const void *in, size_t n, bool fin, mt_buf_t *out);

#endif
