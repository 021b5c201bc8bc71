/* JWT verification (jwt.h): the algorithms and their names, mt_jwt_verify
 * (the token's three segments, its header, the key chosen by kid and by the
 * algorithm it is pinned to, the signature through EVP, then the claims exp,
 * nbf, iat, iss, aud and sub against a policy) and the claim requirements of
 * mt_jwt_claim_has. Base64url and JSON are jwt_json.c's; key sets are
 * jwt_keys.c's.
 *
 * Threads: any number of threads verify at once with the same key set,
 * which they only read: an HMAC check works on its own copy of the key's
 * keyed context, and the other checks on contexts of their own. A
 * verification writes only to the caller's buffer and its stack. */
#include "jwt.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "jwt_internal.h"
#include "jwt_json.h"

/* ---- algorithms ---- */

const jwt_alg_info_t mt_jwt_algs[MT_JWT_NALGS] = {
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
    return (unsigned)alg < MT_JWT_NALGS ? mt_jwt_algs[alg].name : "?";
}

int mt_jwt_alg_parse(const char *name, size_t len) {
    for (int i = 0; i < MT_JWT_NALGS; i++)
        if (strlen(mt_jwt_algs[i].name) == len && memcmp(mt_jwt_algs[i].name, name, len) == 0)
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
    const char *mdname = mt_jwt_algs[k->alg].md;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    unsigned char *der = NULL;
    bool ok = false;
    if (ctx == NULL || EVP_DigestVerifyInit_ex(ctx, &pctx, mdname, NULL, NULL, k->pkey, NULL) <= 0)
        goto done;
    if (mt_jwt_algs[k->alg].family == FAM_PSS && (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
                                                  EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0 ||
                                                  EVP_PKEY_CTX_set_rsa_mgf1_md_name(pctx, mdname, NULL) <= 0))
        goto done;
    if (mt_jwt_algs[k->alg].family == FAM_EC) {
        int n = ecdsa_der(sig, slen, mt_jwt_algs[k->alg].half, &der);
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
    return mt_jwt_algs[k->alg].family == FAM_HMAC ? verify_hmac(k, input, ilen, sig, slen)
                                                  : verify_pkey(k, input, ilen, sig, slen);
}

/* Whether the string claim v is one of list[0, n). */
static bool string_in(const json_value_t *v, const char *const *list, int n, char *tmp) {
    for (int i = 0; i < n; i++)
        if (mt_json_string_is(v, list[i], strlen(list[i]), tmp))
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
    const char *q = mt_json_skip_ws(aud->p + 1, end);
    bool found = false;
    while (q < end) {
        json_value_t e;
        if ((q = mt_json_scan_value(q, end, &e, 2)) == NULL || e.type != J_STRING)
            return MT_JWT_BAD_CLAIM;
        found = found || string_in(&e, p->audiences, p->naudiences, tmp);
        q = mt_json_skip_ws(q, end);
        if (q < end && *q == ',')
            q = mt_json_skip_ws(q + 1, end);
    }
    return found ? MT_JWT_OK : MT_JWT_BAD_AUDIENCE;
}

static mt_jwt_error_t check_claims(const members_t *c, const mt_jwt_policy_t *p, int64_t now, char *tmp) {
    int64_t t;
    if (c->exp.type != J_NONE) {
        if (!mt_jwt_numeric_date(&c->exp, &t))
            return MT_JWT_BAD_CLAIM;
        if (now >= t + p->leeway)
            return MT_JWT_EXPIRED;
    } else if (p->require_exp) {
        return MT_JWT_BAD_CLAIM;
    }
    if (c->nbf.type != J_NONE) {
        if (!mt_jwt_numeric_date(&c->nbf, &t))
            return MT_JWT_BAD_CLAIM;
        if (now + p->leeway < t)
            return MT_JWT_IMMATURE;
    }
    if (c->iat.type != J_NONE) {
        if (!mt_jwt_numeric_date(&c->iat, &t))
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
    if (!mt_jwt_read_members(buf, (size_t)hlen, m, work) || m->alg.type != J_STRING || m->crit.type != J_NONE ||
        (m->kid.type != J_NONE && m->kid.type != J_STRING))
        goto done;
    size_t alen;
    mt_json_scan_string(m->alg.p, m->alg.p + m->alg.len, work, &alen);
    int alg = mt_jwt_alg_parse(work, alen);
    char kid[256];
    size_t kid_len = 0;
    bool has_kid = m->kid.type == J_STRING && m->kid.len <= sizeof kid;
    if (m->kid.type == J_STRING && !has_kid) {
        err = MT_JWT_NO_KEY;
        goto done;
    }
    if (has_kid)
        mt_json_scan_string(m->kid.p, m->kid.p + m->kid.len, kid, &kid_len);
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
    if (!mt_jwt_read_members(payload, (size_t)plen, m, work))
        goto done;
    if ((err = check_claims(m, policy, now, work)) != MT_JWT_OK)
        goto done;
    out->payload = payload;
    out->payload_len = (size_t)plen;
    if (m->sub.type == J_STRING) {
        /* Unescaped behind the signature, where the work area was. */
        mt_json_scan_string(m->sub.p, m->sub.p + m->sub.len, work, &out->sub_len);
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
    mt_json_scan_string(v->p, v->p + v->len, tmp, &len);
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
        const char *p = mt_json_skip_ws(v->p + 1, end);
        while (p && p < end && !q->found) {
            json_value_t e;
            if ((p = mt_json_scan_value(p, end, &e, 2)) == NULL)
                break;
            if (e.type == J_STRING && mt_json_string_is(&e, q->value, strlen(q->value), q->tmp))
                q->found = true;
            p = mt_json_skip_ws(p, end);
            if (p < end && *p == ',')
                p = mt_json_skip_ws(p + 1, end);
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
    bool ok = names && mt_json_members(payload, len, names, on_claim, &q);
    free(heap);
    if (tmp != stack)
        free(tmp);
    return ok && q.found;
}
