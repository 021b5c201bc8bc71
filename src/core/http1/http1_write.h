/* HTTP/1.1 response serialization primitives: the reason phrases, the status
 * line, validated header fields, the Date header and chunk framing. The rules
 * of a whole head (framing, which fields may stand) are respond.c's, which
 * builds every head from these. */
#ifndef MT_HTTP1_WRITE_H
#define MT_HTTP1_WRITE_H

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

/* Writes the size line of a chunk ("1a2b\r\n") into line (>= 20 bytes);
 * returns its length. */
size_t mt_http1_chunk_size_line(char *line, size_t size);

#endif
