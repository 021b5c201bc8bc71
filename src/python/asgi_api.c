/* The typed API's async routes on the worker's event loop: a handler thread
 * that routed a request to an `async def` endpoint (MT_API_LOOP, after the C
 * router and checks) copies the route match out of its scratch buffer,
 * appends the connection to the loop's pending list and wakes the loop
 * through its eventfd (mt_asgi_api_push); it is free for the next request at
 * once. The loop takes the list (asgi_take → mt_asgi_api_take) and drives
 * each request through an AsgiRequest (asgi.c): the endpoint's arguments
 * (api_args, as mt_api_call builds them), the body read without blocking
 * (read), and the response through the response writer (respond, body, end).
 *
 * Threads: push runs on a handler thread without the GIL; everything else on
 * the loop's thread with the GIL held. `pending` is guarded by the mt_asgi_t
 * lock; an item's connection and copies are the loop's once taken. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "asgi.h"
#include "asgi_request.h"
#include "auth.h"
#include "cors.h"

typedef struct mt_asgi_pending {
    mt_conn_t *conn;
    int route;
    mt_route_match_t match;
    char *scratch; /* the router's values and room to decode the path (6 * path_len + 8 bytes) */
    size_t scratch_size;
    const char *path; /* in the connection's buffer */
    size_t path_len;
    mt_span_t query;
    int auth_scheme;
    char *auth_buf; /* the subject, then the claims, copied */
    size_t auth_subject_len, auth_claims_len;
    bool has_subject, has_claims;
} mt_asgi_pending_t;

static void pending_free(mt_asgi_pending_t *p) {
    free(p->scratch);
    free(p->auth_buf);
    free(p);
}

int mt_asgi_api_push(WorkerObject *w, mt_conn_t *c, const mt_handler_t *h) {
    mt_asgi_t *a = w->asgi;
    mt_asgi_pending_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return -ENOMEM;
    p->conn = c;
    p->route = h->route;
    p->match = h->match;
    p->path = h->path;
    p->path_len = h->path_len;
    p->query = h->query;
    p->scratch_size = MT_MIN(6 * h->path_len + 8, h->scratch_size);
    p->auth_scheme = h->auth_scheme;
    size_t alen = (h->auth_subject ? h->auth_subject_len : 0) + (h->auth_claims ? h->auth_claims_len : 0);
    if ((p->scratch = malloc(p->scratch_size)) == NULL || (alen && (p->auth_buf = malloc(alen)) == NULL)) {
        pending_free(p);
        return -ENOMEM;
    }
    memcpy(p->scratch, h->scratch, p->scratch_size);
    if (h->auth_subject) {
        p->has_subject = true;
        p->auth_subject_len = h->auth_subject_len;
        memcpy(p->auth_buf, h->auth_subject, h->auth_subject_len);
    }
    if (h->auth_claims) {
        p->has_claims = true;
        p->auth_claims_len = h->auth_claims_len;
        memcpy(p->auth_buf + p->auth_subject_len, h->auth_claims, h->auth_claims_len);
    }
    pthread_mutex_lock(&a->lock);
    if (a->npending == a->pending_cap) {
        size_t cap = a->pending_cap ? a->pending_cap * 2 : 64;
        mt_asgi_pending_t **grown = realloc(a->pending, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&a->lock);
            pending_free(p);
            return -ENOMEM;
        }
        a->pending = grown;
        a->pending_cap = cap;
    }
    /* The loop reads the eventfd before it takes the list: a push onto a
     * non-empty list is taken by the wake-up already due. */
    bool wake = a->npending == 0;
    a->pending[a->npending++] = p;
    pthread_mutex_unlock(&a->lock);
    if (wake) {
        uint64_t one = 1;
        while (write(a->efd, &one, sizeof one) < 0 && errno == EINTR) {
        }
    }
    return 0;
}

