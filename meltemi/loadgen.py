"""The open-loop load generator (src/loadgen/loadgen.c) seen from Python.

The generator is a program of its own, `meltemi-loadgen`, built by meson and
installed inside the package; each call of `run` starts it for one step at a
fixed rate and reads the one JSON line it prints. Used by `meltemi capacity`
and by the benchmark's SLO search (bench/slo.py).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

PROGRAM = "meltemi-loadgen"


class LoadgenError(Exception):
    """The generator could not run (missing, bad arguments) or could not reach the target."""


@dataclass(frozen=True)
class Step:
    """What one run at a fixed rate measured; latencies in microseconds from each request's due time."""

    rate: float
    seconds: float
    connections: int
    due: int
    sent: int
    completed: int
    errors: int
    bad_status: int
    last_bad_status: int
    missing: int
    p50_us: int
    p90_us: int
    p99_us: int
    p999_us: int
    max_us: int

    @property
    def failures(self) -> int:
        """Requests that failed: lost connections, responses that could not be read, and statuses >= 400."""
        return self.errors + self.bad_status

    def holds(self, p99_ms: float) -> bool:
        """The rate holds the target: p99 within it and not one failure."""
        return self.p99_us <= p99_ms * 1000 and self.failures == 0


def program() -> Path:
    """The path of meltemi-loadgen, from the installed package (or an editable build's directory)."""
    found = resources.files("meltemi") / PROGRAM
    if not found.is_file():
        raise LoadgenError(f"{PROGRAM} is not installed with meltemi (rebuild the package: it is built by meson)")
    return Path(str(found))


def raw_request(method: str, host: str, target: str, headers: list[tuple[str, str]], body: bytes | None) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 request (Host and Content-Length added unless given)."""
    names = {name.lower() for name, _ in headers}
    lines = [f"{method} {target} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in headers]
    if body is not None and "content-length" not in names:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


def run(
    address: str,
    port: int,
    rate: float,
    connections: int,
    seconds: float,
    request_file: Path,
    grace: float = 5.0,
    prefix: list[str] | None = None,
) -> Step:
    """Sends the request at `rate` for `seconds`; waits at most `grace` more for the last answers.

    `address` is numeric (IPv4 or IPv6). `prefix` runs the generator under
    another command (the bench pins it to a CPU with taskset). Raises
    LoadgenError when the target cannot be reached or the generator fails.
    """
    argv = [str(program()), address, str(port), f"{rate:.3f}", str(connections), f"{seconds:g}"]
    argv += [str(request_file), f"{grace:g}"]
    out = subprocess.run((prefix or []) + argv, capture_output=True, text=True, check=False)
    if out.returncode:
        message = out.stderr.strip().splitlines()
        raise LoadgenError(message[-1].removeprefix(f"{PROGRAM}: ") if message else f"{PROGRAM} failed")
    return Step(**json.loads(out.stdout))
