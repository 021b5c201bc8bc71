/* wsgi.file_wrapper (filewrapper.c). */
#ifndef MT_PY_FILEWRAPPER_H
#define MT_PY_FILEWRAPPER_H

#include "module.h"

typedef struct FileWrapperObject {
    PyObject_HEAD PyObject *filelike;
    Py_ssize_t blksize;
} FileWrapperObject;

#endif
