/* meltemi._core.precompress_file and meltemi._core.compressible_type: the
 * precompressed variants that src/core/static/static.c serves (`file.zst`, `file.br`,
 * `file.gz` beside `file`, when not older than it), written by
 * `python -m meltemi.precompress` and `manage.py precompress`.
 *
 * precompress_file does all its work without the GIL, so a thread pool
 * compresses as many files at once as it has threads. */
#include "codec.h"
#include "module.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compress.h"

/* Per coding: the suffix static.c looks for, the default level (the highest
 * sensible: a variant is compressed once and served many times; zstd stops at
 * 19, as 20-22 need the large windows RFC 9659 lets decoders refuse) and the
 * range of levels. */
static const struct {
    const char *suffix;
    int level, min_level, max_level;
} codings[] = {
    [MT_CODING_IDENTITY] = {"", 0, 0, 0},
    [MT_CODING_GZIP] = {".gz", 9, 0, 9},
    [MT_CODING_BR] = {".br", 11, 0, 11},
    [MT_CODING_ZSTD] = {".zst", 19, 1, 22},
};

#define NCODINGS MT_ARRAY_SIZE(codings)
#define READ_STEP (1u << 30)

/* One compressor per thread, kept from one file to the next (a zstd context
 * at level 19 is worth keeping) and freed when the thread exits. */
static pthread_key_t compressor_key;
static pthread_once_t compressor_once = PTHREAD_ONCE_INIT;
static bool compressor_key_ready;

static void compressor_free(void *z) {
    mt_compressor_destroy(z);
}

static void compressor_key_init(void) {
    compressor_key_ready = pthread_key_create(&compressor_key, compressor_free) == 0;
}

static mt_compressor_t *thread_compressor(void) {
    if (pthread_once(&compressor_once, compressor_key_init) != 0 || !compressor_key_ready)
        return mt_compressor_create(); /* not kept: the caller frees it */
    mt_compressor_t *z = pthread_getspecific(compressor_key);
    if (z == NULL) {
        z = mt_compressor_create();
        if (z && pthread_setspecific(compressor_key, z) != 0) {
            mt_compressor_destroy(z);
            z = NULL;
        }
    }
    return z;
}

static bool compressor_is_kept(mt_compressor_t *z) {
    return compressor_key_ready && pthread_getspecific(compressor_key) == z;
}

/* One call of precompress_file: its inputs, its outcome. */
typedef struct job {
    const char *path; /* the source file */
    size_t path_len;
    mt_coding_t order[NCODINGS]; /* the codings asked for, in the order given */
    int ncodings;
    int level[NCODINGS];
    unsigned long long min_size;
    mt_coding_t written[NCODINGS]; /* the variants written, in that order */
    int nwritten;
    /* On failure: errno (ENOMEM for an allocation), a message when strerror
     * would mislead, and the coding whose variant failed (identity: the source). */
    int err;
    const char *message;
    mt_coding_t err_coding;
} job_t;

static int fail(job_t *j, int err, mt_coding_t coding, const char *message) {
    j->err = err;
    j->err_coding = coding;
    j->message = message;
    return -1;
}

