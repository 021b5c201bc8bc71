/* meltemi._core.Worker: one worker process's server, driven from Python
 * (meltemi/worker.py): start() spawns the C I/O thread, handle_requests() is
 * the body of each handler thread, shutdown() and join() stop it. */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "asgi.h"
#include "auth.h"
#include "codec.h"
#include "cors_config.h"
#include "region.h"
#include "environ.h"
#include "response.h"
#include "worker.h"
#include "static.h"

/* [(url_prefix, directory), ...] into the C static file handler. */
static int mount_statics(WorkerObject *self, PyObject *list, int max_age) {
    self->statics = mt_static_create();
    if (self->statics == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    PyObject *mounts = PyList_AsTuple(list); /* a snapshot: no borrowed item of a list */
    if (mounts == NULL)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; rc == 0 && i < PyTuple_GET_SIZE(mounts); i++) {
        const char *prefix, *root;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(mounts, i), "ss:static mount", &prefix, &root)) {
            rc = -1;
        } else if ((rc = mt_static_mount(self->statics, prefix, root, max_age)) < 0) {
            PyErr_Format(PyExc_ValueError, "cannot serve %s from %s: %s", prefix, root, strerror(-rc));
            rc = -1;
        }
    }
    Py_DECREF(mounts);
    return rc;
}

/* The I/O thread's own answers (mt_server_config_t.answer_inline): CORS
 * preflights of the project-wide policy and static files, which need
 * neither Python nor a handler thread. The same rules as in serve_in_c. */
static bool answer_inline(void *ctx, mt_conn_t *c, bool *keep_alive) {
    WorkerObject *self = ctx;
    if (self->cors) {
        mt_buf_t out;
        mt_buf_init(&out);
        *keep_alive = true; /* the server answers inline only while it is not draining */
        bool answered = mt_cors_preflight(c, &out, keep_alive);
        mt_buf_dispose(&out);
        if (answered)
            return true;
    }
    if (self->statics == NULL || !mt_static_match(self->statics, &c->req, c->rbuf.data))
        return false;
    c->metric_route = MT_METRICS_ROUTE_STATIC;
    if (mt_static_serve(self->statics, c, keep_alive) < 0)
        *keep_alive = false;
    return true;
}

/* The values come from a meltemi.config.WorkerConfig: config.py declares
 * every default and range and checked the values, so these readers take
 * them as they are and only refuse what does not fit their C type. */

static int config_ull(PyObject *config, const char *name, unsigned long long max, unsigned long long *out) {
    PyObject *value = PyObject_GetAttrString(config, name);
    if (value == NULL)
        return -1;
    unsigned long long v = PyLong_AsUnsignedLongLong(value);
    Py_DECREF(value);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    if (v > max) {
        PyErr_Format(PyExc_OverflowError, "WorkerConfig.%s: %llu does not fit the C server", name, v);
        return -1;
    }
    *out = v;
    return 0;
}

static int config_int(PyObject *config, const char *name, int *out) {
    unsigned long long v;
    if (config_ull(config, name, INT_MAX, &v) < 0)
        return -1;
    *out = (int)v;
    return 0;
}

static int config_bool(PyObject *config, const char *name, bool *out) {
    PyObject *value = PyObject_GetAttrString(config, name);
    if (value == NULL)
        return -1;
    int truth = PyObject_IsTrue(value);
    Py_DECREF(value);
    if (truth < 0)
        return -1;
    *out = truth;
    return 0;
}

/* Seconds (a float) as milliseconds, rounded up: a timeout is never shorter than asked. */
static int config_ms(PyObject *config, const char *name, int *out) {
    PyObject *value = PyObject_GetAttrString(config, name);
    if (value == NULL)
        return -1;
    double seconds = PyFloat_AsDouble(value);
    Py_DECREF(value);
    if (seconds == -1.0 && PyErr_Occurred())
        return -1;
    if (!(seconds >= 0 && seconds * 1000 <= INT_MAX)) {
        char text[32]; /* PyErr_Format has no %g (3.12 and later refuse it: SystemError) */
        snprintf(text, sizeof text, "%g", seconds);
        PyErr_Format(PyExc_OverflowError, "WorkerConfig.%s: %s s does not fit the C server", name, text);
        return -1;
    }
    *out = (int)ceil(seconds * 1000);
    return 0;
}

