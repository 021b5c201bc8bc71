/* wsgi.file_wrapper: marks a file-like object so the response is sent with
 * sendfile(2) when it is a regular file (response.c), and iterates it in
 * blocks otherwise. close() closes the file-like object. */
#include "glue.h"

static PyObject *FileWrapper_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    static char *keywords[] = {"filelike", "blksize", NULL};
    PyObject *filelike;
    Py_ssize_t blksize = 65536;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|n:FileWrapper", keywords, &filelike, &blksize))
        return NULL;
    if (blksize <= 0) {
        PyErr_SetString(PyExc_ValueError, "blksize must be positive");
        return NULL;
    }
    FileWrapperObject *self = (FileWrapperObject *)type->tp_alloc(type, 0);
    if (self) {
        Py_INCREF(filelike);
        self->filelike = filelike;
        self->blksize = blksize;
    }
    return (PyObject *)self;
}

static void FileWrapper_dealloc(FileWrapperObject *self) {
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->filelike);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int FileWrapper_traverse(FileWrapperObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->filelike);
    return 0;
}

static PyObject *FileWrapper_iternext(FileWrapperObject *self) {
    PyObject *data = PyObject_CallMethod(self->filelike, "read", "n", self->blksize);
    if (data == NULL)
        return NULL;
    if (!PyBytes_Check(data)) {
        PyErr_Format(PyExc_TypeError, "file_wrapper: read() returned %.100s, not bytes", Py_TYPE(data)->tp_name);
        Py_DECREF(data);
        return NULL;
    }
    if (PyBytes_GET_SIZE(data) == 0) {
        Py_DECREF(data);
        return NULL;
    }
    return data;
}

static PyObject *FileWrapper_close(FileWrapperObject *self, PyObject *unused) {
    PyObject *close = NULL;
    if (PyObject_GetOptionalAttr(self->filelike, mt_str.close, &close) < 0)
        return NULL;
    if (close == NULL)
        Py_RETURN_NONE;
    PyObject *result = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return result;
}

static PyMethodDef FileWrapper_methods[] = {
    {"close", (PyCFunction)FileWrapper_close, METH_NOARGS, "close()\n--\n\nCloses the wrapped file-like object."},
    {NULL},
};

static PyMemberDef FileWrapper_members[] = {
    {"filelike", T_OBJECT, offsetof(FileWrapperObject, filelike), READONLY, "the wrapped file-like object"},
    {"blksize", T_PYSSIZET, offsetof(FileWrapperObject, blksize), READONLY, "the block size for iteration"},
    {NULL},
};

PyTypeObject FileWrapper_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "meltemi._core.FileWrapper",
    .tp_basicsize = sizeof(FileWrapperObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "FileWrapper(filelike, blksize=65536)\n--\n\nwsgi.file_wrapper: sends a file with sendfile(2).",
    .tp_new = FileWrapper_new,
    .tp_dealloc = (destructor)FileWrapper_dealloc,
    .tp_traverse = (traverseproc)FileWrapper_traverse,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)FileWrapper_iternext,
    .tp_methods = FileWrapper_methods,
    .tp_members = FileWrapper_members,
};
