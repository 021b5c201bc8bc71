/* Unit tests of src/core/api/jwt_keys.c: keys in PEM (RSA for RS256 and
 * PS256, EC P-384, Ed25519) generated here by libcrypto and refused when they
 * do not fit their algorithm (an RSA key under 2048 bits, an EC key on
 * another curve, a PEM key for HS256, a secret for RS256), the pinning that
 * defeats the RS -> HS swap, kid matching, a full set, JWKs refused (use
 * enc, broken JSON, an oct key without alg) and reference counting. The JWK
 * imports of the RFC examples are in test_jwt.c, with their tokens. */
#include "jwt_keys.c"
#include "jwt.c"
#include "jwt_json.c"

#include <stdio.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "tap.h"

#include "jwt_sign.h"

/* header.claims signed with pkey (digest md, NULL for EdDSA); EC signatures in JOSE form. */
static const char *sign_pkey(const char *header, const char *claims, EVP_PKEY *pkey, const char *md, int ec_half,
                             bool pss) {
    size_t n = b64url(token, (const unsigned char *)header, strlen(header));
    token[n++] = '.';
    n += b64url(token + n, (const unsigned char *)claims, strlen(claims));
    unsigned char sig[1024];
    size_t slen = sizeof sig;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    EVP_DigestSignInit_ex(ctx, &pctx, md, NULL, NULL, pkey, NULL);
    if (pss) {
        EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    EVP_DigestSign(ctx, sig, &slen, (unsigned char *)token, n);
    EVP_MD_CTX_free(ctx);
    if (ec_half) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)slen);
        const BIGNUM *r, *s;
        ECDSA_SIG_get0(es, &r, &s);
        BN_bn2binpad(r, sig, ec_half);
        BN_bn2binpad(s, sig + ec_half, ec_half);
        slen = 2 * (size_t)ec_half;
        ECDSA_SIG_free(es);
    }
    token[n++] = '.';
    b64url(token + n, sig, slen);
    return token;
}

static char *public_pem(EVP_PKEY *pkey, size_t *len) {
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, pkey);
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    char *copy = malloc((size_t)n + 1);
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    return copy;
}

/* ---- tests ---- */