/* config.dispatch (a meltemi.config.DispatchPolicy) into the server's policy. */
static int config_dispatch(PyObject *config, mt_dispatch_policy_t *out) {
    PyObject *policy = PyObject_GetAttrString(config, "dispatch");
    if (policy == NULL)
        return -1;
    int rc = config_bool(policy, "wake_each", &out->wake_each) < 0 ||
                     config_int(policy, "stall_ms", &out->stall_ms) < 0 ||
                     config_bool(policy, "sched_batch", &out->sched_batch) < 0
                 ? -1
                 : 0;
    Py_DECREF(policy);
    return rc;
}

/* config.access_log_format and config.request_id_header (a token of at most
 * 64 bytes, checked by config.py). */
static int log_config(WorkerObject *self, PyObject *cfg, mt_server_config_t *config) {
    PyObject *format = PyObject_GetAttrString(cfg, "access_log_format");
    PyObject *header = format ? PyObject_GetAttrString(cfg, "request_id_header") : NULL;
    const char *f = header ? PyUnicode_AsUTF8(format) : NULL;
    Py_ssize_t n = 0;
    const char *h = f ? PyUnicode_AsUTF8AndSize(header, &n) : NULL;
    int rc = -1;
    if (h == NULL)
        goto done;
    if (strcmp(f, "common") == 0)
        self->access_log.format = MT_ACCESSLOG_COMMON;
    else if (strcmp(f, "combined") == 0)
        self->access_log.format = MT_ACCESSLOG_COMBINED;
    else if (strcmp(f, "json") == 0)
        self->access_log.format = MT_ACCESSLOG_JSON;
    else {
        PyErr_Format(PyExc_ValueError, "WorkerConfig.access_log_format: %s is not a format", f);
        goto done;
    }
    if ((size_t)n >= sizeof self->request_id_name) {
        PyErr_SetString(PyExc_ValueError, "WorkerConfig.request_id_header: too long");
        goto done;
    }
    if (n > 0) {
        memcpy(self->request_id_name, h, (size_t)n + 1);
        for (Py_ssize_t i = 0; i <= n; i++)
            self->request_id_lower[i] = (char)tolower((unsigned char)h[i]);
        char key[5 + sizeof self->request_id_name] = "HTTP_";
        for (Py_ssize_t i = 0; i <= n; i++)
            key[5 + i] = h[i] == '-' ? '_' : (char)toupper((unsigned char)h[i]);
        Py_XSETREF(self->request_id_environ_key, PyUnicode_InternFromString(key));
        Py_XSETREF(self->request_id_header_key, PyUnicode_InternFromString(self->request_id_lower));
        if (self->request_id_environ_key == NULL || self->request_id_header_key == NULL)
            goto done;
        config->request_id_header = self->request_id_lower;
        config->request_id_name = self->request_id_name;
        config->request_id_header_len = (size_t)n;
    }
    rc = 0;
done:
    Py_XDECREF(format);
    Py_XDECREF(header);
    return rc;
}

/* The server's part of the WorkerConfig. */
/* config.forwarded_allow_ips: "127.0.0.0/8,::1/128,unix" (checked by meltemi/values.py). */
static int trust_config(WorkerObject *self, PyObject *cfg, mt_server_config_t *config) {
    PyObject *text = PyObject_GetAttrString(cfg, "forwarded_allow_ips");
    if (text == NULL)
        return -1;
    Py_ssize_t n;
    const char *s = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &n) : NULL;
    int rc = s ? mt_trust_parse(&self->trust, s, (size_t)n) : -EINVAL;
    if (rc < 0 && !PyErr_Occurred())
        PyErr_Format(PyExc_ValueError, "WorkerConfig.forwarded_allow_ips: %R is not a trust list", text);
    Py_DECREF(text);
    config->trust = &self->trust;
    return rc < 0 ? -1 : 0;
}

