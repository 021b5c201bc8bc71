/* The ASGI bridge's WebSocket half: after a valid handshake (checked when
 * the scope is built, asgi.c), websocket.accept writes the 101 answer and
 * the connection stays the loop's; frames are parsed and written with the C
 * core (src/core/websocket/), messages inflated and deflated with
 * permessage-deflate, the close handshake kept here.
 *
 * Thread: the loop's, with the GIL held, as the rest of AsgiRequest; writes
 * never wait (the output queue takes what the socket does not). */
#include <string.h>
#include <sys/socket.h>

#include "asgi_request.h"
#include "http1_write.h"
#include "respond.h"
#include "response.h"

/* permessage-deflate settings (the offer is accepted unless asgi_ws_configure turned it off). */
const mt_ws_handshake_config_t mt_asgi_ws_handshake_config = {
    .deflate = true, .server_max_window_bits = 15, .client_max_window_bits = 15, .mem_level = 8};

int mt_asgi_ws_init(mt_asgi_t *a) {
    a->ws_handshake = mt_asgi_ws_handshake_config;
    a->ws_max_size = MT_ASGI_WS_MAX_SIZE;
    if ((a->ws_keys.type = PyUnicode_InternFromString("type")) == NULL ||
        (a->ws_keys.receive = PyUnicode_InternFromString("websocket.receive")) == NULL ||
        (a->ws_keys.send = PyUnicode_InternFromString("websocket.send")) == NULL ||
        (a->ws_keys.text = PyUnicode_InternFromString("text")) == NULL ||
        (a->ws_keys.bytes = PyUnicode_InternFromString("bytes")) == NULL)
        return -1;
    return 0;
}

void mt_asgi_ws_dispose(mt_asgi_t *a) {
    Py_CLEAR(a->ws_keys.type);
    Py_CLEAR(a->ws_keys.receive);
    Py_CLEAR(a->ws_keys.send);
    Py_CLEAR(a->ws_keys.text);
    Py_CLEAR(a->ws_keys.bytes);
}

PyObject *mt_asgi_ws_configure(PyObject *module, PyObject *args) {
    PyObject *worker;
    unsigned long long max_size;
    int deflate;
    if (!PyArg_ParseTuple(args, "OKp:asgi_ws_configure", &worker, &max_size, &deflate))
        return NULL;
    mt_state_t *st = PyModule_GetState(module);
    if (!Py_IS_TYPE(worker, st->Worker_Type)) {
        PyErr_SetString(PyExc_TypeError, "expected a meltemi._core.Worker");
        return NULL;
    }
    mt_asgi_t *a = ((WorkerObject *)worker)->asgi;
    if (a == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "asgi_ws_configure: asgi_enable first");
        return NULL;
    }
    if (max_size == 0 || max_size > SIZE_MAX) {
        PyErr_SetString(PyExc_ValueError, "asgi_ws_configure: max_size out of range");
        return NULL;
    }
    a->ws_max_size = max_size;
    a->ws_handshake.deflate = deflate;
    Py_RETURN_NONE;
}

void mt_asgi_ws_free(asgi_ws_t *ws) {
    mt_ws_deflate_dispose(&ws->z);
    mt_buf_dispose(&ws->message);
    mt_buf_dispose(&ws->zout);
    PyMem_Free(ws);
}

static int ws_check(AsgiRequestObject *self, bool accepted) {
    if (mt_asgi_check_open(self) < 0)
        return -1;
    if (!self->websocket) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: not a WebSocket");
        return -1;
    }
    if (accepted && self->ws == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ASGI: websocket.send before websocket.accept");
        return -1;
    }
    if (!accepted && (self->ws || self->started)) {
        PyErr_SetString(PyExc_RuntimeError, self->ws ? "ASGI: websocket.accept sent twice"
                                                     : "ASGI: websocket.accept after a denial response began");
        return -1;
    }
    return 0;
}

static int ws_write(AsgiRequestObject *self, mt_ws_opcode_t opcode, bool rsv1, const void *payload, size_t n) {
    uint8_t head[10];
    size_t hn = mt_ws_frame_header(head, opcode, true, rsv1, n);
    struct iovec iov[2] = {{head, hn}, {(void *)payload, n}};
    int rc = mt_conn_writev(self->conn, iov, n ? 2 : 1);
    if (rc < 0) {
        self->ex.failed = true;
        PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away");
        return -1;
    }
    return 0;
}