/* The exchange of a taken item: the route match moves into its handler. */
static PyObject *api_request_new(WorkerObject *w, mt_asgi_pending_t *p) {
    AsgiRequestObject *self = mt_asgi_request_create(w, p->conn);
    if (self == NULL) {
        pending_free(p);
        return NULL;
    }
    self->api = true;
    mt_handler_t *h = &self->handler;
    h->route = p->route;
    h->match = p->match;
    h->scratch = p->scratch;
    h->scratch_size = p->scratch_size;
    h->path = p->path;
    h->path_len = p->path_len;
    h->query = p->query;
    h->auth_scheme = p->auth_scheme;
    h->auth_buf = p->auth_buf;
    h->auth_buf_size = p->auth_subject_len + p->auth_claims_len;
    h->auth_subject = p->has_subject ? p->auth_buf : NULL;
    h->auth_subject_len = p->auth_subject_len;
    h->auth_claims = p->has_claims ? p->auth_buf + p->auth_subject_len : NULL;
    h->auth_claims_len = p->auth_claims_len;
    p->scratch = p->auth_buf = NULL; /* the handler's now (freed by release_buffers) */
    pending_free(p);
    mt_cors_decide(&self->ex.cors, self->conn); /* while the head is intact, as on a handler thread */
    /* A WebSocket route: the handshake checked (a refusal answered, scope None)
     * and its websocket scope built, for meltemi.api.websocket.WebSocket. */
    if (mt_api_route_websocket(w->api, h->route) && mt_asgi_request_scope(self) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

int mt_asgi_api_take(WorkerObject *w, PyObject *requests) {
    mt_asgi_t *a = w->asgi;
    pthread_mutex_lock(&a->lock);
    mt_asgi_pending_t **items = a->pending;
    size_t n = a->npending;
    a->pending = NULL;
    a->npending = a->pending_cap = 0;
    pthread_mutex_unlock(&a->lock);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        PyObject *r = api_request_new(w, items[i]);
        if (r == NULL || PyList_Append(requests, r) < 0)
            rc = -1; /* the others are still made: each holds a connection */
        Py_XDECREF(r);
    }
    free(items);
    return rc;
}

/* api_args() -> (endpoint, method, path, query, headers, params[, auth]).
 * A path that is not UTF-8 raises RequestBodyError; end() answers 400. */
PyObject *AsgiRequest_api_args(AsgiRequestObject *self, PyObject *unused) {
    if (mt_asgi_check_open(self) < 0)
        return NULL;
    if (!self->api) {
        PyErr_SetString(PyExc_RuntimeError, "api_args: not an API request");
        return NULL;
    }
    mt_asgi_batch_checkpoint(self->worker->asgi); /* the route's call begins */
    int bad_status = 0;
    PyObject *r = mt_api_loop_args(&self->ex, &self->handler, &bad_status);
    if (self->websocket)
        self->conn->head_consumed = false; /* the accept reads the handshake's fields again */
    if (r == NULL && bad_status) {
        self->error_status = bad_status;
        self->error_detail = MT_API_PATH_NOT_UTF8;
        PyErr_SetString(self->worker->st->RequestBodyError, MT_API_PATH_NOT_UTF8);
    }
    return r;
}

/* respond(status, headers, body=None): as start_response(status, headers)
 * and, with a list of bytes, the whole body (Content-Length, one compressed
 * stream, one write). With None, the body follows through body(). */
PyObject *AsgiRequest_respond(AsgiRequestObject *self, PyObject *args) {
    PyObject *status, *headers, *body = Py_None;
    if (!PyArg_ParseTuple(args, "UO!|O:respond", &status, &PyList_Type, &headers, &body) ||
        mt_asgi_check_open(self) < 0)
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "respond: the response has started");
        return NULL;
    }
    mt_exchange_t *ex = &self->ex;
    Py_XSETREF(ex->status, Py_NewRef(status));
    Py_XSETREF(ex->headers, Py_NewRef(headers));
    self->started = true;
    if (body == Py_None)
        Py_RETURN_NONE;
    if (!PyList_CheckExact(body)) {
        PyErr_Format(PyExc_TypeError, "respond: the body must be a list of bytes, got %.100s", Py_TYPE(body)->tp_name);
        return NULL;
    }
    self->complete = true;
    int rc = mt_response_known(ex, PySequence_Fast_ITEMS(body), PyList_GET_SIZE(body));
    if (rc == 0)
        rc = mt_response_end(ex);
    if (rc == 0 && !mt_asgi_hold(self))
        rc = mt_response_flush(ex);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}
