/* WebSocket frames (RFC 6455 5): an incremental parser of the frames a
 * client sends, and the serializer of the frames a server sends.
 *
 * The parser takes bytes as they arrive, split anywhere (a 14-byte header
 * may come one byte at a time), and reports one event per call: a piece of
 * a data message's payload, unmasked in place in the caller's buffer (no
 * copy), or a whole control frame (its at most 125 bytes are kept in the
 * parser, so a ping interleaved with a fragmented message costs nothing to
 * the caller). Every rule of RFC 6455 that a server must enforce is checked
 * here, and a violation is an error carrying the close code to send:
 *
 *   1002  mask bit not set, RSV bits not negotiated (RSV1 only on the first
 *         frame of a data message, and only with permessage-deflate), an
 *         unknown opcode, a control frame fragmented or over 125 bytes, a
 *         64-bit length with its top bit set, a continuation without a
 *         message or a new message inside a fragmented one, a close payload
 *         of 1 byte or with a code that may not be sent (7.4)
 *   1007  a text message (not compressed) or a close reason that is not
 *         UTF-8 — detected at the first bad byte, across fragments
 *   1009  a frame over max_frame or a message over max_message bytes —
 *         detected from the header, before any payload arrives
 *
 * A compressed text message is validated after inflating (ws_deflate.h and
 * mt_ws_utf8_feed), by the caller. Lengths are not required to be minimal:
 * RFC 6455 makes that the sender's duty, and refusing would only break
 * clients that other servers accept.
 *
 * Thread rules: a parser belongs to its connection's owner; the functions
 * keep no global state. */
#ifndef MT_WS_FRAME_H
#define MT_WS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mt_ws_opcode {
    MT_WS_CONTINUATION = 0x0,
    MT_WS_TEXT = 0x1,
    MT_WS_BINARY = 0x2,
    MT_WS_CLOSE = 0x8,
    MT_WS_PING = 0x9,
    MT_WS_PONG = 0xa,
} mt_ws_opcode_t;

/* Close codes (RFC 6455 7.4.1) the core sends or reports. */
enum {
    MT_WS_CLOSE_NORMAL = 1000,
    MT_WS_CLOSE_GOING_AWAY = 1001,
    MT_WS_CLOSE_PROTOCOL_ERROR = 1002,
    MT_WS_CLOSE_UNSUPPORTED = 1003,
    MT_WS_CLOSE_NO_STATUS = 1005, /* reported for a close frame without a code; never sent */
    MT_WS_CLOSE_ABNORMAL = 1006,  /* reported for a connection lost without a close; never sent */
    MT_WS_CLOSE_INVALID_DATA = 1007,
    MT_WS_CLOSE_POLICY = 1008,
    MT_WS_CLOSE_TOO_BIG = 1009,
    MT_WS_CLOSE_INTERNAL = 1011,
};

#define MT_WS_MAX_CONTROL 125 /* payload bytes of a control frame */
#define MT_WS_MAX_HEADER 14   /* 2 + 8 (length) + 4 (mask) */

/* Incremental UTF-8 validation (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF): the state between two pieces of a
 * message. Zero-initialized means "at a character boundary". */
typedef struct mt_ws_utf8 {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* the range of the next continuation byte */
} mt_ws_utf8_t;

/* Validates n more bytes. Returns false at the first byte that cannot be
 * part of valid UTF-8 (the state is then meaningless). */
bool mt_ws_utf8_feed(mt_ws_utf8_t *u, const uint8_t *p, size_t n);

/* True when the bytes so far end at a character boundary. */
static inline bool mt_ws_utf8_complete(const mt_ws_utf8_t *u) {
    return u->need == 0;
}

/* Whether a close code may appear in a close frame (RFC 6455 7.4): 1000-1003,
 * 1007-1014 (1012-1014 as registered with IANA) and 3000-4999. */
bool mt_ws_close_code_valid(unsigned code);

typedef struct mt_ws_parser_config {
    uint64_t max_frame;   /* payload bytes of one data frame: 1009 beyond */
    uint64_t max_message; /* payload bytes of one data message: 1009 beyond */
    bool deflate;         /* permessage-deflate was negotiated: RSV1 allowed on a message's first frame */
} mt_ws_parser_config_t;

