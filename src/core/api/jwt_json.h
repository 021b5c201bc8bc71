/* Inside the JWT verifier: the strict JSON reader (RFC 8259) of jwt_json.c,
 * shared by jwt.c (headers, claims, claim requirements) and jwt_keys.c
 * (JWKs). Not for other files: the public contract is jwt.h, which also
 * declares jwt_json.c's base64url decoder (mt_jwt_base64url_decode).
 *
 * Strict means: no trailing commas, no control characters or lone
 * surrogates in strings, well-formed UTF-8, no leading zeros, at most 32
 * levels of nesting, nothing after the top-level value. A value is a slice
 * of the caller's text, never a copy; whatever is unescaped goes to a buffer
 * the caller passes.
 *
 * Threads: no state and no allocation; any thread, on its own buffers. */
#ifndef MT_JWT_JSON_H
#define MT_JWT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum json_type { J_NONE, J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL };

typedef struct json_value {
    enum json_type type;
    const char *p; /* the value's text (a string's with its quotes) */
    size_t len;
} json_value_t;

/* p past any JSON whitespace, up to end. */
const char *mt_json_skip_ws(const char *p, const char *end);

/* Scans the string at p (on its opening quote); returns the position after
 * its closing quote, or NULL. When `dst` is not NULL, writes the unescaped
 * UTF-8 text there (never more bytes than the escaped text has) and its
 * length to *dlen. */
const char *mt_json_scan_string(const char *p, const char *end, char *dst, size_t *dlen);

/* Scans the value at p (no leading whitespace) nested `depth` levels deep
 * into *v; returns the position after it, or NULL when it is not one strict
 * JSON value (or nests deeper than 32 levels). */
const char *mt_json_scan_value(const char *p, const char *end, json_value_t *v, int depth);

/* The members of the top-level object text[0, n), in order: calls
 * fn(name, value) for each (name unescaped into `name_buf`, which has room for
 * n bytes). Returns false when text is not exactly one JSON object or a
 * callback returns false. */
typedef bool (*mt_json_member_fn)(void *ctx, const char *name, size_t nlen, const json_value_t *value);
bool mt_json_members(const char *text, size_t n, char *name_buf, mt_json_member_fn fn, void *ctx);

/* Whether v is a string equal to s[0, n) once unescaped (into tmp, room for
 * v->len bytes). */
bool mt_json_string_is(const json_value_t *v, const char *s, size_t n, char *tmp);

/* A NumericDate (RFC 7519 2): a JSON number, as whole seconds (fractions
 * dropped). False when v is not a number or is out of int64_t's range. */
bool mt_jwt_numeric_date(const json_value_t *v, int64_t *out);

/* The registered claims and header members a verification reads, from one
 * object whose top-level names are all different (a duplicate is refused). */
#define MT_JWT_MAX_NAMES 256

typedef struct members {
    json_value_t alg, kid, crit, exp, nbf, iat, iss, aud, sub; /* type J_NONE when absent */
    int count;
    /* The names seen so far, to refuse duplicates (offsets in `names`). */
    char *names;
    size_t names_len;
    size_t name_off[MT_JWT_MAX_NAMES];
    size_t name_len[MT_JWT_MAX_NAMES];
} members_t;

/* Reads the object text[0, n) into m; `work` has room for 2 * n bytes. False
 * when text is not one strict JSON object, repeats a top-level name or has
 * more than MT_JWT_MAX_NAMES of them. */
bool mt_jwt_read_members(const char *text, size_t n, members_t *m, char *work);

#endif
