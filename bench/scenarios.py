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
from benchproj.payloads import MESSAGE, POST_BODY, RECORDS  # noqa: E402

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

BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
