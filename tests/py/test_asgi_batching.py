"""Held responses (write batching, src/python/asgi_loop.c): the requests one wake-up of the loop brings run
one after another, and their complete small responses are written back to back when the batch ends.

Each test makes a batch: a first request blocks the loop (time.sleep in the handler), the others arrive
meanwhile and wait in the queue, and the loop takes them all at its next wake-up. Every response must
arrive, in order on its connection (pipelined requests found while a held exchange ends included), and a
held response waits for the batch's flush: at most half a millisecond and the run of one request.
The typed API's async routes share the mechanism (tests/py/test_api_async.py, a batch of routes)."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest


def send(server, raw: bytes) -> socket.socket:
    sock = server.connect(timeout=10)
    sock.sendall(raw)
    return sock


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes, float]]:
    """`count` responses (each with a Content-Length): (status, body, arrival time of its last byte)."""
    data, out = b"", []
    while len(out) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            head = data[:head_end].decode("latin-1").split("\r\n")
            fields = dict(line.split(": ", 1) for line in head[1:])
            length = int({k.lower(): v for k, v in fields.items()}["content-length"])
            end = head_end + 4 + length
            if len(data) >= end:
                out.append((int(head[0].split()[1]), data[head_end + 4 : end], time.monotonic()))
                data = data[end:]
                continue
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed after {len(out)} of {count} responses"
        data += chunk
    return out


def get(path: str, *, close: bool = False) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: t\r\n{'Connection: close' if close else ''}\r\n\r\n".encode()


def block_the_loop(server, path: str) -> socket.socket:
    sock = send(server, get(path))
    time.sleep(0.05)  # the loop is inside the handler now
    return sock


@pytest.fixture
def asgi_server(start_server):
    server = start_server("asgiapps:app")
    server.wait_answering("/hello")
    return server


def test_a_batch_with_pipelined_requests_and_a_body(asgi_server):
    blocker = block_the_loop(asgi_server, "/block?s=0.3")
    clients = []
    for c in range(8):  # two pipelined requests each: the second is found when the first's exchange ends
        clients.append(send(asgi_server, get(f"/echo?c={c}&k=0") + get(f"/echo?c={c}&k=1")))
    body = b"x" * 1000
    poster = send(asgi_server, b"POST /scope HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n" + body)
    assert read_responses(blocker, 1)[0][:2] == (200, b"blocked")
    for c, sock in enumerate(clients):
        got = [(status, body) for status, body, _ in read_responses(sock, 2)]
        assert got == [(200, f"c={c}&k=0".encode()), (200, f"c={c}&k=1".encode())]
    status, shown, _ = read_responses(poster, 1)[0]
    assert status == 200 and json.loads(shown)["body_length"] == 1000
    for sock in [blocker, poster, *clients]:
        sock.close()
    # The connections stay usable after their held responses.
    again = send(asgi_server, get("/echo?again", close=True))
    assert read_responses(again, 1)[0][:2] == (200, b"again")
    again.close()


def test_a_held_response_waits_for_the_batch_and_no_longer(asgi_server):
    """A fast response held in a batch goes out with the batch's flush: after the slow request behind it
    ran (not before it, as unbatched writes would), and not after it (one request's run at most)."""
    blocker = block_the_loop(asgi_server, "/block?s=0.3")
    fast = send(asgi_server, get("/echo?fast"))
    time.sleep(0.02)
    slow = send(asgi_server, get("/spin?ms=150"))
    arrivals: dict[str, float] = {}

    def read(name, sock):
        status, body, at = read_responses(sock, 1)[0]
        assert status == 200, body
        arrivals[name] = at

    readers = [threading.Thread(target=read, args=pair) for pair in (("fast", fast), ("slow", slow))]
    for t in readers:
        t.start()
    read_responses(blocker, 1)
    for t in readers:
        t.join(10)
    assert set(arrivals) == {"fast", "slow"}
    # Unbatched, the fast response would arrive ~150 ms before the slow one.
    assert abs(arrivals["slow"] - arrivals["fast"]) < 0.05, arrivals
    for sock in (blocker, fast, slow):
        sock.close()