static int ws_send_close(AsgiRequestObject *self, unsigned code, const char *reason, size_t n) {
    if (self->ws->close_sent)
        return 0;
    uint8_t payload[MT_WS_MAX_CONTROL];
    int len = mt_ws_close_payload(payload, code, reason, n);
    if (len < 0) {
        PyErr_Format(PyExc_ValueError, "ASGI: websocket.close: invalid code %u or reason", code);
        return -1;
    }
    self->ws->close_sent = true;
    return ws_write(self, MT_WS_CLOSE, false, payload, (size_t)len);
}

/* ws_accept(subprotocol, headers): the 101, then frames. */
PyObject *AsgiRequest_ws_accept(AsgiRequestObject *self, PyObject *args) {
    PyObject *protocol, *headers;
    if (!PyArg_ParseTuple(args, "OO:ws_accept", &protocol, &headers) || ws_check(self, false) < 0)
        return NULL;
    mt_conn_t *c = self->conn;
    const char *proto = NULL;
    Py_ssize_t plen = 0;
    if (protocol != Py_None && (proto = PyUnicode_AsUTF8AndSize(protocol, &plen)) == NULL)
        return NULL;
    char head[4096];
    int n = mt_ws_handshake_accept(self->hs, c->rbuf.data, proto, (size_t)plen, head, sizeof head);
    if (n == -EINVAL) {
        PyErr_Format(PyExc_ValueError, "ASGI: websocket.accept subprotocol %R was not offered by the client", protocol);
        return NULL;
    }
    if (n < 0) {
        PyErr_SetString(PyExc_ValueError, "ASGI: websocket.accept head too large");
        return NULL;
    }
    mt_buf_t out;
    mt_buf_init(&out);
    int rc = mt_buf_append(&out, head, (size_t)n - 2); /* the blank line comes after the application's fields */
    PyObject *iter = rc == 0 ? PyObject_GetIter(headers) : NULL, *item;
    if (iter == NULL)
        goto error;
    Py_ssize_t index = 0;
    while ((item = PyIter_Next(iter)) != NULL) {
        PyObject *pair = PySequence_Check(item) && !PyBytes_Check(item) ? PySequence_Tuple(item) : NULL;
        int bad = pair == NULL || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, 0)) ||
                  !PyBytes_Check(PyTuple_GET_ITEM(pair, 1));
        if (!bad) {
            PyObject *nm = PyTuple_GET_ITEM(pair, 0), *v = PyTuple_GET_ITEM(pair, 1);
            bad = mt_http1_write_field(&out, PyBytes_AS_STRING(nm), (size_t)PyBytes_GET_SIZE(nm), PyBytes_AS_STRING(v),
                                       (size_t)PyBytes_GET_SIZE(v)) < 0;
        }
        Py_XDECREF(pair);
        if (bad) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "ASGI: websocket.accept header %zd must be a valid pair of bytes, got %R",
                         index, item);
            Py_DECREF(item);
            goto error;
        }
        Py_DECREF(item);
        index++;
    }
    if (PyErr_Occurred() || mt_buf_append(&out, "\r\n", 2) < 0)
        goto error;
    Py_CLEAR(iter);
    asgi_ws_t *ws = PyMem_Calloc(1, sizeof *ws);
    if (ws == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    uint64_t max_size = self->worker->asgi->ws_max_size;
    mt_ws_parser_config_t pc = {.max_frame = max_size, .max_message = max_size, .deflate = self->hs->deflate};
    mt_ws_parser_init(&ws->parser, &pc);
    ws->deflate = self->hs->deflate;
    if (ws->deflate)
        mt_ws_deflate_init(&ws->z, &self->hs->params, 6, mt_asgi_ws_handshake_config.mem_level,
                           mt_ws_deflate_memory(&self->hs->params, mt_asgi_ws_handshake_config.mem_level),
                           (size_t)max_size);
    mt_buf_init(&ws->message);
    ws->rx = true; /* the keepalive's idle time starts at its next sweep */
    mt_buf_init(&ws->zout);
    self->ws = ws;
    self->started = self->complete = true;
    self->ex.head_sent = true;
    struct iovec iov = {out.data, out.len};
    rc = mt_conn_writev(c, &iov, 1);
    mt_buf_dispose(&out);
    /* The exchange is logged now: the head's spans are not kept. */
    mt_asgi_record(self, c, 101, 0);
    mt_buf_consume(&c->rbuf, c->rpos); /* what follows the head is frames */
    c->rpos = 0;
    c->head_consumed = true;
    PyMem_Free(self->hs);
    self->hs = NULL;
    if (rc < 0) {
        self->ex.failed = true;
        PyErr_SetString(self->worker->st->ClientDisconnected, "the client went away");
        return NULL;
    }
    Py_RETURN_NONE;
error:
    Py_XDECREF(iter);
    mt_buf_dispose(&out);
    if (!PyErr_Occurred())
        PyErr_NoMemory();
    return NULL;
}

