/* wsgi.input: a stream over the request body that reads from the socket as
 * the application asks (without the GIL) and returns EOF exactly at the end
 * of the body, for Content-Length and chunked bodies alike. */
#include <string.h>

#include "input.h"

InputObject *mt_input_create(mt_state_t *st, mt_conn_t *conn) {
    InputObject *self = PyObject_New(InputObject, st->Input_Type);
    if (self) {
        self->conn = conn;
        self->error_status = 0;
        self->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    }
    return self;
}

void mt_input_detach(InputObject *self) {
    mt_py_mutex_lock(&self->lock);
    self->conn = NULL;
    pthread_mutex_unlock(&self->lock);
}

/* Makes up to `want` body bytes available. Returns how many are available
 * (0: end of the body), or -1 with an exception set. */
static Py_ssize_t fill(InputObject *self, size_t want) {
    mt_conn_t *c = self->conn;
    const mt_state_t *st = mt_state_of((PyObject *)self);
    if (c == NULL) {
        PyErr_SetString(PyExc_ValueError, "wsgi.input used after its request ended");
        return -1;
    }
    if (self->error_status) {
        PyErr_SetString(st->RequestBodyError, "the request body could not be read");
        return -1;
    }
    ssize_t n;
    size_t available = c->body.len - c->body_pos;
    if (available >= want || c->req.message_complete)
        return (Py_ssize_t)MT_MIN(available, want);
    Py_BEGIN_ALLOW_THREADS
        n = mt_conn_body_fill(c, want);
    Py_END_ALLOW_THREADS
    if (n >= 0)
        return n;
    if (n == -MT_ECLOSED || n == -EPIPE || n == -ECONNRESET) {
        self->error_status = 400;
        PyErr_SetString(st->ClientDisconnected, "the client closed the connection before the end of the body");
    } else if (n == -ETIMEDOUT) {
        self->error_status = 408;
        PyErr_SetString(st->RequestBodyError, "the request body did not arrive in time");
    } else if (n == -MT_EPROTO) {
        self->error_status = c->req.error_status ? c->req.error_status : 400;
        PyErr_Format(st->RequestBodyError, "invalid request body: %s",
                     c->req.error_reason ? c->req.error_reason : "malformed");
    } else {
        self->error_status = 500;
        errno = (int)-n;
        PyErr_SetFromErrno(PyExc_OSError);
    }
    return -1;
}

static PyObject *take(InputObject *self, size_t n) {
    mt_conn_t *c = self->conn;
    PyObject *data = PyBytes_FromStringAndSize(c->body.data ? c->body.data + c->body_pos : "", (Py_ssize_t)n);
    if (data)
        mt_conn_body_consume(c, n);
    return data;
}

static int parse_size(PyObject *arg, Py_ssize_t *size) {
    *size = -1;
    if (arg == NULL || arg == Py_None)
        return 0;
    *size = PyLong_AsSsize_t(arg);
    return *size == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *Input_read(InputObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (!mt_check_positional("read", nargs, 0, 1) || parse_size(nargs ? args[0] : NULL, &size) < 0)
        return NULL;
    size_t want = size < 0 ? SIZE_MAX : (size_t)size;
    mt_py_mutex_lock(&self->lock);
    Py_ssize_t n = fill(self, want);
    PyObject *data = n < 0 ? NULL : take(self, (size_t)n);
    pthread_mutex_unlock(&self->lock);
    return data;
}

/* The caller holds self->lock. */
static PyObject *readline(InputObject *self, Py_ssize_t size) {
    size_t limit = size < 0 ? SIZE_MAX : (size_t)size;
    size_t scanned = 0;
    for (;;) {
        mt_conn_t *c = self->conn;
        size_t available = c ? c->body.len - c->body_pos : 0;
        size_t span = MT_MIN(available, limit);
        const char *start = c && c->body.data ? c->body.data + c->body_pos : NULL;
        const char *nl = span > scanned ? memchr(start + scanned, '\n', span - scanned) : NULL;
        if (nl)
            return take(self, (size_t)(nl - start) + 1);
        if (span == limit)
            return take(self, span);
        scanned = span;
        Py_ssize_t n = fill(self, available + 1);
        if (n < 0)
            return NULL;
        if ((size_t)n <= available) /* the body ended */
            return take(self, MT_MIN((size_t)n, limit));
    }
}

static PyObject *Input_readline(InputObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t size;
    if (!mt_check_positional("readline", nargs, 0, 1) || parse_size(nargs ? args[0] : NULL, &size) < 0)
        return NULL;
    mt_py_mutex_lock(&self->lock);
    PyObject *line = readline(self, size);
    pthread_mutex_unlock(&self->lock);
    return line;
}

static PyObject *Input_readlines(InputObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t hint;
    if (!mt_check_positional("readlines", nargs, 0, 1) || parse_size(nargs ? args[0] : NULL, &hint) < 0)
        return NULL;
    PyObject *lines = PyList_New(0);
    Py_ssize_t total = 0;
    mt_py_mutex_lock(&self->lock);
    while (lines) {
        PyObject *line = readline(self, -1);
        if (line == NULL || PyBytes_GET_SIZE(line) == 0 || PyList_Append(lines, line) < 0) {
            if (line == NULL)
                Py_CLEAR(lines);
            Py_XDECREF(line);
            break;
        }
        total += PyBytes_GET_SIZE(line);
        Py_DECREF(line);
        if (hint > 0 && total >= hint)
            break;
    }
    pthread_mutex_unlock(&self->lock);
    return lines;
}

static PyObject *Input_iternext(InputObject *self) {
    mt_py_mutex_lock(&self->lock);
    PyObject *line = readline(self, -1);
    pthread_mutex_unlock(&self->lock);
    if (line && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL; /* StopIteration */
    }
    return line;
}

static PyMethodDef Input_methods[] = {
    {"read", (PyCFunction)(void (*)(void))Input_read, METH_FASTCALL,
     "read(size=-1, /)\n--\n\nReads up to size bytes of the body (all of it when size is negative)."},
    {"readline", (PyCFunction)(void (*)(void))Input_readline, METH_FASTCALL,
     "readline(size=-1, /)\n--\n\nReads one line of the body, up to size bytes."},
    {"readlines", (PyCFunction)(void (*)(void))Input_readlines, METH_FASTCALL,
     "readlines(hint=-1, /)\n--\n\nReads the remaining lines of the body."},
    {NULL},
};

static void Input_dealloc(InputObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type); /* a heap type's instances hold a reference to it */
}

static PyType_Slot Input_slots[] = {
    {Py_tp_doc, "wsgi.input: the body of one request."},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, Input_iternext},
    {Py_tp_methods, Input_methods},
    {Py_tp_dealloc, Input_dealloc},
    {0, NULL},
};

PyType_Spec Input_Spec = {
    .name = "meltemi._core.Input",
    .basicsize = sizeof(InputObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Input_slots,
};
