#include "jwt.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* ---- algorithms ---- */

enum family { FAM_HMAC, FAM_RSA, FAM_PSS, FAM_EC, FAM_EDDSA };

static const struct {
    const char *name;
    enum family family;
    const char *md;    /* digest name (NULL for EdDSA) */
    const char *curve; /* EC: the group; ES256 signatures are 2 * 32 bytes */
    int half;          /* EC: the length of r and of s */
} algs[MT_JWT_NALGS] = {
    [MT_JWT_HS256] = {"HS256", FAM_HMAC, "SHA256", NULL, 0},
    [MT_JWT_HS384] = {"HS384", FAM_HMAC, "SHA384", NULL, 0},
    [MT_JWT_HS512] = {"HS512", FAM_HMAC, "SHA512", NULL, 0},
    [MT_JWT_RS256] = {"RS256", FAM_RSA, "SHA256", NULL, 0},
    [MT_JWT_RS384] = {"RS384", FAM_RSA, "SHA384", NULL, 0},
    [MT_JWT_RS512] = {"RS512", FAM_RSA, "SHA512", NULL, 0},
    [MT_JWT_PS256] = {"PS256", FAM_PSS, "SHA256", NULL, 0},
    [MT_JWT_PS384] = {"PS384", FAM_PSS, "SHA384", NULL, 0},
    [MT_JWT_PS512] = {"PS512", FAM_PSS, "SHA512", NULL, 0},
    [MT_JWT_ES256] = {"ES256", FAM_EC, "SHA256", "prime256v1", 32},
    [MT_JWT_ES384] = {"ES384", FAM_EC, "SHA384", "secp384r1", 48},
    [MT_JWT_ES512] = {"ES512", FAM_EC, "SHA512", "secp521r1", 66},
    [MT_JWT_EDDSA] = {"EdDSA", FAM_EDDSA, NULL, NULL, 0},
};

const char *mt_jwt_alg_name(mt_jwt_alg_t alg) {
    return (unsigned)alg < MT_JWT_NALGS ? algs[alg].name : "?";
}

int mt_jwt_alg_parse(const char *name, size_t len) {
    for (int i = 0; i < MT_JWT_NALGS; i++)
        if (strlen(algs[i].name) == len && memcmp(algs[i].name, name, len) == 0)
            return i;
    return -1;
}

static const char *const error_texts[MT_JWT_NERRORS] = {
    [MT_JWT_OK] = "valid token",
    [MT_JWT_MALFORMED] = "malformed token",
    [MT_JWT_TOO_LONG] = "token too long",
    [MT_JWT_BAD_ALG] = "token algorithm not accepted",
    [MT_JWT_NO_KEY] = "unknown token key",
    [MT_JWT_BAD_SIGNATURE] = "invalid token signature",
    [MT_JWT_EXPIRED] = "token expired",
    [MT_JWT_IMMATURE] = "token not yet valid",
    [MT_JWT_BAD_ISSUER] = "invalid token issuer",
    [MT_JWT_BAD_AUDIENCE] = "invalid token audience",
    [MT_JWT_BAD_CLAIM] = "invalid token claims",
    [MT_JWT_NOMEM] = "out of memory",
};

const char *mt_jwt_error_text(mt_jwt_error_t err) {
    return (unsigned)err < MT_JWT_NERRORS ? error_texts[err] : "?";
}

/* ---- base64url ---- */

/* The value of each base64url character; 64 for the others. */
static const uint8_t b64_values[256] = {
    ['A'] = 0,  ['B'] = 1,  ['C'] = 2,  ['D'] = 3,  ['E'] = 4,  ['F'] = 5,  ['G'] = 6,  ['H'] = 7,
    ['I'] = 8,  ['J'] = 9,  ['K'] = 10, ['L'] = 11, ['M'] = 12, ['N'] = 13, ['O'] = 14, ['P'] = 15,
    ['Q'] = 16, ['R'] = 17, ['S'] = 18, ['T'] = 19, ['U'] = 20, ['V'] = 21, ['W'] = 22, ['X'] = 23,
    ['Y'] = 24, ['Z'] = 25, ['a'] = 26, ['b'] = 27, ['c'] = 28, ['d'] = 29, ['e'] = 30, ['f'] = 31,
    ['g'] = 32, ['h'] = 33, ['i'] = 34, ['j'] = 35, ['k'] = 36, ['l'] = 37, ['m'] = 38, ['n'] = 39,
    ['o'] = 40, ['p'] = 41, ['q'] = 42, ['r'] = 43, ['s'] = 44, ['t'] = 45, ['u'] = 46, ['v'] = 47,
    ['w'] = 48, ['x'] = 49, ['y'] = 50, ['z'] = 51, ['0'] = 52, ['1'] = 53, ['2'] = 54, ['3'] = 55,
    ['4'] = 56, ['5'] = 57, ['6'] = 58, ['7'] = 59, ['8'] = 60, ['9'] = 61, ['-'] = 62, ['_'] = 63,
};

/* 0-63 for a base64url character, 64 for any other ('A' is the table's only 0). */
static inline unsigned b64_value(unsigned char ch) {
    unsigned v = b64_values[ch];
    return v == 0 && ch != 'A' ? 64 : v;
}

