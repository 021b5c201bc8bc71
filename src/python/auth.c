/* The typed API's authentication in C: see auth.h. The key sets of a
 * JWTVerifier are swapped whole (set_keys, GIL held) under a mutex that a
 * handler thread takes only to take a reference to the current set; the set
 * it verified with is released after the verification, so a refresh never
 * waits for requests and a request never sees half a set. */
#include "auth.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "answer.h"
#include "http1_write.h"
#include "jwt.h"

/* ---- _core.JWTVerifier ---- */

typedef struct JWTVerifierObject {
    PyObject_HEAD pthread_mutex_t lock;
    mt_jwt_keyset_t *keys; /* the current set (under lock); NULL before set_keys */
    mt_jwt_policy_t policy;
    char **issuers; /* the policy's strings, owned */
    char **audiences;
} JWTVerifierObject;

static char **string_list(PyObject *seq, int *n) {
    PyObject *fast = PySequence_Fast(seq, "a sequence of str");
    if (fast == NULL)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(fast);
    char **list = calloc((size_t)len + 1, sizeof(char *));
    for (Py_ssize_t i = 0; list && i < len; i++) {
        const char *s = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(fast, i));
        if (s == NULL || (list[i] = strdup(s)) == NULL) {
            for (Py_ssize_t k = 0; k < i; k++)
                free(list[k]);
            free(list);
            list = NULL;
            if (s != NULL)
                PyErr_NoMemory();
        }
    }
    if (list == NULL && !PyErr_Occurred())
        PyErr_NoMemory();
    Py_DECREF(fast);
    *n = (int)len;
    return list;
}

static void free_list(char **list) {
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

static int JWTVerifier_init(JWTVerifierObject *self, PyObject *args, PyObject *kwds) {
    static char *keywords[] = {"issuers", "audiences", "leeway", "require_exp", "max_len", NULL};
    PyObject *issuers = NULL, *audiences = NULL;
    long long leeway = 0;
    int require_exp = 0;
    Py_ssize_t max_len = MT_JWT_MAX_LEN;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OOLpn:JWTVerifier", keywords, &issuers, &audiences, &leeway,
                                     &require_exp, &max_len))
        return -1;
    if (leeway < 0 || max_len < 16 || max_len > (1 << 20)) {
        PyErr_SetString(PyExc_ValueError, "leeway >= 0 and 16 <= max_len <= 1 MiB");
        return -1;
    }
    free_list(self->issuers);
    free_list(self->audiences);
    self->issuers = self->audiences = NULL;
    memset(&self->policy, 0, sizeof self->policy);
    int n = 0;
    if (issuers && (self->issuers = string_list(issuers, &n)) == NULL)
        return -1;
    self->policy.nissuers = issuers ? n : 0;
    if (audiences && (self->audiences = string_list(audiences, &n)) == NULL)
        return -1;
    self->policy.naudiences = audiences ? n : 0;
    self->policy.issuers = (const char *const *)self->issuers;
    self->policy.audiences = (const char *const *)self->audiences;
    self->policy.leeway = leeway;
    self->policy.require_exp = require_exp;
    self->policy.max_len = (size_t)max_len;
    return 0;
}

static PyObject *JWTVerifier_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    JWTVerifierObject *self = (JWTVerifierObject *)type->tp_alloc(type, 0);
    if (self)
        pthread_mutex_init(&self->lock, NULL);
    return (PyObject *)self;
}