static int server_config(PyObject *cfg, mt_server_config_t *config) {
    unsigned long long line, head, headers, body, conns, write_buffer;
    if (config_ull(cfg, "max_request_line", UINT32_MAX, &line) < 0 ||
        config_ull(cfg, "max_head_size", UINT32_MAX, &head) < 0 ||
        config_ull(cfg, "max_headers", UINT32_MAX, &headers) < 0 ||
        config_ull(cfg, "max_body_size", UINT64_MAX, &body) < 0 ||
        config_ull(cfg, "max_connections", UINT32_MAX, &conns) < 0 ||
        config_ull(cfg, "write_buffer", SIZE_MAX, &write_buffer) < 0 ||
        config_ms(cfg, "head_timeout", &config->head_timeout_ms) < 0 ||
        config_ms(cfg, "body_timeout", &config->body_timeout_ms) < 0 ||
        config_ms(cfg, "keepalive_timeout", &config->keepalive_timeout_ms) < 0 ||
        config_ms(cfg, "write_timeout", &config->write_timeout_ms) < 0 || config_dispatch(cfg, &config->dispatch) < 0)
        return -1;
    config->limits.max_request_line = (uint32_t)line;
    config->limits.max_head_size = (uint32_t)head;
    config->limits.max_headers = (uint32_t)headers;
    config->limits.max_body_size = body;
    config->max_connections = (uint32_t)conns;
    config->output_high_water = (size_t)write_buffer;
    config->output_low_water = (size_t)write_buffer / 4;
    return 0;
}

/* The response side's part of the WorkerConfig: compression and static files. */
static int response_config(WorkerObject *self, PyObject *cfg) {
    PyObject *compress = PyObject_GetAttrString(cfg, "compress");
    if (compress == NULL)
        return -1;
    Py_ssize_t len;
    const char *codings = PyUnicode_AsUTF8AndSize(compress, &len);
    long mask = codings ? mt_codec_parse_list(codings, len, NULL, NULL) : -1;
    Py_DECREF(compress);
    if (mask < 0)
        return -1;
    self->compress_mask = (unsigned)mask;
    int max_age;
    if (config_ull(cfg, "compress_min_size", ULLONG_MAX, &self->compress_min_size) < 0 ||
        config_bool(cfg, "breach_padding", &self->breach_padding) < 0 ||
        config_int(cfg, "gzip_level", &self->compress_level[MT_CODING_GZIP]) < 0 ||
        config_int(cfg, "brotli_level", &self->compress_level[MT_CODING_BR]) < 0 ||
        config_int(cfg, "zstd_level", &self->compress_level[MT_CODING_ZSTD]) < 0 ||
        config_int(cfg, "static_max_age", &max_age) < 0)
        return -1;
    PyObject *mounts = PyObject_GetAttrString(cfg, "static");
    if (mounts == NULL)
        return -1;
    int rc = 0;
    if (!PyList_Check(mounts)) {
        PyErr_SetString(PyExc_TypeError, "WorkerConfig.static: a list of (url_prefix, directory)");
        rc = -1;
    } else if (PyList_GET_SIZE(mounts)) {
        rc = mount_statics(self, mounts, max_age);
    }
    Py_DECREF(mounts);
    unsigned long long zcache_budget;
    if (rc == 0 && config_ull(cfg, "static_compress_cache", SIZE_MAX, &zcache_budget) < 0)
        rc = -1;
    if (rc == 0 && self->statics && self->compress_mask && zcache_budget) {
        /* Static files get the codings and levels of responses: --compress off means off here too. */
        mt_zcache_config_t zconfig = {
            .budget = (size_t)zcache_budget,
            .min_size = (size_t)self->compress_min_size,
            .codings = self->compress_mask,
            .levels = {[MT_CODING_IDENTITY] = -1,
                       [MT_CODING_GZIP] = self->compress_level[MT_CODING_GZIP],
                       [MT_CODING_BR] = self->compress_level[MT_CODING_BR],
                       [MT_CODING_ZSTD] = self->compress_level[MT_CODING_ZSTD]},
        };
        if (mt_static_compress(self->statics, &zconfig) < 0) {
            PyErr_NoMemory();
            rc = -1;
        }
    }
    return rc;
}

