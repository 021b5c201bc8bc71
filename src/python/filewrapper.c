/* wsgi.file_wrapper: marks a file-like object so the response is sent with
 * sendfile(2) when it is a regular file (response.c), and iterates it in
 * blocks otherwise. close() closes the file-like object. */
#include "filewrapper.h"

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
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->filelike);
    type->tp_free((PyObject *)self);
    Py_DECREF(type); /* a heap type's instances hold a reference to it */
}

static int FileWrapper_traverse(FileWrapperObject *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
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
    if (PyObject_GetOptionalAttr(self->filelike, mt_state_of((PyObject *)self)->str.close, &close) < 0)
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

static PyType_Slot FileWrapper_slots[] = {
    {Py_tp_doc, "FileWrapper(filelike, blksize=65536)\n--\n\nwsgi.file_wrapper: sends a file with sendfile(2)."},
    {Py_tp_new, FileWrapper_new},
    {Py_tp_dealloc, FileWrapper_dealloc},
    {Py_tp_traverse, FileWrapper_traverse},
    {Py_tp_iter, PyObject_SelfIter},
    {Py_tp_iternext, FileWrapper_iternext},
    {Py_tp_methods, FileWrapper_methods},
    {Py_tp_members, FileWrapper_members},
    {0, NULL},
};

PyType_Spec FileWrapper_Spec = {
    .name = "meltemi._core.FileWrapper",
    .basicsize = sizeof(FileWrapperObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_IMMUTABLETYPE,
    .slots = FileWrapper_slots,
};
