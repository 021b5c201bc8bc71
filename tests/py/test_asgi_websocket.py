"""WebSockets over ASGI: the `websockets` library as the client, against real meltemi processes."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import httpx
import pytest
from conftest import recv_all
from test_asgi import read_report, reports  # noqa: F401  (fixture)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

APP = "asgiapps:ws_app"


def ws_url(server, path="/echo"):
    return f"ws://{server.host}:{server.port}{path}"


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_and_bytes(start_server, compression):
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server), compression=compression, subprotocols=["other", "chat"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-accepted"] == "yes"
            for text in ["hello", "", "é" * 1000, "x" * 200_000]:
                await ws.send(text)
                assert await ws.recv() == text
            await ws.send(b"\x00\x01\xff" * 1000)
            assert await ws.recv() == b"\x00\x01\xff" * 1000
            # A fragmented message.
            await ws.send(["frag", "mented"])
            assert await ws.recv() == "fragmented"
            pong = await ws.ping(b"abc")
            await asyncio.wait_for(pong, 5)
            return ws.response.headers.get("sec-websocket-extensions")

    extensions = asyncio.run(main())
    assert (extensions is not None) == (compression == "deflate")
    # HTTP on the same server still works.
    assert httpx.get(server.url + "/").text == "http ok"


def test_websocket_scope(start_server):
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server, "/scope?x=1"), compression=None) as ws:
            return json.loads(await ws.recv())

    scope = asyncio.run(main())
    assert scope["type"] == "websocket"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["subprotocols"] == []
    assert scope["http_version"] == "1.1"
    assert "websocket.http.response" in scope["extensions"]
    assert "method" not in scope


def test_client_close_reaches_the_app(start_server, reports):  # noqa: F811
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server), compression=None) as ws:
            await ws.send("one")
            await ws.recv()
            await ws.close(code=4321, reason="done")

    asyncio.run(main())
    assert read_report(reports, "ws-disconnect")["code"] == 4321


def test_server_close_with_code(start_server):
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server, "/server-close"), compression=None) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd

    rcvd = asyncio.run(main())
    assert rcvd.code == 4001 and rcvd.reason == "bye"


def test_deny_and_denial_response(start_server):
    server = start_server(APP)

    async def attempt(path):
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(server, path), compression=None):
                pass
        return info.value.response

    denied = asyncio.run(attempt("/deny"))
    assert denied.status_code == 403
    custom = asyncio.run(attempt("/http-deny"))
    assert custom.status_code == 401
    assert custom.headers["www-authenticate"] == "Bearer"
    assert custom.body == b"no token"
    failed = asyncio.run(attempt("/raise-before-accept"))
    assert failed.status_code == 500
    assert server.wait_for("ValueError: websocket boom", 5)


def test_exception_after_accept_closes_with_1011(start_server):
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server, "/raise"), compression=None) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd

    assert asyncio.run(main()).code == 1011
    assert server.wait_for("websocket boom after accept", 5)


def test_bad_handshake_and_bad_frames(start_server):
    server = start_server(APP)
    with server.connect() as sock:
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n"
        )
        response = recv_all(sock)
    assert response.startswith(b"HTTP/1.1 426 ")
    assert b"Sec-WebSocket-Version: 13" in response
    # An unmasked frame: close 1002.
    with server.connect() as sock:
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        sock.sendall(b"\x81\x02hi")
        rest = recv_all(sock)
    assert rest[:1] == b"\x88"
    assert int.from_bytes(rest[2:4], "big") == 1002


def test_graceful_stop_closes_websockets_with_1001(start_server):
    server = start_server(APP)
    result = {}

    async def main():
        async with connect(ws_url(server), compression=None) as ws:
            await ws.send("x")
            await ws.recv()
            server.signal(signal.SIGTERM)
            started = time.monotonic()
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            result["code"] = info.value.rcvd.code
            result["elapsed"] = time.monotonic() - started

    asyncio.run(main())
    assert result["code"] == 1001
    assert result["elapsed"] < 2
    assert server.stop() == 0
    server.assert_balanced()


def test_message_over_the_limit_closes_with_1009(start_server):
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server), compression=None, max_size=None) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.send(b"z" * (17 << 20))  # refused from its header: the close may come mid-send
                await ws.recv()
            return info.value.rcvd

    assert asyncio.run(main()).code == 1009


def test_send_pauses_for_a_client_that_does_not_read(start_server, reports):  # noqa: F811
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server, "/flood"), compression=None, max_queue=1, max_size=None) as ws:
            ws.transport.pause_reading()  # the client's socket buffer fills, then ours
            await asyncio.sleep(1.0)
            sent = read_report(reports, "ws-progress")["sent"]
            await asyncio.sleep(0.5)
            still = read_report(reports, "ws-progress")["sent"]
            ws.transport.resume_reading()
            count = 0
            try:
                while True:
                    await ws.recv()
                    count += 1
            except ConnectionClosed:
                pass
            return sent, still, count

    sent, still, count = asyncio.run(main())
    assert sent < 500, sent  # 2,000 messages of 64 KiB were not all queued
    assert still == sent  # paused
    assert count == 2000


def test_send_accepts_any_mapping_and_text_none_with_bytes(start_server):
    server = start_server(APP)

    async def main():
        async with connect(ws_url(server, "/mapping"), compression=None) as ws:
            got = []
            for text in ["one", "two"]:
                await ws.send(text)
                got += [await ws.recv(), await ws.recv()]
            return got

    assert asyncio.run(main()) == ["one", b"bytes too", "two", b"bytes too"]


def test_pipelined_messages_and_close_in_one_write(start_server, reports):  # noqa: F811
    """Many messages and the close in one TCP write: every echo, in order, before the close 1000."""
    from wsclient import CLOSE, TEXT, WS, frame

    server = start_server(APP)
    ws = WS(server.host, server.port)
    count = 2000
    ws.send(b"".join(frame(TEXT, b"m%d" % i) for i in range(count)) + frame(CLOSE, b"\x03\xe8"))
    for i in range(count):
        assert ws.recv_message() == (TEXT, b"m%d" % i)
    ws.expect_close((1000,))
    assert read_report(reports, "ws-disconnect")["code"] == 1000
