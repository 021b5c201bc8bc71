/* The loop's side of the ASGI bridge: what a worker's event loop (meltemi/asgi/,
 * meltemi/api/_loop.py) calls to take requests off the server's queue and to end
 * a batch. asgi_enable / api_loop_enable make the worker's mt_asgi_t (the
 * queue's eventfd, the drained list the I/O thread fills) and free it;
 * asgi_take pops every queued connection and makes its AsgiRequest (asgi.c);
 * the held responses of a batch (write batching) are kept here and written by
 * asgi_flush.
 *
 * Thread: on_drained runs on the I/O thread (under the connection's out_lock,
 * then mt_asgi_t.lock); everything else on the loop's thread with the GIL held. */
#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "asgi.h"
#include "asgi_request.h"
#include "response.h"

/* ---- the loop's side of the queue ---- */

/* I/O thread (or a producer), out_lock held: notes c and wakes the loop. */
static void on_drained(void *ctx, mt_conn_t *c) {
    mt_asgi_t *a = ctx;
    pthread_mutex_lock(&a->lock);
    if (a->ndrained == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        mt_conn_t **grown = realloc(a->drained, cap * sizeof *grown);
        if (grown) {
            a->drained = grown;
            a->cap = cap;
        }
    }
    if (a->ndrained < a->cap)
        a->drained[a->ndrained++] = c;
    pthread_mutex_unlock(&a->lock);
    uint64_t one = 1;
    while (write(a->efd, &one, sizeof one) < 0 && errno == EINTR) {
    }
}

void mt_asgi_free(mt_asgi_t *a) {
    if (a == NULL)
        return;
    if (a->efd >= 0)
        close(a->efd);
    pthread_mutex_destroy(&a->lock);
    free(a->drained);
    free(a->pending); /* empty: the I/O thread exited, so every connection was handed back */
    for (int i = 0; i < a->nservers; i++)
        Py_XDECREF(a->servers[i]);
    PyMem_Free(a->servers);
    Py_XDECREF(a->scope_template);
    Py_XDECREF(a->extensions_trailers);
    for (int i = 0; i < MT_ASGI_NKEYS; i++)
        Py_XDECREF(a->keys[i]);
    for (int i = 0; i < 2; i++) {
        Py_XDECREF(a->http_versions[i]);
        Py_XDECREF(a->schemes[i]);
    }
    for (size_t i = 0; i < MT_ARRAY_SIZE(a->status_lines); i++)
        Py_XDECREF(a->status_lines[i]);
    mt_asgi_ws_dispose(a);
    for (size_t i = 0; i < a->nheld; i++)
        Py_DECREF(a->held[i]);
    PyMem_Free(a->held);
    Py_XDECREF(a->ready);
    PyMem_Free(a);
}

static WorkerObject *as_worker(PyObject *obj) {
    return (WorkerObject *)obj;
}

static int check_worker(PyObject *module, PyObject *obj) {
    mt_state_t *st = PyModule_GetState(module);
    if (!Py_IS_TYPE(obj, st->Worker_Type)) {
        PyErr_SetString(PyExc_TypeError, "expected a meltemi._core.Worker");
        return -1;
    }
    return 0;
}

/* The worker's mt_asgi_t, with the eventfd its loop watches and the scope's
 * shared parts (a WebSocket route's scope too, for the API's loop). NULL with
 * an exception; once made it is the worker's (freed with it). */
static mt_asgi_t *loop_create(WorkerObject *w, bool api_only) {
    mt_asgi_t *a = PyMem_Calloc(1, sizeof *a);
    if (a == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->api_only = api_only;
    a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->asgi = a;
    if (a->efd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    if (mt_asgi_scope_setup(w, a) < 0 || (a->ready = PyList_New(0)) == NULL)
        return NULL;
    w->server.config.on_drained = on_drained;
    w->server.config.drained_ctx = a;
    return a;
}

/* asgi_enable(worker): the worker's requests go to an event loop instead of
 * handler threads. Before start(). Returns the eventfd the loop watches. */
static PyObject *asgi_enable(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    WorkerObject *w = as_worker(arg);
    if (!w->server_ready || w->asgi) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_enable: a new Worker, once");
        return NULL;
    }
    mt_asgi_t *a = loop_create(w, false);
    if (a == NULL)
        return NULL;
    w->server.queue.notify_fd = a->efd;
    return PyLong_FromLong(a->efd);
}

/* api_loop_enable(worker): the typed API's async routes go to an event loop
 * (asgi_api.c); everything else stays the handler threads'. Before start().
 * Returns the eventfd the loop watches. */
static PyObject *api_loop_enable(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    WorkerObject *w = as_worker(arg);
    if (!w->server_ready || w->asgi || w->api == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "api_loop_enable: a new Worker with an API, once");
        return NULL;
    }
    mt_asgi_t *a = loop_create(w, true);
    return a ? PyLong_FromLong(a->efd) : NULL;
}

