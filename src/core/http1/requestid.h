/* Request ids: each request gets one when its head is complete, taken from
 * an incoming field (X-Request-ID by default) when its value is sane, else
 * generated. The application sees it as that request field, the response
 * carries it in the same field (respond.h), and the access log records it.
 *
 * Sane: 1 to MT_REQUEST_ID_MAX bytes of visible ASCII (0x21-0x7e) other than
 * '"' and '\' (so it is one token in every log format). Anything else, and a
 * field given more than once, is replaced by a generated id. Generated: 16
 * bytes of a per-thread xoshiro256** generator (seeded once per thread from
 * getrandom), as 32 lowercase hex digits: unique in practice, not a secret. */
#ifndef MT_REQUESTID_H
#define MT_REQUESTID_H

#include <stdbool.h>
#include <stddef.h>

#include "conn.h"

#define MT_REQUEST_ID_GENERATED_LEN 32

/* Whether value[0, n) may be kept as a request id. */
bool mt_request_id_valid(const char *value, size_t n);

/* Writes MT_REQUEST_ID_GENERATED_LEN hex digits to out (no NUL). */
void mt_request_id_generate(char *out);

/* Sets c->request_id from the request's field `lower` (lowercase, n bytes;
 * its head must be complete and in c->rbuf) or generates one. */
void mt_request_id_assign(mt_conn_t *c, const char *lower, size_t n);

#endif
