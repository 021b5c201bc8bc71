/* Unit tests of src/core/api/jwt.c: the JOSE RFCs' examples as vectors
 * (RFC 7515 A.1-A.5, RFC 7520 4.4, RFC 8037 A.4; RFC 7518 defines the
 * algorithms but has no JWS examples of its own), the refusals (alg none,
 * expired, not yet valid, bad signature, issuer, audience, crit, malformed
 * segments, oversized tokens), claim requirements and the names of
 * algorithms and errors. The tokens of the refusal tests are signed here with
 * HMAC. Strict base64url and JSON are test_jwt_json.c's; key import and the
 * RS -> HS swap are test_jwt_keys.c's. */
#include "jwt.c"
#include "jwt_json.c"
#include "jwt_keys.c"

#include <stdio.h>

#include "tap.h"

#include "jwt_sign.h"

/* RFC 7515 A.1-A.3: the claims {"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}. */
#define RFC_PAYLOAD "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
#define RFC_NOW 1300819000
static const char A1_JWK[] = "{\"kty\":\"oct\",\"alg\":\"HS256\",\"k\":\"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-"
                             "1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow\"}";
static const char A1_JWS[] =
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9." RFC_PAYLOAD ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
static const char A2_JWK[] =
    "{\"kty\":\"RSA\",\"alg\":\"RS256\",\"e\":\"AQAB\",\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_"
    "wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-"
    "bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_"
    "I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ\"}";
static const char A2_JWS[] =
    "eyJhbGciOiJSUzI1NiJ9." RFC_PAYLOAD ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-"
    "0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1d"
    "nZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--"
    "xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_"
    "IoypGlUPQGe77Rw";
static const char A3_JWK[] = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                             "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
static const char A3_JWS[] = "eyJhbGciOiJFUzI1NiJ9." RFC_PAYLOAD
                             ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
/* RFC 7515 A.4 (ES512) and RFC 8037 A.4 (EdDSA) sign payloads that are not
 * JSON ("Payload", "Example of Ed25519 signing"): their signatures must
 * verify, and then the token is refused as a JWT (MT_JWT_MALFORMED, not
 * MT_JWT_BAD_SIGNATURE). */
static const char A4_JWK[] =
    "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_"
    "NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk\",\"y\":\"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-"
    "x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2\"}";
static const char A4_JWS[] =
    "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA.AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-"
    "KGDKB34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnwNrmxYbSW9ERBXukOXolLzeO_Jn";