long mt_jwt_base64url_decode(unsigned char *dst, const char *src, size_t n) {
    if (n % 4 == 1)
        return -1;
    const unsigned char *s = (const unsigned char *)src;
    size_t out = 0, i = 0;
    /* Whole quanta: 4 characters, 3 bytes. */
    for (; i + 4 <= n; i += 4) {
        unsigned a = b64_value(s[i]), b = b64_value(s[i + 1]), c = b64_value(s[i + 2]), d = b64_value(s[i + 3]);
        if ((a | b | c | d) & 64)
            return -1;
        uint32_t v = a << 18 | b << 12 | c << 6 | d;
        dst[out++] = (unsigned char)(v >> 16);
        dst[out++] = (unsigned char)(v >> 8);
        dst[out++] = (unsigned char)v;
    }
    /* The tail: 2 or 3 characters, whose unused low bits must be zero. */
    if (i < n) {
        unsigned a = b64_value(s[i]), b = b64_value(s[i + 1]), c = n - i == 3 ? b64_value(s[i + 2]) : 0;
        if ((a | b | c) & 64)
            return -1;
        uint32_t v = a << 18 | b << 12 | c << 6;
        dst[out++] = (unsigned char)(v >> 16);
        if (n - i == 3) {
            dst[out++] = (unsigned char)(v >> 8);
            if (v & 0xFF)
                return -1;
        } else if (v & 0xFFFF) {
            return -1;
        }
    }
    return (long)out;
}

/* ---- a strict JSON reader (RFC 8259) ---- */

enum json_type { J_NONE, J_OBJECT, J_ARRAY, J_STRING, J_NUMBER, J_TRUE, J_FALSE, J_NULL };

typedef struct json_value {
    enum json_type type;
    const char *p; /* the value's text (a string's with its quotes) */
    size_t len;
} json_value_t;

#define JSON_MAX_DEPTH 32

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int hex_value(char ch) {
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static long hex4(const char *p, const char *end) {
    if (end - p < 4)
        return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_value(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* The length of the UTF-8 sequence at p (well-formed, RFC 3629), or 0. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    return n;
}

/* Scans the string at p (on its opening quote); returns the position after
 * its closing quote, or NULL. When `dst` is not NULL, writes the unescaped
 * UTF-8 text there and its length to *dlen. */
static const char *scan_string(const char *p, const char *end, char *dst, size_t *dlen) {
    size_t o = 0;
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            if (dlen)
                *dlen = o;
            return p + 1;
        }
        if (c < 0x20)
            return NULL;
        if (c == '\\') {
            if (++p >= end)
                return NULL;
            uint32_t cp;
            switch (*p) {
            case '"':
                cp = '"';
                break;
            case '\\':
                cp = '\\';
                break;
            case '/':
                cp = '/';
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u': {
                long v = hex4(p + 1, end);
                if (v < 0)
                    return NULL;
                p += 4;
                if (v >= 0xD800 && v <= 0xDBFF) {
                    if (end - p < 7 || p[1] != '\\' || p[2] != 'u')
                        return NULL;
                    long lo = hex4(p + 3, end);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return NULL;
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else if (v >= 0xDC00 && v <= 0xDFFF) {
                    return NULL;
                }
                cp = (uint32_t)v;
                break;
            }
            default:
                return NULL;
            }
            p++;
            if (dst) {
                if (cp < 0x80) {
                    dst[o++] = (char)cp;
                } else if (cp < 0x800) {
                    dst[o++] = (char)(0xC0 | (cp >> 6));
                    dst[o++] = (char)(0x80 | (cp & 0x3F));
                } else if (cp < 0x10000) {
                    dst[o++] = (char)(0xE0 | (cp >> 12));
                    dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    dst[o++] = (char)(0x80 | (cp & 0x3F));
                } else {
                    dst[o++] = (char)(0xF0 | (cp >> 18));
                    dst[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                    dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    dst[o++] = (char)(0x80 | (cp & 0x3F));
                }
            }
            continue;
        }
        size_t n = utf8_len((const unsigned char *)p, (const unsigned char *)end);
        if (n == 0)
            return NULL;
        if (dst) {
            memcpy(dst + o, p, n);
            o += n;
        }
        p += n;
    }
    return NULL;
}

static const char *scan_number(const char *p, const char *end) {
    if (p < end && *p == '-')
        p++;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    if (p < end && *p == '.') {
        const char *d = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        const char *d = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return NULL;
    }
    return p;
}

static const char *scan_value(const char *p, const char *end, json_value_t *v, int depth);

/* Scans the object or array at p. */
static const char *scan_container(const char *p, const char *end, int depth) {
    bool object = *p == '{';
    char close = object ? '}' : ']';
    p = skip_ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        json_value_t v;
        if (object) {
            if (p >= end || *p != '"')
                return NULL;
            if ((p = scan_string(p, end, NULL, NULL)) == NULL)
                return NULL;
            p = skip_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p = skip_ws(p + 1, end);
        }
        if ((p = scan_value(p, end, &v, depth + 1)) == NULL)
            return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == close)
            return p + 1;
        return NULL;
    }
}

