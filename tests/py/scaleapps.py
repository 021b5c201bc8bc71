"""ASGI apps for the scale tests (test_asgi_scale.py): idle WebSockets, idle SSE streams, long polls."""

from __future__ import annotations

import asyncio

released: asyncio.Event | None = None  # set by /release: the long polls answer


async def app(scope, receive, send):
    """/ws: accept, then echo until the client goes; /sse: one event, then wait for the client to go;
    /poll: a long poll answered when /release is requested; anything else: a small HTTP answer."""
    global released
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if released is None:
        released = asyncio.Event()
    path = scope["path"]
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")})
    if path == "/sse":
        headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"event: hello\ndata: 1\n\n", "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    if path == "/poll":
        await released.wait()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"released"})
        return
    if path == "/release":
        released.set()
        released = asyncio.Event()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"http ok"})