static void JWTVerifier_dealloc(JWTVerifierObject *self) {
    PyTypeObject *tp = Py_TYPE(self);
    mt_jwt_keyset_unref(self->keys);
    free_list(self->issuers);
    free_list(self->audiences);
    pthread_mutex_destroy(&self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* The current key set, referenced (the caller unrefs it). */
static mt_jwt_keyset_t *current_keys(JWTVerifierObject *v) {
    pthread_mutex_lock(&v->lock);
    mt_jwt_keyset_t *ks = mt_jwt_keyset_ref(v->keys);
    pthread_mutex_unlock(&v->lock);
    return ks;
}

static int64_t now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

/* set_keys([(kind, alg, kid, data), ...]): kind "secret", "pem" or "jwk". */
static PyObject *JWTVerifier_set_keys(JWTVerifierObject *self, PyObject *keys) {
    PyObject *fast = PySequence_Fast(keys, "set_keys() takes a list of (kind, alg, kid, data)");
    if (fast == NULL)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    mt_jwt_keyset_t *ks = mt_jwt_keyset_create((int)n);
    if (ks == NULL) {
        Py_DECREF(fast);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        const char *kind, *alg_name, *kid, *data;
        Py_ssize_t kid_len = 0, data_len;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "szz#y#:key", &kind, &alg_name, &kid, &kid_len, &data,
                              &data_len))
            goto error;
        int alg = alg_name ? mt_jwt_alg_parse(alg_name, strlen(alg_name)) : -1;
        if (alg_name && alg < 0) {
            PyErr_Format(PyExc_ValueError, "unknown JWT algorithm %R",
                         PyTuple_GET_ITEM(PySequence_Fast_GET_ITEM(fast, i), 1));
            goto error;
        }
        const char *why = NULL;
        int rc;
        if (strcmp(kind, "secret") == 0 && alg >= 0)
            rc = mt_jwt_keyset_add_secret(ks, (mt_jwt_alg_t)alg, kid, (size_t)kid_len, (const unsigned char *)data,
                                          (size_t)data_len, &why);
        else if (strcmp(kind, "pem") == 0 && alg >= 0)
            rc = mt_jwt_keyset_add_pem(ks, (mt_jwt_alg_t)alg, kid, (size_t)kid_len, data, (size_t)data_len, &why);
        else if (strcmp(kind, "jwk") == 0)
            rc = mt_jwt_keyset_add_jwk(ks, alg, data, (size_t)data_len, &why);
        else
            rc = -EINVAL,
            why = "a key is (\"secret\" | \"pem\", alg, kid, bytes) or (\"jwk\", alg or None, None, json)";
        if (rc == -ENOMEM) {
            PyErr_NoMemory();
            goto error;
        }
        if (rc < 0) {
            PyErr_Format(PyExc_ValueError, "JWT key %zd: %s", i, why ? why : "refused");
            goto error;
        }
    }
    Py_DECREF(fast);
    pthread_mutex_lock(&self->lock);
    mt_jwt_keyset_t *old = self->keys;
    self->keys = ks;
    pthread_mutex_unlock(&self->lock);
    mt_jwt_keyset_unref(old);
    Py_RETURN_NONE;
error:
    Py_DECREF(fast);
    mt_jwt_keyset_unref(ks);
    return NULL;
}

/* verify(token, now=None) -> (claims: bytes, sub: str | None); ValueError(reason) when refused. */
static PyObject *JWTVerifier_verify(JWTVerifierObject *self, PyObject *args) {
    const char *token;
    Py_ssize_t len;
    PyObject *now_obj = Py_None;
    if (!PyArg_ParseTuple(args, "s#|O:verify", &token, &len, &now_obj))
        return NULL;
    int64_t now = now_obj == Py_None ? now_seconds() : (int64_t)PyLong_AsLongLong(now_obj);
    if (PyErr_Occurred())
        return NULL;
    size_t size = 3 * (size_t)len + 16;
    char *buf = malloc(size);
    if (buf == NULL)
        return PyErr_NoMemory();
    mt_jwt_keyset_t *ks = current_keys(self);
    mt_jwt_claims_t claims;
    mt_jwt_error_t err = MT_JWT_NO_KEY;
    if (ks) {
        Py_BEGIN_ALLOW_THREADS
            err = mt_jwt_verify(ks, &self->policy, token, (size_t)len, now, buf, size, &claims);
        Py_END_ALLOW_THREADS
    }
    mt_jwt_keyset_unref(ks);
    PyObject *result = NULL;
    if (err != MT_JWT_OK)
        PyErr_SetString(PyExc_ValueError, mt_jwt_error_text(err));
    else
        result = Py_BuildValue("(y#N)", claims.payload, (Py_ssize_t)claims.payload_len,
                               claims.sub ? PyUnicode_DecodeUTF8(claims.sub, (Py_ssize_t)claims.sub_len, "replace")
                                          : Py_NewRef(Py_None));
    free(buf);
    return result;
}

static PyObject *JWTVerifier_key_count(JWTVerifierObject *self, void *closure) {
    mt_jwt_keyset_t *ks = current_keys(self);
    int n = mt_jwt_keyset_count(ks);
    mt_jwt_keyset_unref(ks);
    return PyLong_FromLong(n);
}

