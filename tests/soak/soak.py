"""`make soak`: about a million requests of a mixed load against one meltemi, then a verdict.

    .venv/bin/python tests/soak/soak.py [--requests 1000000] [--clients 2] [--workers 2]

The mix, repeated by each client process until its share of requests is done
(every request counts once, whether it was answered or cut on purpose):

- keep-alive: 100 requests one after the other on one connection;
- pipelining: 200 requests in one write, then their 200 responses;
- uploads: 64 KiB bodies with Content-Length and chunked, the digest checked;
- downloads: 256 KiB streamed bodies, the length checked;
- malformed requests (smuggling shapes, bad chunking, bare LF, oversized
  heads), each on a new connection: a 4xx and a close are expected;
- disconnects: a client that resets in the middle of its upload, and one that
  resets in the middle of a 4 MiB download.

The server's workers are measured (RSS, open descriptors) after a warm-up and
at the end; the end is measured after the lingering connections had time to
close. The run fails on an unexpected answer, a worker that died or was
replaced, a traceback in the server's log, descriptors that grew by more than
4, RSS that grew by more than 16 MiB per worker, a stream whose close() was not
called, or debug counters that do not balance at the stop. Loopback only;
the load is bounded by the number of client processes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "py"))

from conftest import Server  # noqa: E402 - the path is set just above

HELLO = b"GET /hello HTTP/1.1\r\nHost: soak\r\n\r\n"
UPLOAD = os.urandom(65536)
UPLOAD_DIGEST = f"{len(UPLOAD)} {hashlib.sha256(UPLOAD).hexdigest()[:16]}".encode()
DOWNLOAD = 256 * 1024
RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"  # SO_LINGER on, 0 s: close() sends a reset

MALFORMED = [
    b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
    b"POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
    b"GET /hello HTTP/1.1\nHost: a\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    b"GET /hello HTTP/2.0\r\nHost: a\r\n\r\n",
    b"GET /hello HTTP/1.1\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /hello HTTP/1.1\r\nHost: a\r\n" + b"X-Big: " + b"b" * 17000 + b"\r\n\r\n",
]


class Failure(Exception):
    pass


class Reader:
    """Just enough of an HTTP/1.1 response parser: status, Content-Length or chunked bodies."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = b""

    def fill(self) -> bool:
        data = self.sock.recv(262144)
        self.buf += data
        return bool(data)

    def head(self) -> tuple[int, dict[bytes, bytes]]:
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            if not self.fill():
                raise Failure(f"closed before a response head: {self.buf[:200]!r}")
        head, self.buf = self.buf[:end], self.buf[end + 4 :]
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        return status, fields

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self.fill():
                raise Failure("closed inside a response body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self) -> tuple[int, bytes]:
        status, fields = self.head()
        if b"content-length" in fields:
            return status, self.exact(int(fields[b"content-length"]))
        if fields.get(b"transfer-encoding") == b"chunked":
            parts = []
            while True:
                while (end := self.buf.find(b"\r\n")) < 0:
                    if not self.fill():
                        raise Failure("closed inside a chunked body")
                size = int(self.buf[:end].split(b";")[0], 16)
                self.buf = self.buf[end + 2 :]
                if size == 0:
                    self.exact(2)
                    return status, b"".join(parts)
                parts.append(self.exact(size))
                self.exact(2)
        raise Failure(f"response without framing: {fields}")


def connect(port: int, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def expect(status: int, body: bytes, want_status: int, want_body: bytes | None = None) -> None:
    if status != want_status or (want_body is not None and body != want_body):
        raise Failure(f"got {status} {body[:100]!r}, wanted {want_status} {want_body!r}")


def keepalive(port: int) -> int:
    with connect(port) as sock:
        reader = Reader(sock)
        for _ in range(100):
            sock.sendall(HELLO)
            expect(*reader.response(), 200, b"Hello, world!")
    return 100


def pipelined(port: int) -> int:
    with connect(port) as sock:
        sock.sendall(HELLO * 200)
        reader = Reader(sock)
        for _ in range(200):
            expect(*reader.response(), 200, b"Hello, world!")
    return 200


def uploads(port: int) -> int:
    head = b"POST /upload HTTP/1.1\r\nHost: soak\r\n"
    chunked = b"".join(
        b"%x\r\n%s\r\n" % (len(UPLOAD[i : i + 10000]), UPLOAD[i : i + 10000]) for i in range(0, 65536, 10000)
    )
    with connect(port) as sock:
        reader = Reader(sock)
        for _ in range(5):
            sock.sendall(head + b"Content-Length: %d\r\n\r\n" % len(UPLOAD) + UPLOAD)
            expect(*reader.response(), 200, UPLOAD_DIGEST)
            sock.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n" + chunked + b"0\r\n\r\n")
            expect(*reader.response(), 200, UPLOAD_DIGEST)
    return 10


def downloads(port: int) -> int:
    with connect(port) as sock:
        reader = Reader(sock)
        for _ in range(5):
            sock.sendall(b"GET /download?n=%d HTTP/1.1\r\nHost: soak\r\n\r\n" % DOWNLOAD)
            status, body = reader.response()
            expect(status, b"", 200, None)
            if len(body) != DOWNLOAD:
                raise Failure(f"download of {len(body)} bytes instead of {DOWNLOAD}")
    return 5


def malformed(port: int) -> int:
    for request in MALFORMED:
        with connect(port) as sock:
            try:
                sock.sendall(request)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before all was sent; the answer is still to be read
            reader = Reader(sock)
            try:
                status, _ = reader.response()
            except ConnectionResetError:
                raise Failure(f"reset instead of an answer to {request[:60]!r}") from None
            if not 400 <= status < 600:
                raise Failure(f"{status} for malformed {request[:60]!r}")
            # The server closes: framing it cannot trust ends the connection.
            try:
                while reader.fill():
                    pass
            except ConnectionResetError:
                pass
    return len(MALFORMED)


def disconnects(port: int) -> int:
    for _ in range(2):
        sock = connect(port)
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: soak\r\nContent-Length: 1000000\r\n\r\n" + UPLOAD[:30000])
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        sock.close()
        sock = connect(port, rcvbuf=65536)
        sock.sendall(b"GET /download?n=%d HTTP/1.1\r\nHost: soak\r\n\r\n" % (4 << 20))
        if not sock.recv(65536).startswith(b"HTTP/1.1 200 "):
            raise Failure("download did not start")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET)
        sock.close()
    return 4


# Steps of one round and how often each runs in it: the cheap requests make up the bulk.
ROUND = [(keepalive, 4), (pipelined, 2), (uploads, 3), (downloads, 2), (malformed, 2), (disconnects, 3)]


def client(index: int, port: int, budget: int, queue) -> None:
    done, errors, counts = 0, [], {}
    while done < budget:
        for step, times in ROUND:
            for _ in range(times):
                try:
                    n = step(port)
                except (Failure, OSError, ValueError) as exc:
                    errors.append(f"{step.__name__}: {type(exc).__name__}: {exc}")
                    n = 1
                done += n
                counts[step.__name__] = counts.get(step.__name__, 0) + n
            if len(errors) > 20:
                break
        if len(errors) > 20:
            break
        queue.put(("progress", index, done))
    queue.put(("done", index, {"requests": done, "errors": errors, "counts": counts}))


def measure(pid: int) -> dict:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def workers(server: Server) -> list[int]:
    return [int(p) for p in re.findall(r"Booting worker \d+ \(pid (\d+)\)", server.output)]


def closed_streams(port: int) -> tuple[int, int]:
    """Streams started and closed, summed over the workers that answer `/closed` on new connections."""
    seen = {}
    for _ in range(200):
        with connect(port) as sock:
            sock.sendall(b"GET /closed HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n")
            status, body = Reader(sock).response()
        seen[body] = True
    return seen


def run_load(port: int, total: int, clients: int) -> dict:
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=client, args=(i, port, total // clients, queue)) for i in range(clients)]
    for proc in procs:
        proc.start()
    results, progress, last = [], {}, 0.0
    start = time.monotonic()
    while len(results) < clients:
        kind, index, value = queue.get(timeout=1800)
        if kind == "done":
            results.append(value)
            progress[index] = value["requests"]
        else:
            progress[index] = value
        now = time.monotonic()
        if now - last > 15:
            last = now
            print(f"soak: {now - start:5.0f} s, {sum(progress.values())} of {total} requests", flush=True)
    for proc in procs:
        proc.join(30)
    elapsed = time.monotonic() - start
    counts = {}
    for r in results:
        for k, v in r["counts"].items():
            counts[k] = counts.get(k, 0) + v
    return {
        "requests": sum(r["requests"] for r in results),
        "errors": [e for r in results for e in r["errors"]],
        "counts": counts,
        "seconds": round(elapsed, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    server = Server(
        ["soakapp:app", "--bind", "127.0.0.1:0", "--workers", str(args.workers)],
        env={"PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), str(ROOT)])},
    )
    failures = []
    try:
        deadline = time.monotonic() + 15
        while len(workers(server)) < args.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        pids = workers(server)
        warmup = run_load(server.port, max(2000, args.requests // 50), args.clients)
        time.sleep(3)  # lingering closes of the warm-up's disconnects end (linger: 2 s)
        before = {pid: measure(pid) for pid in pids}
        print(f"soak: after warm-up {json.dumps(before)}", flush=True)
        result = run_load(server.port, args.requests, args.clients)
        time.sleep(3)
        after = {pid: measure(pid) for pid in pids if os.path.exists(f"/proc/{pid}")}
        streams = closed_streams(server.port)
        if workers(server) != pids:
            failures.append(f"workers replaced or restarted: {pids} -> {workers(server)}")
        for pid in pids:
            if pid not in after:
                failures.append(f"worker {pid} died")
                continue
            grown_fds = after[pid]["fds"] - before[pid]["fds"]
            grown_rss = after[pid]["rss_kib"] - before[pid]["rss_kib"]
            if grown_fds > 4:
                failures.append(f"worker {pid}: {grown_fds} more open descriptors")
            if grown_rss > 16 * 1024:
                failures.append(f"worker {pid}: RSS grew by {grown_rss} KiB")
        for body in streams:
            started, closed = map(int, body.split())
            if started != closed:
                failures.append(f"a worker started {started} streams and closed {closed}")
        failures += [f"client: {e}" for e in result["errors"] + warmup["errors"]]
    finally:
        code = server.stop(timeout=60)
    if code != 0:
        failures.append(f"meltemi exited with {code}")
    tracebacks = server.output.count("Traceback")
    if tracebacks:
        failures.append(f"{tracebacks} tracebacks in the server's log")
    try:
        server.assert_balanced()
    except AssertionError as exc:
        failures.append(f"debug counters: {exc}")
    report = {
        "requests": result["requests"] if "result" in locals() else 0,
        "seconds": result["seconds"] if "result" in locals() else 0,
        "mix": result["counts"] if "result" in locals() else {},
        "warmup_requests": warmup["requests"] if "warmup" in locals() else 0,
        "before": before if "before" in locals() else {},
        "after": after if "after" in locals() else {},
        "streams": [body.decode() for body in streams] if "streams" in locals() else [],
        "counters": server.counters(),
        "failures": failures,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print("soak: PASSED" if not failures else "soak: FAILED", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
