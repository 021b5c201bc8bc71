"""The scenarios: what is requested, and what a correct answer is.

Each server answers a scenario with its own idiomatic code (bench/apps/); a
server is measured on a scenario only after its answer has passed `check`.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "apps"))
from benchproj.payloads import JWT_BAD_TOKEN, JWT_TOKEN, MESSAGE, POST_BODY, RECORDS  # noqa: E402

STATIC_FILES = {"f1k.txt": 1024, "f100k.bin": 100 * 1024}
ACCEPT_ENCODING = "br, zstd, gzip"


def static_content(name: str) -> bytes:
    """The static files' bytes, the same on every run: text for 1 KB, incompressible bytes for 100 KB."""
    import random

    size = STATIC_FILES[name]
    if name.endswith(".txt"):
        line = b"meltemi static benchmark file, one kilobyte of text.\n"
        return (line * (size // len(line) + 1))[:size]
    return random.Random(size).randbytes(size)


class CheckError(Exception):
    pass


def expect_json(value) -> Callable[[int, dict, bytes], None]:
    def check(status: int, headers: dict, body: bytes) -> None:
        try:
            got = json.loads(body)
        except ValueError:
            raise CheckError(f"not JSON: {body[:80]!r}") from None
        if got != value:
            raise CheckError(f"unexpected JSON: {body[:120]!r}")

    return check


def expect_body(value: bytes) -> Callable[[int, dict, bytes], None]:
    def check(status: int, headers: dict, body: bytes) -> None:
        if body != value:
            raise CheckError(f"unexpected body ({len(body)} bytes): {body[:80]!r}")

    return check


def expect_rows(status: int, headers: dict, body: bytes) -> None:
    rows = json.loads(body)
    if [row["name"] for row in rows] != [f"row {i}" for i in range(10)]:
        raise CheckError(f"unexpected rows: {body[:120]!r}")


def expect_page(status: int, headers: dict, body: bytes) -> None:
    if b"<h1>meltemi bench</h1>" not in body or b"csrfmiddlewaretoken" not in body:
        raise CheckError(f"not the rendered page: {body[:120]!r}")


def decode(coding: str, body: bytes) -> bytes:
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        import brotli

        return brotli.decompress(body)
    if coding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompress(body, max_output_size=1 << 20)
    raise CheckError(f"unexpected Content-Encoding {coding!r}")


def expect_any(status: int, headers: dict, body: bytes) -> None:
    """Only the status counts (each server words its 401 its own way)."""


def expect_compressed(status: int, headers: dict, body: bytes) -> None:
    coding = headers.get("content-encoding", "")
    if not coding:
        raise CheckError("the response is not compressed")
    try:
        plain = decode(coding, body)
    except ImportError:  # no reference decoder here: the size must still have shrunk
        if len(body) >= len(json.dumps(RECORDS)) // 2:
            raise CheckError(f"{coding} body of {len(body)} bytes is barely compressed") from None
        return
    expect_json(RECORDS)(status, headers, plain)


CORS_ORIGIN = "http://localhost:3000"


def expect_preflight(status: int, headers: dict, body: bytes) -> None:
    if body or headers.get("access-control-allow-origin") != CORS_ORIGIN:
        raise CheckError(f"not a CORS preflight answer for {CORS_ORIGIN}: {headers!r} {body[:80]!r}")
    if "PUT" not in headers.get("access-control-allow-methods", ""):
        raise CheckError(f"PUT is not among the allowed methods: {headers!r}")


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    path: str
    check: Callable[[int, dict, bytes], None]
    method: str = "GET"
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 200
    db: str = "sqlite"
    in_quick: bool = True
    note: str = ""
    # Requests sent (and not checked) before the check: they spend a rate limit's budget.
    prime: int = 0
    kind: str = "http"  # "ws": a WebSocket echo, loaded by meltemi-wsload instead of wrk


def expect_ws_echo(status: int, headers: dict, body: bytes) -> None:
    """Never called: a WebSocket scenario is checked by meltemi-wsload, which verifies every echo it gets."""


# The WebSocket echo's message: a 32-byte text message, one in flight per connection.
WS_MESSAGE_SIZE = 32


SCENARIOS: list[Scenario] = [
    Scenario("plaintext", "plaintext hello", "/plaintext", expect_body(MESSAGE.encode())),
    Scenario(
        "ceiling",
        "pure-C route (meltemi's ceiling)",
        "/plain",
        expect_body(MESSAGE.encode()),
        note="a constant route answered in C without Python: the most this server can do on this machine",
    ),
    Scenario(
        "cors-preflight",
        "CORS preflight (OPTIONS, answered in C)",
        "/json",
        expect_preflight,
        method="OPTIONS",
        headers={"Origin": CORS_ORIGIN, "Access-Control-Request-Method": "PUT"},
        note=f"meltemi --cors {CORS_ORIGIN}: answered on the I/O thread, never reaching Python; target ≥ 80% of "
        "the ceiling",
    ),
    Scenario(
        "ratelimited",
        "rate-limited route, refused (429)",
        "/limited",
        expect_json({"detail": "Too Many Requests"}),
        status=429,
        prime=1,
        note="a constant route limited to 1 request a day per client address: every measured request is counted "
        "in the shared table and refused in C (429 with Retry-After and the RateLimit fields)",
    ),
    Scenario("json", "JSON hello", "/json", expect_json({"message": MESSAGE})),
    Scenario("json10k", "10 KB JSON", "/json10k", expect_json(RECORDS)),
    Scenario("params", "GET path + query params", "/items/42?q=hello", expect_json({"item_id": 42, "q": "hello"})),
    Scenario(
        "post",
        "POST validated JSON struct",
        "/items",
        expect_json(json.loads(POST_BODY)),
        method="POST",
        body=POST_BODY,
        headers={"Content-Type": "application/json"},
        status=201,
    ),
    Scenario("orm-sqlite", "Django ORM, 10 rows, SQLite", "/orm", expect_rows),
    Scenario("orm-postgres", "Django ORM, 10 rows, PostgreSQL", "/orm", expect_rows, db="postgres", in_quick=False),
    Scenario("django-page", "full Django view (middleware, session, template)", "/page", expect_page),
    Scenario(
        "wait-10ms",
        "view waiting 10 ms on I/O",
        "/wait",
        expect_body(b"waited"),
        note="sync views get 50 threads (as many as connections); async servers await asyncio.sleep",
        in_quick=False,
    ),
    Scenario(
        "static-1k",
        "static file, 1 KB",
        "/static/f1k.txt",
        expect_body(static_content("f1k.txt")),
        in_quick=False,
    ),
    Scenario(
        "static-100k",
        "static file, 100 KB",
        "/static/f100k.bin",
        expect_body(static_content("f100k.bin")),
        in_quick=False,
    ),
    Scenario(
        "compress",
        "10 KB JSON, Accept-Encoding: br, zstd, gzip",
        "/json10k",
        expect_compressed,
        headers={"Accept-Encoding": ACCEPT_ENCODING},
    ),
    Scenario(
        "ws-echo",
        "WebSocket echo, 32-byte text messages (messages/s)",
        "/ws/echo",
        expect_ws_echo,
        kind="ws",
        in_quick=False,
        note="closed loop: each connection sends a masked message and waits for its echo (meltemi-wsload)",
    ),
]

SCENARIOS += [
    Scenario(
        "jwt",
        "JWT-authenticated JSON hello (HS256 bearer token)",
        "/auth/json",
        expect_json({"message": MESSAGE}),
        headers={"Authorization": "Bearer " + JWT_TOKEN},
        note="the same token for every server: meltemi's JWTAuth, Bolt's JWTAuthentication + IsAuthenticated",
    ),
    Scenario(
        "jwt-401",
        "bad JWT signature, answered 401",
        "/auth/json",
        expect_any,
        headers={"Authorization": "Bearer " + JWT_BAD_TOKEN},
        status=401,
        note="meltemi answers it in C without Python; wrk counts the 401s as errors (non-2xx)",
    ),
]

SCENARIOS += [
    Scenario(
        "json-async",
        "async JSON hello (`async def` endpoint)",
        "/async/json",
        expect_json({"message": MESSAGE}),
        note="meltemi's `async def` endpoint (handed to the worker's loop after the C router) against Bolt's "
        "async handler (its /json)",
    ),
]

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
