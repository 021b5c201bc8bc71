"""The ASGI runtime of a worker: one event loop on a thread of its own.

The C server's I/O thread parses requests and puts them on the worker's
queue; with ASGI no handler thread takes them: the queue's eventfd wakes
this loop (`loop.add_reader`), which takes every queued request at once
(`_core.asgi_take`) and starts one task per request. There is no thread
hand-off per request and no GIL hand-off beyond the I/O thread's wake-up.

`receive()` and `send()` are Python coroutines over a C object per exchange
(`_core.AsgiRequest`, src/python/asgi.c): the body is read without blocking
(the loop waits for the socket with add_reader only when no byte is there
yet), the response goes through the same response writer, compression and
output queue as WSGI. The loop never waits on a socket for writing: what the
socket does not take is queued for the I/O thread, and when the queue is over
its high-water mark (`--write-buffer`) `send()` awaits the I/O thread's
drained signal (the same eventfd).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import Any

from .. import _core, log

_logger = logging.getLogger("meltemi.asgi")

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
DISCONNECT = {"type": "http.disconnect"}
EAGER = sys.version_info >= (3, 12)  # asyncio.Task(eager_start=...) is 3.12's


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A new event loop: `uvloop` (an error if it is not installed), `asyncio`, or `auto` (uvloop when installed)."""
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _wake(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class LifespanError(Exception):
    """The application's lifespan startup or shutdown failed (str(): one line)."""


class Runtime:
    """The loop thread, the lifespan, and the requests of one worker."""

    def __init__(
        self,
        core: Any,
        app: Any,
        *,
        loop: str = "auto",
        lifespan: str = "auto",
        body_timeout: float = 60.0,
        write_timeout: float = 60.0,
        ws_ping_interval: float = 20.0,
        ws_ping_timeout: float = 20.0,
        ws_max_size: int = 16 << 20,
        ws_per_message_deflate: bool = True,
    ):
        self.core = core
        self.app = app
        self.lifespan_mode = lifespan
        self.body_timeout = body_timeout
        self.write_timeout = write_timeout
        self.ws_ping_interval = ws_ping_interval
        self.ws_ping_timeout = ws_ping_timeout
        self.ws_options = (ws_max_size, ws_per_message_deflate)
        # The keepalive sweep: one timer per worker while a WebSocket is open, not one per socket.
        self._sweep: asyncio.TimerHandle | None = None
        self.sweep_every = max(0.02, min(ws_ping_interval, ws_ping_timeout) / 4)
        self.loop = new_loop(loop)
        self.state: dict[str, Any] = {}
        self.drain_waiters: dict[int, asyncio.Future] = {}
        self.tasks: set[asyncio.Task] = set()
        self.websockets: set[WebSocketCycle] = set()
        self.stopping = False
        self.stop_close = (1001, "server shutting down")  # the close a WebSocket accepted while stopping gets
        self._lifespan: Lifespan | None = None
        self._thread = threading.Thread(target=self._run, name="meltemi-asgi-loop", daemon=True)

    @property
    def loop_name(self) -> str:
        return type(self.loop).__module__.split(".")[0]

    # --- the thread ---

    def start(self) -> None:
        """Starts the loop's thread and hands the worker's requests to it (before core.start())."""
        efd = _core.asgi_enable(self.core)
        _core.asgi_ws_configure(self.core, *self.ws_options)
        self._thread.start()
        self.call(self._watch(efd))

    async def _watch(self, efd: int) -> None:
        self.loop.add_reader(efd, self._on_wake)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        """Runs a coroutine on the loop from another thread and returns its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Cancels what is left (after a graceful timeout), stops the loop and joins its thread."""
        if not self._thread.is_alive():
            return

        async def cancel() -> None:
            for task in list(self.tasks):
                task.cancel()

        try:
            self.call(cancel(), timeout)
        except Exception:
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)

    def begin_shutdown(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """A graceful stop began (any thread, a signal handler too): open WebSockets get this close (1001; a
        replaced worker sends 1012 at its drain timeout)."""
        self.loop.call_soon_threadsafe(self._going_away, code, reason)

    def _going_away(self, code: int, reason: str) -> None:
        self.stopping = True
        self.stop_close = (code, reason)
        for ws in list(self.websockets):
            ws.going_away(code, reason)

    # --- WebSockets ---

    def opened(self, ws: WebSocketCycle) -> None:
        """An accepted WebSocket: tracked for a stop and for the keepalive sweep."""
        self.websockets.add(ws)
        if self._sweep is None and self.ws_ping_interval > 0:
            self._sweep = self.loop.call_later(self.sweep_every, self._keepalive)

    def _keepalive(self) -> None:
        """The idle keepalive of every open WebSocket, one C call each (asgi_ws.c, ws_keepalive)."""
        self._sweep = None
        now = self.loop.time()
        interval, timeout = self.ws_ping_interval, self.ws_ping_timeout
        lost = [ws for ws in self.websockets if ws.req.ws_keepalive(now, interval, timeout) == 2]
        for ws in lost:
            ws.lost()
        if self.websockets:
            self._sweep = self.loop.call_later(self.sweep_every, self._keepalive)

    # --- requests ---

    def _on_wake(self) -> None:
        requests, drained, _closed = _core.asgi_take(self.core)
        waiters = self.drain_waiters
        for conn_id in drained:
            fut = waiters.pop(conn_id, None)
            if fut is not None:
                _wake(fut)
        for req in requests:
            self._spawn(req)
        if len(requests) > 1:
            # asgi_take began a batch (it does for two or more): the responses they completed wait for this
            # flush, to be written back to back (src/python/asgi_loop.c, held responses). An eager task has run
            # by now; a scheduled one runs before this callback (call_soon keeps its order). A lone request
            # is written at once, with no flush to call.
            if EAGER:
                self._flush()
            else:
                self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        for req in _core.asgi_flush(self.core):
            self._spawn(req)  # a pipelined request, found when a held response's exchange ended

    def _spawn(self, req: Any) -> None:
        if EAGER:
            # The request runs at once, up to its first await that suspends; an app that answers without
            # one (most) never is scheduled as a task: no call_soon, no loop turn per request.
            task = asyncio.Task(self._serve(req), loop=self.loop, eager_start=True)
            if task.done():
                return
        else:
            task = self.loop.create_task(self._serve(req))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _serve(self, req: Any) -> None:
        app = self.app
        while req is not None:
            scope = req.scope
            if scope is None:  # a WebSocket handshake refused in C (400/426)
                req = req.end(False)
                continue
            scope["state"] = self.state.copy()
            cycle = WebSocketCycle(self, req) if req.websocket else Cycle(self, req)
            failed = False
            try:
                await app(scope, cycle.receive, cycle.send)
            except _core.RequestBodyError:
                failed = True  # the answer is the reason (400/408/413), given by end()
            except BaseException as exc:
                failed = True
                if not req.failed:
                    log.application_error(f"Error handling request {scope.get('method', 'GET')} {req.uri}", exc)
                if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit):
                    cycle.close()
                    req.end(True)
                    raise
            else:
                if req.websocket:
                    cycle.returned()
                if not req.complete and not req.failed:
                    failed = True
                    # After http.disconnect there is nobody to answer: returning then is how a
                    # streaming app (SSE, a long poll) ends, not an error.
                    if req.websocket or not cycle.disconnected:
                        what = "completing" if req.started else "starting"
                        _logger.error(
                            "Error handling request %s %s: the ASGI application returned without %s its response",
                            scope.get("method", "GET"),
                            req.uri,
                            what,
                        )
            cycle.close()
            req = req.end(failed)

    # --- lifespan ---

    def startup(self, timeout: float | None = None) -> None:
        """Runs the lifespan startup (per --lifespan); raises LifespanError."""
        if self.lifespan_mode == "off":
            return
        self._lifespan = Lifespan(self.app, self.state, self.lifespan_mode)
        self.call(self._lifespan.startup(), timeout)

    def shutdown(self, timeout: float | None = None) -> None:
        """Runs the lifespan shutdown, if its startup ran; logs a failure."""
        if self._lifespan is None:
            return
        try:
            self.call(self._lifespan.shutdown(), timeout)
        except LifespanError as exc:
            _logger.error("%s", exc)
        except Exception:
            _logger.exception("ASGI lifespan shutdown did not complete")


