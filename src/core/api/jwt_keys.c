/* Key sets (jwt.h): HMAC secrets, public keys in PEM (or a certificate's),
 * and JWKs (RFC 7517) imported through EVP and OSSL_PARAM. Each key is pinned
 * to one algorithm when it is added and checked to fit it there (an RSA key
 * of 2048 bits or more, an EC key on the algorithm's curve, an Ed25519 or
 * Ed448 key, a non-empty secret only for HS*); verification (jwt.c) relies on
 * that and never looks at a key's type again.
 *
 * Threads: a set is filled by the one thread that created it, before it is
 * shared; after that it is immutable and read by any number of threads at
 * once. The reference count is atomic; the last mt_jwt_keyset_unref frees
 * the keys on whichever thread makes it. */
#include "jwt.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "jwt_internal.h"
#include "jwt_json.h"

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
    if ((unsigned)alg >= MT_JWT_NALGS || mt_jwt_algs[alg].family != FAM_HMAC) {
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
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)mt_jwt_algs[alg].md, 0),
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
    switch (mt_jwt_algs[alg].family) {
    case FAM_HMAC:
        set_why(why, "HS algorithms take a secret, not a public key");
        return false;
    case FAM_RSA:
    case FAM_PSS:
        if (!EVP_PKEY_is_a(pkey, "RSA") && !(mt_jwt_algs[alg].family == FAM_PSS && EVP_PKEY_is_a(pkey, "RSA-PSS"))) {
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
            strcmp(group, mt_jwt_algs[alg].curve) != 0) {
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
    if ((unsigned)alg < MT_JWT_NALGS && mt_jwt_algs[alg].family == FAM_HMAC) {
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
    mt_json_scan_string(v->p, v->p + v->len, tmp, &slen);
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
        if (mt_json_string_is(&j->crv, curves[i].crv, strlen(curves[i].crv), tmp))
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
    if (mt_json_string_is(&j->crv, "Ed25519", 7, tmp))
        type = EVP_PKEY_ED25519;
    else if (mt_json_string_is(&j->crv, "Ed448", 5, tmp))
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
    if (!mt_json_members(json, len, tmp, on_jwk_member, &j) || j.kty.type != J_STRING) {
        set_why(why, "not a JWK (a JSON object with a kty)");
        goto done;
    }
    if (j.use.type != J_NONE && !mt_json_string_is(&j.use, "sig", 3, tmp)) {
        set_why(why, "a JWK whose use is not sig");
        goto done;
    }
    if (j.alg.type != J_NONE) {
        size_t alen;
        if (j.alg.type != J_STRING) {
            set_why(why, "a JWK alg that is not a string");
            goto done;
        }
        mt_json_scan_string(j.alg.p, j.alg.p + j.alg.len, tmp, &alen);
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
        mt_json_scan_string(j.kid.p, j.kid.p + j.kid.len, kid, &kid_len);
    }
    EVP_PKEY *pkey = NULL;
    int implied = -1;
    if (mt_json_string_is(&j.kty, "oct", 3, tmp)) {
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
    } else if (mt_json_string_is(&j.kty, "RSA", 3, tmp)) {
        pkey = rsa_jwk(&j, tmp);
    } else if (mt_json_string_is(&j.kty, "EC", 2, tmp)) {
        pkey = ec_jwk(&j, tmp, &implied);
    } else if (mt_json_string_is(&j.kty, "OKP", 3, tmp)) {
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
