/* Response compression in the WSGI bridge: which coding a request accepts,
 * whether a response is worth compressing (and says Vary), and the
 * compression itself, with a compressor reused per handler thread. The C
 * subsystem (negotiation, codecs) is src/core/compress/compress.c. */
#include <errno.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "encoding.h"

mt_coding_t mt_encoding_negotiate(const WorkerObject *worker, const mt_conn_t *conn) {
    const mt_request_t *req = &conn->req;
    if (worker->compress_mask == 0 || req->method_id == HTTP_HEAD)
        return MT_CODING_IDENTITY;
    /* An overflowing list yields identity: never a coding the client did
     * not accept (a refusal may be in the part that did not fit). */
    char joined[MT_REQUEST_FIELD_MAX];
    const char *value;
    size_t len;
    if (mt_request_header(req, conn->rbuf.data, "accept-encoding", 15, joined, &value, &len) <= 0)
        return MT_CODING_IDENTITY;
    return mt_compress_negotiate(value, len, worker->compress_mask);
}

static bool ieq(const char *s, Py_ssize_t n, const char *lower) {
    return (size_t)n == strlen(lower) && strncasecmp(s, lower, (size_t)n) == 0;
}

/* strcasestr over a counted string. */
static bool contains(const char *s, Py_ssize_t n, const char *lower) {
    size_t m = strlen(lower);
    for (Py_ssize_t i = 0; i + (Py_ssize_t)m <= n; i++)
        if (strncasecmp(s + i, lower, m) == 0)
            return true;
    return false;
}

/* What the application's header fields say about compressing (the caller holds
 * the list's critical section): false when they rule it out. */
static bool scan_headers(PyObject *headers, bool *type_ok, bool *html, long long *declared) {
    Py_ssize_t count = PyList_GET_SIZE(headers);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *item = PyList_GET_ITEM(headers, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 || !PyUnicode_Check(PyTuple_GET_ITEM(item, 0)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(item, 1)))
            return false; /* build_head reports the malformed header */
        Py_ssize_t nlen, vlen;
        const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 0), &nlen);
        const char *value = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 1), &vlen);
        if (name == NULL || value == NULL) {
            PyErr_Clear();
            return false;
        }
        if (ieq(name, nlen, "content-type")) {
            *type_ok = mt_compress_type_ok(value, (size_t)vlen);
            *html = vlen >= 9 && strncasecmp(value, "text/html", 9) == 0;
        } else if (ieq(name, nlen, "content-encoding") || ieq(name, nlen, "content-range"))
            return false; /* already encoded, or a part of one */
        else if (ieq(name, nlen, "cache-control") && contains(value, vlen, "no-transform"))
            return false;
        else if (ieq(name, nlen, "content-length"))
            *declared = atoll(value);
    }
    return true;
}

void mt_encoding_decide(mt_exchange_t *ex, long long body_length) {
    ex->decided = true;
    ex->vary = false;
    ex->compressing = false;
    const WorkerObject *worker = ex->worker;
    /* The status code, read off the status line (build_head validates it, and
     * reports a missing start_response). */
    Py_ssize_t slen;
    const char *status = ex->status && PyUnicode_Check(ex->status) ? PyUnicode_AsUTF8AndSize(ex->status, &slen) : NULL;
    if (status == NULL || slen < 3) {
        PyErr_Clear();
        return;
    }
    int code = (status[0] - '0') * 100 + (status[1] - '0') * 10 + (status[2] - '0');
    /* Only whole, successful representations: not 204/206/304, not errors of the server's own. */
    if (worker->compress_mask == 0 || code < 200 || code >= 300 || code == 204 || code == 206)
        return;
    bool type_ok = false, html = false, eligible;
    long long declared = -1;
    Py_BEGIN_CRITICAL_SECTION(ex->headers);
    eligible = scan_headers(ex->headers, &type_ok, &html, &declared);
    Py_END_CRITICAL_SECTION();
    if (!eligible)
        return;
    long long length = body_length >= 0 ? body_length : declared;
    if (!type_ok || (length >= 0 && (unsigned long long)length < worker->compress_min_size))
        return;
    /* From here the representation depends on Accept-Encoding, whatever this
     * client accepted: caches must know (RFC 9110 12.5.5). */
    ex->vary = true;
    ex->compressing = ex->coding != MT_CODING_IDENTITY && !ex->no_body;
    ex->pad = ex->compressing && html && worker->breach_padding;
}

/* BREACH (a secret guessed from compressed lengths) needs lengths that move
 * only with the attacker's input; a comment of random length (0 to 255
 * characters, from getrandom) at the end of the page makes them noisy. */
static size_t breach_padding(char *out) {
    unsigned char random[2 + 255];
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random)
        return 0;
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t n = random[0];
    memcpy(out, "<!-- ", 5);
    for (size_t i = 0; i < n; i++)
        out[5 + i] = alphabet[random[1 + i] % (sizeof alphabet - 1)];
    memcpy(out + 5 + n, " -->", 4);
    return n + 9;
}

int mt_encoding_compress(mt_exchange_t *ex, const char *data, size_t len, int mode) {
    mt_handler_t *h = ex->handler;
    if (h->z == NULL && (h->z = mt_compressor_create()) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (!ex->compress_started) {
        int rc = mt_compressor_begin(h->z, ex->coding, ex->worker->compress_level[ex->coding]);
        if (rc < 0) {
            PyErr_Format(PyExc_RuntimeError, "cannot start %s compression", mt_compress_coding_name(ex->coding));
            return -1;
        }
        ex->compress_started = true;
    }
    int rc;
    if (mode == MT_COMPRESS_END && ex->pad) {
        /* The padding goes in before the stream ends, inside the compression. */
        char padding[300];
        size_t n = breach_padding(padding);
        rc = mt_compressor_feed(h->z, data, len, MT_COMPRESS_CONTINUE, &h->zbuf);
        if (rc == 0)
            rc = mt_compressor_feed(h->z, padding, n, MT_COMPRESS_END, &h->zbuf);
        goto done;
    }
    /* Large inputs compress without the GIL; the compressor and buffer are this thread's. */
    if (len > 65536) {
        Py_BEGIN_ALLOW_THREADS
            rc = mt_compressor_feed(h->z, data, len, mode, &h->zbuf);
        Py_END_ALLOW_THREADS
    } else {
        rc = mt_compressor_feed(h->z, data, len, mode, &h->zbuf);
    }
done:
    if (rc < 0) {
        if (rc == -ENOMEM)
            PyErr_NoMemory();
        else
            PyErr_Format(PyExc_RuntimeError, "%s compression failed", mt_compress_coding_name(ex->coding));
        return -1;
    }
    if (mode == MT_COMPRESS_END)
        ex->compress_ended = true;
    return 0;
}
