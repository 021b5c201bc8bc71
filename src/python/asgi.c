/* The ASGI bridge's exchange: an AsgiRequest drives one request that the
 * worker's loop took off the queue (asgi_loop.c; the request and its scope are
 * made in asgi_scope.c): the body read without blocking (None: wait until the
 * socket is readable), and the response through the same steps as WSGI
 * (response.c: the response writer, compression, the output queue), held for
 * the batch's flush when it may be (asgi_loop.c). The WebSocket half of
 * AsgiRequest (after a valid handshake) is asgi_ws.c.
 *
 * Thread: everything here runs on the loop's thread with the GIL held; its
 * writes never wait (mt_conn_never_wait): what the socket does not take is
 * queued, and body() reports when the queue is over the high-water mark, so
 * that send() awaits the I/O thread's on_drained wake-up. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "asgi.h"
#include "asgi_request.h"
#include "auth.h"
#include "http1_write.h"
#include "response.h"

/* ---- the exchange ---- */

int mt_asgi_check_open(AsgiRequestObject *self) {
    if (self->conn == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: the request has ended");
        return -1;
    }
    mt_conn_never_wait = true;
    return 0;
}

/* read() -> (bytes, more_body), or None when no byte is there yet (wait for
 * the socket to be readable). Raises RequestBodyError/ClientDisconnected. */
static PyObject *AsgiRequest_read(AsgiRequestObject *self, PyObject *unused) {
    if (mt_asgi_check_open(self) < 0)
        return NULL;
    mt_conn_t *c = self->conn;
    mt_state_t *st = self->worker->st;
    if (self->error_status) {
        PyErr_SetString(st->RequestBodyError, "the request body could not be read");
        return NULL;
    }
    size_t available = c->body.len - c->body_pos;
    if (available == 0 && !c->req.message_complete) {
        ssize_t n = mt_conn_body_fill_nowait(c, 1);
        if (n == -EAGAIN)
            Py_RETURN_NONE;
        if (n < 0) {
            if (n == -MT_ECLOSED || n == -EPIPE || n == -ECONNRESET) {
                self->error_status = 400;
                PyErr_SetString(st->ClientDisconnected, "the client closed the connection before the end of the body");
            } else if (n == -MT_EPROTO) {
                self->error_status = c->req.error_status ? c->req.error_status : 400;
                PyErr_Format(st->RequestBodyError, "invalid request body: %s",
                             c->req.error_reason ? c->req.error_reason : "malformed");
            } else {
                self->error_status = 500;
                errno = (int)-n;
                PyErr_SetFromErrno(PyExc_OSError);
            }
            return NULL;
        }
        available = c->body.len - c->body_pos;
    }
    PyObject *data = PyBytes_FromStringAndSize(available ? c->body.data + c->body_pos : "", (Py_ssize_t)available);
    if (data == NULL)
        return NULL;
    mt_conn_body_consume(c, available);
    bool more = !c->req.message_complete || c->body.len > c->body_pos;
    PyObject *r = PyTuple_Pack(2, data, more ? Py_True : Py_False);
    Py_DECREF(data);
    return r;
}

/* The body timeout passed: the client gets 408 (if nothing was sent). */
static PyObject *AsgiRequest_body_timeout(AsgiRequestObject *self, PyObject *unused) {
    self->error_status = 408;
    PyErr_SetString(self->worker->st->RequestBodyError, "the request body did not arrive in time");
    return NULL;
}

/* One item of a message's `headers`: a new tuple of two bytes, or NULL with
 * TypeError naming the message (`what`) and the item's index. */
static PyObject *header_item(PyObject *item, Py_ssize_t index, const char *what) {
    PyObject *pair = PySequence_Check(item) && !PyBytes_Check(item) ? PySequence_Tuple(item) : NULL;
    if (pair == NULL || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0)) ||
        !PyBytes_Check(PyTuple_GET_ITEM(pair, 1))) {
        Py_XDECREF(pair);
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "ASGI: %s %zd must be a pair of bytes, got %R", what, index, item);
        return NULL;
    }
    return pair;
}

