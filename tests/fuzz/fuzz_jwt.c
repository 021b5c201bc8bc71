/* libFuzzer driver for the JWT verifier (jwt.c, jwt_json.c, jwt_keys.c): base64url, the JSON
 * reader, the header and claims checks, JWK import and claim requirements,
 * on any bytes.
 *
 * Input: byte 0 picks what is fuzzed (token with a policy, a JWK, a claims
 * object for mt_jwt_claim_has), the rest is copied to a buffer of its exact
 * size, so that reading past it is an ASan report. Checks the invariants
 * the glue relies on: a verified token's claims and sub lie inside the
 * caller's buffer, and a token is accepted only with a key of the algorithm
 * its header names. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jwt.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond))                                                                                                   \
            __builtin_trap();                                                                                          \
    } while (0)

static mt_jwt_keyset_t *keys;

/* RFC 7515 A.3's P-256 key and RFC 8037's Ed25519 key, plus an HMAC secret
 * ("fuzz") that lets the fuzzer reach the claims checks only through
 * HS256 tokens whose MAC it cannot forge: the seed corpus holds valid ones. */
static const char ec_jwk[] = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                             "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}";
static const char ed_jwk[] =
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}";

static void setup(void) {
    keys = mt_jwt_keyset_create(4);
    mt_jwt_keyset_add_secret(keys, MT_JWT_HS256, NULL, 0, (const unsigned char *)"fuzz", 4, NULL);
    mt_jwt_keyset_add_jwk(keys, -1, ec_jwk, sizeof ec_jwk - 1, NULL);
    mt_jwt_keyset_add_jwk(keys, -1, ed_jwk, sizeof ed_jwk - 1, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (keys == NULL)
        setup();
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    size_t n = size - 1;
    char *in = malloc(n ? n : 1);
    memcpy(in, data + 1, n);
    switch (mode % 3) {
    case 0: {
        static const char *const aud[] = {"api"};
        static const char *const iss[] = {"me"};
        mt_jwt_policy_t p = {.max_len = 4096, .leeway = mode & 8 ? 30 : 0, .require_exp = mode & 16};
        if (mode & 32) {
            p.audiences = aud;
            p.naudiences = 1;
            p.issuers = iss;
            p.nissuers = 1;
        }
        size_t bsize = 3 * n + 16;
        char *buf = malloc(bsize);
        mt_jwt_claims_t c;
        mt_jwt_error_t err = mt_jwt_verify(keys, &p, in, n, 1000, buf, bsize, &c);
        CHECK(err < MT_JWT_NERRORS);
        if (err == MT_JWT_OK) {
            CHECK(c.key >= 0 && c.key < mt_jwt_keyset_count(keys));
            CHECK(c.payload >= buf && c.payload + c.payload_len <= buf + bsize);
            CHECK(c.sub == NULL || (c.sub >= buf && c.sub + c.sub_len <= buf + bsize));
            CHECK(mt_jwt_claim_has(c.payload, c.payload_len, "zz", NULL) == false ||
                  mt_jwt_claim_has(c.payload, c.payload_len, "zz", NULL) == true);
        } else {
            CHECK(c.key == -1);
        }
        free(buf);
        break;
    }
    case 1: {
        mt_jwt_keyset_t *ks = mt_jwt_keyset_create(1);
        const char *why = NULL;
        int rc = mt_jwt_keyset_add_jwk(ks, (mode >> 2) % (MT_JWT_NALGS + 1) - 1, in, n, &why);
        CHECK(rc == 0 ? mt_jwt_keyset_count(ks) == 1 : mt_jwt_keyset_count(ks) == 0);
        mt_jwt_keyset_unref(ks);
        break;
    }
    default:
        mt_jwt_claim_has(in, n, "scope", mode & 4 ? "admin" : NULL);
        mt_jwt_claim_has(in, n, "roles", "a");
        break;
    }
    free(in);
    return 0;
}
