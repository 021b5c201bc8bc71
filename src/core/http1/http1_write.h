/* HTTP/1.1 response serialization primitives: the reason phrases, the status
 * line, validated header fields, the Date header and chunk framing. The rules
 * of a whole head (framing, which fields may stand) are respond.c's, which
 * builds every head from these. */
#ifndef MT_HTTP1_WRITE_H
#define MT_HTTP1_WRITE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

/* The reason phrase of a status code (the server's one table), or "Unknown". */
const char *mt_http1_reason(int status);

/* True if s[0, n) is a non-empty RFC 9110 token (a valid field name). */
bool mt_http1_token_valid(const char *s, size_t n);

/* True if s[0, n) may be a field value or reason phrase: no CR, LF, NUL or
 * other control characters (HTAB allowed). */
bool mt_http1_value_valid(const char *s, size_t n);

/* Appends "HTTP/1.1 " + status + CRLF, where status is a WSGI status string
 * ("200 OK": three digits, a space, a reason phrase). Sets *code. Returns 0,
 * -EINVAL for a malformed status, -ENOMEM. */
int mt_http1_write_status(mt_buf_t *out, const char *status, size_t n, int *code);

/* Appends "name: value" + CRLF after validating both. Returns 0, -EINVAL or
 * -ENOMEM; on failure nothing is appended. */
int mt_http1_write_field(mt_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen);

/* Appends "name: " + a[0, alen) + b[0, blen) + CRLF, unchecked: the caller
 * has validated name and parts (the response writer's field filter). Returns
 * 0 or -ENOMEM; on failure nothing is appended. */
int mt_http1_write_line(mt_buf_t *out, const char *name, size_t nlen, const char *a, size_t alen, const char *b,
                        size_t blen);

/* Appends "Date: <cached IMF-fixdate>" + CRLF. Returns 0 or -ENOMEM. */
int mt_http1_write_date(mt_buf_t *out);

/* Appends "Content-Length: n" + CRLF. Returns 0 or -ENOMEM. */
int mt_http1_write_content_length(mt_buf_t *out, unsigned long long n);

/* Appends a literal. Returns 0 or -ENOMEM. */
int mt_http1_write_raw(mt_buf_t *out, const char *text, size_t n);

/* The rule that keeps a field out of a trailer section (RFC 9110 6.5.1:
 * fields needed before the content, or that frame, route or authenticate
 * the message), as a phrase for an error message ("message framing"), or
 * NULL if the field may be sent there. Names are compared case-insensitively. */
const char *mt_http1_trailer_rule(const char *name, size_t n);

/* A trailer field that mt_http1_trailer_rule refuses. */
#define MT_HTTP1_EFORBIDDEN (-EPERM)

/* Appends a trailer field "name: value" + CRLF after validating it as a
 * header field and against mt_http1_trailer_rule (out NULL: only checks).
 * The trailer section follows the last chunk ("0" CRLF, mt_http1_last_chunk)
 * and ends with CRLF (RFC 9112 7.1.2). Returns 0, -EINVAL (a bad character),
 * MT_HTTP1_EFORBIDDEN or -ENOMEM; on failure nothing is appended. */
int mt_http1_write_trailer(mt_buf_t *out, const char *name, size_t nlen, const char *value, size_t vlen);

/* Appends the last chunk of a chunked body ("0" CRLF) and, unless trailer
 * fields follow (`trailers`), the empty trailer section that ends the
 * message (CRLF). Returns 0 or -ENOMEM. */
int mt_http1_last_chunk(mt_buf_t *out, bool trailers);

/* Writes the size line of a chunk ("1a2b\r\n") into line (>= 20 bytes);
 * returns its length. */
size_t mt_http1_chunk_size_line(char *line, size_t size);

#endif
