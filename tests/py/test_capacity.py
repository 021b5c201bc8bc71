"""`meltemi capacity URL` against real meltemi servers (procapps), with short steps.

The slow endpoint is the one whose answer can be computed: one thread that
sleeps 20 ms per request serves at most 50 requests per second, so the search
must land near 50 whatever the machine.
"""

from __future__ import annotations

import io
import os
import re
import socket
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from meltemi import capacity, loadgen

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent.parent
ANSWER_RE = re.compile(r"^(\S+) holds ([\d,]+) req/s at p99 ≤ (\d+) ms on this machine")


def run_capacity(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), str(ROOT)]), PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "meltemi", "capacity", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(cwd),
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def rate_of(stdout: str) -> int:
    match = ANSWER_RE.match(stdout)
    assert match, stdout
    return int(match.group(2).replace(",", ""))


def test_finds_a_rate_for_a_fast_endpoint_and_draws_the_plot(start_server, tmp_path):
    server = start_server("procapps:app", "--threads", "2")
    png = tmp_path / "fast.png"
    result = run_capacity(
        f"{server.url}/",
        "--duration",
        "0.3",
        "--connections",
        "16",
        "--resolution",
        "0.25",
        "--plot",
        str(png),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert rate_of(result.stdout) >= 100, result.stdout
    assert "above that" in result.stdout or "the most the search tried" in result.stdout
    # Not a terminal: one plain progress line per step.
    assert re.search(r"^capacity: step 1: [\d,]+ req/s: p99 ", result.stderr, re.M), result.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (900, 540)
    assert b"tEXtSoftware\x00meltemi capacity" in data
    # The image data inflates to one filter byte and 900 RGB pixels per row.
    start = data.index(b"IDAT") + 4
    length = struct.unpack(">I", data[start - 8 : start - 4])[0]
    assert len(zlib.decompress(data[start : start + length])) == 540 * (1 + 3 * 900)


def test_one_thread_sleeping_20ms_holds_about_50_per_second(start_server, tmp_path):
    server = start_server("procapps:app", "--threads", "1")
    result = run_capacity(
        f"{server.url}/sleep?s=0.02",
        "--duration",
        "0.5",
        "--resolution",
        "0.1",
        "--no-plot",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("/sleep holds "), result.stdout
    # 50 req/s is the ceiling; steps of half a second let a rate a few percent
    # over it pass before the queue reaches 50 ms, and a busy machine costs a little.
    assert 35 <= rate_of(result.stdout) <= 58, result.stdout + result.stderr
    assert not (tmp_path / "meltemi-capacity.png").exists()


def test_refuses_a_target_that_is_not_on_this_machine(tmp_path):
    result = run_capacity("http://192.0.2.1:8000/", "--duration", "0.1", cwd=tmp_path)
    assert result.returncode == capacity.USAGE_ERROR
    assert "--allow-remote" in result.stderr
    assert result.stdout == ""


def test_reports_the_errors_of_a_target_that_always_fails(start_server, tmp_path):
    server = start_server("procapps:app")
    result = run_capacity(f"{server.url}/raise", "--duration", "0.2", cwd=tmp_path)
    assert result.returncode == capacity.FAILS_AT_EVERY_RATE, result.stdout + result.stderr
    assert "fails at every rate" in result.stderr
    assert "(status 500)" in result.stderr
    assert result.stdout == ""


def test_unreachable_target_is_a_clear_error(tmp_path):
    with socket.socket() as sock:  # a port nothing listens on (once closed)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_capacity(f"http://127.0.0.1:{port}/", "--duration", "0.1", cwd=tmp_path)
    assert result.returncode == capacity.UNREACHABLE
    assert "cannot connect to 127.0.0.1 port" in result.stderr


def test_help_of_meltemi_shows_serving_and_capacity(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "meltemi", "--help"], capture_output=True, text=True, cwd=str(tmp_path), check=True
    )
    assert "meltemi [APP] [options]" in result.stdout
    assert "meltemi capacity URL [options]" in result.stdout


@pytest.mark.parametrize(("text", "ms"), [("50ms", 50.0), ("0.2s", 200.0), ("75", 75.0), (" 1.5 ms ", 1.5)], ids=str)
def test_p99_target_accepts_milliseconds_and_seconds(text, ms):
    assert capacity.duration_ms(text) == ms


def test_raw_request_adds_host_and_content_length():
    request = loadgen.raw_request("POST", "127.0.0.1:8000", "/api/items/", [("Content-Type", "x/y")], b"abc")
    assert request == (
        b"POST /api/items/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nContent-Type: x/y\r\nContent-Length: 3\r\n\r\nabc"
    )


def test_localhost_and_ipv6_loopback_are_on_this_machine():
    assert capacity.parse_target("http://localhost:8000/x?y=1", allow_remote=False).path == "/x?y=1"
    assert capacity.parse_target("http://[::1]:8000/", allow_remote=False).address == "::1"
    with pytest.raises(ValueError, match="only http://"):
        capacity.parse_target("https://127.0.0.1/", allow_remote=False)


def model_run(ceiling: float, p99_over_us: int = 200_000):
    """A stand-in for the generator: a server that holds p99 5 ms up to `ceiling` req/s and p99_over_us above."""
    calls = []

    def run(address, port, rate, connections, seconds, request_file, grace=5.0):
        calls.append(rate)
        p99 = 5_000 if rate <= ceiling else p99_over_us
        due = max(1, round(rate * seconds))
        return loadgen.Step(rate, seconds, connections, due, due, due, 0, 0, 0, 0, 1_000, 2_000, p99, p99, p99)

    return run, calls


def test_search_ramps_then_bisects_to_the_resolution(monkeypatch):
    fake, calls = model_run(ceiling=1_000)
    monkeypatch.setattr(capacity, "run", fake)
    progress = capacity.Progress(io.StringIO(), 12)
    target = capacity.Target("http://127.0.0.1:1/", "127.0.0.1", 1, "127.0.0.1:1", "/")
    found = capacity.search(target, Path("unused"), 50.0, 64, 1.0, 0.05, progress)
    assert found.holding.rate == 1_000  # 500 (half what 1 ms suggests for one connection), then 1,000
    assert 1_000 < found.breaking.rate <= 1_000 / 0.95
    assert len(found.steps) <= capacity.MAX_RAMP_STEPS + capacity.MAX_BISECT_STEPS
    assert capacity.answer(target, found).startswith("/ holds 1,000 req/s at p99 ≤ 50 ms on this machine; above")


def test_search_gives_up_at_the_lowest_rate(monkeypatch):
    fake, calls = model_run(ceiling=0)
    monkeypatch.setattr(capacity, "run", fake)
    progress = capacity.Progress(io.StringIO(), 12)
    target = capacity.Target("http://127.0.0.1:1/", "127.0.0.1", 1, "127.0.0.1:1", "/")
    found = capacity.search(target, Path("unused"), 50.0, 64, 1.0, 0.05, progress)
    assert found.holding is None
    assert found.breaking.rate == capacity.LOWEST_RATE
    assert len(found.steps) < 10