static const char *scan_value(const char *p, const char *end, json_value_t *v, int depth) {
    const char *start = p;
    if (p >= end || depth > JSON_MAX_DEPTH)
        return NULL;
    switch (*p) {
    case '{':
    case '[':
        v->type = *p == '{' ? J_OBJECT : J_ARRAY;
        p = scan_container(p, end, depth);
        break;
    case '"':
        v->type = J_STRING;
        p = scan_string(p, end, NULL, NULL);
        break;
    case 't':
        v->type = J_TRUE;
        p = end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
        break;
    case 'f':
        v->type = J_FALSE;
        p = end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
        break;
    case 'n':
        v->type = J_NULL;
        p = end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
        break;
    default:
        v->type = J_NUMBER;
        p = scan_number(p, end);
    }
    if (p) {
        v->p = start;
        v->len = (size_t)(p - start);
    }
    return p;
}

/* The members of the top-level object text[0, n), in order: calls
 * fn(name, value) for each (name unescaped into `name_buf`, which has room for
 * n bytes). Returns false when text is not exactly one JSON object or a
 * callback returns false. */
typedef bool (*member_fn)(void *ctx, const char *name, size_t nlen, const json_value_t *value);

static bool json_members(const char *text, size_t n, char *name_buf, member_fn fn, void *ctx) {
    const char *end = text + n;
    const char *p = skip_ws(text, end);
    if (p >= end || *p != '{')
        return false;
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return skip_ws(p + 1, end) == end;
    for (;;) {
        size_t nlen;
        if (p >= end || *p != '"' || (p = scan_string(p, end, name_buf, &nlen)) == NULL)
            return false;
        p = skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        json_value_t v;
        if ((p = scan_value(skip_ws(p + 1, end), end, &v, 1)) == NULL)
            return false;
        if (fn && !fn(ctx, name_buf, nlen, &v))
            return false;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        return p < end && *p == '}' && skip_ws(p + 1, end) == end;
    }
}

/* Whether v is a string equal to s[0, n) once unescaped. */
static bool string_is(const json_value_t *v, const char *s, size_t n, char *tmp) {
    size_t len;
    if (v->type != J_STRING)
        return false;
    scan_string(v->p, v->p + v->len, tmp, &len);
    return len == n && memcmp(tmp, s, n) == 0;
}

/* A NumericDate: a JSON number, as whole seconds (fractions dropped). */
static bool numeric_date(const json_value_t *v, int64_t *out) {
    if (v->type != J_NUMBER || v->len >= 40)
        return false;
    if (v->len <= 18 && v->p[0] != '-') { /* the usual case: whole seconds */
        int64_t n = 0;
        size_t i = 0;
        while (i < v->len && v->p[i] >= '0' && v->p[i] <= '9')
            n = n * 10 + (v->p[i++] - '0');
        if (i == v->len) {
            *out = n;
            return true;
        }
    }
    char tmp[40];
    memcpy(tmp, v->p, v->len);
    tmp[v->len] = '\0';
    double d = strtod(tmp, NULL);
    if (!(d > -9.2e18 && d < 9.2e18))
        return false;
    *out = (int64_t)d;
    return true;
}

/* The registered claims and header members a verification reads. */
#define MAX_NAMES 256

typedef struct members {
    json_value_t alg, kid, crit, exp, nbf, iat, iss, aud, sub;
    int count;
    /* The names seen so far, to refuse duplicates (offsets in `names`). */
    char *names;
    size_t names_len;
    size_t name_off[MAX_NAMES];
    size_t name_len[MAX_NAMES];
} members_t;

static bool on_member(void *ctx, const char *name, size_t nlen, const json_value_t *value) {
    members_t *m = ctx;
    if (m->count >= MAX_NAMES)
        return false;
    for (int i = 0; i < m->count; i++)
        if (m->name_len[i] == nlen && memcmp(m->names + m->name_off[i], name, nlen) == 0)
            return false; /* a duplicate name */
    m->name_off[m->count] = m->names_len;
    m->name_len[m->count++] = nlen;
    memmove(m->names + m->names_len, name, nlen);
    m->names_len += nlen;
    json_value_t *slot = NULL;
#define NAME(s) (nlen == sizeof s - 1 && memcmp(name, s, nlen) == 0)
    if (NAME("alg"))
        slot = &m->alg;
    else if (NAME("kid"))
        slot = &m->kid;
    else if (NAME("crit"))
        slot = &m->crit;
    else if (NAME("exp"))
        slot = &m->exp;
    else if (NAME("nbf"))
        slot = &m->nbf;
    else if (NAME("iat"))
        slot = &m->iat;
    else if (NAME("iss"))
        slot = &m->iss;
    else if (NAME("aud"))
        slot = &m->aud;
    else if (NAME("sub"))
        slot = &m->sub;
#undef NAME
    if (slot)
        *slot = *value;
    return true;
}

/* Reads the object text[0, n) into m; `work` has room for 2 * n bytes. */
static bool read_members(const char *text, size_t n, members_t *m, char *work) {
    memset(m, 0, offsetof(members_t, names));
    m->names = work + n;
    m->names_len = 0;
    return json_members(text, n, work, on_member, m);
}

/* ---- key sets ---- */

