"""Limits, timeouts, slow clients, bounded buffering and many connections (the Resources part of the checklist).

Each test starts its own server with the options it is about, with small
timeouts (one second) so that the whole module stays quick.  Memory and CPU of
the worker are read from /proc/<pid>, the pid being what the echo app reports.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import threading
import time
from urllib.parse import quote

import pytest
from test_http_checklist import (
    Conn,
    check_error_response,
    chunked,
    echo_body,
    is_close,
    post,
    wait_for_file,
    worker_pid,
)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def asan_quarantine_bytes() -> int:
    """Under `make test-sanitized` freed memory is held in ASan's quarantine (its size is in ASAN_OPTIONS) before
    it is reused, so a worker's RSS may grow by that much with nothing leaked; 0 in an ordinary run."""
    if "libasan" not in os.environ.get("LD_PRELOAD", ""):
        return 0
    options = dict(item.split("=", 1) for item in os.environ.get("ASAN_OPTIONS", "").split(":") if "=" in item)
    return int(options.get("quarantine_size_mb", "256")) * 1024 * 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process, all its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_socket(server, rcvbuf: int | None = None, sndbuf: int | None = None, timeout: float = 10.0) -> socket.socket:
    """A client socket whose buffers are set before connecting (so the window stays small)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.settimeout(timeout)
    sock.connect((server.host, server.port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_count(path: str) -> int:
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return 0
    return int(text or 0)


def recv_or_reset(sock: socket.socket) -> bytes:
    """recv(); a reset (a server that closed with our request unread) reads as the end."""
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def wait_readable(sock: socket.socket, timeout: float) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def hello(server) -> None:
    """The server still answers a fresh connection."""
    with Conn(server) as conn:
        conn.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        response = conn.response()
        assert response.status == 200 and response.body == b"Hello, world!\n"


# == request head limits ==========================================================


@pytest.mark.parametrize(
    "options,line_limit,head_limit,fields_limit",
    [
        ((), 8190, 16384, 100),
        (("--max-request-line", "100", "--max-head-size", "600", "--max-headers", "5"), 100, 600, 5),
    ],
    ids=["defaults", "small"],
)
def test_head_limits_at_the_boundary(start_server, options, line_limit, head_limit, fields_limit):
    """A request line of exactly the limit passes and one byte more gets 414; likewise 431 for the head
    (counted with its CRLFs, or without: both readings pass at the limit and fail 5 bytes above) and for
    the number of fields."""
    server = start_server("apps:main", *options)

    def line(length: int) -> bytes:
        request_line = b"GET /echo/" + b"a" * (length - len(b"GET /echo/ HTTP/1.1")) + b" HTTP/1.1"
        assert len(request_line) == length
        return request_line + b"\r\nHost: a\r\n\r\n"

    def head(total: int) -> bytes:
        start = b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Pad: "
        data = start + b"p" * (total - len(start) - 4) + b"\r\n\r\n"
        assert len(data) == total
        return data

    def fields(count: int) -> bytes:
        return b"GET /echo HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(count - 1)) + b"\r\n"

    for request, status in [
        (line(line_limit), 200),
        (line(line_limit + 1), 414),
        (head(head_limit), 200),
        (head(head_limit + 5), 431),
        (fields(fields_limit), 200),
        (fields(fields_limit + 1), 431),
    ]:
        with Conn(server) as conn:
            conn.send(request, may_close=True)
            response = conn.response()
            if status == 200:
                assert response.status == 200, (request[:120], response)
                echo_body(response)
            else:
                check_error_response(response, (status,))
                assert conn.closed()


def test_endless_head_cut_at_limit(start_server):
    """Headers that keep coming without an end get 431 once past the limit, not a buffer that grows."""
    server = start_server("apps:main", "--max-head-size", "4096")
    with Conn(server) as conn:
        conn.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n")
        start = time.monotonic()
        for i in range(2000):
            if wait_readable(conn.sock, 0):
                break
            conn.send(b"X-Endless-%d: %s\r\n" % (i, b"e" * 40), may_close=True)
        response = conn.response()
        check_error_response(response, (431,))
        assert conn.closed()
        assert time.monotonic() - start < 3


# == body size limit ================================================================


@pytest.fixture
def body_limited(start_server):
    return start_server("apps:main", "--max-body-size", "1000")


def test_body_at_limit_accepted(body_limited):
    with Conn(body_limited) as conn:
        conn.send(post(b"Content-Length: 1000\r\n", b"b" * 1000))
        assert echo_body(conn.response())["body_length"] == 1000
        conn.send(chunked(b"".join(b"64\r\n" + b"c" * 100 + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"))
        assert echo_body(conn.response())["body_length"] == 1000


@pytest.mark.parametrize("length", [1001, 10**12, 2**63 - 1])
def test_content_length_over_limit_413_without_reading(body_limited, length):
    """413 comes at once, before any body byte is sent: the body is not waited for, nor read."""
    with Conn(body_limited) as conn:
        start = time.monotonic()
        conn.send(post(b"Content-Length: %d\r\n" % length))
        response = conn.response()
        check_error_response(response, (413,))
        assert time.monotonic() - start < 1.5
        assert conn.closed()


def test_content_length_over_limit_with_expect_gets_no_100(body_limited):
    with Conn(body_limited) as conn:
        conn.send(post(b"Content-Length: 5000\r\nExpect: 100-continue\r\n"))
        check_error_response(conn.response(), (413,))  # A 100 Continue first would fail here.
        assert conn.closed()


def test_chunked_body_growing_over_limit_413(body_limited):
    body = b"".join(b"64\r\n" + b"c" * 100 + b"\r\n" for _ in range(15)) + b"0\r\n\r\n"
    with Conn(body_limited) as conn:
        conn.send(chunked(body) + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", may_close=True)
        check_error_response(conn.response(), (413,))
        assert conn.closed()


def test_chunked_body_over_limit_after_response(body_limited):
    """The app answered without reading; the oversized chunked body then must not be taken as requests."""
    body = b"".join(
        b"64\r\n" + b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n".ljust(100, b"x") + b"\r\n" for _ in range(15)
    )
    with Conn(body_limited) as conn:
        conn.send(chunked(body + b"0\r\n\r\n", b"/noread") + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", may_close=True)
        response = conn.response()
        assert response.status in (200, 413), response
        if response.status == 413 or is_close(response):
            assert conn.closed()
            return
        try:
            follow = conn.response()
        except EOFError:
            return  # Closed after the response: fine.
        assert follow.status == 200 and follow.body == b"Hello, world!\n", follow


# == timeouts ==========================================================================


@pytest.fixture
def timeouts(start_server):
    return start_server(
        "apps:main", "--head-timeout", "1", "--body-timeout", "1", "--keepalive-timeout", "1", "--write-timeout", "1"
    )


def _trickle_until_answer(conn: Conn, data: bytes, interval: float, limit: float) -> float:
    """Sends one byte every `interval` seconds until the server answers; returns when it did."""
    start = time.monotonic()
    for byte in data:
        if wait_readable(conn.sock, interval):
            return time.monotonic() - start
        conn.send(bytes([byte]), may_close=True)
        if time.monotonic() - start > limit:
            break
    assert wait_readable(conn.sock, limit), "the trickling head was never cut"
    return time.monotonic() - start


@pytest.mark.parametrize(
    "prefix", [b"GET /echo HTTP/1.1\r\nHost: a\r\n", b"GET /echo"], ids=["inside_headers", "inside_request_line"]
)
def test_slowloris_head_cut_at_head_timeout(timeouts, prefix):
    with Conn(timeouts) as conn:
        conn.send(prefix)
        elapsed = _trickle_until_answer(conn, b"X-Slow: " + b"s" * 100, 0.2, 5)
        response = conn.response()
        check_error_response(response, (408,))
        assert conn.closed()
        assert 0.8 <= elapsed <= 2.5, f"cut after {elapsed:.2f} s with --head-timeout 1"
    hello(timeouts)


def test_head_timeout_counts_from_first_byte_of_each_request(timeouts):
    """The second request on a keep-alive connection trickles: it is cut too."""
    with Conn(timeouts) as conn:
        conn.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        assert conn.response().status == 200
        conn.send(b"GET /echo HTTP/1.1\r\n")
        elapsed = _trickle_until_answer(conn, b"X-Slow: " + b"s" * 100, 0.2, 5)
        check_error_response(conn.response(), (408,))
        assert elapsed <= 2.5


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_stalled_body_cut_at_body_timeout(timeouts, tmp_path, framing):
    record = str(tmp_path / "record")
    target = b"/record_body?record=" + quote(record, safe="").encode()
    if framing == "chunked":
        request = chunked(b"64\r\n" + b"x" * 10, target)
    else:
        request = post(b"Content-Length: 100\r\n", b"x" * 10, target)
    with Conn(timeouts) as conn:
        start = time.monotonic()
        conn.send(request)
        assert wait_readable(conn.sock, 5), "a stalled body was never cut"
        elapsed = time.monotonic() - start
        response = conn.response()
        check_error_response(response, (408,))
        assert conn.closed()
        assert 0.8 <= elapsed <= 2.5, f"cut after {elapsed:.2f} s with --body-timeout 1"
    content = wait_for_file(record, lambda text: bool(text))
    assert content.startswith("error "), f"the app should have seen its read fail: {content!r}"
    hello(timeouts)


def test_slow_but_steady_body_is_not_cut(timeouts):
    """--body-timeout is the longest pause: a body arriving a byte every 0.3 s for 2.4 s completes."""
    with Conn(timeouts) as conn:
        conn.send(post(b"Content-Length: 8\r\n"))
        for byte in b"12345678":
            time.sleep(0.3)
            conn.send(bytes([byte]))
        assert echo_body(conn.response())["body"] == "12345678"


def test_idle_keepalive_closed_silently(timeouts):
    with Conn(timeouts) as conn:
        conn.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        assert conn.response().status == 200
        start = time.monotonic()
        assert conn.closed(timeout=4), "idle keep-alive connection not closed (or something was sent)"
        elapsed = time.monotonic() - start
        assert 0.8 <= elapsed <= 2.5, f"closed after {elapsed:.2f} s with --keepalive-timeout 1"


def test_keepalive_timer_restarts_with_each_request(timeouts):
    with Conn(timeouts) as conn:
        for _ in range(4):  # 4 x 0.6 s: longer than the timeout in total, never idle for as long
            conn.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
            response = conn.response()
            assert response.status == 200 and not is_close(response)
            time.sleep(0.6)


def test_connection_without_any_byte_closed(timeouts):
    with Conn(timeouts) as conn:
        start = time.monotonic()
        assert wait_readable(conn.sock, 4), "a connection that sends nothing is kept forever"
        data = recv_or_reset(conn.sock)
        assert data == b"" or data.startswith(b"HTTP/1.1 408 "), data
        assert time.monotonic() - start <= 2.5


def test_long_running_app_not_cut_by_timeouts(timeouts):
    """The timeouts are about the client; an app that takes 2 s still answers."""
    with Conn(timeouts) as conn:
        conn.send(b"GET /sleep?s=2 HTTP/1.1\r\nHost: a\r\n\r\n")
        assert conn.response().body == b"slept\n"


def test_unread_response_cut_at_write_timeout(timeouts, tmp_path):
    record, count = str(tmp_path / "record"), str(tmp_path / "count")
    sock = raw_socket(timeouts, rcvbuf=65536)
    try:
        sock.sendall(f"GET /stream?record={quote(record)}&count={quote(count)} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        content = wait_for_file(record, lambda text: "close" in text, timeout=6)
        assert content == "close\n", "the iterator was not closed after the write timeout"
    finally:
        sock.close()
    hello(timeouts)


def test_slow_reader_not_cut_while_reading(timeouts):
    """--write-timeout is about a reader that stopped: 2 MiB read 64 KiB per 0.05 s (over ~1.6 s) complete."""
    sock = raw_socket(timeouts, rcvbuf=65536)
    with sock:
        sock.sendall(b"GET /stream?size=65536&n=32 HTTP/1.1\r\nHost: a\r\n\r\n")
        received = b""
        while True:
            time.sleep(0.05)
            piece = sock.recv(65536)
            if not piece:
                break
            received += piece
            head, _, body = received.partition(b"\r\n\r\n")
            if len(body) >= 65536 * 32:
                break
        assert head.startswith(b"HTTP/1.1 200 ") and len(body) == 65536 * 32


# == a client that does not read =================================================


def test_non_reading_client_pauses_the_iterator(start_server, tmp_path):
    """A 1 GiB generator in 64 KiB chunks to a client that reads nothing: production stops early, stays
    stopped, and the worker's memory does not grow; when the client goes, the iterator is closed."""
    server = start_server("apps:main")
    pid = worker_pid(server)
    record, count = str(tmp_path / "record"), str(tmp_path / "count")
    rss_before = rss_bytes(pid)
    sock = raw_socket(server, rcvbuf=65536)
    try:
        sock.sendall(f"GET /stream?record={quote(record)}&count={quote(count)} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        time.sleep(2)
        produced_2s = read_count(count)
        time.sleep(2)
        produced_4s = read_count(count)
        rss_after = rss_bytes(pid)
    finally:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    assert 0 < produced_4s <= 256, f"{produced_4s} chunks of 64 KiB produced for a client that reads nothing"
    assert produced_4s - produced_2s <= 1, f"still producing: {produced_2s} then {produced_4s} chunks"
    assert rss_after - rss_before < 64 * 1024 * 1024, f"worker RSS grew by {(rss_after - rss_before) >> 20} MiB"
    content = wait_for_file(record, lambda text: "close" in text)
    assert content == "close\n", "the iterator was not closed when the client went away"
    assert worker_pid(server) == pid


def test_pipelined_requests_not_read_while_responses_unread(start_server):
    """20000 pipelined requests for 4 KiB responses (80 MiB) while the client reads nothing for 2 s: the
    server stops reading requests instead of queueing responses; then all are answered, in order."""
    server = start_server("apps:main")
    pid = worker_pid(server)
    n = 20000
    request = b"GET /chunks?n=1&size=4096 HTTP/1.1\r\nHost: a\r\n\r\n"
    data = request * (n - 1) + b"GET /seq?last HTTP/1.1\r\nHost: a\r\n\r\n"
    rss_before = rss_bytes(pid)
    sock = raw_socket(server, rcvbuf=65536, timeout=30)
    with sock:
        writer = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
        writer.start()
        time.sleep(2)
        rss_paused = rss_bytes(pid)
        conn = Conn(None, 30, sock=sock)
        for _ in range(n - 1):
            response = conn.response()
            assert response.status == 200 and len(response.body) == 4096
        assert conn.response().body == b"seq last"
        writer.join(10)
    assert rss_paused - rss_before < 32 * 1024 * 1024, f"worker RSS grew by {(rss_paused - rss_before) >> 20} MiB"


# == many connections ===========================================================


@pytest.fixture
def many_fds():
    """Raises this process's soft RLIMIT_NOFILE (the server, started after, inherits it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 8192)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted < 4500:
        pytest.fail(f"RLIMIT_NOFILE hard limit {hard} is too low for this test")
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_two_thousand_concurrent_connections(many_fds, start_server):
    server = start_server("apps:main")
    socks = []
    try:
        for _ in range(2000):
            socks.append(server.connect(timeout=10))
        for i, sock in enumerate(socks):
            sock.sendall(b"GET /seq?%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
        for i, sock in enumerate(socks):
            response = Conn(None, 20, sock=sock).response()
            assert response.status == 200 and response.body == b"seq %d" % i, (i, response)
        for i, sock in enumerate(socks[::10]):  # Still alive, all of them: a second round on some.
            sock.sendall(b"GET /seq?again%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
    finally:
        for sock in socks:
            sock.close()
    hello(server)


def test_max_connections_limits_open_connections(start_server):
    """--max-connections 10: of 15 clients, 10 are served; the others are refused with 503 or wait,
    and a waiting one is served once some have gone."""
    server = start_server("apps:main", "--max-connections", "10")
    socks = [server.connect() for _ in range(15)]
    try:
        for i, sock in enumerate(socks):
            sock.sendall(b"GET /seq?%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
        time.sleep(1)
        served, refused, waiting = [], [], []
        for sock in socks:
            if not wait_readable(sock, 0):
                waiting.append(sock)
                continue
            response = Conn(None, 5, sock=sock).response()
            if response.status == 200:
                served.append(sock)
            else:
                check_error_response(response, (503,))
                refused.append(sock)
        assert len(served) == 10, f"{len(served)} connections served at once with --max-connections 10"
        for sock in refused:
            assert recv_or_reset(sock) == b"", "a refused connection was left open"
        for sock in served:
            sock.close()
        for sock in waiting:
            assert wait_readable(sock, 5), "a waiting connection was not served after others closed"
            data = sock.recv(65536)
            assert data.startswith((b"HTTP/1.1 200 ", b"HTTP/1.1 503 ")), data
    finally:
        for sock in socks:
            sock.close()
    hello(server)


def test_survives_file_descriptor_exhaustion(start_server):
    """The worker may open only ~16 more descriptors; 200 clients arrive.  It must neither crash nor spin,
    and must serve again once they have gone."""
    server = start_server("apps:main")
    pid = worker_pid(server)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    worker_soft, worker_hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    open_fds = len(os.listdir(f"/proc/{pid}/fd"))
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (open_fds + 16, worker_hard))
    socks = []
    try:
        for i in range(200):
            sock = socket.socket()
            sock.settimeout(5)
            sock.connect((server.host, server.port))
            sock.sendall(b"GET /seq?%d HTTP/1.1\r\nHost: a\r\n\r\n" % i)
            socks.append(sock)
        cpu_before = cpu_seconds(pid)
        time.sleep(2)
        cpu_used = cpu_seconds(pid) - cpu_before
        statuses = []
        for sock in socks:
            if wait_readable(sock, 0):
                try:
                    response = Conn(None, 5, sock=sock).response()
                except EOFError:
                    continue  # Closed without a word: a refusal too.
                if response.status != 200:
                    check_error_response(response, (503,))
                statuses.append(response.status)
        assert 200 in statuses, "no client was served at all"
        assert cpu_used < 1.0, f"the worker used {cpu_used:.2f} s of CPU in 2 s while out of descriptors (busy loop?)"
    finally:
        for sock in socks:
            sock.close()
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                hello(server)
                break
            except (OSError, EOFError, AssertionError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (worker_soft, worker_hard))
    assert worker_pid(server) == pid, "the worker was replaced"
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)


def test_client_disconnect_mid_body(start_server, tmp_path):
    """The client goes away in the middle of a body: the app's read fails (never a short body taken as
    whole), and the worker goes on."""
    server = start_server("apps:main")
    pid = worker_pid(server)
    record = str(tmp_path / "record")
    target = b"/record_body?record=" + quote(record, safe="").encode()
    for request in (
        post(b"Content-Length: 100000\r\n", b"x" * 1000, target),
        chunked(b"3e8\r\n" + b"x" * 1000 + b"\r\n3e8\r\nxx", target),
    ):
        conn = Conn(server)
        conn.send(request)
        time.sleep(0.3)
        conn.close()
    time.sleep(1)
    content = wait_for_file(record, lambda text: True, 0.1)
    assert "complete" not in content, content
    assert worker_pid(server) == pid


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_repeated_disconnects_mid_body_and_mid_response_leak_nothing(start_server, tmp_path):
    """100 clients go away in the middle of their request body, 100 in the middle of a streamed response:
    every application read fails, every response iterator is closed once, and the worker's descriptors and
    memory come back to where they were (the fixture then checks the debug counters balance)."""
    server = start_server("apps:main")
    pid = worker_pid(server)
    body_record, stream_record = str(tmp_path / "body"), str(tmp_path / "stream")
    hello(server)
    fds_before, rss_before = open_fds(pid), rss_bytes(pid)
    rounds = 100
    body_target = b"/record_body?record=" + quote(body_record, safe="").encode()
    stream_target = f"/stream?size=65536&n=1024&record={quote(stream_record)}".encode()
    for i in range(rounds):
        sock = raw_socket(server)
        if i % 2:
            sock.sendall(post(b"Content-Length: 1000000\r\n", b"x" * 5000, body_target))
        else:
            sock.sendall(chunked(b"1000\r\n" + b"x" * 4096 + b"\r\n1000\r\nxx", body_target))
        # A reset, not an orderly close: the harshest way to go.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        time.sleep(0.01)
        sock.close()
        sock = raw_socket(server, rcvbuf=65536)
        sock.sendall(b"GET " + stream_target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    body_lines = wait_for_file(body_record, lambda text: text.count("\n") >= rounds, 20).splitlines()
    stream_lines = wait_for_file(stream_record, lambda text: text.count("\n") >= rounds, 20).splitlines()
    assert len(body_lines) == rounds and all(line.startswith("error ") for line in body_lines), body_lines[:5]
    assert stream_lines == ["close"] * rounds, f"{len(stream_lines)} close() calls for {rounds} streams"
    hello(server)
    deadline = time.monotonic() + 5
    while open_fds(pid) > fds_before and time.monotonic() < deadline:
        time.sleep(0.1)  # lingering closes end within the linger timeout
    assert open_fds(pid) <= fds_before, f"{open_fds(pid) - fds_before} descriptors more after the disconnects"
    grown = rss_bytes(pid) - rss_before
    limit = 16 * 1024 * 1024 + asan_quarantine_bytes()
    assert grown < limit, f"worker RSS grew by {grown >> 20} MiB over {2 * rounds} disconnects"
    assert worker_pid(server) == pid
    print(f"disconnects: fds {fds_before} -> {open_fds(pid)}, RSS grew {grown >> 10} KiB")


def test_normal_client_served_during_slowloris_of_thousands(many_fds, start_server):
    """3000 connections each send part of a head and then trickle a byte now and then (slowloris), while a
    normal client makes requests on new connections: its latency stays in the range it had before."""
    server = start_server("apps:main", "--head-timeout", "30")

    def latencies(count: int) -> list[float]:
        result = []
        for _ in range(count):
            start = time.monotonic()
            hello(server)
            result.append(time.monotonic() - start)
        return sorted(result)

    before = latencies(50)
    attackers = []
    try:
        for i in range(3000):
            sock = server.connect(timeout=10)
            sock.sendall(b"GET /hello?%d HTTP/1.1\r\nHost: a\r\nX-Slow: " % i)
            attackers.append(sock)
        for sock in attackers[::3]:
            sock.sendall(b"a")
        during = latencies(50)
        for sock in attackers[1::3]:
            sock.sendall(b"b")
        # The attackers are still there, still waiting: none was answered or dropped.
        assert not select.select(attackers[:500], [], [], 0)[0], "a slow connection was answered or closed early"
    finally:
        for sock in attackers:
            sock.close()
    median_before, median_during = before[len(before) // 2], during[len(during) // 2]
    print(
        f"slowloris: median {median_before * 1000:.2f} -> {median_during * 1000:.2f} ms, max {during[-1] * 1000:.2f} ms"
    )
    assert median_during < median_before * 3 + 0.01, f"median latency {median_before:.4f} s -> {median_during:.4f} s"
    assert during[-1] < 0.5, f"slowest request during the attack took {during[-1]:.3f} s"
    hello(server)
