/* The one HTTP/1.1 response writer: every response head the server sends is
 * built here, whoever produced the response (the WSGI glue, the API's C
 * answers, static files, the server's own error answers).
 *
 * It decides the framing (Content-Length, chunked, or the close) from the
 * status, the request's method and version, the length the producer
 * declared and the length it has in hand; no body on HEAD, 1xx, 204 and 304,
 * no Content-Length on 1xx and 204. It validates and filters the producer's
 * fields: names must be tokens and values free of CR, LF, NUL and other
 * controls (a bad field is refused whole and nothing of it is written);
 * hop-by-hop fields are dropped (the server frames the message and owns the
 * connection); Content-Length is checked and kept only where it may stand; a
 * strong ETag is weakened when the server compresses the body; Accept-Encoding
 * and Origin are merged into Vary by tokens, never twice and not beside "*".
 * Fields the server adds (CORS) replace the producer's of the same name. Then it
 * serializes the head: status line, Date (unless given), the fields, the
 * framing, and "Connection: close" (or "keep-alive" for HTTP/1.0).
 *
 * Use: mt_respond_init, mt_respond_status (or mt_respond_status_line), set
 * `compressing` and `vary` if needed, mt_respond_field per field, then
 * mt_respond_end. The head is appended to the caller's buffer; nothing is
 * allocated beyond that buffer's growth. On failure the caller drops what was
 * appended (out->len back to its mark). */
#ifndef MT_RESPOND_H
#define MT_RESPOND_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "conn.h"
#include "http1.h"

/* A field of the application's that is malformed in a way the character
 * checks do not see: a Content-Length that is not a number, or a second
 * Content-Length that differs from the first. */
#define MT_RESPOND_EBADLENGTH (-EBADMSG)

/* A field the server composes for its own answers. */
typedef struct mt_field {
    const char *name;
    size_t nlen;
    const char *value;
    size_t vlen;
} mt_field_t;

/* The most fields a response gets from the server besides its own framing
 * (mt_respond_t.late). */
#define MT_RESPOND_LATE_MAX 8

/* Vary tokens the writer merges (mt_respond_t.vary_added). */
#define MT_VARY_ACCEPT_ENCODING 1
#define MT_VARY_ORIGIN 2

typedef struct mt_respond {
    /* From the request (mt_respond_init). */
    uint8_t method_id; /* llhttp_method_t */
    uint8_t http_minor;
    bool keep_alive; /* in: the connection may stay open; after mt_respond_end: it will */
    /* Set by the caller before the first field, when the server compresses
     * the body itself: the application's Content-Length is dropped (the
     * compressed length frames the body) and a strong ETag becomes weak. */
    bool compressing;
    /* The representation depends on Accept-Encoding: Vary must say so. */
    bool vary;
    /* ... on Origin (CORS, cors.h): Vary must say so too. */
    bool vary_origin;
    /* Decided. */
    int status;
    bool no_body;              /* HEAD, 1xx, 204, 304: no body bytes follow the head */
    bool chunked;              /* the body goes out in chunks (set by mt_respond_end) */
    bool has_date;             /* the producer gave a Date field */
    bool vary_done;            /* the first Vary field was written, with the writer's tokens merged in */
    uint8_t vary_added;        /* MT_VARY_* tokens the writer appended to it (not repeated later) */
    long long declared_length; /* the producer's Content-Length, or -1 */
    /* The request id and the field that carries it (mt_respond_request_id). */
    const char *id_name;
    size_t id_nlen;
    const char *id;
    size_t id_len;
    /* Fields the server adds for this response (CORS, cors.h), written at
     * mt_respond_end; each replaces a producer's field of the same name.
     * Names and values are the caller's and must live until the head is
     * built; values must be free of CR, LF and NUL (they are not checked). */
    mt_field_t late[MT_RESPOND_LATE_MAX];
    uint8_t nlate;
} mt_respond_t;

/* Prepares r for a response to `req` (NULL: a request that did not parse,
 * answered as to a GET over HTTP/1.1). keep_alive: whether the connection may
 * stay open as far as the caller knows. */
void mt_respond_init(mt_respond_t *r, const mt_request_t *req, bool keep_alive);

/* Echoes c's request id (if the server gives request ids) in the field the
 * server config names: the writer appends it at mt_respond_end, and drops a
 * field of the producer's with the same name, so the client, the
 * application and the access log see one id. Call it after mt_respond_init;
 * the id must stay in c until the head is built. */
void mt_respond_request_id(mt_respond_t *r, const mt_conn_t *c);

/* Whether the connection of c may carry another request after this one: the
 * request allows it, the server is not draining (`draining`), and the client
 * is not waiting for a "100 Continue" that was never sent (it may never send
 * the body it announced, so only a close ends the exchange cleanly). */
bool mt_respond_keep_alive(const mt_conn_t *c, bool draining);

/* Appends the status line of `status` (100-999) with the server's reason
 * phrase. Returns 0, -EINVAL (status out of range) or -ENOMEM. */
int mt_respond_status(mt_respond_t *r, mt_buf_t *out, int status);

/* Appends the status line of a WSGI status string ("200 OK": three digits,
 * a space, a reason phrase without controls). Returns 0, -EINVAL (nothing
 * appended) or -ENOMEM. */
int mt_respond_status_line(mt_respond_t *r, mt_buf_t *out, const char *status, size_t n);

/* Appends one of the producer's fields, filtered as the file comment says.
 * Returns 0 (written, or dropped on purpose), -EINVAL (a bad character in
 * the name or value: nothing appended), MT_RESPOND_EBADLENGTH or -ENOMEM. */
int mt_respond_field(mt_respond_t *r, mt_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen);

/* Parses a Content-Length value the writer accepts: 1 to 18 digits, nothing
 * else (no sign, no spaces, no list). Returns false for anything else. */
bool mt_respond_parse_length(const char *s, size_t n, long long *out);

/* Ends the head: Date (unless given), Content-Encoding `coding` (NULL: none),
 * the late fields, Vary with Accept-Encoding (`vary`) and Origin
 * (`vary_origin`) when no field of the producer's said them, the framing, the
 * connection field and the blank line. known_length: the body's length when
 * the producer has all of it (the compressed length when compressing), or
 * -1. Sets r->chunked and may clear r->keep_alive (an HTTP/1.0 body of
 * unknown length ends with the close). Returns 0 or -ENOMEM. */
int mt_respond_end(mt_respond_t *r, mt_buf_t *out, const char *coding, long long known_length);

/* A whole small answer of the server's own: status line, Date, `fields`,
 * Content-Type `ctype` (NULL: none), the framing of body[0, blen), and the
 * body unless the response has none (HEAD, 204, 304). Returns 0, -EINVAL or
 * -ENOMEM. */
int mt_respond_answer(mt_respond_t *r, mt_buf_t *out, int status, const mt_field_t *fields, int nfields,
                      const char *ctype, const char *body, size_t blen);

/* Appends a complete error response of the server's own: status line, Date,
 * a text/plain body naming the problem ("413 Content Too Large: detail"), and
 * "Connection: close" unless keep_alive. `req` as for mt_respond_init. Returns
 * 0 or -ENOMEM. */
int mt_respond_error(mt_buf_t *out, const mt_request_t *req, int status, const char *detail, bool keep_alive);

#endif
