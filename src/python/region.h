/* The metrics region as Python sees it (region.c): the master's reading of
 * the slots, and a worker's attachment to its own. */
#ifndef MT_PY_REGION_H
#define MT_PY_REGION_H

#include "metrics.h"
#include "module.h"

/* From Worker(metrics=(region, slot, names)): takes a writable buffer view
 * of `region` (a shared mmap the master created) into *view, which the
 * caller releases with PyBuffer_Release when the worker is freed, names the
 * slot's API routes after `names` (a list of str, in the API's route order)
 * and returns the slot. NULL with an exception (view then holds nothing). */
mt_metrics_slot_t *mt_metrics_attach(PyObject *spec, Py_buffer *view);

#endif
