/* Strict base64url (RFC 4648 5) and the strict JSON reader (RFC 8259) of the
 * JWT verifier: mt_jwt_base64url_decode (declared in jwt.h) and the reader
 * of jwt_json.h, with the member iteration that jwt.c and jwt_keys.c build
 * on (a token's header and claims, a JWK, a claim requirement).
 *
 * Threads: no state; each function works on the caller's text and buffers
 * and allocates nothing, so any thread may call any of them at any time. */
#include "jwt_json.h"

#include <stdlib.h>
#include <string.h>

#include "jwt.h"

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

#define JSON_MAX_DEPTH 32

const char *mt_json_skip_ws(const char *p, const char *end) {
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
const char *mt_json_scan_string(const char *p, const char *end, char *dst, size_t *dlen) {
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

/* Scans the object or array at p. */
static const char *scan_container(const char *p, const char *end, int depth) {
    bool object = *p == '{';
    char close = object ? '}' : ']';
    p = mt_json_skip_ws(p + 1, end);
    if (p < end && *p == close)
        return p + 1;
    for (;;) {
        json_value_t v;
        if (object) {
            if (p >= end || *p != '"')
                return NULL;
            if ((p = mt_json_scan_string(p, end, NULL, NULL)) == NULL)
                return NULL;
            p = mt_json_skip_ws(p, end);
            if (p >= end || *p != ':')
                return NULL;
            p = mt_json_skip_ws(p + 1, end);
        }
        if ((p = mt_json_scan_value(p, end, &v, depth + 1)) == NULL)
            return NULL;
        p = mt_json_skip_ws(p, end);
        if (p < end && *p == ',') {
            p = mt_json_skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == close)
            return p + 1;
        return NULL;
    }
}

const char *mt_json_scan_value(const char *p, const char *end, json_value_t *v, int depth) {
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
        p = mt_json_scan_string(p, end, NULL, NULL);
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
bool mt_json_members(const char *text, size_t n, char *name_buf, mt_json_member_fn fn, void *ctx) {
    const char *end = text + n;
    const char *p = mt_json_skip_ws(text, end);
    if (p >= end || *p != '{')
        return false;
    p = mt_json_skip_ws(p + 1, end);
    if (p < end && *p == '}')
        return mt_json_skip_ws(p + 1, end) == end;
    for (;;) {
        size_t nlen;
        if (p >= end || *p != '"' || (p = mt_json_scan_string(p, end, name_buf, &nlen)) == NULL)
            return false;
        p = mt_json_skip_ws(p, end);
        if (p >= end || *p != ':')
            return false;
        json_value_t v;
        if ((p = mt_json_scan_value(mt_json_skip_ws(p + 1, end), end, &v, 1)) == NULL)
            return false;
        if (fn && !fn(ctx, name_buf, nlen, &v))
            return false;
        p = mt_json_skip_ws(p, end);
        if (p < end && *p == ',') {
            p = mt_json_skip_ws(p + 1, end);
            continue;
        }
        return p < end && *p == '}' && mt_json_skip_ws(p + 1, end) == end;
    }
}

/* Whether v is a string equal to s[0, n) once unescaped. */
bool mt_json_string_is(const json_value_t *v, const char *s, size_t n, char *tmp) {
    size_t len;
    if (v->type != J_STRING)
        return false;
    mt_json_scan_string(v->p, v->p + v->len, tmp, &len);
    return len == n && memcmp(tmp, s, n) == 0;
}

/* A NumericDate: a JSON number, as whole seconds (fractions dropped). */
bool mt_jwt_numeric_date(const json_value_t *v, int64_t *out) {
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
static bool on_member(void *ctx, const char *name, size_t nlen, const json_value_t *value) {
    members_t *m = ctx;
    if (m->count >= MT_JWT_MAX_NAMES)
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
bool mt_jwt_read_members(const char *text, size_t n, members_t *m, char *work) {
    memset(m, 0, offsetof(members_t, names));
    m->names = work + n;
    m->names_len = 0;
    return mt_json_members(text, n, work, on_member, m);
}
