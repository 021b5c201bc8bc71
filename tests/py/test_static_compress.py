"""Static files compressed by the server (issue 10): a compressible file with no precompressed variant is
compressed once per version and coding into the compressed-file cache (src/core/static/zcache.c) and served like a
precompressed variant, through a real server process.

Covered: gzip, br and zstd to clients that accept them, decoding to the file; Vary: Accept-Encoding on every
answer of such a file (identity included); an ETag per coding, 304 on it, and no 304 across codings; a range
of the compressed bytes; HEAD; a handler thread's answer (a request with a body); a modified file compressed
again; what is never compressed (images, files under --compress-min-size or over 1 MiB); a precompressed
variant taking precedence; a large copy sent to a slow reader; --static-compress-cache 0 and --compress; and
the demo project's admin `base.css` as `make run` serves it.
"""

from __future__ import annotations

import gzip
import os
import random
import socket
import sys
import time
from pathlib import Path

import brotli
import pytest
import requests
import zstandard
from compressapps import make_body
from conftest import RawResponse, ResponseReader, Server, needs_api
from test_demo import DEMO, demo_env  # noqa: F401  (demo_env: the migrated demo project, a fixture)

CSS = make_body(22000)  # the size of Django admin's base.css
TINY = b"body { margin: 0 }\n" * 10  # under --compress-min-size (512)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
CODINGS = ["gzip", "br", "zstd"]


def words(size: int, seed: int) -> bytes:
    """`size` bytes of random words: compresses to about half, so copies stay large."""
    rng = random.Random(seed)
    vocabulary = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(4000)
    ]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(vocabulary).encode() + b" "
    return bytes(out[:size])


LARGE = words(900_000, 1)  # a copy bigger than the socket buffers: sent by sendfile, the rest queued
HUGE = words((1 << 20) + 1, 2)  # over the 1 MiB that is compressed on the fly


def decode(body: bytes, coding: str | None) -> bytes:
    if coding is None:
        return body
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        return brotli.decompress(body)
    return zstandard.ZstdDecompressor().decompress(body)


