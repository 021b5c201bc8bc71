/* RESP, the Redis protocol (version 2), as far as the rate limits' Redis
 * client needs it: commands are arrays of bulk strings; replies are a
 * status, an error, an integer, a bulk string (or nil), or an array of up to
 * MT_RESP_MAX_ITEMS of those (not nested). Anything else is refused, so a
 * confused or hostile peer ends the connection instead of being guessed at.
 * Replies are parsed in place: strings point into the caller's buffer. */
#ifndef MT_RESP_H
#define MT_RESP_H

#include <stddef.h>

#include "buf.h"

#define MT_RESP_MAX_ITEMS 8
#define MT_RESP_MAX_BULK (1 << 20)

typedef enum mt_resp_type {
    MT_RESP_STATUS, /* +OK */
    MT_RESP_ERROR,  /* -ERR ... */
    MT_RESP_INT,    /* :42 */
    MT_RESP_BULK,   /* $3 abc */
    MT_RESP_NIL,    /* $-1 or *-1 */
    MT_RESP_ARRAY,  /* *n */
} mt_resp_type_t;

typedef struct mt_resp_value {
    mt_resp_type_t type;
    long long integer; /* MT_RESP_INT */
    const char *str;   /* STATUS, ERROR, BULK: the text (not NUL-terminated) */
    size_t len;
} mt_resp_value_t;

typedef struct mt_resp_reply {
    mt_resp_value_t top;
    int n; /* MT_RESP_ARRAY: its items */
    mt_resp_value_t items[MT_RESP_MAX_ITEMS];
} mt_resp_reply_t;

typedef enum mt_resp_result {
    MT_RESP_DONE,       /* a whole reply: *used bytes */
    MT_RESP_INCOMPLETE, /* more bytes are needed */
    MT_RESP_BAD,        /* not a reply this client accepts */
} mt_resp_result_t;

/* Parses one reply from s[0, n). */
mt_resp_result_t mt_resp_parse(const char *s, size_t n, mt_resp_reply_t *r, size_t *used);

/* Appends the command argv[0..argc) (lens[i] bytes each) to out. Returns 0
 * or -ENOMEM. */
int mt_resp_command(mt_buf_t *out, int argc, const char *const *argv, const size_t *lens);

#endif