typedef struct jwt_key {
    mt_jwt_alg_t alg;
    char *kid; /* NULL: any */
    size_t kid_len;
    unsigned char *secret; /* HMAC */
    size_t secret_len;
    EVP_MAC_CTX *mac; /* HMAC: keyed once; each verification works on a copy */
    EVP_PKEY *pkey;   /* the others */
} jwt_key_t;

struct mt_jwt_keyset {
    atomic_int refs;
    int nkeys;
    int capacity;
    jwt_key_t keys[];
};

mt_jwt_keyset_t *mt_jwt_keyset_create(int capacity) {
    if (capacity < 0)
        return NULL;
    mt_jwt_keyset_t *ks = calloc(1, sizeof *ks + (size_t)capacity * sizeof(jwt_key_t));
    if (ks) {
        atomic_init(&ks->refs, 1);
        ks->capacity = capacity;
    }
    return ks;
}

mt_jwt_keyset_t *mt_jwt_keyset_ref(mt_jwt_keyset_t *ks) {
    if (ks)
        atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
    return ks;
}

void mt_jwt_keyset_unref(mt_jwt_keyset_t *ks) {
    if (ks == NULL || atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int i = 0; i < ks->nkeys; i++) {
        jwt_key_t *k = &ks->keys[i];
        free(k->kid);
        if (k->secret)
            OPENSSL_clear_free(k->secret, k->secret_len);
        EVP_MAC_CTX_free(k->mac);
        EVP_PKEY_free(k->pkey);
    }
    free(ks);
}

int mt_jwt_keyset_count(const mt_jwt_keyset_t *ks) {
    return ks ? ks->nkeys : 0;
}

static void set_why(const char **why, const char *text) {
    if (why)
        *why = text;
}

static jwt_key_t *new_key(mt_jwt_keyset_t *ks, mt_jwt_alg_t alg, const char *kid, size_t kid_len, int *rc) {
    if (ks->nkeys >= ks->capacity) {
        *rc = -ENOSPC;
        return NULL;
    }
    jwt_key_t *k = &ks->keys[ks->nkeys];
    memset(k, 0, sizeof *k);
    k->alg = alg;
    if (kid) {
        if ((k->kid = malloc(kid_len + 1)) == NULL) {
            *rc = -ENOMEM;
            return NULL;
        }
        memcpy(k->kid, kid, kid_len);
        k->kid[kid_len] = '\0';
        k->kid_len = kid_len;
    }
    *rc = 0;
    return k;
}

int mt_jwt_keyset_add_secret(mt_jwt_keyset_t *ks, mt_jwt_alg_t alg, const char *kid, size_t kid_len,
                             const unsigned char *secret, size_t len, const char **why) {
    if ((unsigned)alg >= MT_JWT_NALGS || algs[alg].family != FAM_HMAC) {
        set_why(why, "a secret is a key for HS256, HS384 or HS512 only");
        return -EINVAL;
    }
    if (len == 0) {
        set_why(why, "an empty HMAC secret");
        return -EINVAL;
    }
    int rc;
    jwt_key_t *k = new_key(ks, alg, kid, kid_len, &rc);
    if (k == NULL)
        return rc;
    if ((k->secret = OPENSSL_malloc(len)) == NULL) {
        free(k->kid);
        return -ENOMEM;
    }
    memcpy(k->secret, secret, len);
    k->secret_len = len;
    /* The keyed HMAC context, made once: a verification copies it instead of
     * fetching the algorithm and hashing the key again (HMAC() does both). */
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    k->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac);
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)algs[alg].md, 0),
                           OSSL_PARAM_construct_end()};
    if (k->mac == NULL || !EVP_MAC_init(k->mac, secret, len, params)) {
        EVP_MAC_CTX_free(k->mac);
        OPENSSL_clear_free(k->secret, len);
        free(k->kid);
        return -ENOMEM;
    }
    ks->nkeys++;
    return 0;
}

/* Whether pkey is a key for alg. */
static bool key_fits(EVP_PKEY *pkey, mt_jwt_alg_t alg, const char **why) {
    switch (algs[alg].family) {
    case FAM_HMAC:
        set_why(why, "HS algorithms take a secret, not a public key");
        return false;
    case FAM_RSA:
    case FAM_PSS:
        if (!EVP_PKEY_is_a(pkey, "RSA") && !(algs[alg].family == FAM_PSS && EVP_PKEY_is_a(pkey, "RSA-PSS"))) {
            set_why(why, "not an RSA key");
            return false;
        }
        if (EVP_PKEY_get_bits(pkey) < 2048) {
            set_why(why, "an RSA key of less than 2048 bits (RFC 7518 3.3)");
            return false;
        }
        return true;
    case FAM_EC: {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_is_a(pkey, "EC") ||
            !EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &glen) ||
            strcmp(group, algs[alg].curve) != 0) {
            set_why(why, "not an EC key on the algorithm's curve");
            return false;
        }
        return true;
    }
    case FAM_EDDSA:
        if (!EVP_PKEY_is_a(pkey, "ED25519") && !EVP_PKEY_is_a(pkey, "ED448")) {
            set_why(why, "not an Ed25519 or Ed448 key");
            return false;
        }
        return true;
    }
    return false;
}