typedef enum mt_ws_parse_result {
    MT_WS_PARSE_ERROR = -1,  /* p->close_code and p->error say why; every later call fails the same way */
    MT_WS_PARSE_MORE = 0,    /* the input was consumed and nothing is complete */
    MT_WS_PARSE_DATA = 1,    /* a piece of a data message (event fields below) */
    MT_WS_PARSE_CONTROL = 2, /* a whole control frame */
} mt_ws_parse_result_t;

typedef struct mt_ws_event {
    uint8_t opcode;      /* DATA: the message's (TEXT or BINARY); CONTROL: CLOSE, PING or PONG */
    bool compressed;     /* DATA: the message's first frame had RSV1 (permessage-deflate) */
    bool frame_end;      /* DATA: the piece ends its frame */
    bool message_end;    /* DATA: the piece ends its message (pieces may be empty) */
    uint8_t *data;       /* DATA: in the caller's buffer, unmasked; CONTROL: in the parser */
    size_t len;          /* of data */
    uint16_t close_code; /* CLOSE: the code, or MT_WS_CLOSE_NO_STATUS for an empty payload */
    const uint8_t *reason;
    size_t reason_len; /* CLOSE: the reason, valid UTF-8 */
} mt_ws_event_t;

typedef struct mt_ws_parser {
    mt_ws_parser_config_t config;
    /* The frame header being read. */
    uint8_t hdr[MT_WS_MAX_HEADER];
    uint8_t hdr_len, hdr_need;
    /* The frame being read (in_frame: its header is complete). */
    bool in_frame;
    bool fin;
    uint8_t opcode;
    uint8_t mask[4];
    uint8_t mask_pos; /* offset into the payload, modulo 4 */
    uint64_t remaining;
    /* The data message being read (in_message: its first frame came, not its last). */
    bool in_message;
    bool msg_compressed;
    uint8_t msg_opcode;
    uint64_t msg_len; /* wire payload bytes so far, the current frame's included */
    mt_ws_utf8_t utf8;
    /* The control frame being read. */
    uint8_t control[MT_WS_MAX_CONTROL];
    uint8_t control_len;
    /* After an error. */
    uint16_t close_code;
    const char *error; /* a short static reason, for the close frame and the log */
} mt_ws_parser_t;

/* Prepares a parser for a connection's client frames. */
void mt_ws_parser_init(mt_ws_parser_t *p, const mt_ws_parser_config_t *config);

/* Parses buf[0, len) and reports what came first; *consumed is how many
 * bytes it took (the caller drops them and calls again with the rest, until
 * MT_WS_PARSE_MORE, which consumes everything). Payload bytes are unmasked
 * in place, so the buffer must be writable; a DATA event's data points into
 * it, a CONTROL event's into the parser (valid until the next call). After
 * a CLOSE event the caller stops reading (RFC 6455 5.5.1): the parser would
 * go on parsing whatever follows. */
mt_ws_parse_result_t mt_ws_parse(mt_ws_parser_t *p, uint8_t *buf, size_t len, size_t *consumed, mt_ws_event_t *ev);

/* Writes the header of a server frame (never masked) of `len` payload bytes
 * into out: FIN, RSV1 (the first frame of a compressed message) and the
 * opcode, with the shortest length form. Returns the header's length (2, 4
 * or 10). */
size_t mt_ws_frame_header(uint8_t out[10], mt_ws_opcode_t opcode, bool fin, bool rsv1, uint64_t len);

/* Writes the payload of a close frame: the code, then as much of the
 * reason as fits in 123 bytes, cut at a character boundary. Returns its
 * length, or -EINVAL for a code that may not be sent (see
 * mt_ws_close_code_valid; the server may also send 1012-1014, registered
 * with IANA after the RFC) or a reason that is not UTF-8. */
int mt_ws_close_payload(uint8_t out[MT_WS_MAX_CONTROL], unsigned code, const char *reason, size_t n);

#endif
