"""SLO mode: the highest request rate a server sustains with p99 under a target.

A fixed-rate, open-loop generator (meltemi-loadgen, src/loadgen/loadgen.c,
built and installed with the meltemi package and shared with `meltemi
capacity`: neither wrk2 nor an open-loop generator is packaged in Debian)
drives the server at a rate; latency counts from each request's due time. The
search measures the closed-loop maximum with wrk, then bisects between a
rate that passes and one that fails (a failing rate is tried twice). A rate passes when p99 <= target, no
request failed, and at least 99% of the due requests completed.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from meltemi import loadgen

from . import measure
from .scenarios import Scenario


def raw_request(scenario: Scenario, path: str) -> bytes:
    return loadgen.raw_request(scenario.method, "127.0.0.1", path, list(scenario.headers.items()), scenario.body)


def plan(quick: bool) -> tuple[int, float]:
    return (3, 1.5) if quick else (5, 3.0)


def search(port: int, scenario: Scenario, path: str, p99_ms: float, connections: int, quick: bool, work: Path) -> dict:
    request_file = work / f"{scenario.name}.request"
    request_file.write_bytes(raw_request(scenario, path))
    script = measure.wrk_script(scenario, work)
    closed = measure.run_wrk(port, path, script, connections, 1.0 if quick else 2.0)
    steps, seconds = plan(quick)

    def attempt(rate: int) -> dict:
        try:
            step = loadgen.run(
                "127.0.0.1",
                port,
                rate,
                connections,
                seconds,
                request_file,
                prefix=["taskset", "-c", measure.CLIENT_CPU],
            )
        except loadgen.LoadgenError as exc:
            raise RuntimeError(f"loadgen failed: {exc}") from exc
        figures = asdict(step)
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
