"""ASGI 3 over HTTP: scope, every event type, streaming both ways, back-pressure, disconnects, errors,
lifespan, graceful stop. Real meltemi processes; httpx (sync and async) and raw sockets as clients."""

from __future__ import annotations

import asyncio
import gzip
import json
import signal
import socket
import sys
import time

import httpx
import pytest
from conftest import ResponseReader, recv_all

APP = "asgiapps:app"


@pytest.fixture
def reports(tmp_path, monkeypatch):
    monkeypatch.setenv("ASGI_REPORT_DIR", str(tmp_path))
    return tmp_path


def read_report(directory, name, timeout=5.0):
    path = directory / name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return json.loads(path.read_text())
        time.sleep(0.005)
    raise AssertionError(f"no report {name!r}")


def ready(server) -> None:
    """Waits until a worker answers (the master prints its address before the workers have booted)."""
    assert httpx.get(server.url + "/hello", timeout=30).text == "Hello, world!"


def raw(server, request: bytes) -> bytes:
    with server.connect() as sock:
        sock.sendall(request)
        return recv_all(sock)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_scope_and_body(start_server, reports, loop):
    server = start_server(APP, "--loop", loop)
    with httpx.Client(base_url=server.url) as client:
        r = client.post("/scope/caf%C3%A9%2Fx?a=1&b=%20", content=b"payload", headers={"X-Custom": "One"})
        assert r.status_code == 200
        scope = r.json()
        # The same connection carries the next request (keep-alive).
        assert client.get("/hello").text == "Hello, world!"
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "POST"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/scope/café/x"
    assert scope["raw_path"] == "/scope/caf%C3%A9%2Fx"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope["root_path"] == ""
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["state"] == {"booted": scope["state"]["booted"]} and scope["state"]["booted"] > 0
    assert "http.response.pathsend" in scope["extensions"]
    names = [name for name, _ in scope["headers"]]
    assert names == [name.lower() for name in names]
    assert ["x-custom", "One"] in scope["headers"]
    assert names.index("host") < names.index("x-custom")
    assert scope["body"] == "payload"
    assert server.wait_for(f"ASGI application on the {loop} event loop", 5)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_request_starts_as_an_eager_task_on_python_312(start_server, loop):
    """On Python 3.12+ the runtime starts each request as an eager task (meltemi/asgi/runtime.py): the
    application runs inside the call that spawned it, with no loop turn first, up to its first await that
    suspends; then the loop steps it. On 3.11 the task is scheduled and each step is the loop's.
    `make test-gil` runs this on a 3.12+ interpreter (the host's is 3.11)."""
    server = start_server(APP, "--loop", loop)
    seen = httpx.get(server.url + "/driver", timeout=30).json()
    assert seen["python"] == list(sys.version_info[:2])  # the worker runs the tests' interpreter
    eager = sys.version_info >= (3, 12)
    assert seen["before_await"][0] == "_serve"
    assert ("_spawn" in seen["before_await"]) is eager, seen
    assert seen["after_await"][0] == "_serve" and "_spawn" not in seen["after_await"], seen


def test_async_client_concurrent_requests(start_server):
    server = start_server(APP)

    async def main():
        async with httpx.AsyncClient(base_url=server.url) as client:
            slow = client.get("/slow", params={"s": "0.5"})
            fast = [client.get("/hello") for _ in range(20)]
            started = time.monotonic()
            results = await asyncio.gather(slow, *fast)
            return results, time.monotonic() - started

    results, elapsed = asyncio.run(main())
    assert results[0].text == "slept"
    assert all(r.text == "Hello, world!" for r in results[1:])
    assert elapsed < 5