static void test_keys(void) {
    /* RSA: RS256, PS256 and the swap. */
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    size_t plen;
    char *pem = public_pem(rsa, &plen);
    mt_jwt_keyset_t *ks = mt_jwt_keyset_create(4);
    const char *why = NULL;
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_RS256, "rsa1", 4, pem, plen, &why), 0, "RSA PEM for RS256");
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_PS256, "rsa2", 4, pem, plen, &why), 0, "the same key for PS256");
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_HS256, NULL, 0, pem, plen, &why), -EINVAL, "a PEM key for HS256: refused");
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_ES256, NULL, 0, pem, plen, &why), -EINVAL, "an RSA key for ES256: refused");
    is_int(
        verify(ks, &plain, sign_pkey("{\"alg\":\"RS256\",\"kid\":\"rsa1\"}", "{}", rsa, "SHA256", 0, false), 0, NULL),
        MT_JWT_OK, "RS256 signed here verifies");
    is_int(verify(ks, &plain, sign_pkey("{\"alg\":\"PS256\"}", "{}", rsa, "SHA256", 0, true), 0, NULL), MT_JWT_OK,
           "PS256 verifies");
    is_int(verify(ks, &plain, sign_pkey("{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", "{}", rsa, "SHA256", 0, true), 0, NULL),
           MT_JWT_BAD_ALG, "PS256 under the kid of the RS256 key: refused");
    is_int(
        verify(ks, &plain, sign_pkey("{\"alg\":\"RS256\",\"kid\":\"nope\"}", "{}", rsa, "SHA256", 0, false), 0, NULL),
        MT_JWT_NO_KEY, "unknown kid");
    is_int(verify(ks, &plain, hs256("{\"alg\":\"HS256\"}", "{\"sub\":\"admin\"}", pem, plen), 0, NULL), MT_JWT_BAD_ALG,
           "RS -> HS swap (the PEM as the HMAC secret): refused");
    is_int(verify(ks, &plain, hs256("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", "{}", pem, plen), 0, NULL), MT_JWT_BAD_ALG,
           "RS -> HS swap with the key's kid: refused");
    mt_jwt_keyset_unref(ks);
    free(pem);
    EVP_PKEY_free(rsa);

    EVP_PKEY *small = EVP_RSA_gen(1024);
    pem = public_pem(small, &plen);
    ks = mt_jwt_keyset_create(1);
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_RS256, NULL, 0, pem, plen, &why), -EINVAL, "a 1024-bit RSA key: refused");
    mt_jwt_keyset_unref(ks);
    free(pem);
    EVP_PKEY_free(small);

    /* EC P-384 and Ed25519. */
    EVP_PKEY *ec = EVP_EC_gen("P-384");
    pem = public_pem(ec, &plen);
    ks = mt_jwt_keyset_create(2);
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_ES256, NULL, 0, pem, plen, &why), -EINVAL,
           "a P-384 key for ES256: refused");
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_ES384, NULL, 0, pem, plen, &why), 0, "a P-384 key for ES384");
    is_int(verify(ks, &plain, sign_pkey("{\"alg\":\"ES384\"}", "{\"sub\":\"e\"}", ec, "SHA384", 48, false), 0, NULL),
           MT_JWT_OK, "ES384 verifies");
    mt_jwt_keyset_unref(ks);
    free(pem);
    EVP_PKEY_free(ec);

    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    pem = public_pem(ed, &plen);
    ks = mt_jwt_keyset_create(1);
    is_int(mt_jwt_keyset_add_pem(ks, MT_JWT_EDDSA, NULL, 0, pem, plen, &why), 0, "an Ed25519 key for EdDSA");
    is_int(verify(ks, &plain, sign_pkey("{\"alg\":\"EdDSA\"}", "{\"sub\":\"e\"}", ed, NULL, 0, false), 0, NULL),
           MT_JWT_OK, "EdDSA verifies");
    mt_jwt_keyset_unref(ks);
    free(pem);
    EVP_PKEY_free(ed);

    ks = mt_jwt_keyset_create(1);
    is_int(mt_jwt_keyset_add_secret(ks, MT_JWT_RS256, NULL, 0, (const unsigned char *)"x", 1, &why), -EINVAL,
           "a secret for RS256: refused");
    is_int(mt_jwt_keyset_add_secret(ks, MT_JWT_HS256, NULL, 0, (const unsigned char *)"x", 1, &why), 0, "one key");
    is_int(mt_jwt_keyset_add_secret(ks, MT_JWT_HS256, NULL, 0, (const unsigned char *)"y", 1, &why), -ENOSPC,
           "the set is full");
    static const char enc[] = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"use\":\"enc\",\"x\":\"a\",\"y\":\"b\"}";
    mt_jwt_keyset_t *ks2 = mt_jwt_keyset_create(1);
    is_int(mt_jwt_keyset_add_jwk(ks2, -1, enc, strlen(enc), &why), -EINVAL, "a JWK for encryption: refused");
    is_int(mt_jwt_keyset_add_jwk(ks2, -1, "{\"kty\":", 7, &why), -EINVAL, "broken JWK JSON: refused");
    static const char oct[] = "{\"kty\":\"oct\",\"k\":\"AQ\"}";
    is_int(mt_jwt_keyset_add_jwk(ks2, -1, oct, strlen(oct), &why), -EINVAL,
           "an oct JWK without alg: refused (and its decoded k freed: the fuzzer's leak)");
    mt_jwt_keyset_ref(ks2);
    mt_jwt_keyset_unref(ks2);
    mt_jwt_keyset_unref(ks2);
    mt_jwt_keyset_unref(ks);
}

int main(void) {
    test_keys();
    return done_testing();
}