static int worker_init(WorkerObject *self, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"app", "listeners", "config", "access_log", "error_log", "api", "metrics", NULL};
    PyObject *app, *listener_list, *cfg, *access_log = Py_None, *error_log = Py_None, *api = Py_None;
    PyObject *metrics = Py_None;
    PyObject *scheme = NULL, *listeners = NULL;
    int *fds = NULL;
    if (self->server_ready) {
        PyErr_SetString(PyExc_RuntimeError, "Worker is already initialized");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO!O|$OOOO:Worker", keywords, &app, &PyList_Type, &listener_list,
                                     &cfg, &access_log, &error_log, &api, &metrics))
        return -1;
    self->st = mt_state_of((PyObject *)self);
    if (!PyCallable_Check(app)) {
        PyErr_SetString(PyExc_TypeError, "app must be a WSGI callable");
        return -1;
    }
    mt_server_config_t config = {.linger_ms = 2000, .limits.max_chunk_ext = 4096};
    int threads;
    bool multiprocess;
    self->access_log.fd = -1;
    if (server_config(cfg, &config) < 0 || response_config(self, cfg) < 0 || log_config(self, cfg, &config) < 0 ||
        trust_config(self, cfg, &config) < 0 || config_int(cfg, "threads", &threads) < 0 ||
        config_bool(cfg, "multiprocess", &multiprocess) < 0)
        return -1;
    if ((scheme = PyObject_GetAttrString(cfg, "url_scheme")) == NULL)
        return -1;
    if (!PyUnicode_Check(scheme)) {
        PyErr_SetString(PyExc_TypeError, "WorkerConfig.url_scheme: a str");
        goto error;
    }
    if (api != Py_None && (self->api = mt_api_create(api)) == NULL)
        goto error;
    PyObject *cors = PyObject_GetAttrString(cfg, "cors");
    int cors_rc = cors ? mt_cors_from_py(cors, &self->cors) : -1;
    Py_XDECREF(cors);
    if (cors_rc < 0)
        goto error;
    config.cors = self->cors;
    if (access_log != Py_None) {
        long fd = PyLong_AsLong(access_log);
        if (fd == -1 && PyErr_Occurred())
            goto error;
        if (fd < 0 || fd > INT_MAX) {
            PyErr_SetString(PyExc_ValueError, "access_log: a file descriptor");
            goto error;
        }
        if ((self->access_log.fd = fcntl((int)fd, F_DUPFD_CLOEXEC, 3)) < 0) {
            PyErr_SetFromErrno(PyExc_OSError);
            goto error;
        }
        config.access_log = &self->access_log;
    }
    if (metrics != Py_None && !self->metrics_attached) {
        if ((config.metrics = mt_metrics_attach(metrics, &self->metrics_view)) == NULL)
            goto error;
        self->metrics_attached = true;
    }
    if (self->statics || self->cors) {
        config.answer_inline = answer_inline;
        config.inline_ctx = self;
    }

    if ((listeners = PyList_AsTuple(listener_list)) == NULL) /* a snapshot: no borrowed item of a list */
        goto error;
    Py_ssize_t n = PyTuple_GET_SIZE(listeners);
    self->listeners = PyMem_Calloc((size_t)(n ? n : 1), sizeof *self->listeners);
    fds = PyMem_Calloc((size_t)(n ? n : 1), sizeof *fds);
    if (self->listeners == NULL || fds == NULL) {
        PyErr_NoMemory();
        goto error;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name, *port;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(listeners, i), "iUU:listener", &fds[i], &name, &port))
            goto error;
        Py_INCREF(name);
        Py_INCREF(port);
        self->listeners[i] = (mt_py_listener_t){name, port};
        self->nlisteners = (int)i + 1;
    }
    self->environ_template = mt_environ_template(self, scheme, threads > 1, multiprocess);
    if (self->environ_template == NULL)
        goto error;
    int rc = mt_server_init(&self->server, &config, fds, (int)n);
    if (rc < 0) {
        errno = -rc;
        PyErr_SetFromErrno(PyExc_OSError);
        goto error;
    }
    self->server_ready = true;
    Py_INCREF(app);
    self->app = app;
    if (error_log != Py_None) {
        Py_INCREF(error_log);
        self->error_log = error_log;
    }
    Py_DECREF(scheme);
    Py_DECREF(listeners);
    PyMem_Free(fds);
    return 0;