/* ---- held responses (write batching) ----
 *
 * One wake-up of the loop brings every request queued since the last, and the
 * loop runs them one after another. Written one by one, each response would
 * reach a client that went back to waiting after the previous one: on a
 * loopback peer (nginx in front, a load generator) every write then pays the
 * peer's wake-up, on this worker's CPU. So while the loop runs a batch (from an
 * asgi_take that brought two or more requests until asgi_flush, which the
 * runtime calls once the batch's requests ran or suspended), a complete response
 * that is still all in its exchange's buffer (a head and a body of at most
 * response.c's SMALL_BODY) waits there, and the flush writes the held responses
 * back to back. What a response waits is bounded: past HOLD_MAX_NS after the
 * batch began, the held ones are written at once and nothing more is held.
 * Streamed responses, files, WebSockets and answers after the batch are never
 * held. The deadline is checked at each hold and as each exchange of the batch
 * begins (mt_asgi_batch_checkpoint), so a held response waits at most
 * HOLD_MAX_NS and the run of one request. An exchange whose end() came while held is ended by the flush (its
 * access log line, the connection handed back; a pipelined request found then
 * is returned by asgi_flush). */
#define HOLD_MAX_NS 500000ULL /* 0.5 ms */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Writes every held response; ends those whose end() came. */
static void flush_held(mt_asgi_t *a) {
    /* Taken out first: a finalizer run by a Py_DECREF below may start another exchange. */
    AsgiRequestObject **held = a->held;
    size_t n = a->nheld, cap = a->held_cap;
    a->held = NULL;
    a->nheld = a->held_cap = 0;
    for (size_t i = 0; i < n; i++) {
        AsgiRequestObject *r = held[i];
        r->held = false;
        if (r->conn && r->ex.out->len && !r->ex.failed && mt_response_flush(&r->ex) < 0)
            PyErr_Clear(); /* the client went away: the exchange has failed, end() closes */
    }
    for (size_t i = 0; i < n; i++) {
        AsgiRequestObject *r = held[i];
        if (r->end_due) {
            r->end_due = false;
            PyObject *next = mt_asgi_end_exchange(r, r->end_failed);
            if (next == NULL || (next != Py_None && PyList_Append(a->ready, next) < 0))
                PyErr_WriteUnraisable((PyObject *)r);
            Py_XDECREF(next);
        }
    }
    for (size_t i = 0; i < n; i++)
        Py_DECREF(held[i]);
    if (a->held == NULL) {
        a->held = held; /* keep the array for the next batch */
        a->held_cap = cap;
    } else {
        PyMem_Free(held);
    }
}

/* Past the batch's deadline: writes what is held, and holds nothing more. */
static bool batch_expired(mt_asgi_t *a) {
    if (now_ns() <= a->batch_deadline_ns)
        return false;
    a->batching = false;
    if (a->nheld)
        flush_held(a);
    return true;
}

void mt_asgi_batch_checkpoint(mt_asgi_t *a) {
    if (a->batching && a->nheld)
        batch_expired(a);
}

bool mt_asgi_hold(AsgiRequestObject *self) {
    mt_asgi_t *a = self->worker->asgi;
    mt_exchange_t *ex = &self->ex;
    if (!a->batching || self->websocket || ex->head_sent || ex->failed || ex->out->len == 0 || batch_expired(a))
        return false;
    if (a->nheld == a->held_cap) {
        size_t cap = a->held_cap ? a->held_cap * 2 : 64;
        AsgiRequestObject **grown = PyMem_Realloc(a->held, cap * sizeof *grown);
        if (grown == NULL)
            return false; /* written now */
        a->held = grown;
        a->held_cap = cap;
    }
    a->held[a->nheld++] = (AsgiRequestObject *)Py_NewRef(self);
    self->held = true;
    return true;
}

