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
    mt_accesslog_conn(self->worker->server.config.access_log, c, 101, 0, true);
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

/* A message or a close, for the loop. */
static int ws_event(PyObject *events, const char *kind, PyObject *value) {
    if (value == NULL)
        return -1;
    PyObject *t = Py_BuildValue("(sN)", kind, value);
    int rc = t ? PyList_Append(events, t) : -1;
    Py_XDECREF(t);
    return rc;
}

static int ws_close_event(AsgiRequestObject *self, PyObject *events, unsigned code, const char *reason, size_t n) {
    self->ws->close_received = true;
    return ws_event(events, "close", Py_BuildValue("(Is#)", code, reason ? reason : "", (Py_ssize_t)(reason ? n : 0)));
}

/* Sends our close frame (send_code, with the reason when send_reason) and
 * reports the close (code, reason) to the application; deferred to the next
 * ws_read when messages parsed before it are still in `events`. */
static int ws_closing(AsgiRequestObject *self, PyObject *events, unsigned send_code, unsigned code, const char *reason,
                      size_t n, bool send_reason) {
    asgi_ws_t *ws = self->ws;
    if (PyList_GET_SIZE(events) > 0) {
        ws->pending = true;
        ws->pending_send = (uint16_t)send_code;
        ws->pending_code = (uint16_t)code;
        ws->pending_send_reason = send_reason;
        ws->pending_len = (uint8_t)(n < sizeof ws->pending_reason ? n : sizeof ws->pending_reason);
        if (ws->pending_len)
            memcpy(ws->pending_reason, reason, ws->pending_len);
        return 0;
    }
    if (ws_send_close(self, send_code, send_reason ? reason : "", send_reason ? n : 0) < 0)
        PyErr_Clear();
    return ws_close_event(self, events, code, reason, n);
}

/* Parses what rbuf holds; appends events. Returns 0, or -1 with an exception. */
static int ws_process(AsgiRequestObject *self, PyObject *events) {
    asgi_ws_t *ws = self->ws;
    mt_conn_t *c = self->conn;
    size_t consumed = 0;
    while (!ws->close_received && !ws->pending && consumed < c->rbuf.len) {
        size_t used;
        mt_ws_event_t ev;
        mt_ws_parse_result_t r =
            mt_ws_parse(&ws->parser, (uint8_t *)c->rbuf.data + consumed, c->rbuf.len - consumed, &used, &ev);
        consumed += used;
        if (r == MT_WS_PARSE_MORE)
            break;
        if (r == MT_WS_PARSE_ERROR) {
            const char *why = ws->parser.error ? ws->parser.error : "";
            if (ws_closing(self, events, ws->parser.close_code, ws->parser.close_code, why, strlen(why), true) < 0)
                return -1;
            break;
        }
        if (r == MT_WS_PARSE_CONTROL) {
            if (ev.opcode == MT_WS_PING) {
                if (!ws->close_sent && ws_write(self, MT_WS_PONG, false, ev.data, ev.len) < 0)
                    PyErr_Clear();
            } else if (ev.opcode == MT_WS_CLOSE) {
                unsigned code = ev.close_code == MT_WS_CLOSE_NO_STATUS ? MT_WS_CLOSE_NORMAL : ev.close_code;
                if (ws_closing(self, events, code, ev.close_code, (const char *)ev.reason, ev.reason_len, false) < 0)
                    return -1;
            }
            continue;
        }
        int zrc = 0;
        if (ev.compressed)
            zrc = mt_ws_deflate_inflate(&ws->z, ev.data, ev.len, ev.message_end, &ws->message);
        else if (mt_buf_append(&ws->message, ev.data, ev.len) < 0)
            zrc = -ENOMEM;
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
            if (ws_closing(self, events, code, code, why, strlen(why), true) < 0)
                return -1;
            break;
        }
        if (!ev.message_end)
            continue;
        const char *data = ws->message.len ? ws->message.data : "";
        PyObject *value = ev.opcode == MT_WS_TEXT ? PyUnicode_DecodeUTF8(data, (Py_ssize_t)ws->message.len, NULL)
                                                  : PyBytes_FromStringAndSize(data, (Py_ssize_t)ws->message.len);
        ws->message.len = 0;
        if (ws_event(events, ev.opcode == MT_WS_TEXT ? "text" : "bytes", value) < 0)
            return -1;
    }
    mt_buf_consume(&c->rbuf, consumed);
    return 0;
}

/* ws_read() -> a list of ("text", str), ("bytes", bytes), ("close", (code, reason)); None: wait for the socket. */
PyObject *AsgiRequest_ws_read(AsgiRequestObject *self, PyObject *unused) {
    if (ws_check(self, true) < 0)
        return NULL;
    asgi_ws_t *ws = self->ws;
    mt_conn_t *c = self->conn;
    PyObject *events = PyList_New(0);
    if (events == NULL)
        return NULL;
    if (ws->pending) {
        ws->pending = false;
        if (ws_closing(self, events, ws->pending_send, ws->pending_code, ws->pending_reason, ws->pending_len,
                       ws->pending_send_reason) < 0)
            goto error;
    }
    while (!ws->close_received) {
        if (ws_process(self, events) < 0)
            goto error;
        if (PyList_GET_SIZE(events) || ws->close_received)
            break;
        if (mt_buf_reserve(&c->rbuf, 16384) < 0) {
            PyErr_NoMemory();
            goto error;
        }
        ssize_t n = read(c->fd, c->rbuf.data + c->rbuf.len, c->rbuf.cap - c->rbuf.len);
        if (n > 0) {
            c->rbuf.len += (size_t)n;
            ws->rx = true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            Py_DECREF(events);
            Py_RETURN_NONE;
        }
        self->ex.failed = true; /* gone without a close frame */
        if (ws_close_event(self, events, MT_WS_CLOSE_ABNORMAL, NULL, 0) < 0)
            goto error;
    }
    return events;
error:
    Py_DECREF(events);
    return NULL;
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
