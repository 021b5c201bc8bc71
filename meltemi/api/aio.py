"""Where the API's `async def` endpoints and dependencies run.

A worker whose API has async endpoints starts one event loop on a thread of
its own (`start()`, at boot). The C router, the C checks (authentication,
CORS, rate limits, path parameters) and the reading and validation of the
parameters are the same as for a sync endpoint and happen on the handler
thread; the coroutine is then handed to the loop and the handler thread
waits for its result with the GIL released (`run()`), and writes the
response as for a sync endpoint.

This first version keeps a handler thread per async request in flight: the
number of async requests a worker serves at once is `--threads`, as for
sync ones. What it gives is the loop: `await` on asyncio libraries, Django's
async ORM (`aget`, `acount`, ...) and sync_to_async inside the handler.

meltemi.testing.TestClient serves on the test's thread; there a coroutine
runs through asgiref's async_to_sync instead, so that Django's
thread-sensitive calls (the ORM under a TestCase's transaction) run on the
test's thread (`thread_sensitive(True)`).
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


def start() -> asyncio.AbstractEventLoop:
    """The process's API loop, started on a daemon thread the first time."""
    global _loop
    with _lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            threading.Thread(target=main, name="meltemi-api-loop", daemon=True).start()
            ready.wait()
            _loop = loop
        return _loop


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
