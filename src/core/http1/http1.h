/* HTTP/1.1 request parsing: llhttp in strict mode, plus the semantic checks
 * that llhttp leaves to the server (version, Host, Transfer-Encoding on
 * HTTP/1.0, target forms, limits).
 *
 * The head is not copied: the request line and header fields are recorded as
 * spans (offset, length) into the caller's input buffer, which must keep the
 * whole head contiguous until the head has been consumed. Offsets stay valid
 * when that buffer is reallocated. Body bytes, already de-chunked, are
 * appended to a sink buffer. Parsing stops at the end of each message, so
 * pipelined requests stay in the input buffer for the next call. */
#ifndef MT_HTTP1_H
#define MT_HTTP1_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef struct mt_span {
    uint32_t off;
    uint32_t len;
} mt_span_t;

typedef struct mt_header {
    mt_span_t name;
    mt_span_t value;
} mt_header_t;

typedef struct mt_limits {
    uint32_t max_request_line; /* method + target + version, in bytes: 414 beyond */
    uint32_t max_head_size;    /* request line + fields, in bytes: 431 beyond */
    uint32_t max_headers;      /* number of fields (trailers included): 431 beyond */
    uint64_t max_body_size;    /* decoded body bytes: 413 beyond */
    uint32_t max_chunk_ext;    /* bytes of chunk extensions per message: 400 beyond */
} mt_limits_t;

/* Results of mt_http1_parse. */
typedef enum mt_parse_result {
    MT_PARSE_ERROR = -1,     /* see error_status and error_reason; close after answering */
    MT_PARSE_INCOMPLETE = 0, /* all input consumed; head_complete tells how far we got */
    MT_PARSE_COMPLETE = 1,   /* a whole message was parsed; input past *stop is the next one */
} mt_parse_result_t;

typedef struct mt_request {
    llhttp_t parser;
    const mt_limits_t *limits;
    mt_buf_t *body_sink; /* where decoded body bytes go */
    const char *base;    /* the input buffer of the current parse call */

    /* The head, as spans into the input buffer. */
    mt_span_t method;
    mt_span_t target;
    mt_header_t *headers; /* capacity: limits->max_headers */
    uint32_t nheaders;
    uint32_t ntrailers; /* counted against max_headers, never recorded */
    uint8_t http_minor;
    uint8_t method_id; /* llhttp_method_t */

    /* Framing and semantics, known once head_complete is set. */
    bool head_complete;
    bool message_complete;
    bool chunked;
    bool keep_alive;
    bool expect_continue;
    uint64_t content_length; /* when !chunked */
    uint64_t body_received;  /* decoded body bytes so far */

    /* Parse state. */
    bool in_trailers;
    bool request_line_done;
    int current_field; /* which special field the current header is (a FIELD_* value) */
    uint32_t message_start;
    uint32_t head_end;
    uint32_t host_count;
    uint32_t te_count;
    uint32_t chunk_ext_bytes;
    int32_t cl_header; /* index of the Content-Length field, or -1 */

    int error_status;         /* HTTP status to answer with on MT_PARSE_ERROR */
    const char *error_reason; /* a short, static message naming the problem */
} mt_request_t;

/* Prepares `req` for the first message of a connection. `headers` must hold
 * limits->max_headers entries; `body_sink` receives decoded body bytes. */
void mt_http1_init(mt_request_t *req, const mt_limits_t *limits, mt_header_t *headers, mt_buf_t *body_sink);

/* Parses input[start, end) as the continuation of the current message (or the
 * start of a new one after MT_PARSE_COMPLETE). Sets *stop to the offset where
 * parsing stopped: `end` unless the message completed. Between calls, the
 * bytes of an incomplete head must stay at the same offsets of `input`. */
mt_parse_result_t mt_http1_parse(mt_request_t *req, const char *input, size_t start, size_t end, size_t *stop);

/* Resets the per-message state so the next call parses a new message. Call it
 * after MT_PARSE_COMPLETE, once the previous message's spans are no longer
 * needed. `offset` is where the next message starts in the input buffer. */
void mt_http1_next(mt_request_t *req, size_t offset);

/* The path of the request target: before '?' (and '#'), after the
 * authority of an absolute-form target. Sets *path and returns its length (0
 * for "*" or a target without a path). When `query` is given, it is set to
 * the span of the query after '?' ({0, 0} without one). */
size_t mt_http1_target_path(const mt_request_t *req, const char *base, const char **path, mt_span_t *query);

/* The text of a span. */
static inline const char *mt_span_ptr(const char *base, mt_span_t span) {
    return base + span.off;
}

/* Case-insensitive comparison of a span with a lowercase literal. */
bool mt_span_ieq(const char *base, mt_span_t span, const char *lower, size_t n);

/* The longest joined value mt_request_header gives (and the size of its `buf`). */
#define MT_REQUEST_FIELD_MAX 4096

/* The value of the request's field named `lower` (lowercase, n bytes), for
 * every caller that reads one (Accept-Encoding, If-None-Match, Range, ...).
 * A field given once is returned as it is, in `base`, without a copy. A
 * field given several times is one list (RFC 9110 5.3): the values are
 * joined with ", " into buf (MT_REQUEST_FIELD_MAX bytes), so a later
 * "gzip;q=0" is heard. Returns 1 and sets *value and *len; 0 when the request
 * has no such field; -E2BIG when several fields joined would exceed
 * MT_REQUEST_FIELD_MAX bytes (one field alone is never cut): then
 * *value is NULL, and the caller must act as for a value it cannot use, never
 * on a prefix of the list (identity for Accept-Encoding, no Range, an
 * If-None-Match that matches nothing, an If-Match that fails). */
int mt_request_header(const mt_request_t *req, const char *base, const char *lower, size_t n, char *buf,
                      const char **value, size_t *len);

/* Decodes %XX escapes of src[0, n) into dst (which may be src). Invalid escapes
 * are copied as they are. Returns the decoded length. */
size_t mt_http1_percent_decode(char *dst, const char *src, size_t n);

#endif
