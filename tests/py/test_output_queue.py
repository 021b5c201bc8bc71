"""The I/O thread owns every write: slow readers cost a queue, not a handler thread.

A handler writes what the socket takes at once and leaves the rest on the
connection's output queue, which the I/O thread writes when the client reads
(docs/design.md, "Output"). These tests are about what that buys: many slow
downloads at once do not stall a worker with few handler threads, a streamed
response to a client that stops reading is paused (and resumes), files leave
as file ranges costing no memory, and pipelined answers keep their order
whatever is still queued in front of them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import quote

from test_http_checklist import Conn, wait_for_file, worker_pid
from test_limits import many_fds, raw_socket, read_count, rss_bytes  # noqa: F401 (many_fds is a fixture)

MIB = 1 << 20


def hello_latency(server, conn: Conn) -> float:
    start = time.monotonic()
    conn.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
    response = conn.response()
    assert response.status == 200 and response.body == b"Hello, world!\n", response
    return time.monotonic() - start


def pollers(pid: int) -> set[int]:
    """Threads of the process waiting in poll(2) or select(2) (epoll_wait is not counted)."""
    found = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                wchan = f.read().strip()
        except OSError:
            continue
        if ("poll" in wchan or "select" in wchan) and "ep_poll" not in wchan and "epoll" not in wchan:
            found.add(int(tid))
    return found


class SlowReaders:
    """Clients each reading `per_round` bytes every `interval` seconds, on one thread, until stopped."""

    def __init__(self, socks: list[socket.socket], per_round: int, interval: float):
        self.socks, self.per_round, self.interval = socks, per_round, interval
        self.received = dict.fromkeys(range(len(socks)), 0)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            for i, sock in enumerate(self.socks):
                try:
                    self.received[i] += len(sock.recv(self.per_round, socket.MSG_DONTWAIT))
                except (BlockingIOError, TimeoutError):
                    pass  # nothing arrived for this one yet

    def __enter__(self) -> SlowReaders:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(10)


def test_thousands_of_slow_downloads_do_not_stall_the_worker(many_fds, start_server, tmp_path):  # noqa: F811
    """2,000 clients download a 1 MiB static file, each reading 16 KiB every 0.25 s (64 KiB/s), with 4
    handler threads. Meanwhile a normal request is answered at once (p99 under 50 ms), no thread of the
    worker waits in poll on a client socket, and the worker's memory grows by less than 2,000 connection
    structures and their bookkeeping (64 MiB): a file is queued as a range, not as bytes."""
    root = tmp_path / "files"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(MIB))
    server = start_server("apps:main", "--threads", "4", "--static", f"/files/={root}")
    pid = worker_pid(server)
    baseline_pollers = pollers(pid)
    rss_before = rss_bytes(pid)
    socks = []
    try:
        for _ in range(2000):
            sock = raw_socket(server, rcvbuf=16384)
            sock.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\n")
            socks.append(sock)
        with SlowReaders(socks, 16384, 0.25) as readers:
            time.sleep(1.0)
            seen_pollers = set()
            latencies = []
            with Conn(server, 10) as conn:
                for _ in range(100):
                    latencies.append(hello_latency(server, conn))
                    seen_pollers |= pollers(pid) - baseline_pollers
                    time.sleep(0.005)
            rss_during = rss_bytes(pid)
        started = sum(1 for n in readers.received.values() if n > 0)
        unfinished = sum(1 for n in readers.received.values() if n < MIB)
    finally:
        for sock in socks:
            sock.close()
    latencies.sort()
    p99 = latencies[98]
    print(
        f"slow downloads: hello p50 {latencies[50] * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms; RSS +"
        f"{(rss_during - rss_before) >> 20} MiB; {started} clients receiving, {unfinished} not done"
    )
    assert started >= 1900, f"only {started} of 2000 downloads had begun"
    assert unfinished >= 1000, "the downloads were not slow: the test measured nothing"
    assert p99 < 0.05, f"a normal request took {p99 * 1000:.1f} ms (p99) during the slow downloads"
    assert not seen_pollers, f"threads {sorted(seen_pollers)} waited in poll during the downloads"
    assert rss_during - rss_before < 64 * MIB, f"worker RSS grew by {(rss_during - rss_before) >> 20} MiB"
    with Conn(server, 10) as conn:
        hello_latency(server, conn)


def test_streamed_response_pauses_for_a_client_that_stops_and_resumes(start_server, tmp_path):
    """A 32 MiB generator in 64 KiB chunks, --write-buffer 256K: while the client reads nothing the iterator
    stops (what it produced is bounded by the write buffer plus the kernel's socket buffers) and stays
    stopped; when the client reads again it resumes, the body arrives whole, and close() is called once."""
    server = start_server("apps:main", "--write-buffer", "256K")
    record, count = str(tmp_path / "record"), str(tmp_path / "count")
    n = 512
    sock = raw_socket(server, rcvbuf=65536, timeout=20)
    with sock:
        sock.sendall(
            f"GET /stream?n={n}&record={quote(record)}&count={quote(count)} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
        )
        time.sleep(1.0)
        paused_at = read_count(count)
        time.sleep(1.0)
        still = read_count(count)
        assert 0 < paused_at < n // 2, f"{paused_at} of {n} chunks produced for a client that reads nothing"
        assert still == paused_at, f"still producing while the client reads nothing: {paused_at} then {still}"
        received = bytearray()
        while True:
            piece = sock.recv(1 << 20)
            if not piece:
                break
            received += piece
            head, sep, body = bytes(received[:4096]).partition(b"\r\n\r\n")
            if sep and len(received) - len(head) - 4 >= n * 65536:
                break
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) == n * 65536 and body.count(b"x") == n * 65536
    assert read_count(count) == n
    assert wait_for_file(record, lambda text: "close" in text) == "close\n", "close() not called exactly once"


def test_file_wrapper_download_does_not_hold_the_handler(start_server, tmp_path):
    """With one handler thread, a 16 MiB wsgi.file_wrapper download to a client that reads nothing is
    queued as a file range: the file is closed by the application at once, and the only handler thread
    answers other requests meanwhile. The download then completes."""
    path = tmp_path / "big.bin"
    data = os.urandom(16 * MIB)
    path.write_bytes(data)
    record = str(tmp_path / "record")
    server = start_server("apps:main", "--threads", "1")
    sock = raw_socket(server, rcvbuf=16384, timeout=20)
    with sock:
        sock.sendall(
            f"GET /raw_file?path={quote(str(path))}&record={quote(record)} HTTP/1.1\r\nHost: a\r\n\r\n".encode()
        )
        assert wait_for_file(record, lambda text: "file closed" in text) == "file closed\n", "read instead of sendfile"
        with Conn(server, 5) as conn:
            for _ in range(20):
                assert hello_latency(server, conn) < 1.0
        received = bytearray()
        while len(received) < 16 * MIB + 100:
            piece = sock.recv(1 << 20)
            if not piece:
                break
            received += piece
            if b"\r\n\r\n" in received[:4096] and len(received) - received.index(b"\r\n\r\n") - 4 >= 16 * MIB:
                break
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and body == data


def test_pipelined_answers_keep_their_order_behind_a_queued_one(start_server, tmp_path):
    """Pipelined: a 4 MiB static file, a small answer, a 4 MiB generated body, a C 404, a small answer,
    to a client that reads nothing for a second: the later answers wait behind what is still queued and
    arrive in the order of the requests."""
    root = tmp_path / "files"
    root.mkdir()
    big = os.urandom(4 * MIB)
    (root / "big.bin").write_bytes(big)
    server = start_server("apps:main", "--threads", "2", "--static", f"/files/={root}")
    requests = (
        b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /seq?1 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /stream?n=64 HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /files/missing.bin HTTP/1.1\r\nHost: a\r\n\r\n"
        b"GET /seq?2 HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    sock = raw_socket(server, rcvbuf=16384, timeout=20)
    with sock:
        sock.sendall(requests)
        time.sleep(1.0)
        conn = Conn(None, 20, sock=sock)
        first = conn.response()
        assert first.status == 200 and first.body == big
        assert conn.response().body == b"seq 1"
        third = conn.response()
        assert third.status == 200 and len(third.body) == 64 * 65536
        assert conn.response().status == 404
        assert conn.response().body == b"seq 2"


def test_client_gone_while_its_answer_is_queued(start_server, tmp_path):
    """Clients that vanish (reset) while their download is still queued: the worker frees the queue,
    counts balance at stop (checked by the fixture) and it goes on serving."""
    root = tmp_path / "files"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(4 * MIB))
    server = start_server("apps:main", "--threads", "2", "--static", f"/files/={root}")
    for _ in range(50):
        sock = raw_socket(server, rcvbuf=16384)
        sock.sendall(b"GET /files/big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /stream?n=64 HTTP/1.1\r\nHost: a\r\n\r\n")
        sock.recv(1000)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    with Conn(server, 5) as conn:
        hello_latency(server, conn)
