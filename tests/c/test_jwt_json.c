/* Unit tests of src/core/api/jwt_json.c: strict base64url (no padding, no
 * '+', zero trailing bits) and the strict JSON reader (RFC 8259: trailing
 * commas, control characters, invalid UTF-8, leading zeros, lone
 * surrogates, nesting, duplicate top-level names), both directly and as
 * mt_jwt_verify sees them in tokens signed here with HMAC: a token that
 * breaks them is MT_JWT_MALFORMED even with a valid signature. */
#include "jwt_json.c"
#include "jwt.c"
#include "jwt_keys.c"

#include <stdio.h>

#include "tap.h"

#include "jwt_sign.h"

static mt_jwt_keyset_t *secret_set(void) {
    mt_jwt_keyset_t *ks = mt_jwt_keyset_create(1);
    mt_jwt_keyset_add_secret(ks, MT_JWT_HS256, NULL, 0, (const unsigned char *)secret, 32, NULL);
    return ks;
}

static void test_base64url(void) {
    mt_jwt_keyset_t *ks = secret_set();
    const char *good = hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"x\"}", secret, 32);
    is_int(verify(ks, &plain, good, 0, NULL), MT_JWT_OK, "the base token verifies");
    char t[512];
    snprintf(t, sizeof t, "%s=", good);
    is_int(verify(ks, &plain, t, 0, NULL), MT_JWT_MALFORMED, "padding refused");
    snprintf(t, sizeof t, " %s", good);
    is_int(verify(ks, &plain, t, 0, NULL), MT_JWT_MALFORMED, "a space refused");
    strcpy(t, good);
    t[3] = '+';
    is_int(verify(ks, &plain, t, 0, NULL), MT_JWT_MALFORMED, "base64 '+' refused");
    /* "e30" is {} ; "e31" has non-zero trailing bits. */
    unsigned char out[8];
    is_int(mt_jwt_base64url_decode(out, "e30", 3), 2, "e30 decodes");
    is_int(mt_jwt_base64url_decode(out, "e31", 3), -1, "non-zero trailing bits refused");
    is_int(mt_jwt_base64url_decode(out, "e", 1), -1, "one char refused");
    mt_jwt_keyset_unref(ks);
}

static void test_strict_json(void) {
    mt_jwt_keyset_t *ks = secret_set();
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    is_int(verify(ks, &plain, hs256(hdr, " {\"a\" : [1, {\"b\": null}], \"c\":0.5e+3 } ", secret, 32), 1000, NULL),
           MT_JWT_OK, "a strict object with whitespace, nesting and numbers verifies");
    is_int(verify(ks, &plain, hs256(hdr, "{\"sub\":\"1\",\"sub\":\"2\"}", secret, 32), 1000, NULL), MT_JWT_MALFORMED,
           "duplicate claim names");
    is_int(verify(ks, &plain, hs256("{\"alg\":\"HS256\",\"alg\":\"none\"}", "{}", secret, 32), 1000, NULL),
           MT_JWT_MALFORMED, "duplicate header names");
    is_int(verify(ks, &plain, hs256(hdr, "{\"a\":1,}", secret, 32), 1000, NULL), MT_JWT_MALFORMED, "trailing comma");
    is_int(verify(ks, &plain, hs256(hdr, "[1]", secret, 32), 1000, NULL), MT_JWT_MALFORMED, "claims not an object");
    is_int(verify(ks, &plain, hs256(hdr, "{\"a\":\"\x01\"}", secret, 32), 1000, NULL), MT_JWT_MALFORMED,
           "control character");
    is_int(verify(ks, &plain, hs256(hdr, "{\"a\":\"\xff\"}", secret, 32), 1000, NULL), MT_JWT_MALFORMED,
           "invalid UTF-8");
    is_int(verify(ks, &plain, hs256(hdr, "{\"a\":01}", secret, 32), 1000, NULL), MT_JWT_MALFORMED, "leading zero");
    is_int(verify(ks, &plain, hs256(hdr, "{\"a\":\"\\ud800\"}", secret, 32), 1000, NULL), MT_JWT_MALFORMED,
           "lone surrogate");
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    char claims[220];
    snprintf(claims, sizeof claims, "{\"a\":%.*s}", 200, deep);
    is_int(verify(ks, &plain, hs256(hdr, claims, secret, 32), 1000, NULL), MT_JWT_MALFORMED, "nesting too deep");
    mt_jwt_keyset_unref(ks);
}

