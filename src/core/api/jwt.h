/* JSON Web Tokens (RFC 7519) in the JWS compact serialization (RFC 7515),
 * verified with OpenSSL's libcrypto: HS256/384/512, RS256/384/512,
 * PS256/384/512, ES256/384/512 (the JOSE r||s signature turned into DER for
 * EVP) and EdDSA (Ed25519, Ed448; RFC 8037).
 *
 * A key is pinned to one algorithm when it is added to a key set: a token
 * whose header names another algorithm than its key's is refused, so
 * "alg": "none" (no key has it) and the RS256 -> HS256 swap (the public key
 * used as an HMAC secret: an RSA key is never an HMAC key) cannot pass.
 *
 * Parsing is strict: base64url without padding and with zero trailing bits,
 * exactly three segments, header and claims that are JSON objects (RFC 8259,
 * strict: no trailing commas, no duplicate member names at the top level, no
 * control characters in strings), no "crit" header. The claims checked are
 * exp, nbf and iat (NumericDate, with a leeway), iss (one of a list), aud (a
 * string or an array of strings, one of which must be ours; a token with an
 * aud is refused when no audience is configured, RFC 7519 4.1.3) and sub (a
 * string when present).
 *
 * The implementation is in three files: jwt.c (algorithms, verification,
 * claim requirements), jwt_keys.c (key sets) and jwt_json.c (base64url and
 * the JSON reader).
 *
 * Threads: a key set is immutable once built and shared by reference count
 * (mt_jwt_keyset_ref / _unref, atomic); verification allocates only
 * libcrypto's transient contexts and writes to the caller's buffer. */
#ifndef MT_JWT_H
#define MT_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum mt_jwt_alg {
    MT_JWT_HS256,
    MT_JWT_HS384,
    MT_JWT_HS512,
    MT_JWT_RS256,
    MT_JWT_RS384,
    MT_JWT_RS512,
    MT_JWT_PS256,
    MT_JWT_PS384,
    MT_JWT_PS512,
    MT_JWT_ES256,
    MT_JWT_ES384,
    MT_JWT_ES512,
    MT_JWT_EDDSA,
    MT_JWT_NALGS,
} mt_jwt_alg_t;

/* Why a token was refused (MT_JWT_OK: it was not). */
typedef enum mt_jwt_error {
    MT_JWT_OK = 0,
    MT_JWT_MALFORMED,     /* not three base64url segments of JSON objects */
    MT_JWT_TOO_LONG,      /* longer than the policy's max_len */
    MT_JWT_BAD_ALG,       /* an algorithm no key of the set is pinned to ("none" included) */
    MT_JWT_NO_KEY,        /* a kid no key of the set has */
    MT_JWT_BAD_SIGNATURE, /* no key of the right algorithm verifies the signature */
    MT_JWT_EXPIRED,       /* exp is past (leeway included) */
    MT_JWT_IMMATURE,      /* nbf or iat in the future (leeway included) */
    MT_JWT_BAD_ISSUER,
    MT_JWT_BAD_AUDIENCE,
    MT_JWT_BAD_CLAIM, /* a registered claim of the wrong type, or a required one missing */
    MT_JWT_NOMEM,
    MT_JWT_NERRORS,
} mt_jwt_error_t;

/* The longest token a policy accepts by default. */
#define MT_JWT_MAX_LEN 8192

typedef struct mt_jwt_keyset mt_jwt_keyset_t;

/* What a verification checks beyond the signature. The strings are the
 * caller's and must outlive the verifications that use the policy. */
typedef struct mt_jwt_policy {
    size_t max_len;             /* the longest token (0: MT_JWT_MAX_LEN) */
    int64_t leeway;             /* seconds of clock skew allowed on exp, nbf, iat */
    bool require_exp;           /* a token without exp is refused */
    const char *const *issuers; /* iss must be one of these (nissuers 0: not checked) */
    int nissuers;
    const char *const *audiences; /* aud must contain one of these */
    int naudiences;
} mt_jwt_policy_t;

