"""SLO mode: the highest request rate a server sustains with p99 under a target.

A fixed-rate, open-loop generator (bench/loadgen.c, built here with the host's
C compiler: neither wrk2 nor an open-loop generator is packaged in Debian)
drives the server at a rate; latency counts from each request's due time. The
search measures the closed-loop maximum with wrk, then bisects between a
rate that passes and one that fails (a failing rate is tried twice). A rate passes when p99 <= target, no
request failed, and at least 99% of the due requests completed.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from . import measure
from .scenarios import Scenario

BENCH = Path(__file__).resolve().parent


def loadgen(work: Path) -> Path:
    binary = work / "loadgen"
    source = BENCH / "loadgen.c"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["cc", "-O2", "-o", str(binary), str(source)], check=True)
    return binary


def raw_request(scenario: Scenario, path: str) -> bytes:
    lines = [f"{scenario.method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in scenario.headers.items()]
    if scenario.body is not None:
        lines.append(f"Content-Length: {len(scenario.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (scenario.body or b"")


def plan(quick: bool) -> tuple[int, float]:
    return (3, 1.5) if quick else (5, 3.0)


def search(port: int, scenario: Scenario, path: str, p99_ms: float, connections: int, quick: bool, work: Path) -> dict:
    binary = loadgen(work)
    request_file = work / f"{scenario.name}.request"
    request_file.write_bytes(raw_request(scenario, path))
    script = measure.wrk_script(scenario, work)
    closed = measure.run_wrk(port, path, script, connections, 1.0 if quick else 2.0)
    steps, seconds = plan(quick)

    def attempt(rate: int) -> dict:
        out = subprocess.run(
            ["taskset", "-c", measure.CLIENT_CPU, str(binary), str(port), str(rate), str(connections), f"{seconds:g}"]
            + [str(request_file)],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode:
            raise RuntimeError(f"loadgen failed: {out.stderr.strip()[-300:]}")
        figures = json.loads(out.stdout)
        figures["ok"] = (
            figures["p99_us"] <= p99_ms * 1000
            and figures["errors"] == 0
            and figures["completed"] >= 0.99 * figures["due"]
        )
        return figures

    low, high = 0, int(closed["rps"] * 1.1) + 1
    tried = []
    rate = int(closed["rps"] * 0.7)
    for _ in range(steps):
        figures = attempt(max(rate, 1))
        tried.append(figures)
        if not figures["ok"]:  # a shared machine has hiccups: a rate fails only if it fails twice
            figures = attempt(max(rate, 1))
            tried.append(figures)
        if figures["ok"]:
            low = rate
        else:
            high = rate
        rate = (low + high) // 2
        if high - low <= max(50, high // 50):
            break
    return {"rate": low, "p99_ms_target": p99_ms, "closed_loop_rps": closed["rps"], "steps": tried}
