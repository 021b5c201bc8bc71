"""The master and its workers under signals, crashes, recycling and load.

Each test runs a real `python -m meltemi procapps:app` (see procapps.py: every
response body is the serving worker's pid) and bounds its own time.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import threading
import time
from collections import Counter

import pytest
from conftest import LISTEN_RE, ResponseReader

RETRYABLE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10.0):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def get(server, path: str = "/", timeout: float = 10.0) -> tuple[int, str]:
    """One request on a new connection."""
    if server.unix_path:
        conn = UnixHTTPConnection(server.unix_path, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def pid_of(body: str) -> int:
    found = re.fullmatch(r"pid=(\d+)", body)
    assert found, body
    return int(found.group(1))


class KeepAliveClient:
    """http.client on one kept-alive connection, which it reopens when the server closed it.

    A request that fails on a reused connection before any response byte
    arrived is retried once on a new connection, as browsers and HTTP
    libraries do for idempotent requests: the server may close an idle
    connection at any time (RFC 9112, section 9.3.1).
    """

    def __init__(self, server):
        self.server = server
        self.conn: http.client.HTTPConnection | None = None
        self.reused = False

    def get(self, path: str = "/") -> tuple[int, str]:
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=10)
                self.reused = False
            try:
                self.conn.request("GET", path)
                response = self.conn.getresponse()
                body = response.read().decode()
            except RETRYABLE:
                self.close()
                if attempt == 0 and self.reused:
                    continue
                raise
            self.reused = True
            if response.will_close:
                self.close()
            return response.status, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Load:
    """A few client threads sending requests until stopped: new connections and kept-alive ones."""

    def __init__(self, server, fresh: int = 2, keepalive: int = 2, limit: int = 20000):
        self.server = server
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.pids: list[tuple[float, int]] = []
        self.limit = limit
        self.threads = [threading.Thread(target=self._fresh, daemon=True) for _ in range(fresh)]
        self.threads += [threading.Thread(target=self._keepalive, daemon=True) for _ in range(keepalive)]
        for thread in self.threads:
            thread.start()

    def _record(self, outcome: tuple[int, str] | BaseException) -> None:
        with self.lock:
            if isinstance(outcome, BaseException):
                self.failures.append(repr(outcome))
            elif outcome[0] != 200:
                self.failures.append(f"status {outcome[0]}: {outcome[1]!r}")
            else:
                self.pids.append((time.monotonic(), pid_of(outcome[1])))
            if len(self.pids) + len(self.failures) >= self.limit:
                self.stop_event.set()

    def _fresh(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._record(get(self.server))
            except Exception as exc:
                self._record(exc)

    def _keepalive(self) -> None:
        client = KeepAliveClient(self.server)
        while not self.stop_event.is_set():
            try:
                self._record(client.get())
            except Exception as exc:
                self._record(exc)
        client.close()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(15)

    def count(self) -> int:
        with self.lock:
            return len(self.pids)


def worker_pids(server, start: int = 0) -> list[int]:
    return [int(pid) for pid in re.findall(r"Booting worker \d+ \(pid (\d+)\)", "\n".join(server.lines[start:]))]


def is_gone(pid: int) -> bool:
    """True once the process has exited (a zombie waiting for its reaper counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


# --- stopping -------------------------------------------------------------------


def test_sigterm_lets_a_slow_request_finish(start_server):
    server = start_server("procapps:app", "--graceful-timeout", "10")
    result: list = []
    client = threading.Thread(target=lambda: result.append(get(server, "/sleep?s=1")))
    client.start()
    time.sleep(0.3)  # the request is now inside the view
    started = time.monotonic()
    code = server.stop()
    client.join(10)
    assert code == 0, server.output
    assert result and result[0][0] == 200, (result, server.output)
    # The server waited for the request, and not much longer.
    assert time.monotonic() - started < 5
    server.assert_balanced()


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_refuses_new_connections_at_once(start_server, workers):
    """While a long request drains after SIGTERM, a new client is refused at once (ECONNREFUSED), not left
    in a backlog that nobody accepts from until the drain ends and then reset; the long request completes."""
    server = start_server("procapps:app", "--graceful-timeout", "10", workers=workers)
    if workers == 2:
        assert server.wait_for(r"Booting worker 2 \(pid")
    result: list = []
    client = threading.Thread(target=lambda: result.append(get(server, "/sleep?s=4")))
    client.start()
    time.sleep(0.5)  # the request is now inside the view
    server.signal(signal.SIGTERM)
    assert server.wait_for(r"stopping gracefully", timeout=5)

    def refused_now() -> bool:
        try:
            socket.create_connection((server.host, server.port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    # A worker sees the signal within its main thread's poll interval (0.25 s); then every client is refused.
    assert wait_until(refused_now, timeout=2, interval=0.05), "new connections still accepted 2 s into the drain"
    assert not result, "the long request ended before the check: the drain was not under way"
    refused = 0
    for _ in range(10):
        started = time.monotonic()
        try:
            socket.create_connection((server.host, server.port), timeout=5).close()
        except ConnectionRefusedError:
            refused += 1
            assert time.monotonic() - started < 0.5
    client.join(10)
    assert refused == 10, f"{10 - refused} of 10 new connections were accepted during the drain"
    assert result and result[0][0] == 200, (result, server.output)
    # Already stopping: wait for the exit (a second SIGTERM could reach a master that has restored the default
    # handlers on its way out).
    server.stopped = True
    assert server.proc.wait(15) == 0, server.output
    server._reader.join(5)
    server.assert_balanced()


def test_sigterm_with_nothing_in_flight_is_quick(start_server):
    server = start_server("procapps:app", "--log-level", "debug", workers=2)
    # A worker stopped while it boots just ends, without counters: wait until both accept.
    assert server.wait_for(r"Worker 1 \(pid \d+\) is ready") and server.wait_for(r"Worker 2 \(pid \d+\) is ready")
    assert get(server)[0] == 200
    started = time.monotonic()
    assert server.stop() == 0
    assert time.monotonic() - started < 3, server.output
    assert len(server.counters()) == 2
    server.assert_balanced()


def test_graceful_timeout_bounds_the_drain(start_server):
    server = start_server("procapps:app", "--graceful-timeout", "1")
    client = threading.Thread(target=lambda: _ignore_errors(get, server, "/sleep?s=30", 40), daemon=True)
    client.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.signal(signal.SIGTERM)
    server.proc.wait(15)
    server.stopped = True  # the drain was cut short: the counters are not expected to balance
    assert time.monotonic() - started < 6, server.output
    assert server.proc.returncode == 0, server.output


def _ignore_errors(function, *args):
    try:
        function(*args)
    except Exception:
        pass


def test_sigquit_stops_at_once(start_server):
    server = start_server("procapps:app", workers=2)
    assert get(server)[0] == 200
    started = time.monotonic()
    server.signal(signal.SIGQUIT)
    assert server.proc.wait(10) == 0, server.output
    server.stopped = True
    assert time.monotonic() - started < 3


def test_second_sigint_stops_at_once(start_server):
    server = start_server("procapps:app", "--graceful-timeout", "30")
    client = threading.Thread(target=lambda: _ignore_errors(get, server, "/sleep?s=20", 30), daemon=True)
    client.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.signal(signal.SIGINT)
    assert server.wait_for(r"Received SIGINT: stopping gracefully", timeout=5)
    time.sleep(0.3)
    assert server.proc.poll() is None  # still draining the slow request
    server.signal(signal.SIGINT)
    assert server.proc.wait(10) == 0, server.output
    server.stopped = True
    assert time.monotonic() - started < 5
    assert "Received SIGINT again: stopping now" in server.output


def test_workers_exit_when_the_master_dies(start_server):
    server = start_server("procapps:app", workers=2)
    server.wait_for(r"Booting worker 2 \(pid")
    pids = worker_pids(server)
    assert len(pids) == 2 and get(server)[0] == 200
    server.proc.kill()
    server.proc.wait(5)
    server.stopped = True
    assert wait_until(lambda: all(is_gone(pid) for pid in pids), timeout=10), server.output


# --- replacing workers -------------------------------------------------------------


def test_sighup_replaces_workers_without_failing_a_request(start_server):
    server = start_server("procapps:app", workers=2)
    server.wait_for(r"Booting worker 2 \(pid")
    old = set(worker_pids(server))
    load = Load(server, fresh=2, keepalive=2)
    try:
        assert wait_until(lambda: load.count() >= 50, timeout=10)
        for reload in (1, 2):
            server.signal(signal.SIGHUP)
            # Both old workers drain and exit while the load goes on.
            exits = 2 * reload
            assert wait_until(lambda n=exits: server.output.count("exited with code 0") >= n, timeout=15), server.output
            target = load.count() + 50
            assert wait_until(lambda n=target: load.count() >= n, timeout=10)
    finally:
        load.stop()
    assert load.failures == [], load.failures[:5]
    new = set(worker_pids(server)) - old
    assert len(new) == 4
    assert {pid for _, pid in load.pids[-20:]} <= new
    assert {pid_of(get(server)[1]) for _ in range(20)} <= new


def test_reload_into_broken_code_keeps_the_old_workers(start_server, tmp_path):
    flag = tmp_path / "broken"
    server = start_server("procapps:breakable()", "--log-level", "debug", workers=2, env={"PROCAPPS_BROKEN": str(flag)})
    assert server.wait_for(r"Worker 1 \(pid \d+\) is ready") and server.wait_for(r"Worker 2 \(pid \d+\) is ready")
    old = set(worker_pids(server))
    flag.touch()
    mark = len(server.lines)
    server.signal(signal.SIGHUP)
    for slot in (1, 2):
        pattern = rf"Worker {slot} \(pid \d+\) could not load the application; the previous worker goes on serving"
        assert server.wait_for(pattern, timeout=15, start=mark), server.output
    assert "ImportError: procapps is broken for now" in server.output
    assert {pid_of(get(server)[1]) for _ in range(10)} <= old
    # Once the code is fixed, a reload goes through.
    flag.unlink()
    server.signal(signal.SIGHUP)
    assert wait_until(lambda: server.output.count("exited with code 0") >= 2, timeout=15), server.output
    assert not {pid_of(get(server)[1]) for _ in range(10)} & old


def test_killed_worker_is_replaced(start_server):
    server = start_server("procapps:app", "--threads", "2")
    first = pid_of(get(server)[1])
    os.kill(first, signal.SIGKILL)
    # A connection made while the slot has no worker waits in the listening
    # socket's queue (the master keeps it open) and is served by the replacement.
    status, body = get(server, timeout=15)
    assert status == 200 and pid_of(body) != first
    assert re.search(rf"Worker 1 \(pid {first}\) was killed by SIGKILL unexpectedly", server.output)
    assert all(get(server)[0] == 200 for _ in range(5))


def test_killed_worker_under_load_the_other_keeps_answering(start_server):
    """kill -9 of one of two workers while four clients send requests: the other worker answers all along,
    the master boots a replacement that takes its share, and only requests that were on the killed worker's
    connections at that instant fail (each client thread can lose at most the one it had in flight)."""
    server = start_server("procapps:app", "--threads", "2", workers=2)
    server.wait_for(r"Booting worker 2 \(pid")
    load = Load(server, fresh=2, keepalive=2, limit=100000)
    try:
        assert wait_until(lambda: len({pid for _, pid in load.pids}) == 2, timeout=10), "both workers answer"
        victim, survivor = sorted({pid for _, pid in load.pids})
        mark = len(server.lines)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        assert server.wait_for(r"Booting worker \d+ \(pid", timeout=15, start=mark), server.output
        replacement = worker_pids(server, mark)[0]
        assert wait_until(lambda: any(pid == replacement for _, pid in load.pids), timeout=10)
        replaced_at = time.monotonic()
        target = load.count() + 200
        assert wait_until(lambda: load.count() >= target, timeout=15)
    finally:
        load.stop()
    with load.lock:
        gap = [pid for t, pid in load.pids if killed_at <= t <= replaced_at]
        failures = list(load.failures)
    assert gap.count(survivor) >= 1, "no request was answered while the killed worker was being replaced"
    assert len(failures) <= 4, failures
    assert all("status" not in failure for failure in failures), failures
    print(f"kill -9 under load: {load.count()} answered, {len(failures)} failed, {len(gap)} in the gap")


def test_worker_that_keeps_crashing_is_restarted_with_backoff(start_server):
    server = start_server("procapps:app")
    for _ in range(3):
        mark = len(server.lines)
        pid = pid_of(get(server, timeout=15)[1])
        os.kill(pid, signal.SIGKILL)
        assert server.wait_for(r"Booting worker 1 \(pid", timeout=15, start=mark)
    assert "keeps dying; starting it again in" in server.output
    assert get(server, timeout=15)[0] == 200


def test_max_requests_recycles_workers_without_failures(start_server):
    server = start_server("procapps:app", "--max-requests", "5", "--max-requests-jitter", "2", workers=2)
    failures = []
    pids = Counter()
    deadline = time.monotonic() + 20
    while len(pids) < 4 and time.monotonic() < deadline:
        try:
            status, body = get(server)
        except Exception as exc:
            failures.append(repr(exc))
            continue
        if status != 200:
            failures.append(status)
        else:
            pids[pid_of(body)] += 1
        time.sleep(0.01)
    assert failures == []
    assert len(pids) >= 4, (pids, server.output)
    assert "reached max-requests: replacing it" in server.output


# --- serving ---------------------------------------------------------------------


def test_keepalive_connections_spread_over_workers(start_server):
    server = start_server("procapps:app", workers=2)
    server.wait_for(r"Booting worker 2 \(pid")
    time.sleep(0.5)  # both workers accepting
    per_connection = []
    clients = [KeepAliveClient(server) for _ in range(20)]
    try:
        for client in clients:
            seen = {pid_of(client.get()[1]) for _ in range(3)}
            per_connection.append(seen)
    finally:
        for client in clients:
            client.close()
    # A kept-alive connection stays with its worker...
    assert all(len(seen) == 1 for seen in per_connection), per_connection
    # ...and the kernel spreads the connections over both workers (SO_REUSEPORT).
    # For a fair coin, fewer than 3 of 20 on one side has a chance below 1 in 2500.
    spread = Counter(next(iter(seen)) for seen in per_connection)
    assert len(spread) == 2 and min(spread.values()) >= 3, spread


def test_blocking_view_does_not_stall_the_worker(start_server):
    server = start_server("procapps:app", "--threads", "4")
    slow: list = []
    threads = [threading.Thread(target=lambda: slow.append(get(server, "/sleep?s=2"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    for _ in range(5):
        assert get(server)[0] == 200
    assert time.monotonic() - started < 1.0
    for thread in threads:
        thread.join(10)
    assert [status for status, _ in slow] == [200, 200]


def test_unix_socket(start_server, tmp_path):
    path = tmp_path / "meltemi.sock"
    # A socket file left behind by a server that died is replaced.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()
    server = start_server("procapps:app", bind=f"unix:{path}", workers=2)
    assert server.unix_path == str(path)
    assert oct(path.stat().st_mode & 0o777) == oct(0o660)
    for _ in range(4):
        status, body = get(server)
        assert status == 200 and pid_of(body)
    sock = server.connect()
    sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ResponseReader(sock).read_response().status == 200
    sock.close()
    assert server.stop() == 0
    server.assert_balanced()
    assert not path.exists()


def test_unix_socket_in_use_is_refused(start_server, tmp_path):
    path = tmp_path / "meltemi.sock"
    first = start_server("procapps:app", bind=f"unix:{path}")
    second = _run_to_exit(["procapps:app", "--bind", f"unix:{path}"])
    assert second.returncode == 1
    assert f"meltemi: error: cannot bind unix:{path}: address already in use" in second.stderr
    assert get(first)[0] == 200


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback")
def test_ipv6(start_server):
    server = start_server("procapps:app", bind="[::1]:0")
    assert re.search(rf"Listening at http://\[::1\]:{server.port}\b", server.output)
    assert server.host == "::1"
    assert get(server)[0] == 200


def test_several_binds(start_server, tmp_path):
    path = tmp_path / "m.sock"
    server = start_server("procapps:app", "--bind", "127.0.0.1:0", "--bind", f"unix:{path}", bind=None, workers=2)
    server.wait_for(r"Booting worker 2")
    listening = [LISTEN_RE.search(line) for line in server.lines]
    listening = [found for found in listening if found]
    assert len(listening) == 2, server.output
    assert listening[1].group(3) == str(path)
    assert get(server)[0] == 200
    server.unix_path = str(path)
    assert get(server)[0] == 200


def test_port_taken_by_another_meltemi_is_refused(start_server):
    # Every worker socket has SO_REUSEPORT; without the probe bind, a second
    # server would silently share the port with the first.
    first = start_server("procapps:app", workers=2)
    second = _run_to_exit(["procapps:app", "--bind", f"127.0.0.1:{first.port}"])
    assert second.returncode == 1
    assert f"meltemi: error: cannot bind 127.0.0.1:{first.port}: address already in use" in second.stderr
    assert get(first)[0] == 200


def _run_to_exit(args: list[str]):
    from test_cli import meltemi

    return meltemi(*args, timeout=15)


def test_repeated_sigterm_while_the_master_exits_keeps_exit_code_zero(start_server):
    """A supervisor that sends SIGTERM again and again (as some do while they wait) must not catch the master
    between its workers' exit and its own with default signal handlers: the exit code stays 0, not -15."""
    server = start_server("procapps:app", workers=2)
    assert get(server)[0] == 200
    deadline = time.monotonic() + 15
    while server.proc.poll() is None and time.monotonic() < deadline:
        try:
            server.proc.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            break
        time.sleep(0.0005)
    server.stopped = True
    assert server.proc.wait(5) == 0, server.output