static int add_pkey(mt_jwt_keyset_t *ks, mt_jwt_alg_t alg, const char *kid, size_t kid_len, EVP_PKEY *pkey,
                    const char **why) {
    if ((unsigned)alg >= MT_JWT_NALGS || !key_fits(pkey, alg, why)) {
        EVP_PKEY_free(pkey);
        return -EINVAL;
    }
    int rc;
    jwt_key_t *k = new_key(ks, alg, kid, kid_len, &rc);
    if (k == NULL) {
        EVP_PKEY_free(pkey);
        return rc;
    }
    k->pkey = pkey;
    ks->nkeys++;
    return 0;
}

int mt_jwt_keyset_add_pem(mt_jwt_keyset_t *ks, mt_jwt_alg_t alg, const char *kid, size_t kid_len, const char *pem,
                          size_t len, const char **why) {
    if ((unsigned)alg < MT_JWT_NALGS && algs[alg].family == FAM_HMAC) {
        set_why(why, "HS algorithms take a secret, not a PEM key");
        return -EINVAL;
    }
    if (len > INT32_MAX)
        return -EINVAL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        return -ENOMEM;
    EVP_PKEY *pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pkey == NULL) {
        /* A certificate: its public key. */
        (void)BIO_reset(bio);
        X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (cert) {
            pkey = X509_get_pubkey(cert);
            X509_free(cert);
        }
    }
    BIO_free(bio);
    if (pkey == NULL) {
        set_why(why, "not a PEM public key or certificate");
        return -EINVAL;
    }
    return add_pkey(ks, alg, kid, kid_len, pkey, why);
}

/* A JWK's members, as read. */
typedef struct jwk {
    json_value_t kty, alg, use, kid, n, e, crv, x, y, k;
} jwk_t;

static bool on_jwk_member(void *ctx, const char *name, size_t nlen, const json_value_t *value) {
    jwk_t *j = ctx;
    static const char *const names[] = {"kty", "alg", "use", "kid", "n", "e", "crv", "x", "y", "k"};
    json_value_t *slots[] = {&j->kty, &j->alg, &j->use, &j->kid, &j->n, &j->e, &j->crv, &j->x, &j->y, &j->k};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == nlen && memcmp(names[i], name, nlen) == 0) {
            if (slots[i]->type != J_NONE)
                return false;
            *slots[i] = *value;
        }
    return true;
}

/* A JWK member holding base64url: decoded into a fresh buffer (free()). */
static unsigned char *jwk_bytes(const json_value_t *v, char *tmp, size_t *len) {
    size_t slen;
    if (v->type != J_STRING)
        return NULL;
    scan_string(v->p, v->p + v->len, tmp, &slen);
    unsigned char *out = malloc(slen * 3 / 4 + 1);
    long n = out ? mt_jwt_base64url_decode(out, tmp, slen) : -1;
    if (n <= 0) {
        free(out);
        return NULL;
    }
    *len = (size_t)n;
    return out;
}

static EVP_PKEY *pkey_from_params(const char *type, OSSL_PARAM_BLD *bld) {
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = params ? EVP_PKEY_CTX_new_from_name(NULL, type, NULL) : NULL;
    if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *rsa_jwk(const jwk_t *j, char *tmp) {
    size_t nlen = 0, elen = 0;
    unsigned char *n = jwk_bytes(&j->n, tmp, &nlen), *e = jwk_bytes(&j->e, tmp, &elen);
    BIGNUM *bn = n ? BN_bin2bn(n, (int)nlen, NULL) : NULL, *be = e ? BN_bin2bn(e, (int)elen, NULL) : NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = pkey_from_params("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    return pkey;
}

static EVP_PKEY *ec_jwk(const jwk_t *j, char *tmp, int *implied) {
    static const struct {
        const char *crv, *group;
        int alg;
        size_t len;
    } curves[] = {{"P-256", "prime256v1", MT_JWT_ES256, 32},
                  {"P-384", "secp384r1", MT_JWT_ES384, 48},
                  {"P-521", "secp521r1", MT_JWT_ES512, 66}};
    int c = -1;
    for (int i = 0; i < 3; i++)
        if (string_is(&j->crv, curves[i].crv, strlen(curves[i].crv), tmp))
            c = i;
    if (c < 0)
        return NULL;
    *implied = curves[c].alg;
    size_t xlen = 0, ylen = 0;
    unsigned char *x = jwk_bytes(&j->x, tmp, &xlen), *y = jwk_bytes(&j->y, tmp, &ylen);
    unsigned char point[1 + 2 * 66];
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (x && y && bld && xlen == curves[c].len && ylen == curves[c].len) {
        point[0] = 0x04; /* uncompressed */
        memcpy(point + 1, x, xlen);
        memcpy(point + 1 + xlen, y, ylen);
        if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curves[c].group, 0) &&
            OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, 1 + 2 * xlen))
            pkey = pkey_from_params("EC", bld);
    }
    OSSL_PARAM_BLD_free(bld);
    free(x);
    free(y);
    return pkey;
}

