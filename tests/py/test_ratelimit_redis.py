"""Rate limits counted in Redis (Debian's redis-server, started here on a
free port): two meltemi instances on two ports share one budget, and when
Redis stops in the middle, each policy is honoured (fail open: requests
pass, fail closed: 503) with a log line saying so, until Redis is back."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from test_ratelimit import get

APP = ("redisapps:app", "--api", "redisapps:api")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, port: int):
        self.port = port
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is missing (scripts/bootstrap installs Debian's)"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def redis():
    server = Redis(free_port())
    server.start()
    yield server
    server.stop()


def env(redis: Redis, on_error: str) -> dict:
    return {"RL_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "RL_ON_ERROR": on_error}


def test_two_instances_share_one_budget(start_server, redis):
    a = start_server(*APP, workers=2, env=env(redis, "allow"))
    b = start_server(*APP, workers=2, env=env(redis, "allow"))
    assert a.url != b.url
    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(lambda i: get(a if i % 2 else b, "/api/shared", "X-Client: c1"), range(60)))
    statuses = [r[0] for r in results]
    assert statuses.count(200) == 20 and statuses.count(429) == 40, statuses
    refused = next(r for r in results if r[0] == 429)
    assert json.loads(refused[2]) == {"detail": "Too Many Requests"}
    assert re.fullmatch(r'"header-X-Client-20-per-3600s";r=0;t=\d+', refused[1]["ratelimit"])
    assert 1 <= int(refused[1]["retry-after"]) <= 180
    # Another client has its own budget, on either instance.
    assert get(a, "/api/shared", "X-Client: c2")[0] == 200
    assert [get(b, "/api/const", "X-Client: c3")[0] for _ in range(4)] == [200, 200, 200, 429]


@pytest.mark.parametrize("on_error, expected", [("allow", 200), ("refuse", 503)])
def test_redis_stopped_mid_test(start_server, redis, on_error, expected):
    server = start_server(*APP, workers=2, env=env(redis, on_error))
    assert [get(server, "/api/const", "X-Client: d")[0] for _ in range(4)] == [200, 200, 200, 429]
    redis.stop()
    results = [get(server, "/api/const", "X-Client: d") for _ in range(6)]
    assert [r[0] for r in results] == [expected] * 6
    if expected == 503:
        assert json.loads(results[0][2]) == {"detail": "Service Unavailable"}
        assert results[0][1]["retry-after"] == "1"
    policy = "allowing requests (fail open)" if on_error == "allow" else "refusing requests with 503 (fail closed)"
    line = server.wait_for(re.compile(rf"\[WARNING\] rate limits: Redis at 127\.0\.0\.1:{redis.port} unreachable: .*"))
    assert line and policy in line.group(0), server.output
    # Rate-limited: one line per worker at most (each worker reports for itself), not one per request.
    assert server.output.count("unreachable") <= 2, server.output
    redis.start()  # empty: the budget starts afresh
    time.sleep(1.2)  # the back-off after a failure
    # Each worker reconnects after its own back-off: counting has resumed when a fresh
    # client's burst is counted again (the request that would be refused may otherwise
    # reach a worker still in its back-off, which applies the policy).
    deadline = time.monotonic() + 10
    attempt = 0
    while True:
        statuses = [get(server, "/api/const", f"X-Client: f{attempt}")[0] for _ in range(4)]
        if statuses == [200, 200, 200, 429] or time.monotonic() > deadline:
            break
        attempt += 1
        time.sleep(0.3)
    assert statuses == [200, 200, 200, 429], statuses
