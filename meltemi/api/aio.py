"""Where the API's `async def` endpoints and dependencies run: one event loop per worker.

A worker whose API has async endpoints runs one loop on a thread of its own
(`attach()`, at boot: uvloop when installed, per `--loop`). The C router and
the C checks (authentication, CORS, rate limits, path parameters) run on a
handler thread, as for any route. Then:

- A route `on_loop` (an `async def` handler without dependencies or Python
  authentication, see Endpoint.on_loop) is handed to the loop with its
  connection (src/python/asgi_api.c): the handler thread is free at once.
  On the loop (`ApiRuntime`), the body is read without blocking, the
  parameters are bound and validated as for a sync handler, the coroutine is
  awaited, and the response goes out through the ASGI runtime's exchange
  (`_core.AsgiRequest`: the response writer, compression, back-pressure, the
  access log). A worker serves any number of such requests at once, whatever
  `--threads` is.
- Any other async handler or dependency is awaited from its handler thread
  (`run()`): the coroutine goes to the same loop and the handler thread waits
  for it with the GIL released.

meltemi.testing.TestClient serves on the test's thread and attaches no loop;
there a coroutine runs through asgiref's async_to_sync instead, so that
Django's thread-sensitive calls (the ORM under a TestCase's transaction) run
on the test's thread (`thread_sensitive(True)`).
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from _thread import allocate_lock as _allocate_lock
from collections.abc import Coroutine
from typing import Any

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_local = threading.local()


def is_async(func: Any) -> bool:
    """Whether calling func gives a coroutine to await (an `async def`, or an object whose __call__ is one)."""
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 (a class instance with an async __call__)
    return call is not None and not inspect.isfunction(func) and inspect.iscoroutinefunction(call)


_runtime: Any = None  # the ApiRuntime (_loop.py) of this process's worker


def start(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """The process's API loop, started on a daemon thread the first time (`kind`: as --loop)."""
    global _loop
    with _lock:
        if _loop is None:
            from ..asgi.runtime import new_loop

            loop = new_loop(kind)
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=main, name="meltemi-api-loop", daemon=True).start()
            ready.wait()
            _loop = loop
        return _loop


def attach(core: Any, kind: str = "auto", **options: Any) -> Any:
    """Hands the `on_loop` routes of a new worker (`core`, before its start()) to the API loop (_loop.py).
    `options`: the ASGI runtime's timeouts and WebSocket options (meltemi.asgi.runtime.Runtime)."""
    from ._loop import ApiRuntime

    global _runtime
    loop = start(kind)
    _runtime = ApiRuntime(core, loop, **options)
    _runtime.enable()
    return _runtime


def begin_shutdown(code: int = 1001, reason: str = "server shutting down") -> None:
    """A graceful stop began (any thread, a signal handler too): the WebSockets of the API's routes get
    this close."""
    if _runtime is not None:
        _runtime.begin_shutdown(code, reason)


def thread_sensitive(on: bool) -> None:
    """In this thread, run coroutines with asgiref's async_to_sync (see the module's doc)."""
    _local.thread_sensitive = on


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Runs coro on the API loop and returns its result (or raises its exception); the calling thread waits."""
    if getattr(_local, "thread_sensitive", False):
        from asgiref.sync import async_to_sync

        async def wrapper() -> Any:
            return await coro

        return async_to_sync(wrapper)()
    loop = _loop or start()
    # A lock as the signal, not run_coroutine_threadsafe's concurrent Future: its acquire waits in C with the
    # GIL released, and there is no callback chain between two futures (measured: docs/design.md).
    done = _allocate_lock()
    done.acquire()
    box: list[Any] = []

    def finished(task: asyncio.Task) -> None:
        box.append(task)
        done.release()

    def begin() -> None:
        try:
            loop.create_task(coro).add_done_callback(finished)
        except BaseException as exc:  # noqa: BLE001 (reported in the waiting thread)
            box.append(exc)
            done.release()

    loop.call_soon_threadsafe(begin)
    done.acquire()
    outcome = box[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome.result()
