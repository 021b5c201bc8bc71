"""The typed API's `on_loop` routes on the worker's loop (see aio.py): ApiRuntime, the ASGI runtime's
wake-up, task set and drain waiters serving API routes handed over by src/python/asgi_api.c."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

from .. import _core, log
from ..asgi.runtime import Cycle, Runtime, WebSocketCycle

# How long after a request the async ORM's connections are looked at (ApiRuntime._sweep_database).
DATABASE_SWEEP_SECONDS = 1.0


class ApiRuntime(Runtime):
    """The API's side of the ASGI runtime: the same wake-up, task set and drain waiters, on the API loop;
    a request is an API route's (AsgiRequest.api_args), not an ASGI scope.

    The async ORM (`aget`, `sync_to_async`) runs its queries on asgiref's one sync thread, whose database
    connections no request's end reaches (Django's own ASGI handler sends request_finished through that
    thread, a hop per request). So at most once a second after requests ran, Django's
    close_old_connections runs there: a connection that failed, or that is past CONN_MAX_AGE, is closed
    within a second instead of never; with CONN_MAX_AGE 0 the thread reconnects at most once a second."""

    def __init__(self, core: Any, loop: asyncio.AbstractEventLoop, **options: Any):
        super().__init__(core, None, **options)
        self.loop.close()  # Runtime made one: the API loop is the process's
        self.loop = loop
        self._database_sweep: asyncio.TimerHandle | None = None
        self._database_task: asyncio.Task | None = None

    def enable(self) -> None:
        efd = _core.api_loop_enable(self.core)
        _core.asgi_ws_configure(self.core, *self.ws_options)
        ready = threading.Event()

        def watch() -> None:
            self.loop.add_reader(efd, self._on_wake)
            ready.set()

        self.loop.call_soon_threadsafe(watch)
        ready.wait()

    async def _serve(self, req: Any) -> None:
        failed = False
        try:
            args = req.api_args()
            if args[0].websocket:
                await self._serve_websocket(req, args)
                return
            got = req.read()
            if got is None or got[1]:
                body = await self._body(req, got)
            else:
                body = got[0]
            status, headers, chunks = await args[0].serve_loop(body, *args[1:])
            if chunks.__class__ is list:
                req.respond(status, headers, chunks)
            else:
                await self._stream(req, status, headers, chunks)
        except (_core.RequestBodyError, _core.ClientDisconnected):
            failed = True  # end() answers the reason (400/408/413), or there is nobody to answer
        except BaseException as exc:
            failed = True
            if not req.failed:
                log.application_error(f"Error handling request {req.uri}", exc)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                req.end(True)
                raise
        req.end(failed)
        if self._database_sweep is None and "django.db" in sys.modules:
            self._database_sweep = self.loop.call_later(DATABASE_SWEEP_SECONDS, self._sweep_database)

    def _sweep_database(self) -> None:
        self._database_sweep = None
        if self._database_task is None or self._database_task.done():
            self._database_task = self.loop.create_task(self._close_old_connections())

    @staticmethod
    async def _close_old_connections() -> None:
        from asgiref.sync import sync_to_async
        from django.db import close_old_connections

        try:
            await sync_to_async(close_old_connections, thread_sensitive=True)()
        except Exception as exc:  # noqa: BLE001 (logged; the next sweep tries again)
            log.application_error("Error closing the async ORM's database connections", exc)

    async def _body(self, req: Any, got: Any) -> bytes:
        """The whole request body, read as it arrives (the loop waits for the socket, up to --body-timeout)."""
        parts = []
        cycle = None
        while True:
            if got is None:
                cycle = cycle or Cycle(self, req)
                await cycle._readable()
            else:
                parts.append(got[0])
                if not got[1]:
                    return b"".join(parts)
            got = req.read()

    async def _stream(self, req: Any, status: str, headers: list, chunks: Any) -> None:
        req.respond(status, headers)
        cycle = None
        try:
            for chunk in chunks:
                if chunk and req.body(chunk, True):
                    cycle = cycle or Cycle(self, req)
                    await cycle._drained()
            req.body(b"", False)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    async def _serve_websocket(self, req: Any, args: tuple) -> None:
        """A WebSocket route: its handshake checked in C (a refusal answered, scope None), its parameters
        here (an HTTP answer instead of the upgrade), then the handler over a WebSocketCycle, as an ASGI
        application's WebSocket (close 1001 when the worker stops)."""
        from .websocket import WebSocket, WebSocketDisconnect

        scope = req.scope
        if scope is None:  # a handshake C refused (400/426)
            req.end(False)
            return
        endpoint = args[0]
        if not req.websocket:
            req.respond(
                "426 Upgrade Required",
                [("Content-Type", "application/json"), ("Upgrade", "websocket")],
                [b'{"detail":"a WebSocket route: upgrade to websocket"}'],
            )
            req.end(False)
            return
        cycle = WebSocketCycle(self, req)
        ws = WebSocket(scope, cycle.receive, cycle.send)
        kwargs, refusal = endpoint.websocket_call(ws, *args[1:])
        if refusal is not None:
            req.respond(*refusal)  # before any 101: the client sees the HTTP answer
            req.end(False)
            return
        failed = False
        try:
            await endpoint.sig.func(**kwargs)
        except WebSocketDisconnect:
            pass  # the client went away: the handler had nothing more to do
        except BaseException as exc:
            failed = True
            if not req.failed:
                log.application_error(f"Error handling WebSocket {req.uri}", exc)
            if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                cycle.close()
                req.end(True)
                raise
        else:
            cycle.returned()
        cycle.close()
        req.end(failed)