/* Reads the whole file (size bytes expected; fewer when it shrank meanwhile). */
static int read_all(int fd, char *data, size_t size, size_t *got) {
    size_t n = 0;
    while (n < size) {
        ssize_t r = read(fd, data + n, MT_MIN(size - n, (size_t)READ_STEP));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *got = n;
    return 0;
}

static int write_all(int fd, const char *data, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, data, MT_MIN(n, (size_t)READ_STEP));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes `variant` atomically: a hidden temporary file in the same directory
 * (`.name.gz.XXXXXX`), with the source's permission bits and times, renamed
 * over the variant. Not fsynced: readers see the old variant or the whole new
 * one, and after a crash the next run rewrites whatever does not match. */
static int write_variant(const char *variant, size_t variant_len, const struct stat *st, const mt_buf_t *data) {
    char tmp[PATH_MAX];
    const char *slash = memrchr(variant, '/', variant_len);
    size_t dir_len = slash ? (size_t)(slash - variant) + 1 : 0;
    int n = snprintf(tmp, sizeof tmp, "%.*s.%s.XXXXXX", (int)dir_len, variant, variant + dir_len);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -ENAMETOOLONG;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    struct timespec times[2] = {st->st_atim, st->st_mtim};
    int rc = write_all(fd, data->data, data->len);
    if (rc == 0 && fchmod(fd, st->st_mode & 0777) < 0)
        rc = -errno;
    /* The source's mtime: static.c serves a variant not older than its file,
     * and the next run knows an unchanged file by it. */
    if (rc == 0 && futimens(fd, times) < 0)
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, variant) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* The whole operation, without the GIL. Returns 0 or -1 (j->err set). */
static int run_job(job_t *j) {
    char variant[PATH_MAX];
    if (j->path_len + 5 > sizeof variant)
        return fail(j, ENAMETOOLONG, MT_CODING_IDENTITY, NULL);
    memcpy(variant, j->path, j->path_len);

    int fd = open(j->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0)
        return fail(j, errno, MT_CODING_IDENTITY, NULL);
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int err = errno;
        close(fd);
        return fail(j, err, MT_CODING_IDENTITY, NULL);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(j, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, MT_CODING_IDENTITY,
                    S_ISDIR(st.st_mode) ? NULL : "Not a regular file");
    }
    size_t size = (size_t)st.st_size;
    bool worth = (unsigned long long)st.st_size >= j->min_size;
    char *data = NULL;
    if (worth && size > 0) {
        data = malloc(size);
        if (data == NULL) {
            close(fd);
            return fail(j, ENOMEM, MT_CODING_IDENTITY, NULL);
        }
        int rc = read_all(fd, data, size, &size);
        if (rc < 0) {
            free(data);
            close(fd);
            return fail(j, -rc, MT_CODING_IDENTITY, NULL);
        }
    }
    close(fd);

    mt_compressor_t *z = NULL;
    mt_buf_t out;
    mt_buf_init(&out);
    int result = 0;
    for (int i = 0; i < j->ncodings && result == 0; i++) {
        mt_coding_t c = j->order[i];
        size_t vlen = j->path_len + strlen(codings[c].suffix);
        memcpy(variant + j->path_len, codings[c].suffix, strlen(codings[c].suffix) + 1);
        bool keep = false;
        if (worth) {
            if (z == NULL && (z = thread_compressor()) == NULL) {
                result = fail(j, ENOMEM, c, NULL);
                break;
            }
            out.len = 0;
            int rc = mt_compressor_whole(z, c, j->level[c], data, size, &out);
            if (rc < 0) {
                result = fail(j, -rc, c, rc == -ENOMEM ? NULL : "Compression failed");
                break;
            }
            keep = out.len < size;
        }
        if (keep) {
            int rc = write_variant(variant, vlen, &st, &out);
            if (rc < 0)
                result = fail(j, -rc, c, NULL);
            else
                j->written[j->nwritten++] = c;
        } else if (unlink(variant) < 0 && errno != ENOENT) {
            /* No gain (or too small): a variant left from an earlier run goes. */
            result = fail(j, errno, c, NULL);
        }
    }
    if (z && !compressor_is_kept(z))
        mt_compressor_destroy(z);
    mt_buf_dispose(&out);
    free(data);
    return result;
}

/* Parses "zstd,br,gzip" into j->order (duplicates and identity dropped).
 * Returns -1 with ValueError set for an unknown name. */
static int parse_codings(job_t *j, const char *s, Py_ssize_t n) {
    return mt_codec_parse_list(s, n, j->order, &j->ncodings) < 0 ? -1 : 0;
}

/* Reads {"gzip": 9, "br": 11, "zstd": 19} (any subset) into j->level.
 * Returns -1 with TypeError or ValueError set. */
/* One entry of the levels dict. 0, or -1 with an exception set. */
static int parse_level(job_t *j, PyObject *key, PyObject *value) {
    Py_ssize_t len;
    const char *name = PyUnicode_Check(key) ? PyUnicode_AsUTF8AndSize(key, &len) : NULL;
    if (name == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "levels keys must be coding names");
        return -1;
    }
    int c = mt_compress_coding_parse(name, (size_t)len);
    if (c <= MT_CODING_IDENTITY) {
        PyErr_Format(PyExc_ValueError, "unknown content coding %R in levels", key);
        return -1;
    }
    if (!PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "the level of %s must be an int", mt_compress_coding_name((mt_coding_t)c));
        return -1;
    }
    int overflow;
    long level = PyLong_AsLongAndOverflow(value, &overflow);
    if (level == -1 && PyErr_Occurred())
        return -1;
    if (overflow || level < codings[c].min_level || level > codings[c].max_level) {
        PyErr_Format(PyExc_ValueError, "level %R is out of range for %s (%d to %d)", value,
                     mt_compress_coding_name((mt_coding_t)c), codings[c].min_level, codings[c].max_level);
        return -1;
    }
    j->level[c] = (int)level;
    return 0;
}