static EVP_PKEY *okp_jwk(const jwk_t *j, char *tmp) {
    int type;
    if (string_is(&j->crv, "Ed25519", 7, tmp))
        type = EVP_PKEY_ED25519;
    else if (string_is(&j->crv, "Ed448", 5, tmp))
        type = EVP_PKEY_ED448;
    else
        return NULL;
    size_t xlen = 0;
    unsigned char *x = jwk_bytes(&j->x, tmp, &xlen);
    EVP_PKEY *pkey = x ? EVP_PKEY_new_raw_public_key(type, NULL, x, xlen) : NULL;
    free(x);
    return pkey;
}

int mt_jwt_keyset_add_jwk(mt_jwt_keyset_t *ks, int alg, const char *json, size_t len, const char **why) {
    jwk_t j;
    memset(&j, 0, sizeof j);
    char *tmp = malloc(len + 1);
    if (tmp == NULL)
        return -ENOMEM;
    int rc = -EINVAL;
    if (!json_members(json, len, tmp, on_jwk_member, &j) || j.kty.type != J_STRING) {
        set_why(why, "not a JWK (a JSON object with a kty)");
        goto done;
    }
    if (j.use.type != J_NONE && !string_is(&j.use, "sig", 3, tmp)) {
        set_why(why, "a JWK whose use is not sig");
        goto done;
    }
    if (j.alg.type != J_NONE) {
        size_t alen;
        if (j.alg.type != J_STRING) {
            set_why(why, "a JWK alg that is not a string");
            goto done;
        }
        scan_string(j.alg.p, j.alg.p + j.alg.len, tmp, &alen);
        int named = mt_jwt_alg_parse(tmp, alen);
        if (named < 0 || (alg >= 0 && named != alg)) {
            set_why(why, "a JWK for another algorithm");
            goto done;
        }
        alg = named;
    }
    char *kid = NULL;
    size_t kid_len = 0;
    if (j.kid.type == J_STRING) {
        if ((kid = malloc(j.kid.len)) == NULL) {
            rc = -ENOMEM;
            goto done;
        }
        scan_string(j.kid.p, j.kid.p + j.kid.len, kid, &kid_len);
    }
    EVP_PKEY *pkey = NULL;
    int implied = -1;
    if (string_is(&j.kty, "oct", 3, tmp)) {
        size_t klen = 0;
        unsigned char *k = jwk_bytes(&j.k, tmp, &klen);
        if (k == NULL || alg < 0)
            set_why(why, alg < 0 ? "an oct JWK needs an alg" : "an oct JWK without k");
        else
            rc = mt_jwt_keyset_add_secret(ks, (mt_jwt_alg_t)alg, kid, kid_len, k, klen, why);
        if (k)
            OPENSSL_cleanse(k, klen);
        free(k);
        free(kid);
        goto done;
    } else if (string_is(&j.kty, "RSA", 3, tmp)) {
        pkey = rsa_jwk(&j, tmp);
    } else if (string_is(&j.kty, "EC", 2, tmp)) {
        pkey = ec_jwk(&j, tmp, &implied);
    } else if (string_is(&j.kty, "OKP", 3, tmp)) {
        pkey = okp_jwk(&j, tmp);
        implied = MT_JWT_EDDSA;
    }
    if (alg < 0)
        alg = implied;
    if (pkey == NULL || alg < 0) {
        set_why(why, pkey == NULL ? "a JWK of an unknown type or with bad members" : "an RSA JWK needs an alg");
        EVP_PKEY_free(pkey);
        free(kid);
        goto done;
    }
    rc = add_pkey(ks, (mt_jwt_alg_t)alg, kid, kid_len, pkey, why);
    free(kid);
done:
    free(tmp);
    return rc;
}

/* ---- verification ---- */

static bool verify_hmac(const jwt_key_t *k, const unsigned char *input, size_t ilen, const unsigned char *sig,
                        size_t slen) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t mlen = 0;
    /* A copy of the keyed context: the key set's is shared by threads and only read. */
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(k->mac);
    bool ok = ctx && EVP_MAC_update(ctx, input, ilen) && EVP_MAC_final(ctx, mac, &mlen, sizeof mac);
    EVP_MAC_CTX_free(ctx);
    return ok && mlen == slen && CRYPTO_memcmp(mac, sig, mlen) == 0;
}

/* The JOSE signature r||s of ES* as the DER ECDSA-Sig-Value EVP verifies. */
static int ecdsa_der(const unsigned char *sig, size_t slen, int half, unsigned char **der) {
    if (slen != (size_t)(2 * half))
        return -1;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, half, NULL), *s = BN_bin2bn(sig + half, half, NULL);
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return -1;
    }
    *der = NULL;
    int n = i2d_ECDSA_SIG(es, der);
    ECDSA_SIG_free(es);
    return n;
}

static bool verify_pkey(const jwt_key_t *k, const unsigned char *input, size_t ilen, const unsigned char *sig,
                        size_t slen) {
    const char *mdname = algs[k->alg].md;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *der = NULL;
    bool ok = false;
    if (ctx == NULL || EVP_DigestVerifyInit_ex(ctx, &pctx, mdname, NULL, NULL, k->pkey, NULL) <= 0)
        goto done;
    if (algs[k->alg].family == FAM_PSS && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                                           EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
                                           EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, mdname, NULL) <= 0))
        goto done;
    if (algs[k->alg].family == FAM_EC) {
        int n = ecdsa_der(sig, slen, algs[k->alg].half, &der);
        if (n <= 0)
            goto done;
        sig = der;
        slen = (size_t)n;
    }
    ok = EVP_DigestVerify(ctx, sig, slen, input, ilen) == 1;
