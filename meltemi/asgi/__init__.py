"""ASGI 3 in a meltemi worker: one event loop on its own thread (see runtime.py)."""

from __future__ import annotations

import inspect
from typing import Any


def is_asgi(app: Any) -> bool:
    """Whether `app` looks like an ASGI 3 application: a coroutine function, or an object whose
    __call__ is one (Django's ASGIHandler, Starlette, FastAPI)."""
    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isclass(app) or not callable(app):
        return False
    return inspect.iscoroutinefunction(type(app).__call__)


__all__ = ["is_asgi"]
