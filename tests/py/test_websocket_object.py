"""meltemi.api.websocket.WebSocket: the handler-side object, in an ASGI application served by a real meltemi."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from meltemi.api.websocket import WebSocket

APP = "wsobjectapps:app"


def url(server, path):
    return f"ws://{server.host}:{server.port}{path}"


def test_text_bytes_iteration_and_client_close(start_server):
    server = start_server(APP)

    async def main():
        async with connect(url(server, "/echo"), subprotocols=["json"]) as ws:
            assert ws.subprotocol == "json"
            assert ws.response.headers["x-ws"] == "object"
            await ws.send("hello")
            assert await ws.recv() == "HELLO"
            await ws.send(b"\x01\x02\x03")
            assert await ws.recv() == b"\x03\x02\x01"
            await ws.close(4100, "done")

    asyncio.run(main())
    assert server.wait_for("wsobject-closed 4100 done", 5)


def test_server_close_with_code_and_reason(start_server):
    server = start_server(APP)

    async def main():
        async with connect(url(server, "/echo")) as ws:
            await ws.send("close")
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd

    rcvd = asyncio.run(main())
    assert (rcvd.code, rcvd.reason) == (4002, "asked")


def test_json_validated_by_msgspec(start_server):
    server = start_server(APP)

    async def main(query):
        async with connect(url(server, "/json" + query)) as ws:
            await ws.send(json.dumps({"x": 1, "y": 2}))
            moved = await ws.recv()
            await ws.send(json.dumps({"x": "one", "y": 2}))
            error = json.loads(await ws.recv())
            return moved, error

    moved, error = asyncio.run(main(""))
    assert json.loads(moved) == {"x": 2, "y": 3}
    assert "Expected `int`, got `str`" in error["error"] and "$.x" in error["error"]
    moved, _ = asyncio.run(main("?binary"))
    assert isinstance(moved, bytes) and json.loads(moved) == {"x": 2, "y": 3}


def test_handshake_fields_and_deny(start_server):
    server = start_server(APP)

    async def info():
        async with connect(url(server, "/info?a=1"), origin="http://example.test") as ws:
            return json.loads(await ws.recv())

    assert asyncio.run(info()) == {"origin": "http://example.test", "query": "a=1", "client": True}

    async def deny():
        with pytest.raises(InvalidStatus) as exc:
            async with connect(url(server, "/deny")):
                pass
        return exc.value.response.status_code

    assert asyncio.run(deny()) == 403


def test_refuses_a_scope_that_is_not_a_websocket():
    with pytest.raises(ValueError, match="websocket scope"):
        WebSocket({"type": "http"}, None, None)