done:
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    return ok;
}

static bool verify_key(const jwt_key_t *k, const unsigned char *input, size_t ilen, const unsigned char *sig,
                       size_t slen) {
    return algs[k->alg].family == FAM_HMAC ? verify_hmac(k, input, ilen, sig, slen)
                                           : verify_pkey(k, input, ilen, sig, slen);
}

/* Whether the string claim v is one of list[0, n). */
static bool string_in(const json_value_t *v, const char *const *list, int n, char *tmp) {
    for (int i = 0; i < n; i++)
        if (string_is(v, list[i], strlen(list[i]), tmp))
            return true;
    return false;
}

static mt_jwt_error_t check_audience(const json_value_t *aud, const mt_jwt_policy_t *p, char *tmp) {
    if (aud->type == J_NONE)
        return p->naudiences ? MT_JWT_BAD_AUDIENCE : MT_JWT_OK;
    if (aud->type == J_STRING)
        return string_in(aud, p->audiences, p->naudiences, tmp) ? MT_JWT_OK : MT_JWT_BAD_AUDIENCE;
    if (aud->type != J_ARRAY)
        return MT_JWT_BAD_CLAIM;
    /* Each element must be a string; one must be ours. */
    const char *end = aud->p + aud->len - 1; /* at ']' */
    const char *q = skip_ws(aud->p + 1, end);
    bool found = false;
    while (q < end) {
        json_value_t e;
        if ((q = scan_value(q, end, &e, 2)) == NULL || e.type != J_STRING)
            return MT_JWT_BAD_CLAIM;
        found = found || string_in(&e, p->audiences, p->naudiences, tmp);
        q = skip_ws(q, end);
        if (q < end && *q == ',')
            q = skip_ws(q + 1, end);
    }
    return found ? MT_JWT_OK : MT_JWT_BAD_AUDIENCE;
}

static mt_jwt_error_t check_claims(const members_t *c, const mt_jwt_policy_t *p, int64_t now, char *tmp) {
    int64_t t;
    if (c->exp.type != J_NONE) {
        if (!numeric_date(&c->exp, &t))
            return MT_JWT_BAD_CLAIM;
        if (now >= t + p->leeway)
            return MT_JWT_EXPIRED;
    } else if (p->require_exp) {
        return MT_JWT_BAD_CLAIM;
    }
    if (c->nbf.type != J_NONE) {
        if (!numeric_date(&c->nbf, &t))
            return MT_JWT_BAD_CLAIM;
        if (now + p->leeway < t)
            return MT_JWT_IMMATURE;
    }
    if (c->iat.type != J_NONE) {
        if (!numeric_date(&c->iat, &t))
            return MT_JWT_BAD_CLAIM;
        if (now + p->leeway < t)
            return MT_JWT_IMMATURE;
    }
    if (p->nissuers) {
        if (c->iss.type != J_STRING)
            return c->iss.type == J_NONE ? MT_JWT_BAD_ISSUER : MT_JWT_BAD_CLAIM;
        if (!string_in(&c->iss, p->issuers, p->nissuers, tmp))
            return MT_JWT_BAD_ISSUER;
    } else if (c->iss.type != J_NONE && c->iss.type != J_STRING) {
        return MT_JWT_BAD_CLAIM;
    }
    if (c->sub.type != J_NONE && c->sub.type != J_STRING)
        return MT_JWT_BAD_CLAIM;
    return check_audience(&c->aud, p, tmp);
}

