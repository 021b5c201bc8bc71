"""A small WebSocket object over the ASGI `websocket` scope, for handlers that would rather not speak ASGI
messages:

    from meltemi.api.websocket import WebSocket, WebSocketDisconnect

    async def app(scope, receive, send):
        ws = WebSocket(scope, receive, send)
        await ws.accept(subprotocol="chat" if "chat" in ws.subprotocols else None)
        async for message in ws:            # str or bytes, until the client closes
            await ws.send_json({"got": message})

JSON goes through msgspec (`receive_json(type=...)` validates against a type). It is the object the typed API's
WebSocket routes (`@api.websocket`) hand their handlers (docs/websockets.md); it wraps any ASGI application's
(scope, receive, send) too, on meltemi's loop or another server's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import msgspec

_encode = msgspec.json.Encoder().encode

__all__ = ["WebSocket", "WebSocketDisconnect"]


class WebSocketDisconnect(Exception):
    """The client closed the WebSocket (or the connection was lost: code 1006; the server stopped: 1001/1012)."""

    def __init__(self, code: int = 1000, reason: str = ""):
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WebSocket:
    """One WebSocket: accept(), receive_*(), send_*(), close(), and `async for` over the messages."""

    __slots__ = ("scope", "_receive", "_send", "connected", "accepted", "closed", "close_code", "close_reason")

    def __init__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ):
        if scope.get("type") != "websocket":
            raise ValueError(f"WebSocket needs a websocket scope, not {scope.get('type')!r}")
        self.scope = scope
        self._receive = receive
        self._send = send
        self.connected = False  # websocket.connect was received
        self.accepted = False
        self.closed = False  # a close went out or came in
        self.close_code: int | None = None  # the client's, once it closed
        self.close_reason = ""

    # --- what the client sent with the handshake ---

    @property
    def path(self) -> str:
        return self.scope["path"]

    @property
    def query_string(self) -> bytes:
        return self.scope.get("query_string", b"")

    @property
    def subprotocols(self) -> list[str]:
        return list(self.scope.get("subprotocols", ()))

    @property
    def headers(self) -> dict[str, str]:
        """The request's fields, names lowercased; a repeated field's values joined with ', '."""
        fields: dict[str, str] = {}
        for name, value in self.scope.get("headers", ()):
            key = name.decode("latin-1")
            text = value.decode("latin-1")
            fields[key] = f"{fields[key]}, {text}" if key in fields else text
        return fields

    @property
    def client(self) -> tuple[str, int] | None:
        client = self.scope.get("client")
        return tuple(client) if client else None  # type: ignore[return-value]

    # --- the handshake ---

    async def _connect(self) -> None:
        if not self.connected:
            message = await self._receive()
            if message["type"] != "websocket.connect":
                raise RuntimeError(f"expected websocket.connect, got {message['type']!r}")
            self.connected = True

    async def accept(self, subprotocol: str | None = None, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Answers the handshake with 101 (subprotocol: one the client offered, or None)."""
        if self.accepted:
            raise RuntimeError("the WebSocket was already accepted")
        await self._connect()
        fields = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        await self._send({"type": "websocket.accept", "subprotocol": subprotocol, "headers": fields})
        self.accepted = True

    # --- messages ---

    async def receive(self) -> str | bytes:
        """The next message (str for text, bytes for binary); raises WebSocketDisconnect once the client
        closed."""
        if not self.accepted:
            raise RuntimeError("receive() before accept()")
        if self.closed:
            raise WebSocketDisconnect(1006, "the WebSocket is closed")
        message = await self._receive()
        kind = message["type"]
        if kind == "websocket.disconnect":
            self.closed = True
            self.close_code = message.get("code", 1005)
            self.close_reason = message.get("reason") or ""
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        if kind != "websocket.receive":
            raise RuntimeError(f"unexpected message {kind!r}")
        text = message.get("text")
        return text if text is not None else message.get("bytes") or b""

    async def receive_text(self) -> str:
        data = await self.receive()
        if not isinstance(data, str):
            raise TypeError("expected a text message, got a binary one")
        return data

    async def receive_bytes(self) -> bytes:
        data = await self.receive()
        if not isinstance(data, bytes):
            raise TypeError("expected a binary message, got a text one")
        return data

    async def receive_json(self, type: Any = Any) -> Any:
        """A text or binary message decoded as JSON by msgspec, validated against `type`
        (msgspec.ValidationError or msgspec.DecodeError otherwise)."""
        return msgspec.json.decode(await self.receive(), type=type)

    async def send_text(self, data: str) -> None:
        await self._send({"type": "websocket.send", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": bytes(data)})

    async def send_json(self, obj: Any, *, binary: bool = False) -> None:
        """`obj` encoded by msgspec (Structs, dataclasses, dicts, ...), as a text message (binary=True: bytes)."""
        data = _encode(obj)
        if binary:
            await self.send_bytes(data)
        else:
            await self.send_text(data.decode())

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The close frame (before accept(): the handshake is refused with 403). Closing twice does nothing."""
        if self.closed:
            return
        if not self.accepted:
            await self._connect()
        self.closed = True
        await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def __aiter__(self) -> WebSocket:
        return self

    async def __anext__(self) -> str | bytes:
        try:
            return await self.receive()
        except WebSocketDisconnect:
            raise StopAsyncIteration from None
