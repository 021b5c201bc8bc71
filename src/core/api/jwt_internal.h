/* Inside the JWT verifier: what jwt.c (algorithms, verification) and
 * jwt_keys.c (key sets) share: the table of algorithms and the layout of a
 * key set. Not for other files: the public contract is jwt.h.
 *
 * Threads: the table is constant; a key set is written only by the thread
 * that builds it, before it is shared, and read by any thread after (see
 * jwt_keys.c). */
#ifndef MT_JWT_INTERNAL_H
#define MT_JWT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

#include <openssl/evp.h>

#include "jwt.h"

enum family { FAM_HMAC, FAM_RSA, FAM_PSS, FAM_EC, FAM_EDDSA };

/* What each algorithm is (jwt.c): its name in a JOSE header, its family,
 * and what verifying it takes. */
typedef struct jwt_alg_info {
    const char *name;
    enum family family;
    const char *md;    /* digest name (NULL for EdDSA) */
    const char *curve; /* EC: the group; ES256 signatures are 2 * 32 bytes */
    int half;          /* EC: the length of r and of s */
} jwt_alg_info_t;

extern const jwt_alg_info_t mt_jwt_algs[MT_JWT_NALGS];

/* A key pinned to its algorithm. */
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

#endif
