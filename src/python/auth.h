/* The typed API's authentication in C (auth.c): per route, the schemes
 * meltemi.api.auth compiled (JWT bearer tokens verified by
 * src/core/api/jwt.c, API keys compared by SHA-256 hash) and the guards
 * that read only the token's claims, checked on the handler thread without
 * the GIL after the route matched and before Python is called; 401 and 403
 * written in C. Plus _core.JWTVerifier, the Python handle of a key set and
 * its checks. */
#ifndef MT_PY_AUTH_H
#define MT_PY_AUTH_H

#include "worker.h"

extern PyType_Spec JWTVerifier_Spec;

typedef struct mt_auth mt_auth_t;

typedef enum mt_auth_result {
    MT_AUTH_NONE,     /* the route declares no authentication */
    MT_AUTH_OK,       /* authenticated in C: handler->auth_* say by what and as whom */
    MT_AUTH_PYTHON,   /* no C scheme accepted the request, a Python one (the session) decides */
    MT_AUTH_ANSWERED, /* refused: 401 or 403 written */
} mt_auth_result_t;

/* From the API spec's list of per-route auth specs (None or
 * (schemes, claims, challenge), see meltemi/api/auth.py), GIL held. NULL with
 * an exception. */
mt_auth_t *mt_auth_create(PyObject *specs, int nroutes);
void mt_auth_destroy(mt_auth_t *auth);

/* Checks route `route`'s authentication for the request on c, without the
 * GIL. Sets handler->auth_scheme (-1: none), auth_subject, auth_claims. On
 * MT_AUTH_ANSWERED, *keep_alive says whether the connection stays open. */
mt_auth_result_t mt_auth_check(WorkerObject *worker, const mt_auth_t *auth, int route, mt_conn_t *c,
                               mt_handler_t *handler, bool *keep_alive);

/* What the endpoint gets as its `auth` argument: None (not decided in C), or
 * (scheme index, claims JSON bytes or None, subject str or None). GIL held;
 * NULL with an exception. */
PyObject *mt_auth_value(const mt_handler_t *handler);

/* Whether the route has authentication (the endpoint takes `auth`). */
bool mt_auth_route_has(const mt_auth_t *auth, int route);

/* Frees the handler's auth buffer. */
void mt_auth_handler_dispose(mt_handler_t *handler);

#endif