error:
    Py_XDECREF(scheme);
    Py_XDECREF(listeners);
    PyMem_Free(fds);
    return -1;
}

/* Initialization and start() run in a critical section of the Worker: two threads
 * doing either at once cannot both pass the check that it was not done. */
static int Worker_init(WorkerObject *self, PyObject *args, PyObject *kwargs) {
    int rc;
    Py_BEGIN_CRITICAL_SECTION(self);
    rc = worker_init(self, args, kwargs);
    Py_END_CRITICAL_SECTION();
    return rc;
}

static void Worker_dealloc(WorkerObject *self) {
    if (self->server_ready) {
        mt_server_shutdown(&self->server);
        Py_BEGIN_ALLOW_THREADS
            mt_server_join(&self->server, -1);
        Py_END_ALLOW_THREADS
        mt_server_dispose(&self->server);
    }
    mt_asgi_free(self->asgi);
    for (int i = 0; i < self->nlisteners; i++) {
        Py_XDECREF(self->listeners[i].server_name);
        Py_XDECREF(self->listeners[i].server_port);
    }
    PyMem_Free(self->listeners);
    if (self->statics)
        mt_static_destroy(self->statics);
    mt_api_destroy(self->api);
    mt_cors_destroy(self->cors);
    Py_XDECREF(self->app);
    Py_XDECREF(self->environ_template);
    if (self->access_log.fd >= 3) /* a duplicate of ours (0 until Worker_init) */
        close(self->access_log.fd);
    Py_XDECREF(self->error_log);
    if (self->metrics_attached) /* after the server: its threads wrote to it */
        PyBuffer_Release(&self->metrics_view);
    Py_XDECREF(self->request_id_environ_key);
    Py_XDECREF(self->request_id_header_key);
    PyTypeObject *type = Py_TYPE(self);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type's instances hold a reference to it */
}

static int check_ready(WorkerObject *self) {
    if (self->server_ready)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "Worker is not initialized");
    return -1;
}

