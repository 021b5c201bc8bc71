/* _core.metrics_*: the master's side of the shared metrics region (see
 * src/core/loop/metrics.h and meltemi/metrics.py). The region is any
 * writable buffer (the master's shared anonymous mmap); these functions read
 * and reset its slots with the atomic loads and stores the workers' writes
 * pair with, so Python never reads the layout by hand. */
#include "region.h"

#include <string.h>

#include "module.h"

/* The slot `index` of a buffer view, or NULL with an exception. */
static mt_metrics_slot_t *slot_at(Py_buffer *view, Py_ssize_t index) {
    if (index < 0 || (size_t)view->len / sizeof(mt_metrics_slot_t) <= (size_t)index) {
        PyErr_Format(PyExc_IndexError, "metrics slot %zd is outside the region", index);
        return NULL;
    }
    if ((uintptr_t)view->buf % _Alignof(mt_metrics_slot_t)) {
        PyErr_SetString(PyExc_ValueError, "the metrics region is not aligned");
        return NULL;
    }
    return (mt_metrics_slot_t *)view->buf + index;
}

static int get_view(PyObject *region, Py_buffer *view) {
    return PyObject_GetBuffer(region, view, PyBUF_WRITABLE | PyBUF_SIMPLE);
}

mt_metrics_slot_t *mt_metrics_attach(PyObject *spec, Py_buffer *view) {
    PyObject *region, *names;
    Py_ssize_t index;
    if (!PyArg_ParseTuple(spec, "OnO!:metrics", &region, &index, &PyList_Type, &names))
        return NULL;
    if (get_view(region, view) < 0)
        return NULL;
    mt_metrics_slot_t *m = slot_at(view, index);
    Py_ssize_t n = PyList_GET_SIZE(names);
    const char **texts = m ? PyMem_Calloc((size_t)(n ? n : 1), sizeof *texts) : NULL;
    if (m && texts == NULL)
        PyErr_NoMemory();
    for (Py_ssize_t i = 0; texts && i < n; i++) {
        if ((texts[i] = PyUnicode_AsUTF8(PyList_GET_ITEM(names, i))) == NULL) {
            PyMem_Free(texts);
            texts = NULL;
        }
    }
    if (texts == NULL) {
        PyBuffer_Release(view);
        return NULL;
    }
    mt_metrics_slot_name_routes(m, texts, n > INT32_MAX ? INT32_MAX : (int)n);
    PyMem_Free(texts);
    return m;
}

static PyObject *tuple_of(const uint64_t *values, int n) {
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong(values[i]);
        if (v == NULL)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, i, v);
    }
    return t;
}

/* The routes of a slot that counted requests: [(name, status classes, buckets, duration_us), ...]. Several
 * routes may have one name (a template with several methods): the caller adds them up by name. */
static PyObject *read_routes(const mt_metrics_slot_t *m) {
    int nnames = mt_metrics_slot_names(m);
    PyObject *routes = PyList_New(0);
    for (int i = 0; routes && i < nnames; i++) {
        uint64_t status[MT_METRICS_CLASSES], buckets[MT_METRICS_BUCKETS + 1], duration;
        uint64_t total = mt_metrics_route_read(&m->routes[i], status, buckets, &duration);
        for (int b = 0; b <= MT_METRICS_BUCKETS; b++)
            total += buckets[b];
        if (total == 0)
            continue;
        Py_ssize_t len = (Py_ssize_t)strnlen(m->names[i], MT_METRICS_NAME);
        PyObject *item = Py_BuildValue("(NNNK)", PyUnicode_DecodeUTF8(m->names[i], len, "replace"),
                                       tuple_of(status, MT_METRICS_CLASSES), tuple_of(buckets, MT_METRICS_BUCKETS + 1),
                                       (unsigned long long)duration);
        if (item == NULL || PyList_Append(routes, item) < 0)
            Py_CLEAR(routes);
        Py_XDECREF(item);
    }
    return routes;
}

static PyObject *metrics_read(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (!mt_check_positional("metrics_read", nargs, 2, 2))
        return NULL;
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (get_view(args[0], &view) < 0)
        return NULL;
    PyObject *result = NULL;
    const mt_metrics_slot_t *m = slot_at(&view, index);
    if (m) {
        result = Py_BuildValue("{s:N,s:K,s:K,s:K,s:K,s:K,s:K}", "routes", read_routes(m), "bytes_in",
                               (unsigned long long)mt_metrics_get(&m->bytes_in), "bytes_out",
                               (unsigned long long)mt_metrics_get(&m->bytes_out), "connections_accepted",
                               (unsigned long long)mt_metrics_get(&m->connections_accepted), "connections",
                               (unsigned long long)mt_metrics_get(&m->connections), "in_flight",
                               (unsigned long long)mt_metrics_get(&m->in_flight), "queued",
                               (unsigned long long)mt_metrics_get(&m->queued));
    }
    PyBuffer_Release(&view);
    return result;
}

static PyObject *metrics_reset(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (!mt_check_positional("metrics_reset", nargs, 2, 2))
        return NULL;
    Py_ssize_t index = PyLong_AsSsize_t(args[1]);
    if (index == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer view;
    if (get_view(args[0], &view) < 0)
        return NULL;
    mt_metrics_slot_t *m = slot_at(&view, index);
    if (m)
        mt_metrics_slot_reset(m);
    PyBuffer_Release(&view);
    if (m == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *metrics_layout(PyObject *module, PyObject *unused) {
    PyObject *bounds = PyTuple_New(MT_METRICS_BUCKETS);
    for (int i = 0; bounds && i < MT_METRICS_BUCKETS; i++) {
        PyObject *v = PyFloat_FromDouble((double)mt_metrics_bounds_us[i] / 1e6);
        if (v == NULL)
            Py_CLEAR(bounds);
        else
            PyTuple_SET_ITEM(bounds, i, v);
    }
    if (bounds == NULL)
        return NULL;
    return Py_BuildValue("{s:n,s:N}", "slot_size", (Py_ssize_t)sizeof(mt_metrics_slot_t), "bounds", bounds);
}

PyMethodDef mt_metrics_methods[] = {
    {"metrics_layout", (PyCFunction)metrics_layout, METH_NOARGS,
     "metrics_layout()\n--\n\n{'slot_size': bytes per worker slot, 'bounds': the duration histogram's upper "
     "bounds in seconds}."},
    {"metrics_read", (PyCFunction)(void (*)(void))metrics_read, METH_FASTCALL,
     "metrics_read(region, slot, /)\n--\n\nThe counters and gauges of one slot of a metrics region: {'routes': "
     "[(name, status classes [other, 1xx..5xx], duration buckets, duration_us), ...], 'bytes_in', 'bytes_out', "
     "'connections_accepted', 'connections', 'in_flight', 'queued'}."},
    {"metrics_reset", (PyCFunction)(void (*)(void))metrics_reset, METH_FASTCALL,
     "metrics_reset(region, slot, /)\n--\n\nZeroes one slot (that no worker writes any more)."},
    {NULL, NULL, 0, NULL},
};
