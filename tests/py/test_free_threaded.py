"""Handler threads that share containers and streams, and the GIL's state on
free-threaded CPython (docs/design.md, "Free-threaded CPython").

These run on every build: with the GIL they check the same rules (a list the
server iterates while another thread changes it, a wsgi.input read by two
threads); `make test-ft` runs them on the free-threaded interpreter of
scripts/build-python ft, where the handler threads really run at once."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import threading
import time

import pytest
import requests
from conftest import FREE_THREADED, ROOT

APP = "ftapps:app"
# CPython warns (RuntimeWarning) when an import turns the GIL back on: an error here.
CHECK_GIL = "import sys, meltemi._core; print(sys._is_gil_enabled())"


@pytest.mark.skipif(not FREE_THREADED, reason="a GIL build: there is no GIL to keep off")
def test_the_gil_stays_off_after_importing_the_core(start_server):
    env = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    out = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", CHECK_GIL],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stdout + out.stderr
    # And in a worker serving requests with several handler threads.
    server = start_server(APP, "--threads", "4")
    r = requests.get(server.url + "/gil", timeout=10)
    assert r.text == "gil=off threads=True"


def _get_shared(url: str, count: int, errors: list[str]) -> None:
    with requests.Session() as s:
        for _ in range(count):
            r = s.get(url + "/shared", timeout=30)
            seq = r.headers.get("X-Seq", "")
            if r.status_code != 200 or r.content != b"shared body\n" or not seq.isdigit():
                errors.append(f"{r.status_code} {r.headers} {r.content[:100]!r}")


def test_handlers_iterate_lists_other_handlers_change(start_server):
    """Every request answers with one shared body list and one shared header
    list, which each request also changes: each response is still whole."""
    server = start_server(APP, "--threads", "4")
    errors: list[str] = []
    clients = [threading.Thread(target=_get_shared, args=(server.url, 250, errors)) for _ in range(4)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(120)
    assert errors == []
    assert server.stop() == 0
    server.assert_balanced()


def _split_expect(body: bytes) -> str:
    return f"{len(body)} {hashlib.sha256(bytes(sorted(body))).hexdigest()}"


def test_one_input_read_by_two_threads(start_server):
    """wsgi.input read from two application threads at once: every byte
    reaches exactly one of them (its lock serializes the reads)."""
    server = start_server(APP, "--threads", "2")
    body = random.Random(7).randbytes(300_000)
    for _ in range(3):
        r = requests.post(server.url + "/split", data=body, timeout=30)
        assert r.status_code == 200 and r.text == _split_expect(body)


def test_mixed_load_on_eight_handler_threads(start_server, tmp_path):
    """A bounded stress run: 8 handler threads, clients mixing the shared-list
    app, bodies read by two threads, and static files (served in C), for a few
    seconds. No crash, every request gets its own complete response, the
    counters balance."""
    static = tmp_path / "static"
    static.mkdir()
    files = {f"f{i}.bin": random.Random(i).randbytes(1000 * (i + 1)) for i in range(8)}
    for name, data in files.items():
        (static / name).write_bytes(data)
    server = start_server(APP, "--threads", "8", "--static", f"/static/={static}")
    seconds = float(os.environ.get("MELTEMI_FT_STRESS_SECONDS", "6"))
    errors: list[str] = []
    done = [0] * 6

    def client(k: int) -> None:
        rng = random.Random(k)
        deadline = time.monotonic() + seconds
        with requests.Session() as s:
            while time.monotonic() < deadline:
                kind = rng.randrange(3)
                if kind == 0:
                    r = s.get(server.url + "/shared", timeout=30)
                    ok = r.status_code == 200 and r.content == b"shared body\n"
                elif kind == 1:
                    body = rng.randbytes(rng.randrange(1, 40_000))
                    r = s.post(server.url + "/split", data=body, timeout=30)
                    ok = r.status_code == 200 and r.text == _split_expect(body)
                else:
                    name = rng.choice(sorted(files))
                    r = s.get(f"{server.url}/static/{name}", timeout=30)
                    ok = r.status_code == 200 and r.content == files[name]
                if not ok:
                    errors.append(f"{kind}: {r.status_code} {r.content[:80]!r}")
                done[k] += 1

    clients = [threading.Thread(target=client, args=(k,)) for k in range(6)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(seconds + 120)
    assert errors == []
    assert all(n > 0 for n in done), done
    assert server.stop() == 0
    server.assert_balanced()
