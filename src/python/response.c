/* Running the WSGI application for one request and sending its response:
 * start_response, write(), iterables, wsgi.file_wrapper with sendfile, close()
 * called exactly once, errors answered with 500 while no header was sent.
 *
 * GIL: held throughout, except around socket writes (and body reads, in
 * input.c). A response whose body is a list (or a one-chunk iterable) of at
 * most SMALL_BODY bytes is copied behind its head into `out`, which the
 * handler loop writes after it released the GIL: such a request costs one GIL
 * hold in all. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "api.h"
#include "encoding.h"
#include "environ.h"
#include "filewrapper.h"
#include "response.h"
#include "http1_write.h"
#include "respond.h"

#define SMALL_BODY 65536

/* ---- start_response and write() ---- */

static int start_response(StartResponseObject *self, PyObject *status, PyObject *headers, PyObject *exc_info);

static PyObject *StartResponse_call(StartResponseObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"status", "headers", "exc_info", NULL};
    PyObject *status, *headers, *exc_info = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "UO!|O:start_response", keywords, &status, &PyList_Type, &headers,
                                     &exc_info))
        return NULL;
    mt_py_mutex_lock(&self->lock);
    int rc = start_response(self, status, headers, exc_info);
    pthread_mutex_unlock(&self->lock);
    return rc < 0 ? NULL : PyObject_GetAttrString((PyObject *)self, "write");
}

/* start_response's work, under self->lock. 0, or -1 with an exception set. */
static int start_response(StartResponseObject *self, PyObject *status, PyObject *headers, PyObject *exc_info) {
    mt_exchange_t *ex = self->exchange;
    if (ex == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called after its request ended");
        return -1;
    }
    if (exc_info != Py_None) {
        if (ex->head_sent) {
            /* Too late to change the response: re-raise, as PEP 3333 asks. */
            PyObject *type, *value, *tb;
            if (!PyArg_ParseTuple(exc_info, "OOO:exc_info", &type, &value, &tb))
                return -1;
            if (!PyExceptionInstance_Check(value)) {
                PyErr_SetObject(type, value);
                return -1;
            }
            if (tb != Py_None && PyException_SetTraceback(value, tb) < 0)
                return -1;
            PyErr_SetRaisedException(Py_NewRef(value));
            return -1;
        }
    } else if (ex->status != NULL) {
        PyErr_SetString(PyExc_AssertionError, "start_response() called twice without exc_info");
        return -1;
    }
    Py_INCREF(status);
    Py_INCREF(headers);
    Py_XSETREF(ex->status, status);
    Py_XSETREF(ex->headers, headers);
    return 0;
}

/* The latin-1 bytes of a str: its own buffer when it is ASCII, else an
 * encoded copy kept in *holder. NULL with an exception if not latin-1. */
static const char *latin1_bytes(PyObject *str, Py_ssize_t *len, PyObject **holder) {
    *holder = NULL;
    if (!PyUnicode_Check(str)) {
        PyErr_Format(PyExc_TypeError, "expected str, got %.100s", Py_TYPE(str)->tp_name);
        return NULL;
    }
    if (PyUnicode_IS_COMPACT_ASCII(str)) {
        *len = PyUnicode_GET_LENGTH(str);
        return (const char *)PyUnicode_DATA(str);
    }
    *holder = PyUnicode_AsLatin1String(str);
    if (*holder == NULL)
        return NULL;
    *len = PyBytes_GET_SIZE(*holder);
    return PyBytes_AS_STRING(*holder);
}

/* The application's header fields into the head (the caller holds the list's
 * critical section). 0, -ENOMEM, or -1 with an exception set. */
static int head_fields(PyObject *headers, mt_respond_t *head, mt_buf_t *out) {
    Py_ssize_t count = PyList_GET_SIZE(headers), nlen, vlen;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i), *holder = NULL, *holder2 = NULL;
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_Format(PyExc_TypeError, "response header %zd is not a (name, value) tuple", i);
            return -1;
        }
        const char *name = latin1_bytes(PyTuple_GET_ITEM(item, 0), &nlen, &holder);
        const char *value = name ? latin1_bytes(PyTuple_GET_ITEM(item, 1), &vlen, &holder2) : NULL;
        int rc = value ? mt_respond_field(head, out, name, (size_t)nlen, value, (size_t)vlen) : -1;
        Py_XDECREF(holder);
        Py_XDECREF(holder2);
        if (value == NULL)
            return -1;
        if (rc == MT_RESPOND_EBADLENGTH) {
            PyErr_Format(PyExc_ValueError, "invalid Content-Length %R", PyTuple_GET_ITEM(item, 1));
            return -1;
        }
        if (rc == -EINVAL) {
            PyErr_Format(PyExc_ValueError, "invalid response header %R (bad character in name or value)", item);
            return -1;
        }
        if (rc < 0)
            return -ENOMEM;
    }
    return 0;
}

