/* What the JWT unit tests (test_jwt, test_jwt_json, test_jwt_keys) share:
 * base64url encoding, tokens signed here with HMAC-SHA256, and verify(),
 * mt_jwt_verify with a buffer big enough for any token of these tests.
 * Include after the .c files under test and tap.h. */
#ifndef MT_TEST_JWT_SIGN_H
#define MT_TEST_JWT_SIGN_H

#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

static char buf[3 * 65536 + 16];
static const mt_jwt_policy_t plain = {0};
/* An HMAC secret (the key tests sign with keys of their own). */
__attribute__((unused)) static const char secret[] = "a secret of thirty-two bytes!!!!";

static inline mt_jwt_error_t verify(const mt_jwt_keyset_t *ks, const mt_jwt_policy_t *p, const char *tok, int64_t now,
                                    mt_jwt_claims_t *c) {
    mt_jwt_claims_t local;
    return mt_jwt_verify(ks, p, tok, strlen(tok), now, buf, sizeof buf, c ? c : &local);
}

static inline size_t b64url(char *dst, const unsigned char *src, size_t n) {
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | src[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            dst[o++] = a[(acc >> bits) & 63];
        }
    }
    if (bits)
        dst[o++] = a[(acc << (6 - bits)) & 63];
    dst[o] = '\0';
    return o;
}

static char token[65536];

/* header.claims signed with HMAC-SHA256 under secret. */
static inline const char *hs256(const char *header, const char *claims, const void *secret, size_t slen) {
    size_t n = b64url(token, (const unsigned char *)header, strlen(header));
    token[n++] = '.';
    n += b64url(token + n, (const unsigned char *)claims, strlen(claims));
    unsigned char mac[32];
    unsigned int mlen;
    HMAC(EVP_sha256(), secret, (int)slen, (unsigned char *)token, n, mac, &mlen);
    token[n++] = '.';
    b64url(token + n, mac, mlen);
    return token;
}

#endif