static PyObject *AsgiRequest_start(AsgiRequestObject *self, PyObject *args) {
    PyObject *status, *headers;
    int trailers = 0;
    if (!PyArg_ParseTuple(args, "OO|p:start", &status, &headers, &trailers) || mt_asgi_check_open(self) < 0)
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: http.response.start sent twice");
        return NULL;
    }
    if (!PyLong_CheckExact(status)) {
        PyErr_Format(PyExc_TypeError, "ASGI: http.response.start 'status' must be an int, got %.100s",
                     Py_TYPE(status)->tp_name);
        return NULL;
    }
    long code = PyLong_AsLong(status);
    if (code < 100 || code > 599) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "ASGI: invalid status %ld", code);
        return NULL;
    }
    /* The status line, made once per code (the head is built from it as for WSGI). */
    mt_asgi_t *a = self->worker->asgi;
    PyObject **cached = &a->status_lines[code - 100];
    if (*cached == NULL) {
        const char *reason = mt_http1_reason((int)code);
        if ((*cached = PyUnicode_FromFormat("%ld %s", code, reason ? reason : "Unknown")) == NULL)
            return NULL;
    }
    PyObject *line = Py_NewRef(*cached);
    PyObject *list = PyList_New(0), *iter = NULL, *item = NULL;
    if (list == NULL)
        goto error;
    if ((iter = PyObject_GetIter(headers)) == NULL) {
        PyErr_Format(PyExc_TypeError, "ASGI: http.response.start 'headers' must be an iterable, got %.100s",
                     Py_TYPE(headers)->tp_name);
        goto error;
    }
    Py_ssize_t index = 0;
    while ((item = PyIter_Next(iter)) != NULL) {
        PyObject *pair = header_item(item, index, "response header");
        if (pair == NULL)
            goto error;
        PyObject *n = PyTuple_GET_ITEM(pair, 0), *v = PyTuple_GET_ITEM(pair, 1);
        PyObject *ns = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(n), PyBytes_GET_SIZE(n), NULL);
        PyObject *vs = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), NULL);
        PyObject *t = ns && vs ? PyTuple_Pack(2, ns, vs) : NULL;
        Py_XDECREF(ns);
        Py_XDECREF(vs);
        Py_DECREF(pair);
        if (t == NULL || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            goto error;
        }
        Py_DECREF(t);
        Py_CLEAR(item);
        index++;
    }
    if (PyErr_Occurred())
        goto error;
    Py_DECREF(iter);
    Py_XSETREF(self->ex.status, line);
    Py_XSETREF(self->ex.headers, list);
    self->started = true;
    /* Trailers go out only where the body is chunked for a client that
     * accepts them; otherwise they are checked and dropped. */
    self->trailers_due = trailers;
    self->ex.trailers = trailers && self->te_trailers && !self->ex.no_body;
    Py_RETURN_NONE;
error:
    Py_XDECREF(item);
    Py_XDECREF(iter);
    Py_XDECREF(line);
    Py_XDECREF(list);
    return NULL;
}

static int check_body_message(AsgiRequestObject *self, const char *type) {
    if (mt_asgi_check_open(self) < 0)
        return -1;
    if (!self->started) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s sent before http.response.start", type);
        return -1;
    }
    if (self->complete) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s sent after the response completed", type);
        return -1;
    }
    if (self->body_ended) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s sent after the body ended (http.response.trailers is due)", type);
        return -1;
    }
    if (self->ex.failed) {
        PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away");
        return -1;
    }
    return 0;
}

/* body(data, more_body) -> whether the output queue is over its high-water
 * mark (the caller then awaits the drain before sending more). */
