"""CPU time per request of meltemi's ASGI runtime against its WSGI path, on one machine, in one run.

One worker pinned to CPU 0 (`--threads 1` for WSGI), wrk pinned to CPU 1, keep-alive, 50 connections;
the worker's CPU time (utime + stime of all its threads, /proc/PID/stat) over the measured run divided
by the requests wrk completed. Scenarios run interleaved, `--rounds` times.
With `--uvicorn PATH` (a uvicorn executable, e.g. from a virtual environment with uvicorn, uvloop and
httptools), uvicorn serves the bare ASGI hello, the Starlette hello and the FastAPI plaintext too (one
process, the same pinning); with `--granian PATH` Granian's ASGI interface serves them (its one worker
process, every thread of it pinned).
The typed API's JSON hello, sync and `async def` (bench/api_hello.py), is measured the same way.
Usage: .venv/bin/python bench/asgi_cpu.py [--duration 5] [--rounds 2] [--uvicorn /tmp/peers/bin/uvicorn]
[--granian /tmp/peers/bin/granian] [--only API] (--only: comma-separated words, any of which selects)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("ASGI_CPU_PORT", "18790"))
TICK = os.sysconf("SC_CLK_TCK")

SCENARIOS = {
    "WSGI hello (--threads 1)": ["hello_app:app", "--threads", "1"],
    "ASGI hello (bare callable)": ["asgi_hello_app:app"],
    "ASGI Starlette hello": ["asgi_hello_app:starlette_app"],
    "ASGI Django hello (ASGIHandler)": ["asgidjango_app:application"],
    "ASGI FastAPI plaintext (bench/apps)": ["fastapi_app:app"],
    "API sync JSON hello (--threads 1)": ["hello_app:app", "--api", "api_hello:api", "--threads", "1"],
    "API async JSON hello (--threads 1)": ["hello_app:app", "--api", "api_hello:api", "--threads", "1"],
}
URLS = {
    "ASGI Django hello (ASGIHandler)": "/hello/",
    "ASGI FastAPI plaintext (bench/apps)": "/plaintext",
    "API sync JSON hello (--threads 1)": "/api/hello",
    "API async JSON hello (--threads 1)": "/api/ahello",
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run(name: str, args: list[str], duration: int, peer: str | None = None) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=f"{ROOT / 'bench'}:{ROOT / 'bench' / 'apps'}:{ROOT / 'tests' / 'py'}")
    if peer and peer.endswith("granian"):
        command = [peer, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(PORT), "--workers", "1"]
        command += ["--log-level", "warning", *args]
    elif peer:
        command = [peer, *args, "--port", str(PORT), "--no-access-log", "--log-level", "warning"]
    else:
        command = [sys.executable, "-m", "meltemi", *args, "--bind", f"127.0.0.1:{PORT}", "--workers", "1"]
        command += ["--log-level", "warning"]
    master = subprocess.Popen(
        ["taskset", "-c", "0", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{PORT}{URLS.get(name, '/')}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        uvicorn = peer and not peer.endswith("granian")
        worker = master.pid if uvicorn else int(subprocess.check_output(["pgrep", "-P", str(master.pid)]).split()[0])
        subprocess.run(["taskset", "-acp", "0", str(worker)], stdout=subprocess.DEVNULL, check=False)
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c50", "-d2s", url], stdout=subprocess.DEVNULL, check=True)
        before = cpu_seconds(worker)
        out = subprocess.check_output(["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{duration}s", url], text=True)
        used = cpu_seconds(worker) - before
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        return requests / duration, used / requests * 1e6
    finally:
        master.send_signal(signal.SIGTERM)
        master.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--uvicorn", help="a uvicorn executable: measure it on the ASGI hellos too")
    parser.add_argument("--granian", help="a granian executable: measure it on the ASGI hellos too")
    parser.add_argument("--only", help="only the scenarios whose name contains this text (e.g. API)")
    args = parser.parse_args()
    peers = {}
    for peer, path in (("uvicorn", args.uvicorn), ("granian", args.granian)):
        if path:
            peers[f"{peer} ASGI hello (bare callable)"] = (["asgi_hello_app:app"], path)
            peers[f"{peer} Starlette hello"] = (["asgi_hello_app:starlette_app"], path)
            peers[f"{peer} Django hello (ASGIHandler)"] = (["asgidjango_app:application"], path)
            peers[f"{peer} FastAPI plaintext (bench/apps)"] = (["fastapi_app:app"], path)
            URLS[f"{peer} Django hello (ASGIHandler)"] = "/hello/"
            URLS[f"{peer} FastAPI plaintext (bench/apps)"] = "/plaintext"
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for round_ in range(args.rounds):
        for name, (argv, peer) in [*((n, (a, None)) for n, a in SCENARIOS.items()), *peers.items()]:
            if args.only and not any(word in name for word in args.only.split(",")):
                continue
            rps, us = run(name, argv, args.duration, peer)
            print(f"round {round_ + 1}  {name:34s} {rps:9.0f} req/s  {us:6.1f} us CPU/request", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