def test_body_read_in_many_receive_calls(start_server):
    server = start_server(APP)
    body = bytes(range(256)) * 400  # 102,400 bytes
    with server.connect() as sock:
        sock.sendall(b"POST /scope HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        for i in range(0, len(body), 20000):
            sock.sendall(body[i : i + 20000])
            time.sleep(0.3 if i == 0 else 0.1)  # the app reads each piece as it comes
        response = ResponseReader(sock).read_response()
    assert response.status == 200
    scope = json.loads(response.body)
    assert scope["body_length"] == len(body)
    assert scope["body"].encode("latin-1") == body
    assert scope["receive_calls"] >= 3


def test_chunked_request_body(start_server):
    server = start_server(APP)
    with server.connect() as sock:
        sock.sendall(b"POST /scope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for index, part in enumerate((b"hello ", b"chunked ", b"world")):
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            time.sleep(0.3 if index == 0 else 0.1)
        sock.sendall(b"0\r\n\r\n")
        response = ResponseReader(sock).read_response()
    scope = json.loads(response.body)
    assert scope["body"] == "hello chunked world"
    assert scope["receive_calls"] >= 2


def test_body_limits_as_for_wsgi(start_server):
    server = start_server(APP, "--max-body-size", "1000")
    response = raw(server, b"POST /scope HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000)
    assert response.startswith(b"HTTP/1.1 413 ")
    chunk = b"x" * 600
    request = b"POST /scope HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    request += b"%x\r\n%s\r\n" % (len(chunk), chunk) * 2 + b"0\r\n\r\n"
    response = raw(server, request)
    assert response.startswith(b"HTTP/1.1 413 "), response[:200]


def test_streaming_response_and_head(start_server):
    server = start_server(APP)
    with httpx.Client(base_url=server.url) as client:
        r = client.get("/stream", params={"n": "4"})
        assert r.headers["transfer-encoding"] == "chunked"
        assert r.text == "part 0\npart 1\npart 2\npart 3\n"
        head = client.head("/hello")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == "13"
    # HTTP/1.0: no chunked framing, the close ends the body.
    response = raw(server, b"GET /stream?n=2 HTTP/1.0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding" not in response
    assert response.endswith(b"part 0\npart 1\n")


def test_pipelined_requests(start_server):
    server = start_server(APP)
    with server.connect() as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /stream?n=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = ResponseReader(sock)
        first, second = reader.read_response(), reader.read_response()
    assert first.body == b"Hello, world!"
    assert second.body == b"part 0\n"


def test_back_pressure_pauses_send(start_server, reports):
    server = start_server(APP, "--write-buffer", "256KiB")
    chunks = 512  # 32 MiB
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.connect((server.host, server.port))
    try:
        sock.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % chunks)
        time.sleep(1.5)  # not reading
        sent = read_report(reports, "progress")["sent"]
        # The socket buffers and the 256 KiB queue hold a few MiB at most: send() paused long before 32 MiB.
        assert sent < chunks // 4, sent
        time.sleep(0.5)
        assert read_report(reports, "progress")["sent"] == sent  # still paused
        reader = ResponseReader(sock, timeout=30)
        response = reader.read_response()
    finally:
        sock.close()
    assert len(response.body) == chunks * 65536
    assert read_report(reports, "progress")["sent"] == chunks


@pytest.mark.parametrize("path", ["/disconnect", "/disconnect-busy"])
def test_disconnect_within_100ms(start_server, reports, path):
    server = start_server(APP)
    ready(server)
    sock = server.connect()
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    time.sleep(0.3)  # the app is waiting
    closed_at = time.time()
    sock.close()
    seen = read_report(reports, "disconnect")
    assert seen["type"] == "http.disconnect"
    assert seen["time"] - closed_at < 0.1, seen["time"] - closed_at


def test_send_after_disconnect_raises_oserror(start_server, reports):
    server = start_server(APP)
    sock = server.connect()
    sock.sendall(b"GET /after-disconnect-send HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    sock.close()
    seen = read_report(reports, "late-send")
    assert seen["message"] == "http.disconnect"
    assert seen["error"] == "ClientDisconnected"


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/raise-before", "ValueError: boom before start"),
        ("/raise-in-receive", "ValueError: boom after receive"),
        ("/body-before-start", "http.response.body sent before http.response.start"),
        ("/two-starts", "http.response.start sent twice"),
        ("/bad-header", "response header 0 must be a pair of bytes"),
        ("/bad-status", "'status' must be an int"),
        ("/no-response", "returned without starting its response"),
        ("/half-response", "returned without completing its response"),
    ],
)
def test_errors_before_the_head_are_logged_500s(start_server, path, logged):
    server = start_server(APP)
    with httpx.Client(base_url=server.url) as client:
        r = client.get(path)
        assert r.status_code == 500
        # The framing was intact: the connection carries the next request.
        assert client.get("/hello").status_code == 200
    assert server.wait_for(f"Error handling request GET {path}", 5)
    assert server.wait_for(logged, 5), server.output


def test_error_after_the_head_closes_the_connection(start_server):
    server = start_server(APP)
    response = raw(server, b"GET /raise-after HTTP/1.1\r\nHost: x\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in response
    assert b"7\r\npartial\r\n" in response
    assert not response.endswith(b"0\r\n\r\n")  # cut short: the close says so
    assert server.wait_for("ValueError: boom after start", 5)


def test_pathsend(start_server, tmp_path):
    data = bytes(range(256)) * 5000
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    server = start_server(APP)
    with httpx.Client(base_url=server.url) as client:
        r = client.get("/pathsend", params={"path": str(path)})
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(data))
        assert r.content == data


def test_compression_and_static_mounts(start_server, tmp_path):
    (tmp_path / "a.txt").write_text("static text")
    server = start_server(APP, "--compress", "gzip", "--static", f"/files/={tmp_path}")
    with httpx.Client(base_url=server.url) as client:
        plain = client.get("/json", headers={"Accept-Encoding": "identity"})
        r = client.get("/json", headers={"Accept-Encoding": "gzip"})
        assert r.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in r.headers["vary"].lower()
        assert r.json() == plain.json()
        with client.stream("GET", "/json", headers={"Accept-Encoding": "gzip"}) as streamed:
            compressed = b"".join(streamed.iter_raw())
        assert json.loads(gzip.decompress(compressed)) == plain.json()
        assert client.get("/files/a.txt").text == "static text"


def test_lifespan_shutdown_runs_after_the_drain(start_server, reports):
    server = start_server(APP)
    ready(server)
    with server.connect() as sock:
        sock.sendall(b"GET /slow?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        server.signal(signal.SIGTERM)
        reader = ResponseReader(sock)
        response = reader.read_response()
        closed = reader.closed()
    # The request in flight completed, the connection closed after it, then the lifespan shutdown ran.
    assert response.body == b"slept"
    assert closed
    assert server.stop() == 0
    assert read_report(reports, "shutdown")["pid"] > 0
    server.assert_balanced()


def test_lifespan_startup_failure_stops_the_boot(start_server):
    from conftest import Server

    server = Server(["asgiapps:lifespan_failed", "--bind", "127.0.0.1:0"])
    code = server.proc.wait(30)
    server.stop()
    assert code != 0
    assert "ASGI lifespan startup failed: the database is not there" in server.output


def test_lifespan_auto_and_on(start_server):
    from conftest import Server

    server = start_server("asgiapps:lifespan_raises")
    assert httpx.get(server.url + "/").text == "served without lifespan"
    strict = Server(["asgiapps:lifespan_raises", "--bind", "127.0.0.1:0", "--lifespan", "on"])
    code = strict.proc.wait(30)
    strict.stop()
    assert code != 0
    assert "ASGI lifespan startup failed: RuntimeError: no lifespan here" in strict.output


def test_lifespan_off_and_detection(start_server):
    server = start_server("asgiapps:callable_app", "--lifespan", "off")
    assert httpx.get(server.url + "/").text == "callable object"
    forced = start_server("asgiapps:plain", "--interface", "asgi", "--lifespan", "off")
    assert httpx.get(forced.url + "/").text == "plain"


def test_expect_continue_is_sent_on_the_first_receive(start_server):
    server = start_server(APP)
    with server.connect() as sock:
        sock.sendall(b"POST /scope HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        interim = sock.recv(100)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        response = ResponseReader(sock).read_response()
    assert json.loads(response.body)["body"] == "hello"


def test_workers_are_replaced_after_max_requests(start_server):
    server = start_server(APP, "--max-requests", "5", "--max-requests-jitter", "0")
    pids = set()
    deadline = time.monotonic() + 30
    while len(pids) < 2 and time.monotonic() < deadline:
        with httpx.Client(base_url=server.url) as client:
            pids.add(client.get("/scope").json()["state"]["booted"])
    assert len(pids) >= 2, server.output  # a second worker, with its own lifespan state, took over


def test_slow_readers_do_not_hold_up_other_clients(start_server):
    """Twenty clients that do not read a 4 MiB stream: their send() calls wait, the loop does not."""
    server = start_server(APP)
    slow = []
    for _ in range(20):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        sock.connect((server.host, server.port))
        sock.sendall(b"GET /big?n=64 HTTP/1.1\r\nHost: x\r\n\r\n")
        slow.append(sock)
    time.sleep(0.5)
    timings = []
    with httpx.Client(base_url=server.url) as client:
        for _ in range(50):
            started = time.monotonic()
            assert client.get("/hello").text == "Hello, world!"
            timings.append(time.monotonic() - started)
    timings.sort()
    assert timings[len(timings) // 2] < 0.05, timings
    assert timings[-2] < 0.25, timings
    for sock in slow:
        response = ResponseReader(sock, timeout=30).read_response()
        assert len(response.body) == 64 * 65536
        sock.close()


def test_many_concurrent_keep_alive_clients(start_server):
    server = start_server(APP)

    async def client(index):
        reader, writer = await asyncio.open_connection(server.host, server.port)
        for i in range(20):
            body = b"%d-%d" % (index, i)
            writer.write(b"POST /scope HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            payload = json.loads(await reader.readexactly(length))
            assert payload["body"] == body.decode()
        writer.close()

    async def main():
        await asyncio.gather(*(client(i) for i in range(100)))

    asyncio.run(main())


def test_client_gone_while_send_waits(start_server, reports):
    server = start_server(APP)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    sock.connect((server.host, server.port))
    sock.sendall(b"GET /big?n=4096 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.5)
    paused_at = read_report(reports, "progress")["sent"]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    sock.close()
    time.sleep(0.5)
    # The waiting send() was woken by the failure and raised: the stream stopped, nothing was logged.
    assert read_report(reports, "progress")["sent"] <= paused_at + 1
    assert paused_at < 4096
    assert httpx.get(server.url + "/hello").text == "Hello, world!"
    assert "Error handling request" not in server.output
