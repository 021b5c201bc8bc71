"""ASGI applications for tests/py/test_asgi*.py (served by real meltemi processes)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import types
from urllib.parse import parse_qs

# Where the apps report what they saw (a directory given by the test in the environment).
REPORT_DIR = os.environ.get("ASGI_REPORT_DIR", "/tmp")


def report(name: str, value) -> None:
    path = os.path.join(REPORT_DIR, name)
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.replace(path + ".tmp", path)


async def lifespan(scope, receive, send, on_startup=None):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if on_startup:
                on_startup(scope["state"])
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            report("shutdown", {"pid": os.getpid(), "time": time.time()})
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive):
    body, calls = b"", 0
    while True:
        message = await receive()
        calls += 1
        assert message["type"] == "http.request", message
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body, calls


async def respond(send, status=200, body=b"", headers=None, content_type=b"text/plain"):
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _runtime_frames() -> list[str]:
    """The functions of meltemi's ASGI runtime (meltemi/asgi/runtime.py) on the caller's stack, innermost first."""
    names = []
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename.endswith(os.path.join("asgi", "runtime.py")):
            names.append(frame.f_code.co_name)
        frame = frame.f_back
    return names


def _query(scope) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}


async def app(scope, receive, send):
    """Every case, by path."""
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send, lambda state: state.update(booted=os.getpid()))
        return
    path = scope["path"]
    q = _query(scope)
    if path.startswith("/scope"):
        body, calls = await read_body(receive)
        shown = {k: v for k, v in scope.items() if k not in ("headers",)}
        shown = {k: (v.decode("latin-1") if isinstance(v, bytes) else v) for k, v in shown.items()}
        shown["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
        shown["body"] = body.decode("latin-1")
        shown["body_length"] = len(body)
        shown["receive_calls"] = calls
        await respond(send, body=json.dumps(shown).encode(), content_type=b"application/json")
    elif path == "/hello":
        await respond(send, body=b"Hello, world!")
    elif path == "/driver":
        # What runs the request: before its first suspending await (an eager task runs inside the
        # runtime's call that spawned it) and after it (the loop steps the task).
        before = _runtime_frames()
        await asyncio.sleep(0)
        after = _runtime_frames()
        shown = {"python": list(sys.version_info[:2]), "before_await": before, "after_await": after}
        await respond(send, body=json.dumps(shown).encode(), content_type=b"application/json")
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        for i in range(int(q.get("n", "5"))):
            await send({"type": "http.response.body", "body": b"part %d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    elif path == "/disconnect":
        # Reads the body, then waits for the client to go away.
        await read_body(receive)
        message = await receive()
        report("disconnect", {"type": message["type"], "time": time.time()})
    elif path == "/disconnect-busy":
        # Like Starlette's streaming: one task listens for the disconnect while the app sleeps.
        await read_body(receive)
        listener = asyncio.ensure_future(receive())
        sleeper = asyncio.ensure_future(asyncio.sleep(30))
        done, _ = await asyncio.wait({listener, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        sleeper.cancel()
        if listener in done:
            report("disconnect", {"type": listener.result()["type"], "time": time.time()})
    elif path == "/big":
        # Streams n chunks of 64 KiB, reporting how far it got (back-pressure pauses send()).
        total = int(q.get("n", "256"))
        chunk = b"x" * 65536
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]}
        )
        for i in range(total):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            report("progress", {"sent": i + 1, "time": time.time()})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/raise-before":
        raise ValueError("boom before start")
    elif path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom after start")
    elif path == "/raise-in-receive":
        await receive()
        raise ValueError("boom after receive")
    elif path == "/body-before-start":
        await send({"type": "http.response.body", "body": b"oops"})
    elif path == "/two-starts":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/bad-header":
        await send({"type": "http.response.start", "status": 200, "headers": [("x-str", "not bytes")]})
    elif path == "/bad-status":
        await send({"type": "http.response.start", "status": "200", "headers": []})
    elif path == "/no-response":
        return
    elif path == "/half-response":
        await send({"type": "http.response.start", "status": 200, "headers": []})
    elif path == "/pathsend":
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/octet-stream")]}
        )
        await send({"type": "http.response.pathsend", "path": q["path"]})
    elif path == "/json":
        big = json.dumps({"items": [{"id": i, "name": f"item {i}"} for i in range(200)]}).encode()
        await respond(send, body=big, content_type=b"application/json")
    elif path == "/after-disconnect-send":
        await read_body(receive)
        message = await receive()
        error = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"late" * 100000, "more_body": True})
            await send({"type": "http.response.body", "body": b"late" * 100000, "more_body": True})
        except OSError as exc:
            error = type(exc).__name__
        report("late-send", {"message": message["type"], "error": error})
    elif path == "/echo":
        await respond(send, body=scope["query_string"])
    elif path == "/block":
        time.sleep(float(q.get("s", "0.3")))  # blocks the loop: the requests behind it queue up, one batch
        await respond(send, body=b"blocked")
    elif path == "/spin":
        end = time.perf_counter() + float(q.get("ms", "100")) / 1000
        while time.perf_counter() < end:  # the loop's CPU, as a slow handler takes it
            pass
        await respond(send, body=b"spun")
    elif path == "/slow":
        await asyncio.sleep(float(q.get("s", "1")))
        await respond(send, body=b"slept")
    else:
        await respond(send, 404, b"not found")


async def lifespan_failed(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "the database is not there"})
        return
    await respond(send, body=b"never")


async def lifespan_raises(scope, receive, send):
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")
    await respond(send, body=b"served without lifespan")


async def plain(scope, receive, send):
    """A coroutine function that is not lifespan-aware beyond raising (as many are)."""
    assert scope["type"] == "http"
    await respond(send, body=b"plain")


class CallableApp:
    """An object whose __call__ is a coroutine: detected as ASGI too."""

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            await lifespan(scope, receive, send)
            return
        await respond(send, body=b"callable object")


callable_app = CallableApp()


async def ws_app(scope, receive, send):
    """WebSocket cases, by path: /echo, /deny, /http-deny, /close-code, /server-close, /raise."""
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    if scope["type"] == "http":
        await respond(send, body=b"http ok")
        return
    assert scope["type"] == "websocket"
    path = scope["path"]
    message = await receive()
    assert message["type"] == "websocket.connect"
    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/http-deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no token"})
        return
    if path == "/raise-before-accept":
        raise ValueError("websocket boom")
    protocol = "chat" if "chat" in scope["subprotocols"] else None
    await send({"type": "websocket.accept", "subprotocol": protocol, "headers": [(b"x-accepted", b"yes")]})
    if path == "/server-close":
        await send({"type": "websocket.close", "code": 4001, "reason": "bye"})
        return
    if path == "/raise":
        raise ValueError("websocket boom after accept")
    if path == "/flood":
        # 64 KiB messages to a client that does not read: send() must pause.
        for i in range(2000):
            await send({"type": "websocket.send", "bytes": b"y" * 65536})
            report("ws-progress", {"sent": i + 1})
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/mapping":
        # websocket.send as a read-only mapping (not a dict), and with "text": None next to "bytes".
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send(types.MappingProxyType({"type": "websocket.send", "text": message.get("text")}))
            await send({"type": "websocket.send", "text": None, "bytes": b"bytes too"})
    if path == "/scope":
        shown = {k: v for k, v in scope.items() if k not in ("headers", "state", "raw_path", "query_string")}
        await send({"type": "websocket.send", "text": json.dumps(shown)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            report("ws-disconnect", {"code": message["code"], "time": time.time()})
            return
        if "text" in message and message["text"] is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})
