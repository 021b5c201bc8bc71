"""meltemi._core is a multi-phase module (PEP 489) whose Python objects live in
module state, with heap types: a second module object made from the same spec
(as a subinterpreter would make) has its own types and strings and works on
its own."""

from __future__ import annotations

import importlib.util
import io

import meltemi._core as core

Py_TPFLAGS_HEAPTYPE = 1 << 9


def test_public_types_are_heap_types():
    for cls in (core.Worker, core.FileWrapper):
        assert cls.__flags__ & Py_TPFLAGS_HEAPTYPE, cls


def test_a_second_module_object_has_its_own_state():
    spec = importlib.util.find_spec("meltemi._core")
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    assert other is not core
    assert other.Worker is not core.Worker and other.FileWrapper is not core.FileWrapper
    assert other.ClientDisconnected is not core.ClientDisconnected
    # Its functions and types reach their own module's state (interned strings, exceptions).
    assert other.parse_query("a=1&b&a=2") == core.parse_query("a=1&b&a=2") == {"a": ["1", "2"], "b": ""}
    wrapper = other.FileWrapper(io.BytesIO(b"x" * 10), 4)
    assert list(wrapper) == [b"xxxx", b"xxxx", b"xx"]
    wrapper.close()
    del other, wrapper