static int parse_levels(job_t *j, PyObject *levels) {
    for (size_t c = 0; c < NCODINGS; c++)
        j->level[c] = codings[c].level;
    if (levels == NULL || levels == Py_None)
        return 0;
    if (!PyDict_Check(levels)) {
        PyErr_SetString(PyExc_TypeError, "levels must be a dict of coding name to level, or None");
        return -1;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    int rc = 0;
    /* The caller's dict: iterated in its critical section (free-threaded builds). */
    Py_BEGIN_CRITICAL_SECTION(levels);
    while (rc == 0 && PyDict_Next(levels, &pos, &key, &value))
        rc = parse_level(j, key, value);
    Py_END_CRITICAL_SECTION();
    return rc;
}

/* Raises the OSError (or MemoryError) of a failed job, naming the file. */
static void raise_job_error(const job_t *j, PyObject *path) {
    if (j->err == ENOMEM) {
        PyErr_NoMemory();
        return;
    }
    PyObject *filename = j->err_coding == MT_CODING_IDENTITY
                             ? Py_NewRef(path)
                             : PyUnicode_FromFormat("%U%s", path, codings[j->err_coding].suffix);
    if (filename == NULL)
        return;
    if (j->message == NULL) {
        errno = j->err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, filename);
    } else {
        PyObject *args = Py_BuildValue("(isO)", j->err, j->message, filename);
        if (args) {
            PyErr_SetObject(PyExc_OSError, args);
            Py_DECREF(args);
        }
    }
    Py_DECREF(filename);
}

PyDoc_STRVAR(precompress_file_doc, "precompress_file(path, codings='zstd,br,gzip', levels=None, min_size=512)\n--\n\n"
                                   "Writes the precompressed variants of the file at `path` beside it (path.zst,\n"
                                   "path.br, path.gz), each atomically (a temporary file renamed) and with the\n"
                                   "file's mtime, and only when smaller than the file; a variant that would not be\n"
                                   "(or a file smaller than min_size) has any old variant removed. `levels` maps\n"
                                   "coding names to levels (default: zstd 19, br 11, gzip 9). Runs without the\n"
                                   "GIL. Returns the codings written, in the order of `codings`; raises OSError\n"
                                   "naming the file that failed.");

static PyObject *precompress_file(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"path", "codings", "levels", "min_size", NULL};
    PyObject *path = NULL, *path_bytes = NULL, *levels = NULL, *result = NULL;
    const char *names = "zstd,br,gzip";
    Py_ssize_t names_len = 12;
    long long min_size = 512;
    job_t j = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|s#OL:precompress_file", kwlist, PyUnicode_FSDecoder, &path,
                                     &names, &names_len, &levels, &min_size))
        return NULL;
    if (parse_codings(&j, names, names_len) < 0 || parse_levels(&j, levels) < 0)
        goto done;
    if (min_size < 0) {
        PyErr_SetString(PyExc_ValueError, "min_size must not be negative");
        goto done;
    }
    if (!PyUnicode_FSConverter(path, &path_bytes))
        goto done;
    j.path = PyBytes_AS_STRING(path_bytes);
    j.path_len = (size_t)PyBytes_GET_SIZE(path_bytes);
    j.min_size = (unsigned long long)min_size;
    PyThreadState *ts = PyEval_SaveThread();
    int rc = run_job(&j);
    PyEval_RestoreThread(ts);
    if (rc < 0) {
        raise_job_error(&j, path);
        goto done;
    }
    result = PyList_New(j.nwritten);
    for (int i = 0; result && i < j.nwritten; i++) {
        PyObject *name = PyUnicode_FromString(mt_compress_coding_name(j.written[i]));
        if (name == NULL)
            Py_CLEAR(result);
        else
            PyList_SET_ITEM(result, i, name);
    }
done:
    Py_XDECREF(path_bytes);
    Py_XDECREF(path);
    return result;
}

PyDoc_STRVAR(compressible_type_doc, "compressible_type(content_type)\n--\n\n"
                                    "Whether responses of this Content-Type are worth compressing: the allowlist\n"
                                    "the server uses (text/*, JSON, XML, JavaScript, SVG, uncompressed fonts...).");

static PyObject *compressible_type(PyObject *self, PyObject *arg) {
    Py_ssize_t len;
    const char *type = PyUnicode_AsUTF8AndSize(arg, &len);
    if (type == NULL)
        return NULL;
    return PyBool_FromLong(mt_compress_type_ok(type, (size_t)len));
}

PyMethodDef mt_precompress_methods[] = {
    {"precompress_file", (PyCFunction)(void (*)(void))precompress_file, METH_VARARGS | METH_KEYWORDS,
     precompress_file_doc},
    {"compressible_type", compressible_type, METH_O, compressible_type_doc},
    {NULL, NULL, 0, NULL},
};