def write(path, data: bytes, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("zcache")
    old = time.time() - 3600
    write(root / "site.css", CSS, old)
    write(root / "tiny.css", TINY, old)
    write(root / "logo.png", PNG, old)
    write(root / "large.js", LARGE, old)
    write(root / "huge.js", HUGE, old)
    write(root / "pre.css", CSS, old)
    write(root / "pre.css.gz", gzip.compress(CSS, 9), old)
    return root


def start(root, *extra: str) -> Server:
    return Server(["compressapps:main", "--bind", "127.0.0.1:0", "--workers", "1", "--static", f"/s/={root}", *extra])


def stop(server: Server) -> None:
    code = server.stop()
    assert code == 0, f"meltemi exited with {code}:\n{server.output}"
    server.assert_balanced()
    assert "Traceback" not in server.output, server.output


@pytest.fixture(scope="module")
def server(root):
    server = start(root)
    try:
        yield server
    finally:
        stop(server)


def request(server: Server, target: str, method: str = "GET", **headers: str) -> RawResponse:
    fields = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
    with server.connect() as sock:
        sock.sendall(f"{method} {target} HTTP/1.1\r\nHost: test\r\n{fields}\r\n".encode("latin-1"))
        return ResponseReader(sock).read_response(method)


# -- compressed copies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
def test_compressed_for_clients_that_accept(server, coding):
    response = request(server, "/s/site.css", Accept_Encoding=coding)
    assert response.status == 200, response
    assert response.header("content-encoding") == coding
    assert response.header("vary") == "Accept-Encoding"
    assert response.header("content-type") == "text/css; charset=utf-8"
    assert response.header("content-length") == str(len(response.body))
    assert len(response.body) < len(CSS) / 3
    assert decode(response.body, coding) == CSS
    assert response.header("accept-ranges") == "bytes"
    # The same copy next time (compressed once; the bytes of a strong ETag never change).
    assert request(server, "/s/site.css", Accept_Encoding=coding).body == response.body


@pytest.mark.parametrize("coding", CODINGS)
def test_etag_per_coding_and_304(server, coding):
    plain = request(server, "/s/site.css")
    packed = request(server, "/s/site.css", Accept_Encoding=coding)
    etag = packed.header("etag")
    assert etag.startswith('"') and etag.endswith(f'-{coding}"') and etag != plain.header("etag")
    again = request(server, "/s/site.css", Accept_Encoding=coding, If_None_Match=etag)
    assert again.status == 304 and again.body == b""
    assert again.header("etag") == etag and again.header("vary") == "Accept-Encoding"
    # Another coding is another representation: its ETag does not match this one.
    other = "gzip" if coding != "gzip" else "br"
    crossed = request(server, "/s/site.css", Accept_Encoding=other, If_None_Match=etag)
    assert crossed.status == 200 and crossed.header("content-encoding") == other
    # Nor does the identity representation's.
    identity = request(server, "/s/site.css", If_None_Match=etag)
    assert identity.status == 200 and identity.header("content-encoding") is None


def test_identity_for_clients_that_do_not_accept(server):
    for accept in (None, "identity", "gzip;q=0, br;q=0, zstd;q=0", "deflate"):
        headers = {"Accept_Encoding": accept} if accept is not None else {}
        response = request(server, "/s/site.css", **headers)
        assert response.status == 200 and response.body == CSS, accept
        assert response.header("content-encoding") is None
        # The answer depends on Accept-Encoding all the same: caches must not hand it to a gzip client.
        assert response.header("vary") == "Accept-Encoding"
        assert response.header("content-length") == str(len(CSS))


def test_preference_among_codings(server):
    response = request(server, "/s/site.css", Accept_Encoding="gzip;q=0.5, br;q=0.9, zstd;q=0.1")
    assert response.header("content-encoding") == "br"
    response = request(server, "/s/site.css", Accept_Encoding="gzip, br, zstd")
    assert response.header("content-encoding") == "zstd"


def test_range_of_the_compressed_copy(server):
    whole = request(server, "/s/site.css", Accept_Encoding="gzip")
    part = request(server, "/s/site.css", Accept_Encoding="gzip", Range="bytes=5-24")
    assert part.status == 206
    assert part.header("content-encoding") == "gzip"
    assert part.header("content-range") == f"bytes 5-24/{len(whole.body)}"
    assert part.body == whole.body[5:25]
    # If-Range with the copy's ETag keeps the range; with the identity ETag it gives the whole copy.
    kept = request(server, "/s/site.css", Accept_Encoding="gzip", Range="bytes=0-9", If_Range=whole.header("etag"))
    assert kept.status == 206 and kept.body == whole.body[:10]
    plain_etag = request(server, "/s/site.css").header("etag")
    dropped = request(server, "/s/site.css", Accept_Encoding="gzip", Range="bytes=0-9", If_Range=plain_etag)
    assert dropped.status == 200 and dropped.body == whole.body


def test_head_matches_get(server):
    head = request(server, "/s/site.css", "HEAD", Accept_Encoding="br")
    get = request(server, "/s/site.css", Accept_Encoding="br")
    assert head.body == b""
    for name in ("content-encoding", "content-length", "etag", "vary", "content-type"):
        assert head.header(name) == get.header(name), name


def test_modified_file_is_compressed_again(server, root):
    path = root / "changing.css"
    first = make_body(5000)
    write(path, first, time.time() - 60)
    before = request(server, "/s/changing.css", Accept_Encoding="zstd")
    assert before.header("content-encoding") == "zstd" and decode(before.body, "zstd") == first
    second = make_body(7000)[::-1]
    write(path, second)  # rewritten in place: same inode, new size and mtime
    deadline = time.monotonic() + 3
    while True:
        after = request(server, "/s/changing.css", Accept_Encoding="zstd")
        if decode(after.body, "zstd") == second or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert after.header("content-encoding") == "zstd"
    assert decode(after.body, "zstd") == second, "the new version was not served within 3 s"
    assert after.header("etag") != before.header("etag")
    # The old ETag no longer gives a 304.
    stale = request(server, "/s/changing.css", Accept_Encoding="zstd", If_None_Match=before.header("etag"))
    assert stale.status == 200


def test_compressed_on_a_handler_thread(server):
    """A request whose body is still on its way is answered by a handler thread, which shares the cache."""
    with server.connect() as sock:
        head = "GET /s/site.css HTTP/1.1\r\nHost: test\r\nAccept-Encoding: br\r\nContent-Length: 4\r\n\r\n"
        sock.sendall(head.encode())
        time.sleep(0.1)
        sock.sendall(b"body")
        response = ResponseReader(sock).read_response()
    assert response.status == 200 and response.header("content-encoding") == "br"
    assert brotli.decompress(response.body) == CSS
    assert response.body == request(server, "/s/site.css", Accept_Encoding="br").body


# -- what is not compressed ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"), [("logo.png", PNG), ("tiny.css", TINY), ("huge.js", HUGE)], ids=["image", "small", "huge"]
)
def test_not_compressed(server, name, data):
    response = request(server, f"/s/{name}", Accept_Encoding="gzip, br, zstd")
    assert response.status == 200
    assert response.header("content-encoding") is None
    assert response.body == data
    # The same representation for every client: nothing to vary on.
    assert response.header("vary") is None