/* The message dict the application receives: {"type": "websocket.receive", "text"|"bytes": value}. */
static PyObject *ws_message(AsgiRequestObject *self, bool text, PyObject *value) {
    mt_asgi_t *a = self->worker->asgi;
    PyObject *d = value ? PyDict_New() : NULL;
    if (d == NULL || PyDict_SetItem(d, a->ws_keys.type, a->ws_keys.receive) < 0 ||
        PyDict_SetItem(d, text ? a->ws_keys.text : a->ws_keys.bytes, value) < 0)
        Py_CLEAR(d);
    Py_XDECREF(value);
    return d;
}

/* The close for the application: (code, reason). */
static PyObject *ws_close_event(AsgiRequestObject *self, unsigned code, const char *reason, size_t n) {
    self->ws->close_received = true;
    return Py_BuildValue("(Is#)", code, reason ? reason : "", (Py_ssize_t)(reason ? n : 0));
}

/* Sends our close frame (send_code, with the reason when send_reason) and
 * gives the close (code, reason) to the application. */
static PyObject *ws_closing(AsgiRequestObject *self, unsigned send_code, unsigned code, const char *reason, size_t n,
                            bool send_reason) {
    if (ws_send_close(self, send_code, send_reason ? reason : "", send_reason ? n : 0) < 0)
        PyErr_Clear();
    return ws_close_event(self, code, reason, n);
}

/* Parses rbuf from ws->rpos up to the first message or close, which it puts
 * in *out (left NULL when the bytes end first). Returns 0, or -1 with an
 * exception. The bytes after that event stay for the next call: one event
 * per call, so a close parsed after messages reaches the application after
 * them (and their echo goes out before our close frame). */
static int ws_process(AsgiRequestObject *self, PyObject **out) {
    asgi_ws_t *ws = self->ws;
    mt_conn_t *c = self->conn;
    size_t pos = ws->rpos;
    while (*out == NULL && !ws->close_received && pos < c->rbuf.len) {
        size_t used;
        mt_ws_event_t ev;
        mt_ws_parse_result_t r = mt_ws_parse(&ws->parser, (uint8_t *)c->rbuf.data + pos, c->rbuf.len - pos, &used, &ev);
        pos += used;
        if (r == MT_WS_PARSE_MORE)
            break;
        if (r == MT_WS_PARSE_ERROR) {
            const char *why = ws->parser.error ? ws->parser.error : "";
            *out = ws_closing(self, ws->parser.close_code, ws->parser.close_code, why, strlen(why), true);
            break;
        }
        if (r == MT_WS_PARSE_CONTROL) {
            if (ev.opcode == MT_WS_PING) {
                if (!ws->close_sent && ws_write(self, MT_WS_PONG, false, ev.data, ev.len) < 0)
                    PyErr_Clear();
            } else if (ev.opcode == MT_WS_CLOSE) {
                unsigned code = ev.close_code == MT_WS_CLOSE_NO_STATUS ? MT_WS_CLOSE_NORMAL : ev.close_code;
                *out = ws_closing(self, code, ev.close_code, (const char *)ev.reason, ev.reason_len, false);
            }
            continue;
        }
        int zrc = 0;
        if (ev.compressed)
            zrc = mt_ws_deflate_inflate(&ws->z, ev.data, ev.len, ev.message_end, &ws->message);
        else if (!ev.message_end || ws->message.len)
            zrc = mt_buf_append(&ws->message, ev.data, ev.len) < 0 ? -ENOMEM : 0;
        unsigned code = 0;
        const char *why = NULL;
        if (zrc < 0) {
            code = zrc == -EMSGSIZE  ? MT_WS_CLOSE_TOO_BIG
                   : zrc == -EBADMSG ? MT_WS_CLOSE_INVALID_DATA
                                     : MT_WS_CLOSE_INTERNAL;
            why = "bad compressed message";
        } else if (ev.message_end && ev.compressed && ev.opcode == MT_WS_TEXT) {
            mt_ws_utf8_t u = {0};
            if (!mt_ws_utf8_feed(&u, (const uint8_t *)ws->message.data, ws->message.len) || !mt_ws_utf8_complete(&u)) {
                code = MT_WS_CLOSE_INVALID_DATA;
                why = "text message not UTF-8";
            }
        }
        if (code) {
            *out = ws_closing(self, code, code, why, strlen(why), true);
            break;
        }
        if (!ev.message_end)
            continue;
        /* A whole uncompressed message in one frame is taken from the read buffer without a copy. */
        const char *data = (const char *)ev.data;
        size_t len = ev.len;
        if (ev.compressed || ws->message.len) {
            data = ws->message.len ? ws->message.data : "";
            len = ws->message.len;
        }
        bool text = ev.opcode == MT_WS_TEXT;
        PyObject *value = text ? PyUnicode_DecodeUTF8(len ? data : "", (Py_ssize_t)len, NULL)
                               : PyBytes_FromStringAndSize(len ? data : "", (Py_ssize_t)len);
        ws->message.len = 0;
        *out = ws_message(self, text, value);
        if (*out == NULL)
            break;
    }
    if (pos >= c->rbuf.len) {
        c->rbuf.len = 0;
        pos = 0;
    }
    ws->rpos = pos;
    return *out == NULL && PyErr_Occurred() ? -1 : 0;
}