/* Serializes the status line and headers into ex->out through the response
 * writer (src/core/http1/respond.c), which decides the framing. `known_length` is
 * the body's length when the server already has all of it, or -1. Returns
 * 0, or -1 with an exception set (nothing written). */
static int build_head(mt_exchange_t *ex, long long known_length) {
    mt_buf_t *out = ex->out;
    size_t mark = out->len;
    PyObject *holder = NULL;
    if (ex->status == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the application returned without calling start_response()");
        return -1;
    }
    mt_conn_t *c = ex->conn;
    mt_respond_t head;
    mt_respond_init(&head, &c->req, ex->keep_alive && mt_respond_keep_alive(c, false));
    mt_respond_request_id(&head, c);
    mt_cors_respond(&head, &ex->cors);
    Py_ssize_t slen;
    const char *status = latin1_bytes(ex->status, &slen, &holder);
    if (status == NULL)
        goto error;
    int rc = mt_respond_status_line(&head, out, status, (size_t)slen);
    Py_CLEAR(holder);
    if (rc == -EINVAL) {
        PyErr_Format(PyExc_ValueError, "invalid status line %R", ex->status);
        goto error;
    }
    if (rc < 0)
        goto nomem;
    ex->status_code = head.status;
    ex->no_body = ex->no_body || head.no_body;
    if (!ex->decided)
        mt_encoding_decide(ex, known_length);
    head.compressing = ex->compressing;
    head.vary = ex->vary;
    Py_BEGIN_CRITICAL_SECTION(ex->headers);
    rc = head_fields(ex->headers, &head, out);
    Py_END_CRITICAL_SECTION();
    if (rc == -ENOMEM)
        goto nomem;
    if (rc < 0)
        goto error;
    const char *coding = ex->compressing ? mt_compress_coding_name(ex->coding) : NULL;
    if (mt_respond_end(&head, out, coding, known_length) < 0)
        goto nomem;
    ex->declared_length = head.declared_length;
    ex->keep_alive = head.keep_alive;
    ex->chunked = head.chunked;
    ex->head_built = true;
    return 0;
nomem:
    PyErr_NoMemory();
error:
    Py_XDECREF(holder);
    out->len = mark;
    return -1;
}

/* Sends what `out` holds and then iov, without the GIL. Returns 0 or -1 with
 * ClientDisconnected set (the connection must be closed). */
static int send_now(mt_exchange_t *ex, struct iovec *iov, int iovcnt) {
    struct iovec local[66];
    int n = 0;
    if (ex->out->len)
        local[n++] = (struct iovec){ex->out->data, ex->out->len};
    for (int i = 0; i < iovcnt && n < (int)MT_ARRAY_SIZE(local); i++)
        if (iov[i].iov_len)
            local[n++] = iov[i];
    int rc;
    Py_BEGIN_ALLOW_THREADS
        rc = mt_conn_writev(ex->conn, local, n);
    Py_END_ALLOW_THREADS
    ex->out->len = 0;
    ex->head_sent = true;
    if (rc < 0) {
        ex->keep_alive = false;
        ex->failed = true;
        PyErr_SetString(ex->worker->st->ClientDisconnected,
                        rc == -ETIMEDOUT ? "the client did not read the response in time" : "the client went away");
        return -1;
    }
    return 0;
}

/* Puts body bytes on their way: framed as a chunk when chunked. With `hold`
 * (the body is complete) and while the head has not gone out, small bytes
 * join `out` to leave with the head in the handler loop's single write. */
