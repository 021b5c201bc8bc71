/* meltemi._core.negotiate_encoding and meltemi._core.compress: the content
 * codings of src/core/compress/compress.c for Python (tests, the precompress command). */
#include "codec.h"

#include "compress.h"

/* Inputs at least this big are compressed without the GIL. */
#define NOGIL_MIN 65536

long mt_codec_parse_list(const char *s, Py_ssize_t n, mt_coding_t *order, int *count) {
    unsigned mask = 0;
    if (count)
        *count = 0;
    const char *p = s, *end = s + n;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *a = p, *b = stop;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (a < b) {
            int c = mt_compress_coding_parse(a, (size_t)(b - a));
            if (c < 0) {
                PyObject *bad = PyUnicode_FromStringAndSize(a, b - a);
                if (bad)
                    PyErr_Format(PyExc_ValueError, "unknown content coding %R", bad);
                Py_XDECREF(bad);
                return -1;
            }
            if (c != MT_CODING_IDENTITY && !(mask & MT_CODING_MASK(c))) {
                mask |= MT_CODING_MASK(c);
                if (order && count)
                    order[(*count)++] = (mt_coding_t)c;
            }
        }
        p = comma ? comma + 1 : end;
    }
    return (long)mask;
}

PyDoc_STRVAR(negotiate_encoding_doc, "negotiate_encoding(accept, enabled='zstd,br,gzip')\n--\n\n"
                                     "The content coding to answer an Accept-Encoding value with (RFC 9110 12.5.3):\n"
                                     "'zstd', 'br', 'gzip' or 'identity'. `enabled` lists the codings the server\n"
                                     "may use, comma-separated.");

static PyObject *negotiate_encoding(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"accept", "enabled", NULL};
    const char *accept, *enabled = "zstd,br,gzip";
    Py_ssize_t accept_len, enabled_len = 12;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s#|s#:negotiate_encoding", kwlist, &accept, &accept_len, &enabled,
                                     &enabled_len))
        return NULL;
    long mask = mt_codec_parse_list(enabled, enabled_len, NULL, NULL);
    if (mask < 0)
        return NULL;
    mt_coding_t c = mt_compress_negotiate(accept, (size_t)accept_len, (unsigned)mask);
    return PyUnicode_FromString(mt_compress_coding_name(c));
}

/* Feeds `n` bytes in `chunks` pieces, flushing after each and ending after the
 * last (chunks == 1: one whole-buffer call). Runs with or without the GIL. */
static int compress_pieces(mt_compressor_t *z, mt_coding_t coding, int level, const char *in, size_t n,
                           Py_ssize_t chunks, mt_buf_t *out) {
    if (chunks == 1)
        return mt_compressor_whole(z, coding, level, in, n, out);
    int rc = mt_compressor_begin(z, coding, level);
    for (Py_ssize_t i = 0; i < chunks && rc == 0; i++) {
        size_t from = (size_t)((unsigned __int128)n * (size_t)i / (size_t)chunks);
        size_t to = (size_t)((unsigned __int128)n * (size_t)(i + 1) / (size_t)chunks);
        rc = mt_compressor_feed(z, in + from, to - from, MT_COMPRESS_FLUSH, out);
    }
    if (rc == 0)
        rc = mt_compressor_feed(z, NULL, 0, MT_COMPRESS_END, out);
    return rc;
}

PyDoc_STRVAR(compress_doc, "compress(data, coding, level=-1, chunks=1)\n--\n\n"
                           "Compresses a bytes-like object with 'gzip', 'br', 'zstd' or 'identity'.\n"
                           "`level` is the coding's own scale (-1: its default). With chunks > 1 the\n"
                           "data is fed in that many pieces, each flushed, as a streamed response is.");

static PyObject *compress(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"data", "coding", "level", "chunks", NULL};
    Py_buffer data = {0};
    const char *name;
    Py_ssize_t name_len, chunks = 1;
    int level = -1;
    mt_compressor_t *z = NULL;
    mt_buf_t out;
    mt_buf_init(&out);
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*s#|in:compress", kwlist, &data, &name, &name_len, &level,
                                     &chunks))
        return NULL;
    int coding = mt_compress_coding_parse(name, (size_t)name_len);
    if (coding < 0) {
        PyErr_Format(PyExc_ValueError, "unknown content coding '%s'", name);
        goto error;
    }
    if (chunks < 1) {
        PyErr_SetString(PyExc_ValueError, "chunks must be at least 1");
        goto error;
    }
    z = mt_compressor_create();
    if (z == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    /* Large inputs are compressed without the GIL; the buffer stays valid, held by `data`. */
    PyThreadState *ts = data.len >= NOGIL_MIN ? PyEval_SaveThread() : NULL;
    int rc = compress_pieces(z, (mt_coding_t)coding, level, data.buf, (size_t)data.len, chunks, &out);
    if (ts)
        PyEval_RestoreThread(ts);
    if (rc == -ENOMEM) {
        PyErr_NoMemory();
        goto error;
    }
    if (rc < 0) {
        PyErr_Format(PyExc_ValueError, "level %d is out of range for %s", level,
                     mt_compress_coding_name((mt_coding_t)coding));
        goto error;
    }
    result = PyBytes_FromStringAndSize(out.data, (Py_ssize_t)out.len);
error:
    mt_compressor_destroy(z);
    mt_buf_dispose(&out);
    PyBuffer_Release(&data);
    return result;
}

PyMethodDef mt_codec_methods[] = {
    {"negotiate_encoding", (PyCFunction)(void (*)(void))negotiate_encoding, METH_VARARGS | METH_KEYWORDS,
     negotiate_encoding_doc},
    {"compress", (PyCFunction)(void (*)(void))compress, METH_VARARGS | METH_KEYWORDS, compress_doc},
    {NULL, NULL, 0, NULL},
};