/* asgi_flush(worker) -> [AsgiRequest]: ends the batch: writes the held
 * responses; returns the pipelined requests found while ending them. */
static PyObject *asgi_flush(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    mt_asgi_t *a = as_worker(arg)->asgi;
    if (a == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_flush: asgi_enable first");
        return NULL;
    }
    mt_conn_never_wait = true;
    a->batching = false;
    if (a->nheld)
        flush_held(a);
    if (PyList_GET_SIZE(a->ready) == 0)
        return Py_NewRef(a->ready); /* empty; the caller only iterates it */
    PyObject *ready = a->ready;
    if ((a->ready = PyList_New(0)) == NULL) {
        a->ready = ready;
        return NULL;
    }
    return ready;
}

/* asgi_take(worker) -> (requests, drained connection ids, closed): what
 * woke the loop. */
static PyObject *asgi_take(PyObject *module, PyObject *arg) {
    if (check_worker(module, arg) < 0)
        return NULL;
    WorkerObject *w = as_worker(arg);
    mt_asgi_t *a = w->asgi;
    if (a == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_take: asgi_enable first");
        return NULL;
    }
    mt_conn_never_wait = true;
    uint64_t counter;
    while (read(a->efd, &counter, sizeof counter) < 0 && errno == EINTR) {
    }
    PyObject *requests = PyList_New(0), *drained = NULL, *result = NULL;
    if (requests == NULL)
        return NULL;
    bool closed = false;
    mt_queue_item_t *item;
    if (a->api_only && mt_asgi_api_take(w, requests) < 0)
        goto done;
    while (!a->api_only && (item = mt_queue_trypop(&w->server.queue, &closed)) != NULL) {
        PyObject *r = mt_asgi_request_new(w, mt_conn_from_item(item));
        if (r == NULL || PyList_Append(requests, r) < 0) {
            Py_XDECREF(r);
            goto done;
        }
        Py_DECREF(r);
    }
    if (PyList_GET_SIZE(requests) >= 2 && !a->batching) {
        a->batching = true;
        a->batch_deadline_ns = now_ns() + HOLD_MAX_NS;
    }
    pthread_mutex_lock(&a->lock);
    drained = PyList_New((Py_ssize_t)a->ndrained);
    for (size_t i = 0; drained && i < a->ndrained; i++) {
        PyObject *id = PyLong_FromVoidPtr(a->drained[i]);
        if (id == NULL) {
            Py_CLEAR(drained);
            break;
        }
        PyList_SET_ITEM(drained, (Py_ssize_t)i, id);
    }
    a->ndrained = 0;
    pthread_mutex_unlock(&a->lock);
    if (drained)
        result = Py_BuildValue("(OOO)", requests, drained, closed ? Py_True : Py_False);
done:
    Py_DECREF(requests);
    Py_XDECREF(drained);
    return result;
}

PyMethodDef mt_asgi_methods[] = {
    {"asgi_enable", asgi_enable, METH_O,
     "asgi_enable(worker, /)\n--\n\nHands the worker's requests to an event loop; returns the eventfd it watches."},
    {"api_loop_enable", api_loop_enable, METH_O,
     "api_loop_enable(worker, /)\n--\n\nHands the typed API's async routes to an event loop; returns the eventfd it "
     "watches."},
    {"asgi_take", asgi_take, METH_O,
     "asgi_take(worker, /)\n--\n\n(requests, drained connection ids, closed): what woke the loop; two or more "
     "requests begin a batch (held responses)."},
    {"asgi_flush", asgi_flush, METH_O,
     "asgi_flush(worker, /)\n--\n\nEnds the batch: writes the held responses; returns the pipelined requests found "
     "while ending them."},
    {"asgi_ws_configure", mt_asgi_ws_configure, METH_VARARGS,
     "asgi_ws_configure(worker, max_size, deflate, /)\n--\n\nThe WebSocket limits: the largest frame or message (1009 "
     "beyond), whether permessage-deflate is negotiated."},
    {NULL, NULL, 0, NULL},
};