static int emit(mt_exchange_t *ex, const char *data, size_t len, bool hold) {
    if (len == 0)
        return 0;
    char line[24];
    size_t line_len = ex->chunked ? mt_http1_chunk_size_line(line, len) : 0;
    if (hold && !ex->head_sent && ex->out->len + line_len + len + 2 <= SMALL_BODY) {
        if (mt_buf_append(ex->out, line, line_len) < 0 || mt_buf_append(ex->out, data, len) < 0 ||
            (ex->chunked && mt_buf_append(ex->out, "\r\n", 2) < 0)) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    struct iovec iov[3];
    int n = 0;
    if (ex->chunked)
        iov[n++] = (struct iovec){line, line_len};
    iov[n++] = (struct iovec){(void *)data, len};
    if (ex->chunked)
        iov[n++] = (struct iovec){"\r\n", 2};
    return send_now(ex, iov, n);
}

/* Sends one body chunk: cut at the declared length, compressed (and flushed,
 * so the client can show it now) when compressing, not at all for
 * HEAD/204/304. `last`: no body follows (the compressed stream ends here,
 * and small bytes wait with the head). Returns 0 or -1 with an exception set. */
static int send_part(mt_exchange_t *ex, const char *data, size_t len, bool last) {
    if (len == 0)
        return 0;
    if (ex->declared_length >= 0 && ex->body_sent + len > (unsigned long long)ex->declared_length) {
        len = (size_t)((unsigned long long)ex->declared_length - ex->body_sent);
        ex->keep_alive = false; /* the application wrote more than it declared */
        if (len == 0)
            return 0;
    }
    ex->body_sent += len;
    if (ex->no_body)
        return 0;
    /* Complete by its own Content-Length (Django's HttpResponse): nothing can
     * follow, so holding it back costs no latency. */
    bool complete = last || (ex->declared_length >= 0 && ex->body_sent == (unsigned long long)ex->declared_length);
    if (!ex->compressing)
        return emit(ex, data, len, complete);
    ex->handler->zbuf.len = 0;
    if (mt_encoding_compress(ex, data, len, complete ? MT_COMPRESS_END : MT_COMPRESS_FLUSH) < 0)
        return -1;
    return emit(ex, ex->handler->zbuf.data, ex->handler->zbuf.len, complete);
}

static int send_chunk(mt_exchange_t *ex, const char *data, size_t len) {
    return send_part(ex, data, len, false);
}

static PyObject *StartResponse_write(StartResponseObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    mt_py_mutex_lock(&self->lock);
    mt_exchange_t *ex = self->exchange;
    int rc = 0;
    if (ex == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "write() called after its request ended");
        rc = -1;
    } else if (!ex->head_built) {
        rc = build_head(ex, -1);
    }
    if (rc == 0 && !ex->head_sent && view.len == 0)
        rc = send_now(ex, NULL, 0);
    if (rc == 0)
        rc = send_chunk(ex, view.buf, (size_t)view.len);
    pthread_mutex_unlock(&self->lock);
    PyBuffer_Release(&view);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void StartResponse_dealloc(StartResponseObject *self) {
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type); /* a heap type's instances hold a reference to it */
}

static PyMethodDef StartResponse_methods[] = {
    {"write", (PyCFunction)StartResponse_write, METH_O,
     "write(data, /)\n--\n\nSends data at once (the legacy write() of PEP 3333)."},
    {NULL},
};

static PyType_Slot StartResponse_slots[] = {
    {Py_tp_doc, "start_response(status, headers, exc_info=None)\n--\n\nThe WSGI start_response callable."},
    {Py_tp_call, StartResponse_call},
    {Py_tp_methods, StartResponse_methods},
    {Py_tp_dealloc, StartResponse_dealloc},
    {0, NULL},
};