static PyObject *AsgiRequest_body(AsgiRequestObject *self, PyObject *args) {
    PyObject *data;
    int more;
    if (!PyArg_ParseTuple(args, "Op:body", &data, &more) || check_body_message(self, "http.response.body") < 0)
        return NULL;
    mt_exchange_t *ex = &self->ex;
    if (!PyBytes_Check(data)) {
        if (!PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
            PyErr_Format(PyExc_TypeError, "ASGI: http.response.body 'body' must be bytes, got %.100s",
                         Py_TYPE(data)->tp_name);
            return NULL;
        }
        data = PyBytes_FromObject(data);
        if (data == NULL)
            return NULL;
    } else {
        Py_INCREF(data);
    }
    int rc;
    if (!ex->head_built && !more && !ex->trailers) {
        /* The whole body in one message: Content-Length, one compressed stream, one write. */
        rc = mt_response_known(ex, &data, 1);
    } else if (!more) {
        /* The last part of a streamed body (or one chunked for its trailers): it ends the
         * compressed stream and leaves with the last chunk. */
        rc = mt_response_last(ex, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
    } else {
        rc = ex->head_built ? 0 : mt_response_head(ex, -1);
        if (rc == 0)
            rc = mt_response_chunk(ex, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
        if (rc == 0 && !ex->head_sent)
            rc = mt_response_flush(ex); /* the head goes out now (server-sent events) */
    }
    Py_DECREF(data);
    if (rc == 0 && !more) {
        rc = mt_response_end(ex);
        if (self->trailers_due) {
            self->body_ended = true; /* what is held waits for the trailers (a bad one still gets a 500) */
        } else {
            self->complete = true;
            if (rc == 0 && !mt_asgi_hold(self))
                rc = mt_response_flush(ex);
        }
    }
    if (rc < 0)
        return NULL;
    return PyBool_FromLong(more && mt_conn_output_full(self->conn));
}

/* trailers(headers, more_trailers): the http.response.trailers extension.
 * Each field is checked as a header field is, and against the fields a
 * trailer section may not carry; they go out after the last chunk when the
 * body is chunked for a client that sent "TE: trailers", else are dropped.
 * The last message sends what the body left held. */
static PyObject *AsgiRequest_trailers(AsgiRequestObject *self, PyObject *args) {
    PyObject *headers, *iter = NULL, *item = NULL;
    int more;
    if (!PyArg_ParseTuple(args, "Op:trailers", &headers, &more) || mt_asgi_check_open(self) < 0)
        return NULL;
    mt_exchange_t *ex = &self->ex;
    const char *broken = NULL;
    if (!self->started)
        broken = "http.response.trailers sent before http.response.start";
    else if (!self->trailers_due)
        broken = "http.response.trailers sent, but http.response.start did not announce trailers (\"trailers\": True)";
    else if (self->complete)
        broken = "http.response.trailers sent after the response completed";
    else if (!self->body_ended)
        broken = "http.response.trailers sent before the body ended (the last http.response.body has more_body False)";
    if (broken) {
        PyErr_Format(PyExc_RuntimeError, "ASGI: %s", broken);
        return NULL;
    }
    if (ex->failed) {
        PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away");
        return NULL;
    }
    if ((iter = PyObject_GetIter(headers)) == NULL) {
        PyErr_Format(PyExc_TypeError, "ASGI: http.response.trailers 'headers' must be an iterable, got %.100s",
                     Py_TYPE(headers)->tp_name);
        return NULL;
    }
    Py_ssize_t index = 0;
    while ((item = PyIter_Next(iter)) != NULL) {
        PyObject *pair = header_item(item, index++, "trailer field");
        Py_DECREF(item);
        if (pair == NULL)
            goto error;
        PyObject *n = PyTuple_GET_ITEM(pair, 0), *v = PyTuple_GET_ITEM(pair, 1);
        int rc = mt_response_trailer(ex, PyBytes_AS_STRING(n), (size_t)PyBytes_GET_SIZE(n), PyBytes_AS_STRING(v),
                                     (size_t)PyBytes_GET_SIZE(v));
        Py_DECREF(pair);
        if (rc < 0)
            goto error;
    }
    if (PyErr_Occurred())
        goto error;
    Py_DECREF(iter);
    if (!more) {
        self->complete = true;
        if (mt_response_trailers_end(ex) < 0 || (ex->out->len && mt_response_flush(ex) < 0))
            return NULL;
    }
    Py_RETURN_NONE;
error:
    Py_DECREF(iter);
    return NULL;
}

/* pathsend(path): the http.response.pathsend extension, the file sent with
 * sendfile (the rest queued as a file range for the I/O thread). */
static PyObject *AsgiRequest_pathsend(AsgiRequestObject *self, PyObject *arg) {
    if (check_body_message(self, "http.response.pathsend") < 0)
        return NULL;
    PyObject *bytes = NULL;
    if (!PyUnicode_FSConverter(arg, &bytes))
        return NULL;
    int fd = open(PyBytes_AS_STRING(bytes), O_RDONLY | O_CLOEXEC);
    Py_DECREF(bytes);
    struct stat stbuf;
    if (fd < 0 || fstat(fd, &stbuf) < 0 || !S_ISREG(stbuf.st_mode)) {
        if (fd >= 0)
            close(fd);
        PyErr_Format(PyExc_OSError, "ASGI: http.response.pathsend: cannot send %R", arg);
        return NULL;
    }
    mt_exchange_t *ex = &self->ex;
    ex->decided = true; /* files go out as they are, as with wsgi.file_wrapper */
    ex->compressing = ex->vary = false;
    /* A file has its Content-Length: trailers announced are checked and dropped. */
    ex->trailers = false;
    self->complete = !self->trailers_due;
    self->body_ended = self->trailers_due;
    long long size = (long long)stbuf.st_size, count = size;
    int rc = mt_response_head(ex, size);
    if (rc == 0 && ex->declared_length >= 0 && ex->declared_length != size) {
        count = MT_MIN(ex->declared_length, size);
        ex->keep_alive = false;
    }
    if (rc == 0 && (ex->no_body || count == 0)) {
        rc = mt_response_end(ex);
        if (rc == 0)
            rc = mt_response_flush(ex);
    } else if (rc == 0) {
        struct iovec head = {ex->out->data, ex->out->len};
        off_t offset = 0;
        int w = mt_conn_writev_more(self->conn, &head, 1);
        if (w == 0)
            w = mt_conn_sendfile(self->conn, fd, &offset, (size_t)count);
        ex->out->len = 0;
        ex->head_sent = true;
        if (w < 0) {
            ex->keep_alive = false;
            ex->failed = true;
            PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away during sendfile");
            rc = -1;
        } else {
            ex->body_sent += (unsigned long long)count;
        }
    }
    close(fd);
    if (rc < 0)
        return NULL;
    Py_RETURN_NONE;
}

static void release_buffers(AsgiRequestObject *self) {
    if (self->ws) {
        mt_asgi_ws_free(self->ws);
        self->ws = NULL;
    }
    mt_buf_dispose(&self->handler.out);
    mt_buf_dispose(&self->handler.zbuf);
    if (self->handler.z) {
        mt_compressor_destroy(self->handler.z);
        self->handler.z = NULL;
    }
    free(self->handler.scratch); /* an API route's match (asgi_api.c) */
    self->handler.scratch = NULL;
    mt_auth_handler_dispose(&self->handler);
}

/* Hands the connection back (to the I/O thread, or to the caller when the
 * client pipelined another request: its AsgiRequest is returned). */
void mt_asgi_record(AsgiRequestObject *self, mt_conn_t *c, int status, unsigned long long bytes) {
    if (!self->api && c->metric_route == MT_METRICS_ROUTE_SERVER)
        c->metric_route = MT_METRICS_ROUTE_ASGI; /* an API route has its own label */
    mt_server_record(&self->worker->server, c, status, bytes, true);
}

static PyObject *hand_back(AsgiRequestObject *self, bool keep_alive) {
    mt_conn_t *c = self->conn;
    WorkerObject *w = self->worker;
    self->conn = NULL;
    /* The exchange's buffers go back now, not when the object dies (an
     * application may keep receive/send, and with them this object). */
    release_buffers(self);
    if (c->answer_status) {
        mt_asgi_record(self, c, c->answer_status, c->answer_bytes);
        c->answer_status = 0;
    }
    if (!c->req.message_complete)
        keep_alive = false; /* an unread body: reading it here could block the loop */
    mt_conn_t *next = mt_server_finish(&w->server, c, keep_alive);
    if (next == NULL)
        Py_RETURN_NONE;
    if (w->asgi->api_only) {
        /* A pipelined request: routed again by a handler thread (it may be any route). */
        mt_queue_push(&w->server.queue, &next->qitem);
        Py_RETURN_NONE;
    }
    return mt_asgi_request_new(w, next);
}

/* end(failed): the application returned (failed: it raised, or broke the
 * protocol; the error is logged by the caller). Sends what is due (a 500,
 * or the reason the body could not be read, while nothing went out; else
 * the close that cuts a response short) and hands the connection back.
 * Returns the next pipelined request's AsgiRequest, or None. */
static PyObject *AsgiRequest_end(AsgiRequestObject *self, PyObject *arg) {
    int failed = PyObject_IsTrue(arg);
    if (failed < 0)
        return NULL;
    if (self->held) { /* the batch's flush writes the response, then ends the exchange */
        self->end_due = true;
        self->end_failed = failed;
        Py_RETURN_NONE;
    }
    return mt_asgi_end_exchange(self, failed);
}

PyObject *mt_asgi_end_exchange(AsgiRequestObject *self, int failed) {
    if (self->conn == NULL)
        Py_RETURN_NONE;
    mt_conn_never_wait = true;
    mt_exchange_t *ex = &self->ex;
    if (!ex->failed) {
        if (self->error_status && !ex->head_sent) {
            mt_response_error(ex, self->error_status,
                              self->error_detail ? self->error_detail : "the request body could not be read", false);
            self->complete = true;
        } else if (failed || !self->complete) {
            if (ex->head_sent) {
                ex->out->len = 0;
                ex->keep_alive = false;
            } else {
                mt_response_error(ex, 500, NULL, ex->keep_alive);
            }
            self->complete = true;
        }
        if (ex->out->len && mt_response_flush(ex) < 0)
            PyErr_Clear();
        if (!ex->failed && self->ws == NULL) { /* a WebSocket's 101 was logged at its accept */
            self->conn->answer_status = ex->status_code;
            self->conn->answer_bytes = ex->body_sent;
        }
    }
    return hand_back(self, ex->keep_alive && !ex->failed);
}

/* peek() -> True: the client closed (or reset) the connection; False: it
 * sent more (a pipelined request); None: nothing to see. */
static PyObject *AsgiRequest_peek(AsgiRequestObject *self, PyObject *unused) {
    if (self->conn == NULL)
        Py_RETURN_TRUE;
    char byte;
    ssize_t n = recv(self->conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0)
        Py_RETURN_FALSE;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        Py_RETURN_NONE;
    Py_RETURN_TRUE;
}

static PyObject *AsgiRequest_output_full(AsgiRequestObject *self, PyObject *unused) {
    if (self->conn == NULL || self->ex.failed)
        Py_RETURN_FALSE;
    return PyBool_FromLong(mt_conn_output_full(self->conn));
}

/* No byte went out for the write timeout: the client is given up. */
static PyObject *AsgiRequest_write_timeout(AsgiRequestObject *self, PyObject *unused) {
    if (self->conn) {
        mt_conn_fail(self->conn, -ETIMEDOUT);
        self->ex.failed = true;
        self->ex.keep_alive = false;
    }
    Py_RETURN_NONE;
}

static PyObject *AsgiRequest_fileno(AsgiRequestObject *self, PyObject *unused) {
    return PyLong_FromLong(self->conn ? self->conn->fd : -1);
}

static PyObject *AsgiRequest_get_scope(AsgiRequestObject *self, void *closure) {
    /* Read as the application's call begins: a checkpoint of the batch's deadline. */
    mt_asgi_batch_checkpoint(self->worker->asgi);
    return Py_NewRef(self->scope ? self->scope : Py_None);
}

static PyObject *AsgiRequest_get_conn_id(AsgiRequestObject *self, void *closure) {
    return PyLong_FromVoidPtr(self->conn);
}

static PyObject *AsgiRequest_get_failed(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->ex.failed);
}

static PyObject *AsgiRequest_get_complete(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->complete);
}