/* ws_receive(may_read) -> the next event: a message dict ({"type": "websocket.receive", "text": str} or
 * {..., "bytes": bytes}), a close (code, reason), or None: wait until the socket is readable. The read
 * buffer is parsed first; the socket is read only when may_read (the loop saw it readable: otherwise the
 * read would most likely find nothing). */
PyObject *AsgiRequest_ws_receive(AsgiRequestObject *self, PyObject *may_read) {
    if (ws_check(self, true) < 0)
        return NULL;
    asgi_ws_t *ws = self->ws;
    mt_conn_t *c = self->conn;
    PyObject *out = NULL;
    bool reading = PyObject_IsTrue(may_read) == 1;
    while (!ws->close_received) {
        if (ws_process(self, &out) < 0)
            return NULL;
        if (out != NULL || ws->close_received)
            break;
        if (!reading)
            Py_RETURN_NONE;
        if (ws->rpos) { /* keep the partial frame at the start of the buffer */
            mt_buf_consume(&c->rbuf, ws->rpos);
            ws->rpos = 0;
        }
        if (mt_buf_reserve(&c->rbuf, 16384) < 0)
            return PyErr_NoMemory();
        ssize_t n = read(c->fd, c->rbuf.data + c->rbuf.len, c->rbuf.cap - c->rbuf.len);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            ws->rx = true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            Py_RETURN_NONE;
        self->ex.failed = true; /* gone without a close frame */
        return ws_close_event(self, MT_WS_CLOSE_ABNORMAL, NULL, 0);
    }
    if (out == NULL) /* closed before: the application asks again */
        PyErr_SetString(self->worker->st->ClientDisconnected, "the WebSocket is closed");
    return out;
}

/* ws_send(data): a str goes as a text message, bytes as binary. Returns whether the output is over its mark. */
PyObject *AsgiRequest_ws_send(AsgiRequestObject *self, PyObject *data) {
    if (ws_check(self, true) < 0)
        return NULL;
    asgi_ws_t *ws = self->ws;
    if (ws->close_sent || self->ex.failed) {
        PyErr_SetString(self->worker->st->ClientDisconnected, "the WebSocket is closed");
        return NULL;
    }
    const char *p;
    Py_ssize_t n;
    mt_ws_opcode_t opcode;
    if (PyUnicode_Check(data)) {
        if ((p = PyUnicode_AsUTF8AndSize(data, &n)) == NULL)
            return NULL;
        opcode = MT_WS_TEXT;
    } else if (PyBytes_Check(data)) {
        p = PyBytes_AS_STRING(data);
        n = PyBytes_GET_SIZE(data);
        opcode = MT_WS_BINARY;
    } else {
        PyErr_Format(PyExc_TypeError, "ASGI: websocket.send needs 'text' (str) or 'bytes' (bytes), got %.100s",
                     Py_TYPE(data)->tp_name);
        return NULL;
    }
    int rc;
    if (ws->deflate && n > 0) {
        ws->zout.len = 0;
        if (mt_ws_deflate_compress(&ws->z, p, (size_t)n, &ws->zout) < 0)
            return PyErr_NoMemory();
        rc = ws_write(self, opcode, true, ws->zout.data, ws->zout.len);
    } else {
        rc = ws_write(self, opcode, false, p, (size_t)n);
    }
    if (rc < 0)
        return NULL;
    return PyBool_FromLong(mt_conn_output_full(self->conn));
}

/* ws_send_message(message): websocket.send as the application gave it, for a dict; NotImplemented for any
 * other message (or a mapping that is not a dict), which the runtime handles. */