PyType_Spec StartResponse_Spec = {
    .name = "meltemi._core.StartResponse",
    .basicsize = sizeof(StartResponseObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = StartResponse_slots,
};

/* ---- the body ---- */

static int check_bytes(PyObject *chunk) {
    if (PyBytes_Check(chunk))
        return 0;
    PyErr_Format(PyExc_TypeError, "the application yielded %.100s, not bytes", Py_TYPE(chunk)->tp_name);
    return -1;
}

/* A body whose chunks are all in hand (a list or tuple, or a one-chunk
 * iterable): one head with Content-Length, then the chunks, copied into
 * `out` when small so the handler loop sends everything in one write. */
static int send_known(mt_exchange_t *ex, PyObject *const *items, Py_ssize_t count) {
    long long total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        if (check_bytes(items[i]) < 0)
            return -1;
        total += PyBytes_GET_SIZE(items[i]);
    }
    if (!ex->decided)
        mt_encoding_decide(ex, total);
    if (ex->compressing) {
        mt_buf_t *z = &ex->handler->zbuf;
        z->len = 0;
        for (Py_ssize_t i = 0; i < count; i++)
            if (mt_encoding_compress(ex, PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i]),
                                     i + 1 == count ? MT_COMPRESS_END : MT_COMPRESS_CONTINUE) < 0)
                return -1;
        if (count == 0 && mt_encoding_compress(ex, NULL, 0, MT_COMPRESS_END) < 0)
            return -1;
        if (build_head(ex, (long long)z->len) < 0)
            return -1;
        if (ex->declared_length >= 0 && total != ex->declared_length)
            ex->keep_alive = false;
        ex->body_sent += (unsigned long long)total;
        return emit(ex, z->data, z->len, true);
    }
    if (build_head(ex, total) < 0)
        return -1;
    if (ex->declared_length >= 0 && total != ex->declared_length)
        ex->keep_alive = false; /* the body does not match its own Content-Length: the close frames it */
    if (ex->no_body || total == 0) {
        ex->body_sent += (unsigned long long)total;
        return 0;
    }
    if (total <= SMALL_BODY && (ex->declared_length < 0 || total <= ex->declared_length)) {
        for (Py_ssize_t i = 0; i < count; i++)
            if (mt_buf_append(ex->out, PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i])) < 0) {
                PyErr_NoMemory();
                return -1;
            }
        ex->body_sent += (unsigned long long)total;
        return 0;
    }
    for (Py_ssize_t i = 0; i < count; i++)
        if (send_chunk(ex, PyBytes_AS_STRING(items[i]), (size_t)PyBytes_GET_SIZE(items[i])) < 0)
            return -1;
    return 0;
}

/* wsgi.file_wrapper over a regular file: the head, then sendfile(2) from the
 * file's current position. Returns 1 if sent, 0 if the file cannot be sent
 * this way (iterate it instead), -1 with an exception set. */
static int send_file(mt_exchange_t *ex, FileWrapperObject *wrapper) {
    PyObject *fileno_obj = PyObject_CallMethodNoArgs(wrapper->filelike, ex->worker->st->str.fileno);
    if (fileno_obj == NULL) {
        PyErr_Clear(); /* BytesIO and friends: no descriptor */
        return 0;
    }
    int fd = (int)PyLong_AsLong(fileno_obj);
    Py_DECREF(fileno_obj);
    struct stat st;
    off_t offset;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (offset = lseek(fd, 0, SEEK_CUR)) < 0) {
        PyErr_Clear();
        return 0;
    }
    long long remaining = st.st_size > offset ? (long long)(st.st_size - offset) : 0;
    /* Files go out with sendfile, as they are: compression belongs to the
     * static handler's precompressed variants, not to a copy through memory. */
    ex->decided = true;
    ex->compressing = ex->vary = false;
    if (build_head(ex, remaining) < 0)
        return -1;
    long long count = remaining;
    if (ex->declared_length >= 0 && ex->declared_length != remaining) {
        count = MT_MIN(ex->declared_length, remaining);
        ex->keep_alive = false;
    }
    if (ex->no_body || count == 0)
        return send_now(ex, NULL, 0) < 0 ? -1 : 1;
    int rc = 0;
    struct iovec head = {ex->out->data, ex->out->len};
    Py_BEGIN_ALLOW_THREADS
        rc = mt_conn_writev_more(ex->conn, &head, 1);
        if (rc == 0)
            rc = mt_conn_sendfile(ex->conn, fd, &offset, (size_t)count);
    Py_END_ALLOW_THREADS
    ex->out->len = 0;
    ex->head_sent = true;
    if (rc < 0) {
        ex->keep_alive = false;
        ex->failed = true;
        PyErr_SetString(ex->worker->st->ClientDisconnected, "the client went away during sendfile");
        return -1;
    }
    ex->body_sent += (unsigned long long)count;
    /* Leave the file where a read would have: after what was sent. */
    lseek(fd, offset, SEEK_SET);
    return 1;
}

/* Any other iterable, chunk by chunk: each block goes out as soon as the
 * application yields it (PEP 3333 forbids holding a block back until the
 * next one is produced: think of server-sent events). The head waits for the
 * first non-empty block. */