mt_jwt_error_t mt_jwt_verify(const mt_jwt_keyset_t *ks, const mt_jwt_policy_t *policy, const char *token, size_t len,
                             int64_t now, char *buf, size_t bufsize, mt_jwt_claims_t *out) {
    size_t max_len = policy->max_len ? policy->max_len : MT_JWT_MAX_LEN;
    memset(out, 0, sizeof *out);
    out->key = -1;
    if (len > max_len)
        return MT_JWT_TOO_LONG;
    if (bufsize < 3 * len + 16)
        return MT_JWT_NOMEM;
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (dot2 == NULL || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)) || dot1 == token || dot2 == dot1 + 1)
        return MT_JWT_MALFORMED;
    /* buf: header | payload | signature, decoded; then the work area. */
    unsigned char *ubuf = (unsigned char *)buf;
    long hlen = mt_jwt_base64url_decode(ubuf, token, (size_t)(dot1 - token));
    if (hlen <= 0)
        return MT_JWT_MALFORMED;
    char *payload = buf + hlen;
    long plen = mt_jwt_base64url_decode((unsigned char *)payload, dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (plen <= 0)
        return MT_JWT_MALFORMED;
    unsigned char *sig = ubuf + hlen + plen;
    long slen = mt_jwt_base64url_decode(sig, dot2 + 1, len - (size_t)(dot2 + 1 - token));
    if (slen < 0)
        return MT_JWT_MALFORMED;
    char *work = (char *)sig + slen; /* room left: at least 3 * len + 16 - 3 * len / 4 */
    size_t wmax = (size_t)hlen > (size_t)plen ? (size_t)hlen : (size_t)plen;
    if ((size_t)(buf + bufsize - work) < 2 * wmax + 8)
        return MT_JWT_NOMEM;

    members_t members; /* about 4 KiB of the handler thread's stack */
    members_t *m = &members;
    mt_jwt_error_t err = MT_JWT_MALFORMED;
    /* The header: alg (pinned), kid, no crit. */
    if (!read_members(buf, (size_t)hlen, m, work) || m->alg.type != J_STRING || m->crit.type != J_NONE ||
        (m->kid.type != J_NONE && m->kid.type != J_STRING))
        goto done;
    size_t alen;
    scan_string(m->alg.p, m->alg.p + m->alg.len, work, &alen);
    int alg = mt_jwt_alg_parse(work, alen);
    char kid[256];
    size_t kid_len = 0;
    bool has_kid = m->kid.type == J_STRING && m->kid.len <= sizeof kid;
    if (m->kid.type == J_STRING && !has_kid) {
        err = MT_JWT_NO_KEY;
        goto done;
    }
    if (has_kid)
        scan_string(m->kid.p, m->kid.p + m->kid.len, kid, &kid_len);
    /* The keys: those of the token's kid (when both have one) and of its algorithm. */
    bool kid_known = false, alg_known = false, tried = false;
    for (int i = 0; i < ks->nkeys && out->key < 0; i++) {
        const jwt_key_t *k = &ks->keys[i];
        if (has_kid && k->kid && (k->kid_len != kid_len || memcmp(k->kid, kid, kid_len) != 0))
            continue;
        kid_known = true;
        if ((int)k->alg != alg)
            continue;
        alg_known = true;
        tried = true;
        if (verify_key(k, (const unsigned char *)token, (size_t)(dot2 - token), sig, (size_t)slen))
            out->key = i;
    }
    if (out->key < 0) {
        err = tried ? MT_JWT_BAD_SIGNATURE : (!kid_known ? MT_JWT_NO_KEY : (!alg_known ? MT_JWT_BAD_ALG : err));
        goto done;
    }
    /* The claims. */
    err = MT_JWT_MALFORMED;
    if (!read_members(payload, (size_t)plen, m, work))
        goto done;
    if ((err = check_claims(m, policy, now, work)) != MT_JWT_OK)
        goto done;
    out->payload = payload;
    out->payload_len = (size_t)plen;
    if (m->sub.type == J_STRING) {
        /* Unescaped behind the signature, where the work area was. */
        scan_string(m->sub.p, m->sub.p + m->sub.len, work, &out->sub_len);
        out->sub = work;
    }
done:
    if (err != MT_JWT_OK)
        out->key = -1;
    return err;
}

/* ---- claim requirements ---- */

typedef struct claim_query {
    const char *name, *value;
    char *tmp;
    bool found;
} claim_query_t;

/* Whether the string v is `value` or has it as one of its space-separated words. */
static bool string_has_word(const json_value_t *v, const char *value, char *tmp) {
    size_t len, vlen = strlen(value);
    scan_string(v->p, v->p + v->len, tmp, &len);
    if (len == vlen && memcmp(tmp, value, vlen) == 0)
        return true;
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && tmp[j] != ' ')
            j++;
        if (j - i == vlen && memcmp(tmp + i, value, vlen) == 0)
            return true;
        i = j + 1;
    }
    return false;
}

static bool on_claim(void *ctx, const char *name, size_t nlen, const json_value_t *v) {
    claim_query_t *q = ctx;
    if (strlen(q->name) != nlen || memcmp(q->name, name, nlen) != 0)
        return true;
    if (q->value == NULL) {
        q->found = v->type != J_NULL && v->type != J_FALSE;
    } else if (v->type == J_STRING) {
        q->found = string_has_word(v, q->value, q->tmp);
    } else if (v->type == J_TRUE) {
        q->found = strcmp(q->value, "true") == 0;
    } else if (v->type == J_ARRAY) {
        const char *end = v->p + v->len - 1;
        const char *p = skip_ws(v->p + 1, end);
        while (p && p < end && !q->found) {
            json_value_t e;
            if ((p = scan_value(p, end, &e, 2)) == NULL)
                break;
            if (e.type == J_STRING && string_is(&e, q->value, strlen(q->value), q->tmp))
                q->found = true;
            p = skip_ws(p, end);
            if (p < end && *p == ',')
                p = skip_ws(p + 1, end);
        }
    }
    return true;
}

bool mt_jwt_claim_has(const char *payload, size_t len, const char *name, const char *value) {
    char stack[1024];
    char *tmp = len <= sizeof stack ? stack : malloc(len);
    if (tmp == NULL)
        return false;
    claim_query_t q = {name, value, tmp, false};
    /* The names are unescaped into the first half; values into the second. */
    char *names = len <= sizeof stack / 2 ? stack + sizeof stack / 2 : NULL;
    char *heap = names ? NULL : malloc(len + 1);
    if (names == NULL)
        names = heap;
    bool ok = names && json_members(payload, len, names, on_claim, &q);
    free(heap);
    if (tmp != stack)
        free(tmp);
    return ok && q.found;
}