PyObject *AsgiRequest_ws_send_message(AsgiRequestObject *self, PyObject *message) {
    if (!PyDict_CheckExact(message))
        Py_RETURN_NOTIMPLEMENTED;
    mt_asgi_t *a = self->worker->asgi;
    PyObject *type = NULL, *data = NULL, *result = NULL;
    if (PyDict_GetItemRef(message, a->ws_keys.type, &type) < 0)
        return NULL;
    int same = type == a->ws_keys.send;
    if (!same && type != NULL && PyUnicode_Check(type) && (same = PyUnicode_Compare(type, a->ws_keys.send) == 0) == 0 &&
        PyErr_Occurred())
        goto done;
    if (!same) {
        result = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    if (PyDict_GetItemRef(message, a->ws_keys.text, &data) < 0)
        goto done;
    if (data == NULL || data == Py_None) {
        Py_XDECREF(data);
        if (PyDict_GetItemRef(message, a->ws_keys.bytes, &data) < 0)
            goto done;
    }
    if (data == NULL || data == Py_None) {
        PyErr_SetString(PyExc_TypeError, "ASGI: websocket.send needs 'text' or 'bytes'");
        goto done;
    }
    result = AsgiRequest_ws_send(self, data);
done:
    Py_XDECREF(type);
    Py_XDECREF(data);
    return result;
}

/* ws_close(code, reason): the close frame (the connection closes when the exchange ends). */
PyObject *AsgiRequest_ws_close(AsgiRequestObject *self, PyObject *args) {
    unsigned code;
    const char *reason = "";
    Py_ssize_t n = 0;
    if (!PyArg_ParseTuple(args, "I|s#:ws_close", &code, &reason, &n) || ws_check(self, true) < 0)
        return NULL;
    if (self->ex.failed)
        Py_RETURN_NONE;
    if (ws_send_close(self, code, reason, (size_t)n) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* ws_keepalive(now, interval, timeout) -> 0, 1 or 2: the idle keepalive, one
 * step (the runtime's sweep calls it for every open WebSocket, with the
 * loop's clock). After `interval` seconds without a byte from the client a
 * ping goes out; if nothing comes within `timeout` of it, close 1011 is sent
 * and the connection is failed without waiting for the client's close (RFC
 * 6455 7.1.7; as the websockets library does): 2, the application is to get
 * websocket.disconnect 1006. Bytes still in the socket that the application
 * has not read count as an answer: the client is there, the application is
 * behind. Returns 1 when a ping went out, 0 otherwise. */
PyObject *AsgiRequest_ws_keepalive(AsgiRequestObject *self, PyObject *args) {
    double now, interval, timeout;
    if (!PyArg_ParseTuple(args, "ddd:ws_keepalive", &now, &interval, &timeout))
        return NULL;
    asgi_ws_t *ws = self->ws;
    if (self->conn == NULL || ws == NULL || ws->close_sent || ws->close_received || self->ex.failed)
        return PyLong_FromLong(0);
    if (ws->rx) {
        ws->rx = ws->pinging = false;
        ws->idle_since = now;
        return PyLong_FromLong(0);
    }
    if (!ws->pinging) {
        if (now - ws->idle_since < interval)
            return PyLong_FromLong(0);
        mt_conn_never_wait = true;
        ws->pinging = true;
        ws->ping_at = now;
        if (ws_write(self, MT_WS_PING, false, NULL, 0) < 0) {
            PyErr_Clear();
            return PyLong_FromLong(2);
        }
        return PyLong_FromLong(1);
    }
    if (now - ws->ping_at < timeout)
        return PyLong_FromLong(0);
    char byte;
    if (recv(self->conn->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        ws->pinging = false;
        ws->idle_since = now;
        return PyLong_FromLong(0);
    }
    mt_conn_never_wait = true;
    static const char why[] = "keepalive ping timeout";
    if (ws_send_close(self, MT_WS_CLOSE_INTERNAL, why, sizeof why - 1) < 0)
        PyErr_Clear();
    self->ex.failed = true;
    return PyLong_FromLong(2);
}

/* deny(): websocket.close before the accept: 403. */
PyObject *AsgiRequest_deny(AsgiRequestObject *self, PyObject *unused) {
    if (ws_check(self, false) < 0)
        return NULL;
    mt_response_error(&self->ex, 403, "the WebSocket was refused", false);
    self->started = self->complete = true;
    if (mt_response_flush(&self->ex) < 0)
        PyErr_Clear();
    self->conn->answer_status = 403;
    Py_RETURN_NONE;
}