/* The Content-Length the application declared, or -1 (build_head checks it). */
static long long content_length_of(PyObject *headers) {
    Py_ssize_t count = PyList_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        Py_ssize_t nlen, vlen;
        const char *name, *value;
        long long length;
        if (PyTuple_Check(item) && PyTuple_GET_SIZE(item) == 2 && PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) &&
            PyUnicode_Check(PyTuple_GET_ITEM(item, 1)) &&
            (name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 0), &nlen)) && nlen == 14 &&
            strncasecmp(name, "content-length", 14) == 0 &&
            (value = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 1), &vlen)) &&
            mt_respond_parse_length(value, (size_t)vlen, &length))
            return length;
    }
    PyErr_Clear();
    return -1;
}

static long long app_content_length(mt_exchange_t *ex) {
    long long length;
    Py_BEGIN_CRITICAL_SECTION(ex->headers);
    length = content_length_of(ex->headers);
    Py_END_CRITICAL_SECTION();
    return length;
}

static int send_iterable(mt_exchange_t *ex, PyObject *result) {
    PyObject *iter = PyObject_GetIter(result), *chunk = NULL;
    if (iter == NULL)
        return -1;
    int rc = -1;
    while ((chunk = PyIter_Next(iter)) != NULL) {
        if (check_bytes(chunk) < 0)
            goto done;
        Py_ssize_t len = PyBytes_GET_SIZE(chunk);
        if (len && !ex->head_built && ex->status && app_content_length(ex) == len) {
            /* The first block is the whole body by its own Content-Length
             * (Django's HttpResponse): nothing can follow, so it is sent as a
             * known body, compressed in one stream with a Content-Length. */
            if (send_known(ex, &chunk, 1) < 0)
                goto done;
            Py_CLEAR(chunk);
            continue;
        }
        if (len && !ex->head_built && build_head(ex, -1) < 0)
            goto done;
        if (send_chunk(ex, PyBytes_AS_STRING(chunk), (size_t)len) < 0)
            goto done;
        Py_CLEAR(chunk);
    }
    rc = PyErr_Occurred() ? -1 : 0;
done:
    Py_XDECREF(chunk);
    Py_DECREF(iter);
    return rc;
}

static int send_result(mt_exchange_t *ex, PyObject *result) {
    if (ex->head_built)
        return send_iterable(ex, result); /* write() was used: the head is out, no length to compute */
    if (PyList_CheckExact(result)) {
        /* A snapshot: the list may be the application's own, shared by every
         * request (a module-level [b"hello"]), and sending releases the GIL. */
        PyObject *items = PyList_AsTuple(result);
        int rc = items ? send_known(ex, PySequence_Fast_ITEMS(items), PyTuple_GET_SIZE(items)) : -1;
        Py_XDECREF(items);
        return rc;
    }
    if (PyTuple_CheckExact(result))
        return send_known(ex, PySequence_Fast_ITEMS(result), PyTuple_GET_SIZE(result));
    if (Py_IS_TYPE(result, ex->worker->st->FileWrapper_Type)) {
        int rc = send_file(ex, (FileWrapperObject *)result);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
    }
    /* An iterable of len() 1 holds its whole body (PEP 3333 lets the server
     * compute Content-Length from it). */
    if (Py_TYPE(result)->tp_as_sequence && Py_TYPE(result)->tp_as_sequence->sq_length && PySequence_Size(result) == 1) {
        PyObject *only = PySequence_GetItem(result, 0);
        int rc = only ? send_known(ex, &only, 1) : -1;
        Py_XDECREF(only);
        return rc;
    }
    if (PyErr_Occurred())
        PyErr_Clear(); /* a __len__ that fails: iterate instead */
    return send_iterable(ex, result);
}

/* Ends the body: the last chunk of a chunked body, and whether the length
 * the application declared was honoured. */