class Cycle:
    """receive() and send() of one HTTP exchange."""

    __slots__ = ("rt", "req", "body_done", "disconnected", "watching", "waiter")

    def __init__(self, rt: Runtime, req: Any):
        self.rt = rt
        self.req = req
        self.body_done = False
        self.disconnected = False
        self.watching = -1  # the fd watched for the client's close, or -1
        self.waiter: asyncio.Future | None = None  # a receive() waiting for http.disconnect

    async def receive(self) -> dict[str, Any]:
        req = self.req
        if not self.body_done:
            while True:
                try:
                    got = req.read()
                except _core.ClientDisconnected:
                    self.body_done = self.disconnected = True
                    return DISCONNECT
                if got is not None:
                    data, more = got
                    if not more:
                        self.body_done = True
                    return {"type": "http.request", "body": data, "more_body": more}
                await self._readable()
        # The body was read: what comes next is the client going away (or the
        # response ending, after which the exchange is over for the app too).
        if self.disconnected or req.complete or req.failed:
            return DISCONNECT
        loop = self.rt.loop
        if self.watching < 0:
            self.watching = req.fileno()
            loop.add_reader(self.watching, self._on_readable)
        self.waiter = loop.create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None
        return DISCONNECT

    async def _readable(self) -> None:
        loop = self.rt.loop
        fd = self.req.fileno()
        fut = loop.create_future()
        loop.add_reader(fd, _wake, fut)
        timer = loop.call_later(self.rt.body_timeout, _wake, fut)
        try:
            await fut
        finally:
            loop.remove_reader(fd)
            timer.cancel()
        if loop.time() >= timer.when():
            self.req.body_timeout()  # raises RequestBodyError (408)

    def _on_readable(self) -> None:
        closed = self.req.peek()
        if closed is None:
            return
        # Closed, or the client pipelined its next request: either way there
        # is nothing more to watch (the bytes stay for the next exchange).
        self._unwatch()
        if closed:
            self.disconnected = True
            if self.waiter is not None:
                _wake(self.waiter)

    def _unwatch(self) -> None:
        if self.watching >= 0:
            self.rt.loop.remove_reader(self.watching)
            self.watching = -1

    def _response_done(self) -> None:
        self._unwatch()
        if self.waiter is not None:
            _wake(self.waiter)

    def close(self) -> None:
        self._unwatch()

    async def send(self, message: dict[str, Any]) -> None:
        req = self.req
        kind = message.get("type")
        if kind == "http.response.body":
            if req.body(message.get("body", b""), message.get("more_body", False)):
                await self._drained()
            if req.complete:
                self._response_done()
        elif kind == "http.response.start":
            if "status" not in message:
                raise TypeError("ASGI: http.response.start without 'status'")
            req.start(message["status"], message.get("headers", ()), message.get("trailers", False))
        elif kind == "http.response.trailers":
            req.trailers(message.get("headers", ()), message.get("more_trailers", False))
            if req.complete:
                self._response_done()
        elif kind == "http.response.pathsend":
            req.pathsend(message["path"])
            if req.complete:
                self._response_done()
        else:
            raise RuntimeError(f"ASGI: unexpected message {kind!r} for an HTTP request")

    async def _drained(self) -> None:
        """Awaits the I/O thread's signal that the output queue went under its low mark."""
        rt = self.rt
        req = self.req
        loop = rt.loop
        while True:
            fut = loop.create_future()
            rt.drain_waiters[req.conn_id] = fut
            timer = loop.call_later(rt.write_timeout, _wake, fut)
            try:
                await fut
            finally:
                timer.cancel()
                rt.drain_waiters.pop(req.conn_id, None)
            if loop.time() >= timer.when():
                req.write_timeout()
                raise _core.ClientDisconnected("the client did not read the response in time")
            if req.failed or not req.output_full():
                return