def test_precompressed_variant_takes_precedence(server, root):
    """pre.css has a .gz beside it: that file is served (to a client that prefers br too), never a copy."""
    response = request(server, "/s/pre.css", Accept_Encoding="br, gzip;q=0.5")
    assert response.header("content-encoding") == "gzip"
    assert response.body == (root / "pre.css.gz").read_bytes()
    assert response.header("vary") == "Accept-Encoding"
    assert request(server, "/s/pre.css", Accept_Encoding="br").header("content-encoding") is None


def test_large_copy_to_a_slow_reader(server):
    """A copy larger than the socket buffers leaves by sendfile from the cache's memfd, the rest queued."""
    with server.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /s/large.js HTTP/1.1\r\nHost: test\r\nAccept-Encoding: gzip\r\n\r\n")
        time.sleep(0.3)
        response = ResponseReader(sock).read_response()
    assert response.status == 200 and response.header("content-encoding") == "gzip"
    assert 100_000 < len(response.body) < len(LARGE)
    assert gzip.decompress(response.body) == LARGE


# -- configuration ------------------------------------------------------------------------------------------


def test_cache_off(root):
    server = start(root, "--static-compress-cache", "0")
    try:
        response = request(server, "/s/site.css", Accept_Encoding="gzip, br, zstd")
        assert response.header("content-encoding") is None and response.body == CSS
        assert response.header("vary") is None
        # Precompressed variants do not need the cache.
        assert request(server, "/s/pre.css", Accept_Encoding="gzip").header("content-encoding") == "gzip"
    finally:
        stop(server)


def test_codings_and_budget_follow_the_configuration(root):
    server = Server(
        ["compressapps:main", "--bind", "127.0.0.1:0", "--workers", "1", "--static", f"/s/={root}"],
        env={"MELTEMI_COMPRESS": "gzip", "MELTEMI_STATIC_COMPRESS_CACHE": "64K"},
    )
    try:
        assert request(server, "/s/site.css", Accept_Encoding="br").header("content-encoding") is None
        response = request(server, "/s/site.css", Accept_Encoding="br, gzip")
        assert response.header("content-encoding") == "gzip" and gzip.decompress(response.body) == CSS
        # A copy larger than the whole budget is not kept: the file goes out as it is.
        big = request(server, "/s/large.js", Accept_Encoding="gzip")
        assert big.header("content-encoding") is None and big.body == LARGE
    finally:
        stop(server)


# -- the demo project, as `make run` serves it ---------------------------------------------------------------


@needs_api  # the demo project mounts the typed API
def test_demo_admin_css_is_compressed(demo_env):  # noqa: F811
    """Issue 10 as a new user saw it: `make run` (runmeltemi, STATIC_ROOT mounted in C, no `precompress`) sent
    the admin's 22 KB base.css uncompressed to a browser accepting gzip, without Vary."""
    server = Server(
        ["--bind", "127.0.0.1:0", "--skip-checks"],
        env=demo_env,
        cwd=DEMO,
        command=[sys.executable, "manage.py", "runmeltemi"],
        timeout=60,
    )
    try:
        url = f"{server.url}/static/admin/css/base.css"
        collected = Path(demo_env["DEMO_STATIC_ROOT"]) / "admin/css/base.css"
        original = collected.read_bytes()
        assert len(original) > 10_000 and not collected.with_name("base.css.gz").exists()
        browser = requests.get(url, headers={"Accept-Encoding": "gzip, deflate, br, zstd"}, stream=True, timeout=30)
        raw = browser.raw.read(decode_content=False)
        assert browser.status_code == 200
        assert browser.headers["Content-Encoding"] == "zstd"
        assert "Accept-Encoding" in browser.headers["Vary"]
        assert int(browser.headers["Content-Length"]) == len(raw) < len(original) / 3
        assert decode(raw, "zstd") == original
        for coding in CODINGS:
            response = requests.get(url, headers={"Accept-Encoding": coding}, stream=True, timeout=30)
            assert response.headers["Content-Encoding"] == coding
            assert decode(response.raw.read(decode_content=False), coding) == original
            etag = response.headers["ETag"]
            again = requests.get(url, headers={"Accept-Encoding": coding, "If-None-Match": etag}, timeout=30)
            assert again.status_code == 304
        plain = requests.get(url, headers={"Accept-Encoding": "identity"}, timeout=30)
        assert plain.headers.get("Content-Encoding") is None and plain.content == original
        assert plain.headers["Vary"] == "Accept-Encoding"
    finally:
        assert server.stop() == 0, server.output
        server.assert_balanced()
