"""Prometheus metrics (option `metrics`): real servers with two workers, raw sockets, exact counts.

Every request is sent on its own connection with `Connection: close` and
read until the server closes it: the server counts a request before it
closes the connection, so once the client has seen the close, the count is
in, and the bytes each side sent are known to the byte. The exposition is
parsed with prometheus_client's own text parser.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import ROOT, TESTS, ft_needs
from prometheus_client.parser import text_string_to_metric_families

APP = ("logapps:app", "--api", "logapps:api", "--threads", "2")
METRICS_RE = re.compile(r"Metrics at (http://\S+)")
BOOT_RE = re.compile(r"Booting worker (\d+) \(pid (\d+)\)")


@pytest.fixture
def static_dir(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (root / "a.txt").write_text("hello static\n")
    return root


def start(start_server, static_dir, *extra: str, workers: int = 2):
    server = start_server(
        *APP,
        "--static",
        f"/s={static_dir}",
        "--metrics",
        "127.0.0.1:0",
        "--log-level",
        "debug",
        *extra,
        workers=workers,
    )
    found = server.wait_for(METRICS_RE)
    assert found, server.output
    wait_ready(server, workers)
    return server, found.group(1)


def wait_ready(server, workers: int, start: int = 0) -> None:
    """Until `workers` workers (from output line `start` on) reported ready (the master logs it at debug level)."""
    for _ in range(workers):
        found = server.wait_for(r"Worker \d+ \(pid \d+\) is ready", timeout=20, start=start)
        assert found, server.output
        start = next(i for i in range(start, len(server.lines)) if found.group(0) in server.lines[i]) + 1


def exchange(server, raw: bytes) -> tuple[int, int, int]:
    """Sends one raw request, reads until the server closes; returns (status, bytes sent, bytes received)."""
    sock = server.connect()
    try:
        sock.sendall(raw)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    return int(data.split(b" ", 2)[1]), len(raw), len(data)


def request(method: str, path: str) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n".encode()


def scrape(url: str) -> tuple[str, dict]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def requests_by_series(samples: dict) -> dict[tuple, float]:
    return {labels: v for (name, labels), v in samples.items() if name == "meltemi_requests_total"}


def listening_ports(pid: int) -> set[int]:
    """The TCP ports a process holds listening sockets on (/proc/net/tcp{,6} and its descriptors)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


# What the test sends: (method, path, expected status, route label).
EXCHANGES = [
    *[("GET", "/s/a.txt", 200, "static")] * 5,  # static file, answered by the I/O thread in C
    ("GET", "/s/missing.txt", 404, "static"),  # the static handler's own 404, in C
    *[("GET", "/api/items/1", 200, "/api/items/{n}")] * 3,  # API route, Python
    *[("GET", "/api/items/x", 422, "/api/items/{n}")] * 2,  # the router's 422, in C
    *[("POST", "/api/items/1", 405, "/api/items/{n}")] * 2,  # the router's 405, in C
    ("GET", "/api/health", 200, "/api/health"),  # constant route, in C
    *[("GET", "/id", 200, "wsgi")] * 2,  # WSGI application
    *[("GET", "/nope", 404, "wsgi")] * 4,  # WSGI application's 404
]


@ft_needs("msgspec")  # the application mounts a typed API
def test_exact_counts_by_route_and_status_class(start_server, static_dir):
    server, url = start(start_server, static_dir)
    expected: dict[tuple[str, str], int] = {}
    sent = received = 0
    for method, path, status, route in EXCHANGES:
        got, n_out, n_in = exchange(server, request(method, path))
        assert got == status, (method, path)
        sent += n_out
        received += n_in
        key = (route, f"{status // 100}xx")
        expected[key] = expected.get(key, 0) + 1
    # A protocol error: answered by the server itself, before any routing.
    got, n_out, n_in = exchange(server, b"GARBAGE\r\n\r\n")
    assert got == 400
    sent += n_out
    received += n_in
    expected[("server", "4xx")] = 1

    text, samples = scrape(url)
    counted = {(dict(labels)["route"], dict(labels)["status"]): v for labels, v in requests_by_series(samples).items()}
    assert counted == expected, text
    total = sum(expected.values())
    for route in {route for route, _ in expected}:
        per_route = sum(n for (r, _), n in expected.items() if r == route)
        assert value(samples, "meltemi_request_duration_seconds_count", route=route) == per_route
        assert value(samples, "meltemi_request_duration_seconds_bucket", route=route, le="+Inf") == per_route
        if route != "server":  # a request refused before its head was complete has no duration: 0
            assert value(samples, "meltemi_request_duration_seconds_sum", route=route) > 0
    histogram = sum(v for (name, _), v in samples.items() if name == "meltemi_request_duration_seconds_count")
    assert histogram == total
    assert value(samples, "meltemi_received_bytes_total") == sent
    assert value(samples, "meltemi_sent_bytes_total") == received
    assert value(samples, "meltemi_connections_accepted_total") == len(EXCHANGES) + 1
    assert value(samples, "meltemi_workers") == 2
    for reason in ("crash", "reload", "max-requests", "max-rss", "lifetime", "boot-timeout"):
        assert value(samples, "meltemi_worker_restarts_total", reason=reason) == 0
    rss = [v for (name, _), v in samples.items() if name == "meltemi_worker_resident_memory_bytes"]
    assert len(rss) == 2 and all(v > 1 << 20 for v in rss)
    assert 0 < value(samples, "process_start_time_seconds") <= time.time()

    # Buckets are cumulative and end at the count.
    for route in {route for route, _ in expected}:
        buckets = [
            (float(dict(labels)["le"]), v)
            for (name, labels), v in samples.items()
            if name == "meltemi_request_duration_seconds_bucket" and dict(labels)["route"] == route
        ]
        buckets.sort()
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        assert buckets[-1][0] == float("inf")