static PyObject *Worker_start(WorkerObject *self, PyObject *unused) {
    if (check_ready(self) < 0)
        return NULL;
    int rc = 0;
    bool started;
    Py_BEGIN_CRITICAL_SECTION(self);
    started = self->server.io_started;
    if (!started)
        rc = mt_server_start(&self->server);
    Py_END_CRITICAL_SECTION();
    if (started) {
        PyErr_SetString(PyExc_RuntimeError, "Worker already started");
        return NULL;
    }
    if (rc < 0) {
        errno = -rc;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    Py_RETURN_NONE;
}

/* Ends the exchange on c without the GIL: sends what handler->out still
 * holds, drains a body the application did not read (up to 1 MiB, so the
 * connection can carry the next request) and gives the connection back.
 * Returns c again when its client pipelined another complete request. */
static mt_conn_t *hand_back(mt_server_t *s, mt_conn_t *c, mt_handler_t *handler, bool keep_alive) {
    if (handler->out.len) {
        struct iovec iov = {handler->out.data, handler->out.len};
        if (mt_conn_writev(c, &iov, 1) < 0)
            keep_alive = false;
        handler->out.len = 0;
    }
    /* Whoever answered (a static file, the API's C answer, Python) left
     * its status on the connection: the line is written here, once the
     * last byte was handed out, without the GIL. */
    if (c->answer_status) {
        mt_server_record(s, c, c->answer_status, c->answer_bytes, true);
        c->answer_status = 0;
    }
    c->metric_route = MT_METRICS_ROUTE_SERVER;
    if (keep_alive && !c->req.message_complete && mt_conn_body_skip(c, 1 << 20) < 0)
        keep_alive = false;
    return mt_server_finish(s, c, keep_alive);
}

/* Frees what a handler kept between requests, when its thread stops serving. */
static void handler_dispose(mt_handler_t *handler) {
    mt_buf_dispose(&handler->out);
    mt_buf_dispose(&handler->zbuf);
    if (handler->z)
        mt_compressor_destroy(handler->z);
    free(handler->scratch);
    mt_auth_handler_dispose(handler);
}

/* Answers what C can answer without the GIL (static files, and the API
 * router's own answers) and returns the connection whose request needs
 * Python: an API route (handler->route >= 0) or the WSGI application. With
 * `wait`, an idle moment waits for the next request; without, it returns
 * NULL. */
static mt_conn_t *serve_in_c(WorkerObject *self, mt_conn_t *c, mt_handler_t *handler, bool wait) {
    handler->route = -1;
    while (c) {
        bool keep_alive = !mt_server_draining(&self->server);
        c->metric_route = MT_METRICS_ROUTE_WSGI; /* unless routed below */
        if (self->cors && mt_cors_preflight(c, &handler->out, &keep_alive)) {
            /* a preflight the project's CORS policy answered */
        } else if (self->statics && mt_static_match(self->statics, &c->req, c->rbuf.data)) {
            c->metric_route = MT_METRICS_ROUTE_STATIC;
            if (mt_static_serve(self->statics, c, &keep_alive) < 0)
                keep_alive = false;
        } else if (self->api) {
            mt_api_result_t r = mt_api_route_request(self, c, handler, &keep_alive);
            if (r == MT_API_LOOP && mt_asgi_api_push(self, c, handler) == 0) {
                /* An async route: the loop has the connection now (asgi_api.c). */
                handler->route = -1;
                c = wait ? mt_server_next(&self->server) : NULL;
                continue;
            }
            if (r != MT_API_ANSWERED)
                return c;
        } else {
            return c;
        }
        c = hand_back(&self->server, c, handler, keep_alive);
        if (c == NULL && wait)
            c = mt_server_next(&self->server);
    }
    return c;
}

/* The body of a handler thread. Per request, the GIL is taken once: the
 * previous response's final write, the hand-back of its connection and the
 * wait for the next request all happen in one GIL-free stretch. */
static PyObject *Worker_handle_requests(WorkerObject *self, PyObject *unused) {
    if (check_ready(self) < 0)
        return NULL;
    mt_server_t *s = &self->server;
    if (s->config.dispatch.sched_batch)
        mt_server_thread_batch();
    mt_handler_t handler = {.z = NULL, .route = -1, .auth_scheme = -1};
    mt_buf_init(&handler.out);
    mt_buf_init(&handler.zbuf);
    mt_conn_t *c = NULL;
    bool keep_alive = false;
    mt_server_handler_enter(s);
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
            if (c)
                c = hand_back(s, c, &handler, keep_alive);
            if (c == NULL) {
                /* Idle: give the blocks back before sleeping. */
                mt_buf_dispose(&handler.out);
                mt_buf_dispose(&handler.zbuf);
                c = mt_server_next(s);
            }
            c = serve_in_c(self, c, &handler, true);
        Py_END_ALLOW_THREADS
        if (c == NULL)
            break;
        keep_alive = mt_response_run(self, c, &handler);
    }
    mt_server_handler_exit(s);
    handler_dispose(&handler);
    Py_RETURN_NONE;
}

/* For meltemi.testing: serves, in the calling thread, the request of one
 * connection that arrives within `timeout` seconds (and what that client
 * pipelined), so a test's handler runs on the test's own thread (and
 * database connection). Returns whether a request was taken. */
static PyObject *Worker_serve_one(WorkerObject *self, PyObject *arg) {
    if (check_ready(self) < 0)
        return NULL;
    double seconds = PyFloat_AsDouble(arg);
    if (seconds == -1.0 && PyErr_Occurred())
        return NULL;
    int timeout_ms = seconds < 0 ? -1 : (int)(seconds * 1000);
    mt_server_t *s = &self->server;
    mt_handler_t handler = {.z = NULL, .route = -1, .auth_scheme = -1};
    mt_buf_init(&handler.out);
    mt_buf_init(&handler.zbuf);
    mt_conn_t *c;
    bool taken;
    Py_BEGIN_ALLOW_THREADS
        c = mt_server_next_timed(s, timeout_ms);
        taken = c != NULL;
        c = serve_in_c(self, c, &handler, false);
    Py_END_ALLOW_THREADS
    while (c) {
        bool keep_alive = mt_response_run(self, c, &handler);
        Py_BEGIN_ALLOW_THREADS
            c = hand_back(s, c, &handler, keep_alive);
            c = serve_in_c(self, c, &handler, false);
        Py_END_ALLOW_THREADS
    }
    handler_dispose(&handler);
    return PyBool_FromLong(taken);
}

