"""ASGI applications written with meltemi.api.websocket.WebSocket (tests/py/test_websocket_object.py)."""

import sys

import msgspec

from meltemi.api.websocket import WebSocket, WebSocketDisconnect


class Move(msgspec.Struct):
    x: int
    y: int


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    ws = WebSocket(scope, receive, send)
    path = ws.path
    if path == "/deny":
        await ws.close()
        return
    if path == "/echo":
        await ws.accept(subprotocol="json" if "json" in ws.subprotocols else None, headers=[("X-Ws", "object")])
        async for message in ws:
            if message == "close":
                await ws.close(4002, "asked")
                return
            if isinstance(message, bytes):
                await ws.send_bytes(message[::-1])
            else:
                await ws.send_text(message.upper())
        sys.stderr.write(f"wsobject-closed {ws.close_code} {ws.close_reason}\n")
        return
    if path == "/json":
        await ws.accept()
        while True:
            try:
                move = await ws.receive_json(Move)
            except WebSocketDisconnect:
                return
            except msgspec.ValidationError as exc:
                await ws.send_json({"error": str(exc)})
                continue
            await ws.send_json(Move(x=move.x + 1, y=move.y + 1), binary=scope["query_string"] == b"binary")
    if path == "/info":
        await ws.accept()
        await ws.send_json(
            {"origin": ws.headers.get("origin"), "query": ws.query_string.decode(), "client": ws.client is not None}
        )
        await ws.close()
        return