static PyMethodDef JWTVerifier_methods[] = {
    {"set_keys", (PyCFunction)JWTVerifier_set_keys, METH_O,
     "set_keys(keys, /)\n--\n\nReplaces the key set, atomically: keys is a list of (kind, alg, kid, data), kind "
     "\"secret\", \"pem\" or \"jwk\". ValueError names a key that does not fit its algorithm."},
    {"verify", (PyCFunction)JWTVerifier_verify, METH_VARARGS,
     "verify(token, now=None, /)\n--\n\nVerifies a token: (claims JSON bytes, sub or None), or ValueError with the "
     "reason."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef JWTVerifier_getset[] = {
    {"key_count", (getter)JWTVerifier_key_count, NULL, "The number of keys in the current set.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot JWTVerifier_slots[] = {
    {Py_tp_new, JWTVerifier_new},
    {Py_tp_init, JWTVerifier_init},
    {Py_tp_dealloc, JWTVerifier_dealloc},
    {Py_tp_methods, JWTVerifier_methods},
    {Py_tp_getset, JWTVerifier_getset},
    {Py_tp_doc, "JWTVerifier(*, issuers=(), audiences=(), leeway=0, require_exp=False, max_len=8192)\n--\n\n"
                "A JWT key set (set_keys) and the checks of its tokens, shared by the API routes of a JWTAuth."},
    {0, NULL},
};

PyType_Spec JWTVerifier_Spec = {
    .name = "meltemi._core.JWTVerifier",
    .basicsize = sizeof(JWTVerifierObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = JWTVerifier_slots,
};

/* ---- per-route authentication ---- */

enum scheme_kind { SCHEME_JWT, SCHEME_HEADER, SCHEME_QUERY, SCHEME_PYTHON };

typedef struct scheme {
    enum scheme_kind kind;
    JWTVerifierObject *verifier; /* JWT: a reference */
    char *name;                  /* API key: the header (lowercase) or query parameter */
    size_t nlen;
    int nkeys;
    unsigned char (*hashes)[32]; /* API key: SHA-256 of each key */
    char **key_names;            /* ... and its name (the subject) */
} scheme_t;

typedef struct route_auth {
    int nschemes;
    scheme_t *schemes;
    bool python; /* a scheme decided in Python (the session) */
    int nclaims;
    char **claim_names;  /* claim requirements, all needed */
    char **claim_values; /* NULL entries: the claim present */
    char *challenge;     /* WWW-Authenticate of a 401 */
} route_auth_t;

struct mt_auth {
    int nroutes;
    route_auth_t **routes;
    size_t buf_size; /* a handler's auth_buf */
};

static void route_auth_free(route_auth_t *ra) {
    if (ra == NULL)
        return;
    for (int i = 0; i < ra->nschemes; i++) {
        scheme_t *s = &ra->schemes[i];
        Py_XDECREF(s->verifier);
        free(s->name);
        free(s->hashes);
        if (s->key_names)
            for (int k = 0; k < s->nkeys; k++)
                free(s->key_names[k]);
        free(s->key_names);
    }
    free(ra->schemes);
    for (int i = 0; i < ra->nclaims; i++) {
        free(ra->claim_names[i]);
        free(ra->claim_values[i]);
    }
    free(ra->claim_names);
    free(ra->claim_values);
    free(ra->challenge);
    free(ra);
}

void mt_auth_destroy(mt_auth_t *auth) {
    if (auth == NULL)
        return;
    for (int i = 0; i < auth->nroutes; i++)
        route_auth_free(auth->routes[i]);
    free(auth->routes);
    free(auth);
}

static int parse_scheme(scheme_t *s, PyObject *spec, size_t *buf_size) {
    const char *kind;
    if (!PyTuple_Check(spec) || PyTuple_GET_SIZE(spec) < 1 ||
        (kind = PyUnicode_AsUTF8(PyTuple_GET_ITEM(spec, 0))) == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "an auth scheme is a tuple (kind, ...)");
        return -1;
    }
    if (strcmp(kind, "jwt") == 0) {
        PyObject *v;
        if (!PyArg_ParseTuple(spec, "sO:jwt scheme", &kind, &v))
            return -1;
        if (Py_TYPE(v)->tp_new != JWTVerifier_new) { /* the type is final */
            PyErr_SetString(PyExc_TypeError, "a jwt scheme takes a _core.JWTVerifier");
            return -1;
        }
        s->kind = SCHEME_JWT;
        s->verifier = (JWTVerifierObject *)Py_NewRef(v);
        size_t need = 3 * s->verifier->policy.max_len + 16;
        if (need > *buf_size)
            *buf_size = need;
        return 0;
    }
    if (strcmp(kind, "python") == 0) {
        s->kind = SCHEME_PYTHON;
        return 0;
    }
    const char *name;
    PyObject *keys;
    if (!PyArg_ParseTuple(spec, "ssO!:api key scheme", &kind, &name, &PyList_Type, &keys))
        return -1;
    if (strcmp(kind, "header") != 0 && strcmp(kind, "query") != 0) {
        PyErr_Format(PyExc_ValueError, "unknown auth scheme kind %s", kind);
        return -1;
    }
    s->kind = kind[0] == 'h' ? SCHEME_HEADER : SCHEME_QUERY;
    s->nlen = strlen(name);
    s->name = strdup(name);
    s->nkeys = (int)PyList_GET_SIZE(keys);
    s->hashes = calloc((size_t)s->nkeys + 1, 32);
    s->key_names = calloc((size_t)s->nkeys + 1, sizeof(char *));
    if (s->name == NULL || s->hashes == NULL || s->key_names == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (s->kind == SCHEME_HEADER)
        for (size_t i = 0; i < s->nlen; i++)
            s->name[i] = (char)((s->name[i] >= 'A' && s->name[i] <= 'Z') ? s->name[i] + 32 : s->name[i]);
    for (int i = 0; i < s->nkeys; i++) {
        const char *key_name, *hash;
        Py_ssize_t hlen;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(keys, i), "sy#:api key", &key_name, &hash, &hlen))
            return -1;
        if (hlen != 32) {
            PyErr_SetString(PyExc_ValueError, "an API key hash is 32 bytes of SHA-256");
            return -1;
        }
        memcpy(s->hashes[i], hash, 32);
        if ((s->key_names[i] = strdup(key_name)) == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    return 0;
}

static route_auth_t *parse_route(PyObject *spec, size_t *buf_size) {
    PyObject *schemes, *claims;
    const char *challenge;
    if (!PyArg_ParseTuple(spec, "O!O!s:route auth", &PyList_Type, &schemes, &PyList_Type, &claims, &challenge))
        return NULL;
    route_auth_t *ra = calloc(1, sizeof *ra);
    if (ra == NULL)
        return (route_auth_t *)PyErr_NoMemory();
    ra->nschemes = (int)PyList_GET_SIZE(schemes);
    ra->schemes = calloc((size_t)ra->nschemes + 1, sizeof(scheme_t));
    ra->nclaims = (int)PyList_GET_SIZE(claims);
    ra->claim_names = calloc((size_t)ra->nclaims + 1, sizeof(char *));
    ra->claim_values = calloc((size_t)ra->nclaims + 1, sizeof(char *));
    ra->challenge = strdup(challenge);
    if (ra->schemes == NULL || ra->claim_names == NULL || ra->claim_values == NULL || ra->challenge == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    if (!mt_http1_value_valid(challenge, strlen(challenge))) {
        PyErr_SetString(PyExc_ValueError, "a WWW-Authenticate challenge with control characters");
        goto error;
    }
    for (int i = 0; i < ra->nschemes; i++) {
        if (parse_scheme(&ra->schemes[i], PyList_GET_ITEM(schemes, i), buf_size) < 0)
            goto error;
        if (ra->schemes[i].kind == SCHEME_PYTHON)
            ra->python = true;
    }
    for (int i = 0; i < ra->nclaims; i++) {
        const char *name, *value;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(claims, i), "sz:claim requirement", &name, &value))
            goto error;
        if ((ra->claim_names[i] = strdup(name)) == NULL || (value && (ra->claim_values[i] = strdup(value)) == NULL)) {
            PyErr_NoMemory();
            goto error;
        }
    }
    return ra;
error:
    route_auth_free(ra);
    return NULL;
}

mt_auth_t *mt_auth_create(PyObject *specs, int nroutes) {
    if (!PyList_Check(specs) || PyList_GET_SIZE(specs) != nroutes) {
        PyErr_SetString(PyExc_ValueError, "the API's auth list has one entry per route");
        return NULL;
    }
    mt_auth_t *auth = calloc(1, sizeof *auth);
    if (auth == NULL || (auth->routes = calloc((size_t)nroutes + 1, sizeof(route_auth_t *))) == NULL) {
        free(auth);
        return (mt_auth_t *)PyErr_NoMemory();
    }
    auth->nroutes = nroutes;
    auth->buf_size = MT_REQUEST_FIELD_MAX;
    for (int i = 0; i < nroutes; i++) {
        PyObject *spec = PyList_GET_ITEM(specs, i);
        if (spec != Py_None && (auth->routes[i] = parse_route(spec, &auth->buf_size)) == NULL) {
            mt_auth_destroy(auth);
            return NULL;
        }
    }
    auth->buf_size += MT_REQUEST_FIELD_MAX; /* the joined Authorization field, before the token's parts */
    return auth;
}

bool mt_auth_route_has(const mt_auth_t *auth, int route) {
    return auth && route >= 0 && route < auth->nroutes && auth->routes[route] != NULL;
}

void mt_auth_handler_dispose(mt_handler_t *handler) {
    free(handler->auth_buf);
    handler->auth_buf = NULL;
    handler->auth_buf_size = 0;
}

/* ---- the check, without the GIL ---- */

/* The bearer token of an Authorization value ("Bearer <token>", the scheme
 * case-insensitive), or NULL. */
static const char *bearer_token(const char *v, size_t len, size_t *tlen) {
    if (len < 7 || strncasecmp(v, "bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
        return NULL;
    size_t i = 7;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    size_t end = len;
    while (end > i && (v[end - 1] == ' ' || v[end - 1] == '\t'))
        end--;
    *tlen = end - i;
    return v + i;
}

/* The value of query parameter `name` (the first), percent-decoded into dst
 * (room for the query's length). */
static bool query_value(const char *q, size_t qlen, const char *name, size_t nlen, char *dst, size_t *len) {
    size_t pos = 0;
    while (pos < qlen) {
        const char *amp = memchr(q + pos, '&', qlen - pos);
        size_t end = amp ? (size_t)(amp - q) : qlen;
        if (end - pos > nlen && memcmp(q + pos, name, nlen) == 0 && q[pos + nlen] == '=') {
            size_t vlen = end - pos - nlen - 1;
            for (size_t i = 0; i < vlen; i++)
                dst[i] = q[pos + nlen + 1 + i] == '+' ? ' ' : q[pos + nlen + 1 + i];
            *len = mt_http1_percent_decode(dst, dst, vlen);
            return true;
        }
        pos = end + 1;
    }
    return false;
}

/* The index of the key whose SHA-256 is the hash of key[0, len), or -1. Every
 * stored hash is compared (constant time in which one matches). */
static int api_key_match(const scheme_t *s, const char *key, size_t len) {
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (EVP_Digest(key, len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
        return -1;
    int found = -1;
    for (int i = 0; i < s->nkeys; i++)
        if (CRYPTO_memcmp(digest, s->hashes[i], 32) == 0)
            found = i;
    return found;
}

static mt_auth_result_t answer(WorkerObject *w, mt_conn_t *c, mt_handler_t *h, bool *keep_alive, int status,
                               const char *detail, const char *challenge) {
    char body[160];
    int blen = snprintf(body, sizeof body, "{\"detail\":\"%s\"}", detail);
    mt_field_t field = {"WWW-Authenticate", 16, challenge, challenge ? strlen(challenge) : 0};
    *keep_alive = c->req.keep_alive && !mt_server_draining(&w->server);
    if (mt_answer_json(c, &h->out, keep_alive, status, &field, challenge && *challenge ? 1 : 0, body, (size_t)blen) < 0)
        *keep_alive = false;
    c->head_consumed = true;
    return MT_AUTH_ANSWERED;
}

mt_auth_result_t mt_auth_check(WorkerObject *worker, const mt_auth_t *auth, int route, mt_conn_t *c, mt_handler_t *h,
                               bool *keep_alive) {
    h->auth_scheme = -1;
    h->auth_subject = h->auth_claims = NULL;
    h->auth_subject_len = h->auth_claims_len = 0;
    if (!mt_auth_route_has(auth, route))
        return MT_AUTH_NONE;
    const route_auth_t *ra = auth->routes[route];
    if (h->auth_buf_size < auth->buf_size) {
        free(h->auth_buf);
        h->auth_buf_size = 0;
        if ((h->auth_buf = malloc(auth->buf_size)) == NULL)
            return answer(worker, c, h, keep_alive, 503, "Service Unavailable", NULL);
        h->auth_buf_size = auth->buf_size;
    }
    const char *base = c->rbuf.data;
    char *field_buf = h->auth_buf;                   /* MT_REQUEST_FIELD_MAX bytes */
    char *work = h->auth_buf + MT_REQUEST_FIELD_MAX; /* the rest */
    size_t wsize = h->auth_buf_size - MT_REQUEST_FIELD_MAX;
    const char *bad = NULL; /* the first refusal's detail */
    char challenge[256];
    challenge[0] = '\0';
    for (int i = 0; i < ra->nschemes; i++) {
        const scheme_t *s = &ra->schemes[i];
        const char *v;
        size_t len;
        if (s->kind == SCHEME_JWT) {
            if (mt_request_header(&c->req, base, "authorization", 13, field_buf, &v, &len) != 1)
                continue;
            size_t tlen;
            const char *tok = bearer_token(v, len, &tlen);
            if (tok == NULL)
                continue;
            mt_jwt_keyset_t *ks = current_keys(s->verifier);
            mt_jwt_claims_t claims;
            mt_jwt_error_t err =
                ks ? mt_jwt_verify(ks, &s->verifier->policy, tok, tlen, now_seconds(), work, wsize, &claims)
                   : MT_JWT_NO_KEY;
            mt_jwt_keyset_unref(ks);
            if (err == MT_JWT_OK) {
                h->auth_scheme = i;
                h->auth_claims = claims.payload;
                h->auth_claims_len = claims.payload_len;
                h->auth_subject = claims.sub;
                h->auth_subject_len = claims.sub_len;
                break;
            }
            if (bad == NULL) {
                bad = "Invalid token";
                snprintf(challenge, sizeof challenge, "Bearer error=\"invalid_token\", error_description=\"%s\"",
                         mt_jwt_error_text(err));
            }
        } else if (s->kind == SCHEME_HEADER || s->kind == SCHEME_QUERY) {
            if (s->kind == SCHEME_HEADER) {
                if (mt_request_header(&c->req, base, s->name, s->nlen, field_buf, &v, &len) != 1)
                    continue;
            } else {
                if (h->query.len == 0 || h->query.len > wsize ||
                    !query_value(base + h->query.off, h->query.len, s->name, s->nlen, work, &len))
                    continue;
                v = work;
            }
            int k = api_key_match(s, v, len);
            if (k >= 0) {
                h->auth_scheme = i;
                h->auth_subject = s->key_names[k];
                h->auth_subject_len = strlen(s->key_names[k]);
                break;
            }
            if (bad == NULL)
                bad = "Invalid API key";
        }
    }
    if (h->auth_scheme < 0) {
        if (ra->python)
            return MT_AUTH_PYTHON;
        return answer(worker, c, h, keep_alive, 401, bad ? bad : "Not authenticated",
                      challenge[0] ? challenge : ra->challenge);
    }
    /* The guards on the token's claims. */
    for (int i = 0; i < ra->nclaims; i++)
        if (h->auth_claims == NULL ||
            !mt_jwt_claim_has(h->auth_claims, h->auth_claims_len, ra->claim_names[i], ra->claim_values[i]))
            return answer(worker, c, h, keep_alive, 403, "Permission denied", NULL);
    return MT_AUTH_OK;
}

PyObject *mt_auth_value(const mt_handler_t *h) {
    if (h->auth_scheme < 0)
        Py_RETURN_NONE;
    PyObject *claims =
        h->auth_claims ? PyBytes_FromStringAndSize(h->auth_claims, (Py_ssize_t)h->auth_claims_len) : Py_NewRef(Py_None);
    PyObject *sub = h->auth_subject ? PyUnicode_DecodeUTF8(h->auth_subject, (Py_ssize_t)h->auth_subject_len, "replace")
                                    : Py_NewRef(Py_None);
    PyObject *result = claims && sub ? Py_BuildValue("(iOO)", h->auth_scheme, claims, sub) : NULL;
    Py_XDECREF(claims);
    Py_XDECREF(sub);
    return result;
}