static PyObject *Worker_shutdown(WorkerObject *self, PyObject *unused) {
    if (check_ready(self) < 0)
        return NULL;
    mt_server_shutdown(&self->server);
    Py_RETURN_NONE;
}

static PyObject *Worker_join(WorkerObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (check_ready(self) < 0 || !mt_check_positional("join", nargs, 0, 1))
        return NULL;
    int timeout_ms = -1;
    if (nargs && args[0] != Py_None) {
        double t = PyFloat_AsDouble(args[0]);
        if (t == -1.0 && PyErr_Occurred())
            return NULL;
        timeout_ms = t <= 0 ? 0 : (int)(t * 1000);
    }
    if (!self->server.io_started)
        Py_RETURN_TRUE;
    int rc;
    Py_BEGIN_ALLOW_THREADS
        rc = mt_server_join(&self->server, timeout_ms);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(rc == 0);
}

static PyObject *Worker_stats(WorkerObject *self, PyObject *unused) {
    return Py_BuildValue(
        "{s:l,s:l,s:l,s:l,s:l,s:l,s:l,s:l,s:l}", "connections_opened", atomic_load(&mt_counters.connections_opened),
        "connections_closed", atomic_load(&mt_counters.connections_closed), "requests_started",
        atomic_load(&mt_counters.requests_started), "requests_finished", atomic_load(&mt_counters.requests_finished),
        "buffers_acquired", atomic_load(&mt_counters.buffers_acquired), "buffers_released",
        atomic_load(&mt_counters.buffers_released), "output_bytes_queued",
        atomic_load(&mt_counters.output_bytes_queued), "output_bytes_released",
        atomic_load(&mt_counters.output_bytes_released), "requests_handled",
        self->server_ready ? atomic_load(&self->server.requests_handled) : 0L);
}

static PyObject *Worker_get_requests_handled(WorkerObject *self, void *closure) {
    return PyLong_FromLong(self->server_ready ? atomic_load(&self->server.requests_handled) : 0);
}

static PyMethodDef Worker_methods[] = {
    {"start", (PyCFunction)Worker_start, METH_NOARGS,
     "start()\n--\n\nStarts the I/O thread (which never holds the GIL)."},
    {"handle_requests", (PyCFunction)Worker_handle_requests, METH_NOARGS,
     "handle_requests()\n--\n\nAnswers requests until the worker stops; run it in each handler thread."},
    {"serve_one", (PyCFunction)Worker_serve_one, METH_O,
     "serve_one(timeout)\n--\n\nServes one connection's request in the calling thread if one arrives within "
     "timeout seconds; returns whether one did (meltemi.testing)."},
    {"shutdown", (PyCFunction)Worker_shutdown, METH_NOARGS,
     "shutdown()\n--\n\nBegins a graceful stop: no more accepting, requests in flight complete."},
    {"join", (PyCFunction)(void (*)(void))Worker_join, METH_FASTCALL,
     "join(timeout=None, /)\n--\n\nWaits for the I/O thread to exit; True if it did."},
    {"stats", (PyCFunction)Worker_stats, METH_NOARGS, "stats()\n--\n\nThe process's object counters, as a dict."},
    {NULL},
};

static PyGetSetDef Worker_getset[] = {
    {"requests_handled", (getter)Worker_get_requests_handled, NULL, "requests answered by this worker", NULL},
    {NULL},
};

static PyType_Slot Worker_slots[] = {
    {Py_tp_doc, "Worker(app, listeners, config, *, access_log=None, error_log=None, api=None, metrics=None)\n--\n\n"
                "A worker process's HTTP server; config is a meltemi.config.WorkerConfig. metrics: (region, slot, "
                "route names), the slot of the master's shared metrics region this worker counts in."},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_init, Worker_init},
    {Py_tp_dealloc, Worker_dealloc},
    {Py_tp_methods, Worker_methods},
    {Py_tp_getset, Worker_getset},
    {0, NULL},
};

PyType_Spec Worker_Spec = {
    .name = "meltemi._core.Worker",
    .basicsize = sizeof(WorkerObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Worker_slots,
};