static const char ED_JWK[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";
static const char ED_JWS[] = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_"
                             "MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
/* RFC 7520 4.4 (the JOSE cookbook's HS256, with a kid; its payload is text). */
static const char C44_JWK[] = "{\"kty\":\"oct\",\"kid\":\"018c0ae5-4d9b-471b-bfd6-eef314bc7037\",\"use\":\"sig\","
                              "\"alg\":\"HS256\",\"k\":\"hJtXIZ2uSN5kbQfbtTNWbpdmhkV8FJG-Onbc6mxCcYg\"}";
static const char C44_JWS[] =
    "eyJhbGciOiJIUzI1NiIsImtpZCI6IjAxOGMwYWU1LTRkOWItNDcxYi1iZmQ2LWVlZjMxNGJjNzAzNyJ9."
    "SXTigJlzIGEgZGFuZ2Vyb3VzIGJ1c2luZXNzLCBGcm9kbywgZ29pbmcgb3V0IHlvdXIgZG9vci4gWW91IHN0ZXAgb250byB0aGUgcm9hZCwgYW5k"
    "IGlmIHlvdSBkb24ndCBrZWVwIHlvdXIgZmVldCwgdGhlcmXigJlzIG5vIGtub3dpbmcgd2hlcmUgeW91IG1pZ2h0IGJlIHN3ZXB0IG9mZiB0by4."
    "s0h6KThzkfBBBkLspW1h84VsJZFTsPPqMDA7g1Md7p0";
static const char A5_JWS[] = "eyJhbGciOiJub25lIn0." RFC_PAYLOAD ".";

static mt_jwt_keyset_t *jwk_set(const char *jwk, int alg) {
    mt_jwt_keyset_t *ks = mt_jwt_keyset_create(4);
    const char *why = NULL;
    int rc = mt_jwt_keyset_add_jwk(ks, alg, jwk, strlen(jwk), &why);
    if (rc != 0)
        diag("add_jwk: %d %s", rc, why ? why : "");
    return ks;
}

/* ---- tests ---- */

static void test_rfc_vectors(void) {
    mt_jwt_claims_t c;
    mt_jwt_keyset_t *ks = jwk_set(A1_JWK, -1);
    is_int(verify(ks, &plain, A1_JWS, RFC_NOW, &c), MT_JWT_OK, "RFC 7515 A.1 HS256 verifies");
    ok(c.payload_len > 0 && memmem(c.payload, c.payload_len, "\"iss\":\"joe\"", 11) != NULL, "A.1 claims returned");
    ok(c.sub == NULL && c.key == 0, "A.1: no sub; key 0");
    is_int(verify(ks, &plain, A1_JWS, 1300819380, NULL), MT_JWT_EXPIRED, "A.1 at exp: expired");
    mt_jwt_policy_t lee = {.leeway = 60};
    is_int(verify(ks, &lee, A1_JWS, 1300819380 + 59, NULL), MT_JWT_OK, "A.1 within the leeway");
    is_int(verify(ks, &lee, A1_JWS, 1300819380 + 60, NULL), MT_JWT_EXPIRED, "A.1 past the leeway");
    is_int(verify(ks, &plain, A5_JWS, RFC_NOW, NULL), MT_JWT_BAD_ALG, "RFC 7515 A.5 alg none refused");
    mt_jwt_keyset_unref(ks);

    ks = jwk_set(A2_JWK, -1);
    is_int(mt_jwt_keyset_count(ks), 1, "A.2 RSA JWK imported");
    is_int(verify(ks, &plain, A2_JWS, RFC_NOW, NULL), MT_JWT_OK, "RFC 7515 A.2 RS256 verifies");
    is_int(verify(ks, &plain, A1_JWS, RFC_NOW, NULL), MT_JWT_BAD_ALG, "an HS256 token on an RS256 key: refused");
    mt_jwt_keyset_unref(ks);
    ks = jwk_set(A2_JWK + 0, MT_JWT_PS256);
    is_int(mt_jwt_keyset_count(ks), 0, "an RS256 JWK asked as PS256: refused");
    mt_jwt_keyset_unref(ks);

    ks = jwk_set(A3_JWK, -1);
    is_int(verify(ks, &plain, A3_JWS, RFC_NOW, NULL), MT_JWT_OK, "RFC 7515 A.3 ES256 verifies");
    char bad[sizeof A3_JWS];
    memcpy(bad, A3_JWS, sizeof bad);
    bad[sizeof bad - 5] = bad[sizeof bad - 5] == 'A' ? 'B' : 'A';
    is_int(verify(ks, &plain, bad, RFC_NOW, NULL), MT_JWT_BAD_SIGNATURE, "A.3 with a changed signature");
    mt_jwt_keyset_unref(ks);

    ks = jwk_set(A4_JWK, -1);
    is_int(verify(ks, &plain, A4_JWS, RFC_NOW, NULL), MT_JWT_MALFORMED,
           "RFC 7515 A.4 ES512: signature verifies, payload is not a claims set");
    memcpy(bad, A4_JWS, 40);
    char bad4[sizeof A4_JWS];
    memcpy(bad4, A4_JWS, sizeof bad4);
    bad4[sizeof bad4 - 4] = bad4[sizeof bad4 - 4] == 'A' ? 'B' : 'A';
    is_int(verify(ks, &plain, bad4, RFC_NOW, NULL), MT_JWT_BAD_SIGNATURE, "A.4 with a changed signature");
    mt_jwt_keyset_unref(ks);

    ks = jwk_set(C44_JWK, -1);
    is_int(verify(ks, &plain, C44_JWS, RFC_NOW, NULL), MT_JWT_MALFORMED,
           "RFC 7520 4.4 HS256 with its kid: signature verifies, payload is text");
    char bad44[sizeof C44_JWS];
    memcpy(bad44, C44_JWS, sizeof bad44);
    bad44[sizeof bad44 - 3] = bad44[sizeof bad44 - 3] == 'A' ? 'B' : 'A';
    is_int(verify(ks, &plain, bad44, RFC_NOW, NULL), MT_JWT_BAD_SIGNATURE, "RFC 7520 4.4 with a changed signature");
    mt_jwt_keyset_unref(ks);

    ks = jwk_set(ED_JWK, -1);
    is_int(verify(ks, &plain, ED_JWS, RFC_NOW, NULL), MT_JWT_MALFORMED,
           "RFC 8037 A.4 EdDSA: signature verifies, payload is not a claims set");
    char bad5[sizeof ED_JWS];
    memcpy(bad5, ED_JWS, sizeof bad5);
    bad5[sizeof bad5 - 6] = bad5[sizeof bad5 - 6] == 'A' ? 'B' : 'A';
    is_int(verify(ks, &plain, bad5, RFC_NOW, NULL), MT_JWT_BAD_SIGNATURE, "RFC 8037 A.4 with a changed signature");
    mt_jwt_keyset_unref(ks);
}

static void test_claims(void) {
    mt_jwt_keyset_t *ks = mt_jwt_keyset_create(2);
    ok(mt_jwt_keyset_add_secret(ks, MT_JWT_HS256, NULL, 0, (const unsigned char *)secret, 32, NULL) == 0,
       "secret added");
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    mt_jwt_claims_t c;
    is_int(verify(ks, &plain, hs256(hdr, "{\"sub\":\"42\",\"exp\":2000}", secret, 32), 1000, &c), MT_JWT_OK,
           "valid token");
    ok(c.sub_len == 2 && memcmp(c.sub, "42", 2) == 0, "sub returned");
    is_int(verify(ks, &plain, hs256(hdr, "{\"sub\":\"a\\u00e9\\\"\"}", secret, 32), 1000, &c), MT_JWT_OK,
           "escaped sub");
    ok(c.sub_len == 4 && memcmp(c.sub, "a\xc3\xa9\"", 4) == 0, "sub unescaped");
    is_int(verify(ks, &plain, hs256(hdr, "{\"exp\":999}", secret, 32), 1000, NULL), MT_JWT_EXPIRED, "expired");
    is_int(verify(ks, &plain, hs256(hdr, "{\"nbf\":1001}", secret, 32), 1000, NULL), MT_JWT_IMMATURE, "nbf ahead");
    is_int(verify(ks, &plain, hs256(hdr, "{\"iat\":1500}", secret, 32), 1000, NULL), MT_JWT_IMMATURE, "iat ahead");
    is_int(verify(ks, &plain, hs256(hdr, "{\"exp\":\"2000\"}", secret, 32), 1000, NULL), MT_JWT_BAD_CLAIM,
           "exp as a string");
    is_int(verify(ks, &plain, hs256(hdr, "{\"sub\":42}", secret, 32), 1000, NULL), MT_JWT_BAD_CLAIM, "sub as a number");
    mt_jwt_policy_t req = {.require_exp = true};
    is_int(verify(ks, &req, hs256(hdr, "{\"sub\":\"1\"}", secret, 32), 1000, NULL), MT_JWT_BAD_CLAIM,
           "exp required and missing");
    const char *iss[] = {"https://issuer.example"};
    const char *aud[] = {"api", "other"};
    mt_jwt_policy_t p = {.issuers = iss, .nissuers = 1, .audiences = aud, .naudiences = 2};
    is_int(verify(ks, &p, hs256(hdr, "{\"iss\":\"https://issuer.example\",\"aud\":\"api\"}", secret, 32), 1000, NULL),
           MT_JWT_OK, "issuer and audience");
    is_int(verify(ks, &p, hs256(hdr, "{\"iss\":\"https://issuer.example\",\"aud\":[\"x\",\"other\"]}", secret, 32),
                  1000, NULL),
           MT_JWT_OK, "audience in an array");
    is_int(verify(ks, &p, hs256(hdr, "{\"iss\":\"https://evil.example\",\"aud\":\"api\"}", secret, 32), 1000, NULL),
           MT_JWT_BAD_ISSUER, "wrong issuer");
    is_int(verify(ks, &p, hs256(hdr, "{\"aud\":\"api\"}", secret, 32), 1000, NULL), MT_JWT_BAD_ISSUER,
           "missing issuer");
    is_int(verify(ks, &p, hs256(hdr, "{\"iss\":\"https://issuer.example\",\"aud\":[\"x\"]}", secret, 32), 1000, NULL),
           MT_JWT_BAD_AUDIENCE, "wrong audience");
    is_int(verify(ks, &p, hs256(hdr, "{\"iss\":\"https://issuer.example\"}", secret, 32), 1000, NULL),
           MT_JWT_BAD_AUDIENCE, "missing audience");
    is_int(verify(ks, &plain, hs256(hdr, "{\"aud\":\"api\"}", secret, 32), 1000, NULL), MT_JWT_BAD_AUDIENCE,
           "an audience when none is configured (RFC 7519 4.1.3)");
    is_int(
        verify(ks, &p, hs256(hdr, "{\"iss\":\"https://issuer.example\",\"aud\":[\"api\",1]}", secret, 32), 1000, NULL),
        MT_JWT_BAD_CLAIM, "an audience array with a number");
    is_int(verify(ks, &plain, hs256("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", "{}", secret, 32), 1000, NULL),
           MT_JWT_MALFORMED, "crit refused");
    is_int(verify(ks, &plain, hs256(hdr, "{}", "another secret of thirty-two b!!", 32), 1000, NULL),
           MT_JWT_BAD_SIGNATURE, "wrong secret");
    is_int(verify(ks, &plain, hs256("{\"alg\":\"HS384\"}", "{}", secret, 32), 1000, NULL), MT_JWT_BAD_ALG,
           "HS384 header on an HS256 key");
    is_int(verify(ks, &plain, hs256("{\"alg\":\"none\"}", "{}", secret, 32), 1000, NULL), MT_JWT_BAD_ALG,
           "alg none with a signature");
    mt_jwt_keyset_unref(ks);
}

static void test_malformed(void) {
    mt_jwt_keyset_t *ks = mt_jwt_keyset_create(1);
    mt_jwt_keyset_add_secret(ks, MT_JWT_HS256, NULL, 0, (const unsigned char *)secret, 32, NULL);
    const char *good = hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"x\"}", secret, 32);
    is_int(verify(ks, &plain, good, 0, NULL), MT_JWT_OK, "the base token verifies");
    static const char *const cases[] = {"", ".", "..", "a.b", "a.b.c.d", ".e30.", "e30..", "e30.e30.e30.e30.e30"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        is_int(verify(ks, &plain, cases[i], 0, NULL), MT_JWT_MALFORMED, "malformed: '%s'", cases[i]);
    mt_jwt_policy_t small = {.max_len = 20};
    is_int(verify(ks, &small, good, 0, NULL), MT_JWT_TOO_LONG, "over max_len");
    static char big[MT_JWT_MAX_LEN + 2];
    memset(big, 'A', sizeof big - 1);
    is_int(verify(ks, &plain, big, 0, NULL), MT_JWT_TOO_LONG, "over the default max_len");
    mt_jwt_claims_t c;
    is_int(mt_jwt_verify(ks, &plain, good, strlen(good), 0, buf, 10, &c), MT_JWT_NOMEM, "a buffer too small");
    mt_jwt_keyset_unref(ks);
}

static void test_claim_has(void) {
    static const char c[] = "{\"scope\":\"read write admin\",\"roles\":[\"a\",\"b\"],\"staff\":true,\"n\":null}";
    size_t n = strlen(c);
    ok(mt_jwt_claim_has(c, n, "scope", "admin"), "scope word");
    ok(mt_jwt_claim_has(c, n, "scope", "read write admin"), "whole scope");
    ok(!mt_jwt_claim_has(c, n, "scope", "adm"), "no partial word");
    ok(mt_jwt_claim_has(c, n, "roles", "b"), "array member");
    ok(!mt_jwt_claim_has(c, n, "roles", "c"), "array non-member");
    ok(mt_jwt_claim_has(c, n, "staff", "true"), "true");
    ok(mt_jwt_claim_has(c, n, "staff", NULL), "present");
    ok(!mt_jwt_claim_has(c, n, "n", NULL), "null is absent");
    ok(!mt_jwt_claim_has(c, n, "missing", NULL), "absent");
}

static void test_names(void) {
    is_int(mt_jwt_alg_parse("PS256", 5), MT_JWT_PS256, "PS256 parses");
    is_int(mt_jwt_alg_parse("none", 4), -1, "none is not an algorithm");
    is_str(mt_jwt_alg_name(MT_JWT_EDDSA), "EdDSA", "EdDSA name");
    is_str(mt_jwt_error_text(MT_JWT_EXPIRED), "token expired", "error text");
}

int main(void) {
    test_rfc_vectors();
    test_claims();
    test_malformed();
    test_claim_has();
    test_names();
    return done_testing();
}