static PyObject *AsgiRequest_get_started(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->started);
}

static PyObject *AsgiRequest_get_websocket(AsgiRequestObject *self, void *closure) {
    return PyBool_FromLong(self->websocket);
}

static PyObject *AsgiRequest_get_uri(AsgiRequestObject *self, void *closure) {
    return Py_NewRef(self->ex.uri ? self->ex.uri : Py_None);
}

static void AsgiRequest_dealloc(AsgiRequestObject *self) {
    if (self->conn) {
        /* Dropped without end() (a failure while it was built): closed. */
        mt_conn_never_wait = true;
        self->ex.keep_alive = false;
        PyObject *next = hand_back(self, false);
        Py_XDECREF(next);
        if (PyErr_Occurred())
            PyErr_Clear();
    }
    release_buffers(self);
    PyMem_Free(self->hs);
    Py_XDECREF(self->ex.status);
    Py_XDECREF(self->ex.headers);
    Py_XDECREF(self->ex.uri);
    Py_XDECREF(self->scope);
    Py_XDECREF(self->worker);
    PyTypeObject *type = Py_TYPE(self);
    PyObject_Free(self);
    Py_DECREF(type);
}

static PyMethodDef AsgiRequest_methods[] = {
    {"ws_accept", (PyCFunction)AsgiRequest_ws_accept, METH_VARARGS,
     "ws_accept(subprotocol, headers)\n--\n\nwebsocket.accept: the 101 answer."},
    {"ws_receive", (PyCFunction)AsgiRequest_ws_receive, METH_O,
     "ws_receive(may_read)\n--\n\nThe next message dict, or a close (code, reason), or None: wait for the "
     "socket."},
    {"ws_send", (PyCFunction)AsgiRequest_ws_send, METH_O,
     "ws_send(data)\n--\n\nwebsocket.send (str: text, bytes: binary); returns whether the output is over its mark."},
    {"ws_send_message", (PyCFunction)AsgiRequest_ws_send_message, METH_O,
     "ws_send_message(message)\n--\n\nwebsocket.send given as a dict: whether the output is over its mark; "
     "NotImplemented for another message."},
    {"ws_close", (PyCFunction)AsgiRequest_ws_close, METH_VARARGS, "ws_close(code, reason='')\n--\n\nwebsocket.close."},
    {"ws_keepalive", (PyCFunction)AsgiRequest_ws_keepalive, METH_VARARGS,
     "ws_keepalive(now, interval, timeout)\n--\n\nThe idle ping: 0 nothing to do, 1 a ping went out, 2 no answer "
     "in time (close 1011 sent, the connection failed)."},
    {"deny", (PyCFunction)AsgiRequest_deny, METH_NOARGS, "deny()\n--\n\nwebsocket.close before the accept: 403."},
    {"api_args", (PyCFunction)AsgiRequest_api_args, METH_NOARGS,
     "api_args()\n--\n\nAn API route's (endpoint, method, path, query, headers, params[, auth])."},
    {"respond", (PyCFunction)AsgiRequest_respond, METH_VARARGS,
     "respond(status, headers, body=None)\n--\n\nAn API route's response: status line, (str, str) headers, and a "
     "list of bytes (the whole body), or None (the body follows through body())."},
    {"read", (PyCFunction)AsgiRequest_read, METH_NOARGS,
     "read()\n--\n\n(bytes, more_body), or None: wait for the socket to be readable."},
    {"body_timeout", (PyCFunction)AsgiRequest_body_timeout, METH_NOARGS,
     "body_timeout()\n--\n\nRecords that the body timed out (408) and raises RequestBodyError."},
    {"start", (PyCFunction)AsgiRequest_start, METH_VARARGS,
     "start(status, headers, trailers=False)\n--\n\nhttp.response.start: checks and keeps the status and headers."},
    {"body", (PyCFunction)AsgiRequest_body, METH_VARARGS,
     "body(data, more_body)\n--\n\nhttp.response.body; returns whether the output is over its high-water mark."},
    {"trailers", (PyCFunction)AsgiRequest_trailers, METH_VARARGS,
     "trailers(headers, more_trailers)\n--\n\nhttp.response.trailers: trailer fields after the body."},
    {"pathsend", (PyCFunction)AsgiRequest_pathsend, METH_O,
     "pathsend(path)\n--\n\nhttp.response.pathsend: the file with sendfile."},
    {"end", (PyCFunction)AsgiRequest_end, METH_O,
     "end(failed)\n--\n\nEnds the exchange; returns the next pipelined request, or None (also when the response is "
     "held: the batch's flush ends it)."},
    {"peek", (PyCFunction)AsgiRequest_peek, METH_NOARGS,
     "peek()\n--\n\nTrue if the client closed, False if it sent more, None if nothing happened."},
    {"output_full", (PyCFunction)AsgiRequest_output_full, METH_NOARGS,
     "output_full()\n--\n\nWhether the output queue is over its high-water mark (arms the drain wake-up)."},
    {"write_timeout", (PyCFunction)AsgiRequest_write_timeout, METH_NOARGS,
     "write_timeout()\n--\n\nGives the client up: no byte went out for the write timeout."},
    {"fileno", (PyCFunction)AsgiRequest_fileno, METH_NOARGS, "fileno()\n--\n\nThe connection's socket."},
    {NULL},
};

