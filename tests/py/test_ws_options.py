"""WebSocket options of an ASGI application: the idle keepalive ping (--ws-ping-interval, --ws-ping-timeout),
the size limit (--ws-max-size) and permessage-deflate on or off (--ws-per-message-deflate).

Real meltemi processes; the raw-frame client (wsclient.py) where the test must see or withhold control frames,
the `websockets` library elsewhere.
"""

from __future__ import annotations

import asyncio
import struct
import time

import pytest
from test_asgi import read_report, reports  # noqa: F401  (fixture)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from wsclient import CLOSE, PING, PONG, TEXT, WS, Deflate

APP = "asgiapps:ws_app"
FAST_PING = ("--ws-ping-interval", "0.3", "--ws-ping-timeout", "0.3")


def test_keepalive_drops_a_client_that_never_answers_pings(start_server, reports):  # noqa: F811
    server = start_server(APP, *FAST_PING)
    ws = WS(server.host, server.port)
    start = time.monotonic()
    fin, rsv, opcode, payload = ws.recv_frame(timeout=3)
    pinged = time.monotonic() - start
    assert opcode == PING, (opcode, payload)
    assert 0.25 <= pinged < 1.5, pinged
    # No pong: close 1011, then the connection is dropped (no close handshake is awaited).
    fin, rsv, opcode, payload = ws.recv_frame(timeout=3)
    dropped = time.monotonic() - start
    assert opcode == CLOSE and struct.unpack("!H", payload[:2])[0] == 1011, (opcode, payload)
    assert payload[2:] == b"keepalive ping timeout"
    assert 0.55 <= dropped < 2.5, dropped
    ws.expect_eof(timeout=3)
    # The application was told as for a lost connection.
    assert read_report(reports, "ws-disconnect")["code"] == 1006


def test_keepalive_keeps_a_client_that_answers(start_server):
    server = start_server(APP, *FAST_PING)
    ws = WS(server.host, server.port)
    pings = 0
    deadline = time.monotonic() + 2.0  # more than three interval+timeout windows
    while time.monotonic() < deadline:
        try:
            fin, rsv, opcode, payload = ws.recv_frame(timeout=0.2)
        except TimeoutError:
            continue
        assert opcode == PING, (opcode, payload)
        ws.send_frame(PONG, payload)
        pings += 1
    assert pings >= 2
    ws.send_frame(TEXT, b"still here")
    assert ws.recv_message() == (TEXT, b"still here")


def test_keepalive_counts_any_frame_as_an_answer(start_server):
    """A client that keeps talking (and never sees a ping go unanswered) stays, with the websockets library."""
    server = start_server(APP, *FAST_PING)

    async def main():
        async with connect(f"ws://{server.host}:{server.port}/echo", ping_interval=None) as ws:
            for i in range(15):
                await ws.send(f"m{i}")
                assert await ws.recv() == f"m{i}"
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # idle: the library answers the server's pings itself
            await ws.send("last")
            return await ws.recv()

    assert asyncio.run(main()) == "last"


def test_ping_interval_zero_sends_no_ping(start_server):
    server = start_server(APP, "--ws-ping-interval", "0", "--ws-ping-timeout", "0.1")
    ws = WS(server.host, server.port)
    ws.expect_silence(1.0)
    ws.send_frame(TEXT, b"hi")
    assert ws.recv_message() == (TEXT, b"hi")


def test_max_size_closes_1009_beyond_it(start_server, reports):  # noqa: F811
    server = start_server(APP, "--ws-max-size", "1000")
    ws = WS(server.host, server.port)
    ws.send_frame(TEXT, b"a" * 1000)
    assert ws.recv_message() == (TEXT, b"a" * 1000)
    ws.send_frame(TEXT, b"a" * 1001)
    ws.expect_close((1009,))
    assert read_report(reports, "ws-disconnect")["code"] == 1009


def test_max_size_applies_to_the_inflated_message(start_server):
    server = start_server(APP, "--ws-max-size", "1000")
    ws = WS(server.host, server.port, extensions="permessage-deflate")
    deflate = Deflate()
    ws.send_frame(TEXT, deflate.compress(b"b" * 1000), rsv=4)
    assert ws.recv_message(deflate) == (TEXT, b"b" * 1000)
    data = deflate.compress(b"b" * 5000)
    assert len(data) < 1000  # the frame is small, the message is not
    ws.send_frame(TEXT, data, rsv=4)
    ws.expect_close((1009,))


def test_max_size_with_the_websockets_library(start_server):
    server = start_server(APP, "--ws-max-size", "64K")

    async def main():
        async with connect(f"ws://{server.host}:{server.port}/echo", max_size=None) as ws:
            await ws.send("x" * 65536)
            assert len(await ws.recv()) == 65536
            await ws.send("x" * 65537)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            return closed.value.rcvd.code

    assert asyncio.run(main()) == 1009


@pytest.mark.parametrize("setting", ["off", "on"])
def test_per_message_deflate_can_be_turned_off(start_server, setting):
    server = start_server(APP, "--no-ws-per-message-deflate" if setting == "off" else "--ws-per-message-deflate")

    async def main():
        async with connect(f"ws://{server.host}:{server.port}/echo", compression="deflate") as ws:
            await ws.send("z" * 10000)
            assert await ws.recv() == "z" * 10000
            return ws.response.headers.get("sec-websocket-extensions")

    extensions = asyncio.run(main())
    if setting == "off":
        assert extensions is None
    else:
        assert extensions is not None and extensions.startswith("permessage-deflate")
    # The raw client sees the same answer to its offer.
    ws = WS(server.host, server.port, extensions="permessage-deflate")
    assert (ws.extension is None) == (setting == "off")


def test_a_closed_connection_is_not_pinged(start_server, reports):  # noqa: F811
    """The sweep stops with the last WebSocket; a new one gets its pings again."""
    server = start_server(APP, *FAST_PING)
    ws = WS(server.host, server.port)
    ws.send_frame(CLOSE, struct.pack("!H", 1000))
    assert ws.recv_frame(timeout=3)[2] == CLOSE
    ws.expect_eof(timeout=3)
    assert read_report(reports, "ws-disconnect")["code"] == 1000
    time.sleep(0.5)
    again = WS(server.host, server.port)
    assert again.recv_frame(timeout=3)[2] == PING