class WebSocketCycle:
    """receive() and send() of one WebSocket (the websocket scope, with the denial-response extension)."""

    __slots__ = (
        "rt",
        "req",
        "connected",
        "accepted",
        "closed",
        "close_code",
        "close_reason",
        "waiter",
        "reading",
        "on_readable",
    )

    def __init__(self, rt: Runtime, req: Any):
        self.rt = rt
        self.req = req
        self.connected = False  # websocket.connect was delivered
        self.accepted = False
        self.closed = False  # a close went out or came in: receive() gives websocket.disconnect
        self.close_code = 1000
        self.close_reason = ""
        self.waiter: asyncio.Future | None = None  # a receive() waiting for the socket
        self.reading = -1  # the fd watched with add_reader, or -1
        self.on_readable = self._on_readable

    async def receive(self) -> dict[str, Any]:
        if not self.connected:
            self.connected = True
            return {"type": "websocket.connect"}
        req = self.req
        may_read = False  # the buffer first; the socket once the loop saw it readable
        while not (self.closed or not self.accepted or req.failed):
            got = req.ws_receive(may_read)
            if got is None:
                # Wait for the socket. The reader stays registered between messages (an echo costs no
                # epoll_ctl); it is removed when the socket is readable with nobody waiting (_on_readable)
                # and when the WebSocket ends (close()).
                if self.reading < 0:
                    self.reading = req.fileno()
                    self.rt.loop.add_reader(self.reading, self.on_readable)
                self.waiter = fut = self.rt.loop.create_future()
                try:
                    await fut
                finally:
                    self.waiter = None
                may_read = True
            elif type(got) is dict:
                return got
            else:
                self._closed(*got)
        return {"type": "websocket.disconnect", "code": self.close_code, "reason": self.close_reason}

    def _on_readable(self) -> None:
        fut = self.waiter
        if fut is None:
            self._unwatch()
        elif not fut.done():
            fut.set_result(None)

    def _unwatch(self) -> None:
        if self.reading >= 0:
            self.rt.loop.remove_reader(self.reading)
            self.reading = -1

    def _closed(self, code: int, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.close_reason = reason
            self.rt.websockets.discard(self)

    def going_away(self, code: int = 1001, reason: str = "server shutting down") -> None:
        """The worker stops: close 1001 (1012 for a replaced worker), and a waiting receive() gets the
        disconnect."""
        if self.accepted and not self.closed and not self.req.failed:
            try:
                self.req.ws_close(code, reason)
            except Exception:
                pass
        self._closed(code, reason)
        if self.waiter is not None:
            _wake(self.waiter)

    def lost(self) -> None:
        """The client did not answer the keepalive ping: the connection failed (1006, as if dropped)."""
        self._closed(1006, "")
        if self.waiter is not None:
            _wake(self.waiter)

    async def send(self, message: dict[str, Any]) -> None:
        full = self.req.ws_send_message(message) if self.accepted else NotImplemented
        if full is False:
            return
        if full is True:
            await Cycle._drained(self)  # type: ignore[arg-type]
            return
        await self._send(message)

    async def _send(self, message: Any) -> None:
        """Any message but a websocket.send dict after the accept (ws_send_message takes those)."""
        req = self.req
        kind = message.get("type")
        if kind == "websocket.send":
            if self.closed:
                raise _core.ClientDisconnected("the WebSocket is closed")
            data = message.get("text")
            if data is None:
                data = message.get("bytes")
            if data is None:
                raise TypeError("ASGI: websocket.send needs 'text' or 'bytes'")
            if req.ws_send(data):
                await Cycle._drained(self)  # type: ignore[arg-type]
        elif kind == "websocket.accept":
            req.ws_accept(message.get("subprotocol"), message.get("headers", ()))
            self.accepted = True
            self.rt.opened(self)
            if self.rt.stopping:
                self.going_away(*self.rt.stop_close)
        elif kind == "websocket.close":
            if not self.accepted:
                req.deny()
            elif not self.closed:
                req.ws_close(int(message.get("code", 1000)), message.get("reason") or "")
            self._closed(int(message.get("code", 1000)), message.get("reason") or "")
        elif kind == "websocket.http.response.start":
            if self.accepted:
                raise RuntimeError("ASGI: websocket.http.response.start after websocket.accept")
            req.start(message["status"], message.get("headers", ()))
        elif kind == "websocket.http.response.body":
            if req.body(message.get("body", b""), message.get("more_body", False)):
                await Cycle._drained(self)  # type: ignore[arg-type]
        else:
            raise RuntimeError(f"ASGI: unexpected message {kind!r} for a WebSocket")

    def returned(self) -> None:
        """The application returned: an accepted socket still open is closed (1000); one never accepted is
        refused (403)."""
        req = self.req
        if not self.accepted and not req.started:
            req.deny()
        elif self.accepted and not self.closed and not req.failed:
            req.ws_close(1000, "")
        self._closed(1000, "")

    def close(self) -> None:
        self._unwatch()
        self.rt.websockets.discard(self)
        if self.accepted and not self.closed and not self.req.failed:
            try:
                self.req.ws_close(1011, "application error")
            except Exception:
                pass


class Lifespan:
    """The lifespan protocol: startup at boot, shutdown after the drain."""

    def __init__(self, app: Any, state: dict[str, Any], mode: str):
        self.app = app
        self.state = state
        self.mode = mode
        self.messages: asyncio.Queue | None = None
        self.started: asyncio.Future | None = None
        self.stopped: asyncio.Future | None = None
        self.task: asyncio.Task | None = None
        self.supported = True

    async def startup(self) -> None:
        loop = asyncio.get_running_loop()
        self.messages = asyncio.Queue()
        self.started = loop.create_future()
        self.stopped = loop.create_future()
        self.messages.put_nowait({"type": "lifespan.startup"})
        self.task = loop.create_task(self._main())
        await self.started

    async def _main(self) -> None:
        scope = {"type": "lifespan", "asgi": dict(ASGI_VERSION), "state": self.state}
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self.started.done():
                if self.mode == "auto":
                    self.supported = False
                    _logger.info("ASGI lifespan not supported by the application (%s: %s)", type(exc).__name__, exc)
                    self.started.set_result(None)
                else:
                    self.started.set_exception(LifespanError(f"ASGI lifespan startup failed: {_reason(exc)}"))
            elif not self.stopped.done():
                self.stopped.set_exception(LifespanError(f"ASGI lifespan shutdown failed: {_reason(exc)}"))
            return
        if not self.started.done():
            if self.mode == "auto":
                self.supported = False
                self.started.set_result(None)
            else:
                self.started.set_exception(LifespanError("ASGI lifespan: the application returned before startup"))
        if not self.stopped.done():
            self.stopped.set_result(None)

    async def _receive(self) -> dict[str, Any]:
        return await self.messages.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            if not self.started.done():
                self.started.set_result(None)
        elif kind == "lifespan.startup.failed":
            if not self.started.done():
                text = message.get("message") or "no message"
                self.started.set_exception(LifespanError(f"ASGI lifespan startup failed: {text}"))
        elif kind == "lifespan.shutdown.complete":
            if not self.stopped.done():
                self.stopped.set_result(None)
        elif kind == "lifespan.shutdown.failed":
            if not self.stopped.done():
                text = message.get("message") or "no message"
                self.stopped.set_exception(LifespanError(f"ASGI lifespan shutdown failed: {text}"))
        else:
            raise RuntimeError(f"ASGI: unexpected message {kind!r} in the lifespan protocol")

    async def shutdown(self) -> None:
        if not self.supported or self.task is None or self.task.done() and self.stopped.done():
            if self.stopped is not None and self.stopped.done():
                self.stopped.result()
            return
        self.messages.put_nowait({"type": "lifespan.shutdown"})
        await self.stopped


def _reason(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