/* A verified token's parts, in the caller's buffer. */
typedef struct mt_jwt_claims {
    const char *payload; /* the claims, the JSON object as signed */
    size_t payload_len;
    const char *sub; /* the sub claim, unescaped (NULL when absent) */
    size_t sub_len;
    int key; /* the index in the key set of the key that verified it */
} mt_jwt_claims_t;

/* The name of an algorithm ("RS256"), and the algorithm of a name (-1 when unknown). */
const char *mt_jwt_alg_name(mt_jwt_alg_t alg);
int mt_jwt_alg_parse(const char *name, size_t len);
/* A short English text for an error ("token expired"). */
const char *mt_jwt_error_text(mt_jwt_error_t err);

/* An empty key set with room for `capacity` keys (reference count 1). NULL
 * when out of memory. */
mt_jwt_keyset_t *mt_jwt_keyset_create(int capacity);
mt_jwt_keyset_t *mt_jwt_keyset_ref(mt_jwt_keyset_t *ks);
/* Drops a reference; the last frees the keys. NULL is allowed. */
void mt_jwt_keyset_unref(mt_jwt_keyset_t *ks);
int mt_jwt_keyset_count(const mt_jwt_keyset_t *ks);

/* Adds a key pinned to `alg`, with key id kid[0, kid_len) (kid NULL: the key
 * matches a token with any kid or none). Each returns 0, -EINVAL when the key
 * does not fit the algorithm (an HMAC secret for RS256, a PEM key for HS256,
 * an RSA key under 2048 bits, an EC key on another curve), -ENOSPC when the
 * set is full, -ENOMEM. `why` (when not NULL) receives a short reason. */
int mt_jwt_keyset_add_secret(mt_jwt_keyset_t *ks, mt_jwt_alg_t alg, const char *kid, size_t kid_len,
                             const unsigned char *secret, size_t len, const char **why);
/* A public key (or a certificate) in PEM. */
int mt_jwt_keyset_add_pem(mt_jwt_keyset_t *ks, mt_jwt_alg_t alg, const char *kid, size_t kid_len, const char *pem,
                          size_t len, const char **why);
/* A JWK (RFC 7517) as JSON text: kty RSA (n, e), EC (crv, x, y), OKP (crv,
 * x) or oct (k). Its algorithm is its "alg" member; without one, `alg`
 * (which may be -1 when the key type implies it: EC and OKP keys). A JWK
 * whose "alg" differs from a given `alg`, or whose "use" is not "sig", is
 * refused (-EINVAL). Its kid is its "kid" member. */
int mt_jwt_keyset_add_jwk(mt_jwt_keyset_t *ks, int alg, const char *json, size_t len, const char **why);

/* Verifies token[0, len) with the keys of `ks` and the checks of `policy` at
 * time `now` (seconds since the epoch). buf (at least 3 * len + 16 bytes)
 * receives the decoded parts; `out` points into it. Returns MT_JWT_OK or the
 * first reason of refusal. */
mt_jwt_error_t mt_jwt_verify(const mt_jwt_keyset_t *ks, const mt_jwt_policy_t *policy, const char *token, size_t len,
                             int64_t now, char *buf, size_t bufsize, mt_jwt_claims_t *out);

/* Whether the claims object payload[0, len) satisfies a claim requirement:
 * `name` present, and (value not NULL) a string equal to value or having
 * value as one of its space-separated words (an OAuth "scope"), or an array
 * with such a string, or true when value is "true". */
bool mt_jwt_claim_has(const char *payload, size_t len, const char *name, const char *value);

/* Strict base64url (RFC 4648 5, no padding, zero trailing bits): decodes
 * src[0, n) into dst (room for n * 3 / 4 bytes). Returns the decoded length,
 * or -1 when src is not canonical base64url. */
long mt_jwt_base64url_decode(unsigned char *dst, const char *src, size_t n);

#endif