static PyGetSetDef AsgiRequest_getset[] = {
    {"websocket", (getter)AsgiRequest_get_websocket, NULL, "A WebSocket handshake.", NULL},
    {"scope", (getter)AsgiRequest_get_scope, NULL, "The HTTP scope (without state).", NULL},
    {"conn_id", (getter)AsgiRequest_get_conn_id, NULL, "The connection's id in asgi_take's drained list.", NULL},
    {"failed", (getter)AsgiRequest_get_failed, NULL, "The client went away.", NULL},
    {"complete", (getter)AsgiRequest_get_complete, NULL, "The response's last message was sent.", NULL},
    {"started", (getter)AsgiRequest_get_started, NULL, "http.response.start was sent.", NULL},
    {"uri", (getter)AsgiRequest_get_uri, NULL, "The request target, for the error log.", NULL},
    {NULL},
};

static PyType_Slot AsgiRequest_slots[] = {
    {Py_tp_doc, "One ASGI HTTP exchange (made by asgi_take)."},
    {Py_tp_methods, AsgiRequest_methods},
    {Py_tp_getset, AsgiRequest_getset},
    {Py_tp_dealloc, AsgiRequest_dealloc},
    {0, NULL},
};

PyType_Spec AsgiRequest_Spec = {
    .name = "meltemi._core.AsgiRequest",
    .basicsize = sizeof(AsgiRequestObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = AsgiRequest_slots,
};
