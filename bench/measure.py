"""Running a server pinned to core 0, checking its answer, and loading it from core 1 with wrk.

CPU time per request comes from /proc/<pid>/stat (utime + stime) summed over
the server's process tree, before and after each measured run.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .envs import Env
from .scenarios import CheckError, Scenario

SERVER_CPU = "0"
CLIENT_CPU = "1"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# wrk prints its figures through this script's done() as one JSON line; the
# scenario's method, body and headers are set above it.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, "write": %d, '
    .. '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "p999_us": %d, '
    .. '"max_us": %d, "mean_us": %.1f}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max, latency.mean))
end
"""


def lua_string(value: str | bytes) -> str:
    if isinstance(value, bytes):
        value = value.decode()
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for this ASCII text


def wrk_script(scenario: Scenario, directory: Path) -> Path:
    lines = [f"wrk.method = {lua_string(scenario.method)}"]
    if scenario.body is not None:
        lines.append(f"wrk.body = {lua_string(scenario.body)}")
    for name, value in scenario.headers.items():
        lines.append(f"wrk.headers[{lua_string(name)}] = {lua_string(value)}")
    path = directory / f"{scenario.name}.lua"
    path.write_text("\n".join(lines) + "\n" + WRK_DONE)
    return path


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(start: int = 20100) -> int:
    for port in range(start, 21000):
        if port_is_free(port):
            return port
    raise RuntimeError("no free port in 20100-20999")


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / CLK_TCK


@dataclass
class Request:
    status: int
    headers: dict[str, str]
    body: bytes


def fetch(port: int, scenario: Scenario, path: str, timeout: float = 5.0) -> Request:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(scenario.method, path, body=scenario.body, headers=scenario.headers)
        response = conn.getresponse()
        body = response.read()
        return Request(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def check(port: int, scenario: Scenario, path: str) -> Request:
    """The server's answer, if it is the expected one; CheckError otherwise."""
    for _ in range(scenario.prime):
        fetch(port, scenario, path)
    answer = fetch(port, scenario, path)
    if answer.status != scenario.status:
        raise CheckError(f"status {answer.status}, expected {scenario.status}: {answer.body[:120]!r}")
    scenario.check(answer.status, answer.headers, answer.body)
    return answer


class ServerProcess:
    """A server started in the environment, pinned to core 0, in its own process group."""

    def __init__(self, env: Env, argv: list[str], variables: dict[str, str], cwd: Path, log_path: Path):
        self.log_path = log_path
        self.log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        if env.mode == "root":
            cmd = [*env.prefix(), "/usr/bin/env", "-C", str(cwd), *(f"{k}={v}" for k, v in variables.items()), *argv]
            process_env = None
        else:
            cmd = argv
            process_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **variables}
            # Under `make test-sanitized` the servers are instrumented too: the
            # sanitizer runtime must stay preloaded, with its options.
            for name in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "PYTHONMALLOC"):
                if name in os.environ:
                    process_env[name] = os.environ[name]
        self.command = cmd
        self.process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *cmd],
            cwd=None if env.mode == "root" else cwd,
            env=process_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_ready(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.process.returncode}: {self.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            # Pin every thread of every process of the tree (some servers make their threads first).
            for pid in process_tree(self.pid):
                subprocess.run(["taskset", "-acp", SERVER_CPU, str(pid)], capture_output=True, check=False)
            return
        raise RuntimeError(f"the server did not listen within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        if not self.log.closed:
            self.log.flush()
        try:
            text = self.log_path.read_bytes()[-600:].decode(errors="replace")
        except OSError:
            return ""
        return " | ".join(line for line in text.splitlines() if line.strip())[-600:]

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.process.wait()
        self.log.close()


def run_wrk(port: int, path: str, script: Path, connections: int, seconds: float) -> dict:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s"]
    cmd += ["-s", str(script), f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            figures = json.loads(line[len("BENCH ") :])
            figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
            return figures
    raise RuntimeError(f"wrk printed no figures: {out.stdout[-300:]} {out.stderr[-300:]}")


def measure(
    server: ServerProcess, port: int, path: str, script: Path, connections: int, seconds: float, status: int = 200
) -> dict:
    """One measured run: wrk figures plus the server's CPU time per request. `status`: the expected one; when it
    is an error status (a 429 scenario), wrk's count of non-2xx/3xx answers is not an error."""
    pids = process_tree(server.pid)
    before = cpu_seconds(pids)
    figures = run_wrk(port, path, script, connections, seconds)
    after = cpu_seconds(pids)
    requests = max(figures["requests"], 1)
    figures["cpu_s"] = after - before
    figures["cpu_us_per_req"] = (after - before) / requests * 1e6
    kinds = ("connect", "read", "write", "timeout") + (("status",) if status < 400 else ())
    figures["errors"] = sum(figures[k] for k in kinds)
    return figures


def summarize(runs: list[dict]) -> dict:
    """Median, min and max of each figure over the measured runs."""
    summary = {}
    for key in ("rps", "p50_us", "p90_us", "p99_us", "p999_us", "cpu_us_per_req"):
        values = [run[key] for run in runs]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    summary["errors"] = sum(run["errors"] for run in runs)
    summary["requests"] = sum(run["requests"] for run in runs)
    return summary


WSLOAD = "meltemi-wsload"


def wsload_program() -> Path:
    """meltemi-wsload (src/loadgen/wsload.c), built by meson next to meltemi-loadgen in the harness's meltemi."""
    from importlib import resources

    found = resources.files("meltemi") / WSLOAD
    if not found.is_file():
        raise RuntimeError(f"{WSLOAD} is not built (make bootstrap builds it with meltemi)")
    return Path(str(found))


def run_wsload(port: int, path: str, size: int, connections: int, seconds: float) -> dict:
    """One closed-loop WebSocket echo run from core 1: messages per second (as "rps") and latency percentiles."""
    cmd = ["taskset", "-c", CLIENT_CPU, str(wsload_program()), "127.0.0.1", str(port), path]
    cmd += [str(connections), f"{seconds:g}", str(size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=seconds + 60)
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"{WSLOAD} failed ({out.returncode}): {out.stderr[-300:]}")
    figures = json.loads(out.stdout.strip().splitlines()[-1])
    figures["rps"] = figures["mps"]
    figures["requests"] = figures["messages"]
    return figures


def check_ws(port: int, path: str, size: int) -> dict:
    """A second of echo on one connection: every echo is verified by meltemi-wsload; none may fail."""
    figures = run_wsload(port, path, size, 1, 1)
    if figures["messages"] == 0 or figures["errors"]:
        raise CheckError(f"WebSocket echo: {figures['messages']} messages, {figures['errors']} errors")
    return figures


def measure_ws(server: ServerProcess, port: int, path: str, size: int, connections: int, seconds: float) -> dict:
    """One measured WebSocket run: wsload figures plus the server's CPU time per message."""
    pids = process_tree(server.pid)
    before = cpu_seconds(pids)
    figures = run_wsload(port, path, size, connections, seconds)
    after = cpu_seconds(pids)
    figures["cpu_s"] = after - before
    figures["cpu_us_per_req"] = (after - before) / max(figures["messages"], 1) * 1e6
    return figures