@ft_needs("msgspec")  # the application mounts a typed API
def test_exposition_format(start_server, static_dir):
    server, url = start(start_server, static_dir, workers=1)
    exchange(server, request("GET", "/s/a.txt"))
    text, _ = scrape(url)
    lines = text.splitlines()
    assert text.endswith("\n")
    helps = [line.split()[2] for line in lines if line.startswith("# HELP ")]
    types = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    assert helps == types and len(set(types)) == len(types), "one HELP and one TYPE per family"
    assert 'meltemi_request_duration_seconds_bucket{route="static",le="+Inf"} 1' in lines
    assert "# TYPE meltemi_request_duration_seconds histogram" in lines
    # Only GET and HEAD of /metrics.
    host, port = url.split("//")[1].split("/")[0].rsplit(":", 1)
    for raw, status in (
        (b"HEAD /metrics HTTP/1.1\r\nHost: m\r\n\r\n", 200),
        (b"GET /other HTTP/1.1\r\nHost: m\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n", 405),
        (b"nonsense\r\n\r\n", 400),
    ):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(raw)
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        assert data.startswith(f"HTTP/1.1 {status} ".encode()), data[:100]
        if raw.startswith(b"HEAD"):
            assert data.endswith(b"\r\n\r\n")


def test_label_values_are_escaped():
    from meltemi.metrics import escape_label

    assert escape_label('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


@ft_needs("msgspec")  # the application mounts a typed API
def test_killed_worker_is_replaced_and_nothing_goes_backwards(start_server, static_dir):
    server, url = start(start_server, static_dir)
    for _ in range(6):
        exchange(server, request("GET", "/s/a.txt"))
        exchange(server, request("GET", "/id"))
    _, before = scrape(url)
    assert value(before, "meltemi_requests_total", route="static", status="2xx") == 6
    pids = {int(m.group(2)) for m in BOOT_RE.finditer(server.output)}
    assert len(pids) == 2
    mark = len(server.lines)
    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    assert server.wait_for(BOOT_RE, start=mark), server.output
    wait_ready(server, 1, start=mark)
    _, after = scrape(url)
    assert value(after, "meltemi_worker_restarts_total", reason="crash") == 1
    for series, count in requests_by_series(before).items():
        assert requests_by_series(after).get(series, 0) == count, series
    for name in ("meltemi_received_bytes_total", "meltemi_sent_bytes_total"):
        assert value(after, name) >= value(before, name)
    assert value(after, "meltemi_workers") == 2
    rss_pids = {dict(labels)["pid"] for (name, labels), _ in after.items() if name.endswith("resident_memory_bytes")}
    assert str(victim) not in rss_pids
    # The replacement counts on top of what the dead worker left.
    for _ in range(4):
        exchange(server, request("GET", "/s/a.txt"))
    _, later = scrape(url)
    assert value(later, "meltemi_requests_total", route="static", status="2xx") == 10


@ft_needs("msgspec")  # the application mounts a typed API
def test_reload_counts_a_restart_per_worker_and_keeps_the_counts(start_server, static_dir):
    server, url = start(start_server, static_dir)
    for _ in range(3):
        exchange(server, request("GET", "/api/health"))
    mark = len(server.lines)
    server.signal(signal.SIGHUP)
    for _ in range(2):
        assert server.wait_for(r"which now drains", start=mark), server.output
        mark = len(server.lines)
    _, samples = scrape(url)
    assert value(samples, "meltemi_worker_restarts_total", reason="reload") == 2
    assert value(samples, "meltemi_requests_total", route="/api/health", status="2xx") == 3


@ft_needs("msgspec")  # the application mounts a typed API
def test_recycled_worker_counts_a_restart_and_keeps_its_counts(start_server, static_dir):
    server, url = start(start_server, static_dir, "--max-requests", "3", workers=1)
    first = int(BOOT_RE.search(server.output).group(2))
    for _ in range(5):  # the worker asks to be replaced after its third
        exchange(server, request("GET", "/id"))
    assert server.wait_for(rf"Worker 1 \(pid {first}\) exited with code 0"), server.output
    _, samples = scrape(url)
    assert value(samples, "meltemi_worker_restarts_total", reason="max-requests") >= 1
    assert value(samples, "meltemi_worker_restarts_total", reason="crash") == 0
    assert value(samples, "meltemi_requests_total", route="wsgi", status="2xx") == 5


@ft_needs("msgspec")  # the application mounts a typed API
def test_gauges_show_requests_in_flight_and_queued(start_server):
    server = start_server("apps:main", "--threads", "1", "--metrics", "127.0.0.1:0", "--log-level", "debug", workers=1)
    url = server.wait_for(METRICS_RE).group(1)
    wait_ready(server, 1)
    socks = []
    try:
        for _ in range(3):
            sock = server.connect()
            sock.sendall(request("GET", "/sleep?s=1.5"))
            socks.append(sock)
        time.sleep(0.7)  # the I/O thread stores its gauges at least every 250 ms
        _, samples = scrape(url)
        assert value(samples, "meltemi_open_connections") == 3
        assert value(samples, "meltemi_requests_in_flight") == 3  # one running, two waiting
        assert value(samples, "meltemi_handler_queue_depth") == 2
    finally:
        for sock in socks:
            sock.settimeout(10)
            while sock.recv(65536):
                pass
            sock.close()
    time.sleep(0.6)
    _, samples = scrape(url)
    assert value(samples, "meltemi_requests_in_flight") == 0
    assert value(samples, "meltemi_handler_queue_depth") == 0


def test_asgi_application_is_counted_under_its_own_label(start_server):
    """An ASGI application's answers (HTTP, a WebSocket's 101) are counted as route="asgi", as WSGI's are "wsgi"."""
    from websockets.sync.client import connect

    server = start_server("asgiapps:ws_app", "--metrics", "127.0.0.1:0", "--log-level", "debug", workers=1)
    url = server.wait_for(METRICS_RE).group(1)
    wait_ready(server, 1)
    for _ in range(3):
        assert exchange(server, request("GET", "/any"))[0] == 200
    with connect(f"ws://127.0.0.1:{server.port}/echo", open_timeout=10) as ws:
        ws.send("hi")
        assert ws.recv(timeout=10) == "hi"
    assert exchange(server, b"GET / HTTP/1.1\r\nHost: test\r\nContent-Length: x\r\n\r\n")[0] == 400
    deadline = time.monotonic() + 10
    while True:
        _, samples = scrape(url)
        if value(samples, "meltemi_requests_total", route="asgi", status="1xx") == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert value(samples, "meltemi_requests_total", route="asgi", status="2xx") == 3
    assert value(samples, "meltemi_requests_total", route="asgi", status="1xx") == 1
    assert value(samples, "meltemi_requests_total", route="server", status="4xx") == 1  # the parser's own 400
    assert value(samples, "meltemi_requests_total", route="wsgi", status="2xx") == 0


@ft_needs("msgspec")  # the application mounts a typed API
def test_metrics_are_off_by_default(start_server):
    server = start_server("logapps:app", "--log-level", "debug", workers=2)
    wait_ready(server, 2)
    assert "Metrics at" not in server.output
    assert listening_ports(server.proc.pid) == {server.port}


@ft_needs("msgspec")  # the application mounts a typed API
def test_metrics_listener_is_the_masters_alone(start_server, static_dir):
    server, url = start(start_server, static_dir)
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    assert listening_ports(server.proc.pid) == {server.port, port}
    for m in BOOT_RE.finditer(server.output):
        assert port not in listening_ports(int(m.group(2))), "a worker kept the metrics socket"


def meltemi(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "meltemi", "logapps:app", "--bind", "127.0.0.1:0", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        stdin=subprocess.DEVNULL,
        timeout=20,
    )


@pytest.mark.parametrize("bad", ["unix:/tmp/m.sock", "9090", "localhost:99999"])
def test_bad_metrics_address_is_one_line(bad):
    result = meltemi("--metrics", bad)
    assert result.returncode == 2
    assert result.stderr == f"meltemi: error: --metrics: expected HOST:PORT, [IPV6]:PORT or 'off', got {bad!r}\n"


def test_metrics_port_in_use_is_one_line():
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    port = blocker.getsockname()[1]
    try:
        result = meltemi("--metrics", f"127.0.0.1:{port}")
    finally:
        blocker.close()
    assert result.returncode == 1
    assert result.stderr.endswith(f"meltemi: error: --metrics: cannot bind 127.0.0.1:{port}: address already in use\n")
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr


def test_metrics_setting_in_django_and_environment():
    from meltemi.config import Address, resolve

    assert resolve({}, {}, None).metrics is None
    assert resolve({}, {}, {"METRICS": "127.0.0.1:9100"}).metrics == Address("127.0.0.1", 9100)
    assert resolve({}, {"MELTEMI_METRICS": "off"}, {"METRICS": "127.0.0.1:9100"}).metrics is None
    assert resolve({"metrics": "[::1]:9100"}, {}, None).metrics == Address("::1", 9100)