static int finish_body(mt_exchange_t *ex) {
    if (!ex->head_built && build_head(ex, 0) < 0)
        return -1;
    if (ex->declared_length >= 0 && ex->body_sent != (unsigned long long)ex->declared_length && !ex->no_body)
        ex->keep_alive = false; /* short body: only a close tells the client */
    if (ex->compressing && !ex->compress_ended && !ex->no_body) {
        ex->handler->zbuf.len = 0;
        if (mt_encoding_compress(ex, NULL, 0, MT_COMPRESS_END) < 0 ||
            emit(ex, ex->handler->zbuf.data, ex->handler->zbuf.len, true) < 0)
            return -1;
    }
    /* With trailers to come, the last chunk waits for them (mt_response_trailer). */
    if (ex->chunked && mt_http1_last_chunk(ex->out, ex->trailers) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

void mt_log_exception(WorkerObject *worker, const char *message) {
    PyObject *exc = PyErr_GetRaisedException(); /* normalized, with its traceback */
    PyObject *result = NULL;
    if (worker->error_log && exc)
        result = PyObject_CallFunction(worker->error_log, "sO", message, exc);
    if (result == NULL) {
        if (PyErr_Occurred())
            PyErr_Clear();
        PyErr_SetRaisedException(exc);
        PySys_WriteStderr("meltemi: %s\n", message);
        PyErr_Print();
        return;
    }
    Py_DECREF(result);
    Py_XDECREF(exc);
}

/* Replaces whatever response was prepared but not sent by the server's own
 * error answer, and closes the connection after it. */
static void answer_error(mt_exchange_t *ex, int status, const char *detail, bool keep_alive) {
    ex->out->len = 0;
    ex->keep_alive = keep_alive;
    ex->status_code = status;
    if (mt_respond_error(ex->out, &ex->conn->req, status, detail, keep_alive) < 0)
        ex->out->len = 0;
    ex->body_sent = 0;
}

bool mt_response_run(WorkerObject *worker, mt_conn_t *conn, mt_handler_t *handler) {
    mt_buf_t *out = &handler->out;
    mt_exchange_t ex = {
        .worker = worker,
        .conn = conn,
        .out = out,
        .handler = handler,
        .coding = mt_encoding_negotiate(worker, conn),
        .keep_alive = conn->req.keep_alive && !mt_server_draining(&worker->server),
        .no_body = conn->req.method_id == HTTP_HEAD,
        .declared_length = -1,
        .status_code = 500,
    };
    out->len = 0;
    mt_cors_decide(&ex.cors, conn);
    const mt_py_strings_t *S = &worker->st->str;
    ex.method = S->methods[conn->req.method_id < MT_ARRAY_SIZE(S->methods) ? conn->req.method_id : 0];
    PyObject *environ = NULL, *result = NULL, *args[2];
    StartResponseObject *start_response = NULL;
    ex.input = mt_input_create(worker->st, conn);
    if (ex.input)
        start_response = PyObject_New(StartResponseObject, worker->st->StartResponse_Type);
    if (start_response == NULL) {
        mt_log_exception(worker, "cannot allocate a request");
        answer_error(&ex, 503, "out of memory", false);
        goto done;
    }
    start_response->exchange = &ex;
    start_response->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    if (handler->route >= 0) {
        /* A route of the typed API: its endpoint answers like an application. */
        int bad_status;
        result = mt_api_call(&ex, (PyObject *)start_response, handler, &bad_status);
        conn->head_consumed = true;
        if (result == NULL && bad_status) {
            answer_error(&ex, bad_status, MT_API_PATH_NOT_UTF8, ex.keep_alive);
            goto done;
        }
    } else {
        environ = mt_environ_build(worker, conn, (PyObject *)ex.input, &ex.uri);
        conn->head_consumed = true;
        if (environ == NULL) {
            mt_log_exception(worker, "cannot build the WSGI environ");
            answer_error(&ex, 500, NULL, false);
            goto done;
        }
        args[0] = environ;
        args[1] = (PyObject *)start_response;
        result = PyObject_Vectorcall(worker->app, args, 2, NULL);
        Py_CLEAR(environ);
    }
    if (result == NULL || send_result(&ex, result) < 0 || finish_body(&ex) < 0) {
        if (ex.failed) {
            PyErr_Clear(); /* the client went away: nothing to answer, nothing to log */
        } else if (ex.input->error_status && !ex.head_sent) {
            PyErr_Clear(); /* the body could not be read: the status says why */
            answer_error(&ex, ex.input->error_status, "the request body could not be read", false);
        } else {
            PyObject *message = PyUnicode_FromFormat("Error handling request %U %U", ex.method, ex.uri);
            mt_log_exception(worker, message ? PyUnicode_AsUTF8(message) : "Error handling request");
            Py_XDECREF(message);
            if (ex.head_sent) {
                ex.out->len = 0; /* the response is cut short: only closing says so */
                ex.keep_alive = false;
            } else {
                /* Nothing was sent: the framing is intact and the connection
                 * may carry the next request (after the body is drained). */
                answer_error(&ex, 500, NULL, ex.keep_alive);
            }
        }
    } else if (ex.input->error_status && !ex.head_sent) {
        /* The application answered although its body could not be read
         * (Django turns the read error into a page): the client gets the
         * reason instead. */
        answer_error(&ex, ex.input->error_status, "the request body could not be read", false);
    }
    if (result) {
        /* close() exactly once, whatever happened above (PEP 3333). */
        PyObject *close = NULL;
        if (!PyList_CheckExact(result) && !PyTuple_CheckExact(result) &&
            PyObject_GetOptionalAttr(result, S->close, &close) > 0) {
            PyObject *r = PyObject_CallNoArgs(close);
            if (r == NULL)
                mt_log_exception(worker, "Error closing the response iterable");
            Py_XDECREF(r);
        }
        if (PyErr_Occurred())
            mt_log_exception(worker, "Error looking up close() of the response iterable");
        Py_XDECREF(close);
    }
    /* The access log line is written by hand_back (worker.c), after the
     * response's last write, without the GIL; a client that went away is
     * not logged. */
    if (!ex.failed) {
        conn->answer_status = ex.status_code;
        conn->answer_bytes = ex.body_sent;
    }
done:
    if (start_response) {
        mt_py_mutex_lock(&start_response->lock); /* a write() of another thread ends first */
        start_response->exchange = NULL;
        pthread_mutex_unlock(&start_response->lock);
        Py_DECREF(start_response);
    }
    if (ex.input) {
        mt_input_detach(ex.input);
        Py_DECREF(ex.input);
    }
    Py_XDECREF(result);
    Py_XDECREF(environ);
    Py_XDECREF(ex.uri);
    Py_XDECREF(ex.status);
    Py_XDECREF(ex.headers);
    return ex.keep_alive && !ex.failed;
}

/* ---- for the ASGI glue (asgi.c): the same steps, driven by its messages ---- */

int mt_response_head(mt_exchange_t *ex, long long known_length) {
    return build_head(ex, known_length);
}

int mt_response_known(mt_exchange_t *ex, PyObject *const *chunks, Py_ssize_t count) {
    return send_known(ex, chunks, count);
}

int mt_response_chunk(mt_exchange_t *ex, const char *data, size_t len) {
    return send_chunk(ex, data, len);
}

int mt_response_last(mt_exchange_t *ex, const char *data, size_t len) {
    if (!ex->head_built && build_head(ex, -1) < 0)
        return -1;
    return send_part(ex, data, len, true);
}

int mt_response_trailer(mt_exchange_t *ex, const char *name, size_t nlen, const char *value, size_t vlen) {
    bool sending = ex->trailers && ex->chunked;
    int rc = mt_http1_write_trailer(sending ? ex->out : NULL, name, nlen, value, vlen);
    if (rc == 0)
        return 0;
    if (rc == -ENOMEM)
        return PyErr_NoMemory(), -1;
    PyObject *shown = PyUnicode_DecodeLatin1(name, (Py_ssize_t)MT_MIN(nlen, 100), NULL);
    if (shown == NULL)
        return -1;
    if (rc == MT_HTTP1_EFORBIDDEN)
        PyErr_Format(PyExc_ValueError, "ASGI: %U is not allowed as a trailer field (%s, RFC 9110 section 6.5.1)", shown,
                     mt_http1_trailer_rule(name, nlen));
    else
        PyErr_Format(PyExc_ValueError, "ASGI: invalid trailer field %R (bad character in name or value)", shown);
    Py_DECREF(shown);
    return -1;
}

int mt_response_trailers_end(mt_exchange_t *ex) {
    if (ex->trailers && ex->chunked && mt_http1_write_raw(ex->out, "\r\n", 2) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

int mt_response_end(mt_exchange_t *ex) {
    return finish_body(ex);
}

int mt_response_flush(mt_exchange_t *ex) {
    return send_now(ex, NULL, 0);
}

void mt_response_error(mt_exchange_t *ex, int status, const char *detail, bool keep_alive) {
    answer_error(ex, status, detail, keep_alive);
}