/* The member callback of test_reader: the names, in order, joined by ','. */
static bool on_name(void *ctx, const char *name, size_t nlen, const json_value_t *value) {
    char *names = ctx;
    size_t n = strlen(names);
    if (n)
        names[n++] = ',';
    memcpy(names + n, name, nlen);
    names[n + nlen] = '\0';
    return value->type != J_NONE;
}

static const char *scan(const char *text, json_value_t *v) {
    return mt_json_scan_value(text, text + strlen(text), v, 1);
}

static void test_reader(void) {
    static const char s[] = "\"a\\u00e9\\ud83d\\ude00\\n\\/\" tail";
    char dst[sizeof s];
    size_t dlen = 0;
    const char *after = mt_json_scan_string(s, s + sizeof s - 1, dst, &dlen);
    ok(after == s + sizeof s - 1 - 5, "a string ends after its closing quote");
    ok(dlen == 9 && memcmp(dst, "a\xc3\xa9\xf0\x9f\x98\x80\n/", 9) == 0, "escapes and a surrogate pair unescaped");

    json_value_t v;
    ok(scan("0.5e+3,", &v) != NULL && v.type == J_NUMBER && v.len == 6, "a number's extent");
    ok(scan("1.e5", &v) == NULL, "a fraction without digits refused");
    ok(scan("tru", &v) == NULL, "a truncated literal refused");
    ok(scan("[1,]", &v) == NULL, "a trailing comma in an array refused");
    static const char arr[] = "[\"x\", {\"y\": [true, false, null]}] ,";
    ok(scan(arr, &v) == arr + sizeof arr - 3 && v.type == J_ARRAY && v.len == sizeof arr - 3, "an array's extent");

    int64_t t = 0;
    ok(scan("1.9e3", &v) && mt_jwt_numeric_date(&v, &t) && t == 1900, "a NumericDate with an exponent");
    ok(scan("1700000000.75", &v) && mt_jwt_numeric_date(&v, &t) && t == 1700000000, "fractions dropped");
    ok(scan("1e30", &v) && !mt_jwt_numeric_date(&v, &t), "a NumericDate out of range refused");
    ok(scan("\"5\"", &v) && !mt_jwt_numeric_date(&v, &t), "a string is no NumericDate");
    char tmp[16];
    ok(scan("\"s\\u0075b\"", &v) && mt_json_string_is(&v, "sub", 3, tmp), "string_is compares unescaped text");
    ok(!mt_json_string_is(&v, "su", 2, tmp), "string_is compares lengths");

    char names[64] = "", work[64];
    static const char obj[] = " { \"b\" : [1, {\"z\": null}], \"a\\u0062\":true } ";
    ok(mt_json_members(obj, strlen(obj), work, on_name, names) && strcmp(names, "b,ab") == 0,
       "members in order, names unescaped");
    ok(!mt_json_members("{} x", 4, work, NULL, NULL), "text after the object refused");
    ok(!mt_json_members("[]", 2, work, NULL, NULL), "an array is not an object");

    /* MT_JWT_MAX_NAMES distinct names pass; one more is refused. */
    static char many[(MT_JWT_MAX_NAMES + 1) * 10 + 2], big_work[sizeof many * 2];
    members_t m;
    for (int count = MT_JWT_MAX_NAMES; count <= MT_JWT_MAX_NAMES + 1; count++) {
        size_t n = 0;
        many[n++] = '{';
        for (int i = 0; i < count; i++)
            n += (size_t)sprintf(many + n, "%s\"n%d\":1", i ? "," : "", i);
        many[n++] = '}';
        bool read = mt_jwt_read_members(many, n, &m, big_work);
        ok(count == MT_JWT_MAX_NAMES ? read && m.count == count : !read, "%d top-level names %s", count,
           count == MT_JWT_MAX_NAMES ? "read" : "refused");
    }
}

int main(void) {
    test_base64url();
    test_strict_json();
    test_reader();
    return done_testing();
}
