"""Static files served in C (`--static PREFIX=DIR`, issue 5), through a real server process.

A temporary tree is mounted at /static/; compressapps:main answers everything
else (`dynamic`: the method and path as text).  Requests go out on raw sockets
so that what reaches the server is exactly what the test wrote (traversal
attempts would be normalised by an HTTP library).

Covered: 200 with exact bytes and headers, HEAD, conditional requests (304),
single ranges (206), unsatisfiable ranges (416), multiple ranges (200, whole
file), precompressed .br/.gz/.zst variants chosen by Accept-Encoding and
decoding to the original, immutable caching of hashed names, traversal and
other unsafe paths (404), directories (404), methods other than GET/HEAD
(405), the fall-through to the WSGI application, pipelining, a request split
at every byte, files changed on disk, a 20 MB file to a slow reader, and a
mount of a missing directory refused at start.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import http.client
import os
import re
import socket
import subprocess
import sys
import time

import brotli
import pytest
import zstandard
from compressapps import make_body
from conftest import ROOT, TESTS, RawResponse, ResponseReader, Server

CSS = make_body(6000)
JS = make_body(2500)[::-1]
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20
SECRET = b"outside the root: must never be served\n"
BIG_SIZE = 20 * 1024 * 1024


# -- the tree and the server ------------------------------------------------------


def write(path, data: bytes, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = tmp_path_factory.mktemp("static")
    root = base / "root"
    old = time.time() - 3600
    write(root / "app.css", CSS, old)
    write(root / "app.css.gz", gzip.compress(CSS, 9), old + 10)
    write(root / "app.css.br", brotli.compress(CSS), old + 10)
    write(root / "app.css.zst", zstandard.ZstdCompressor(level=19).compress(CSS), old + 10)
    write(root / "only-gz.js", JS, old)
    write(root / "only-gz.js.gz", gzip.compress(JS), old)  # same mtime: still current
    write(root / "stale.css", CSS, old)
    write(root / "stale.css.br", brotli.compress(b"an outdated variant"), old - 100)  # older than the file
    write(root / "app.0123456789ab.css", CSS, old)
    write(root / "noext.0123456789ab", CSS, old)
    write(root / "app.notahash1234.css", CSS, old)
    write(root / "js" / "deep" / "lib.mjs", JS, old)
    write(root / "logo.png", PNG, old)
    write(root / "data.json", b'{"a": 1}\n', old)
    write(root / "blob.unknownext", b"\x00\x01\x02", old)
    write(root / "a b.txt", b"a space in the name\n", old)
    write(root / "empty.txt", b"", old)
    write(root / "sub" / "inner.txt", b"inner\n", old)
    write(base / "secret.txt", SECRET, old)
    (root / "link-out").symlink_to(base / "secret.txt")
    (root / "link-out-rel").symlink_to("../secret.txt")
    (root / "link-dir-out").symlink_to(base)
    (root / "link-in").symlink_to("app.css")
    big = os.urandom(1 << 20) * 20
    write(root / "big.bin", big, old)
    return {"root": root, "base": base, "big_sha": hashlib.sha256(big).hexdigest()}


def stop(server: Server) -> None:
    code = server.stop()
    assert code == 0, f"meltemi exited with {code}:\n{server.output}"
    server.assert_balanced()
    assert "AssertionError" not in server.output, "the WSGI validator complained:\n" + server.output
    assert "Traceback" not in server.output, server.output


@pytest.fixture(scope="module")
def server(tree):
    server = Server(
        ["compressapps:main", "--bind", "127.0.0.1:0", "--workers", "1", "--static", f"/static/={tree['root']}"]
    )
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="module")
def variants_only(tree):
    """The same tree without the compressed-file cache: what precompressed variants alone give (the copies
    the server compresses itself are tests/py/test_static_compress.py's)."""
    server = Server(
        [
            "compressapps:main",
            "--bind",
            "127.0.0.1:0",
            "--workers",
            "1",
            "--static",
            f"/static/={tree['root']}",
            "--static-compress-cache",
            "0",
        ]
    )
    try:
        yield server
    finally:
        stop(server)


def build(target: str, method: str = "GET", extra: str = "", version: str = "1.1") -> bytes:
    host = "Host: test\r\n" if version == "1.1" else ""
    return f"{method} {target} HTTP/{version}\r\n{host}{extra}\r\n".encode("latin-1")


def request(server: Server, target: str, method: str = "GET", extra: str = "") -> RawResponse:
    with server.connect() as sock:
        sock.sendall(build(target, method, extra))
        return ResponseReader(sock).read_response(method)


def http_date(t: float) -> str:
    return email.utils.formatdate(t, usegmt=True)


# -- 200 and HEAD -----------------------------------------------------------------

TYPES = [
    ("app.css", CSS, "text/css; charset=utf-8"),
    ("js/deep/lib.mjs", JS, "text/javascript; charset=utf-8"),
    ("logo.png", PNG, "image/png"),
    ("data.json", b'{"a": 1}\n', "application/json"),
    ("blob.unknownext", b"\x00\x01\x02", "application/octet-stream"),
    ("a%20b.txt", b"a space in the name\n", "text/plain; charset=utf-8"),
]


@pytest.mark.parametrize(("name", "data", "ctype"), TYPES, ids=[t[0] for t in TYPES])
def test_get(server, tree, name, data, ctype):
    response = request(server, f"/static/{name}")
    assert response.status == 200, response
    assert response.body == data
    assert response.header("content-type") == ctype
    assert response.header_list("content-length") == [str(len(data))]
    assert response.header("transfer-encoding") is None
    assert response.header("accept-ranges") == "bytes"
    assert response.header("content-encoding") is None
    etag = response.header("etag")
    assert re.fullmatch(r'"[!#-~]+"', etag), etag  # strong
    mtime = (tree["root"] / name.replace("%20", " ")).stat().st_mtime
    assert response.header("last-modified") == http_date(int(mtime))
    assert response.header("cache-control") == "public, max-age=60"
    assert response.header("date")


def test_empty_file(server):
    response = request(server, "/static/empty.txt")
    assert response.status == 200 and response.body == b""
    assert response.header("content-length") == "0"


def test_query_string_ignored(server):
    response = request(server, "/static/app.css?v=3&x=/../secret.txt")
    assert response.status == 200 and response.body == CSS


def test_absolute_form_target(server):
    response = request(server, "http://test/static/logo.png")
    assert response.status == 200 and response.body == PNG


def test_head(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(build("/static/app.css", "HEAD") + build("/static/app.css"))
        head = reader.read_response("HEAD")
        get = reader.read_response()
    assert head.status == get.status == 200
    assert head.body == b""
    assert get.body == CSS

    def fields(response):
        return sorted((k.lower(), v) for k, v in response.headers if k.lower() not in ("date", "x-request-id"))

    assert fields(head) == fields(get)


def test_head_with_range_is_whole(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(build("/static/app.css", "HEAD", "Range: bytes=0-9\r\n") + build("/static/data.json"))
        head = reader.read_response("HEAD")
        assert head.status in (200, 206)
        if head.status == 200:
            assert head.header("content-length") == str(len(CSS))
        after = reader.read_response()
        assert after.body == b'{"a": 1}\n'


def test_http_client(server):
    """http.client on one keep-alive connection: files, a 304, a precompressed variant, a dynamic page."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request("GET", "/static/app.css")
        first = conn.getresponse()
        assert first.status == 200 and first.read() == CSS
        conn.request("GET", "/static/app.css", headers={"If-None-Match": first.getheader("ETag")})
        second = conn.getresponse()
        assert second.status == 304 and second.read() == b""
        conn.request("GET", "/static/app.css", headers={"Accept-Encoding": "gzip"})
        third = conn.getresponse()
        assert third.getheader("Content-Encoding") == "gzip" and gzip.decompress(third.read()) == CSS
        conn.request("GET", "/elsewhere")
        fourth = conn.getresponse()
        assert fourth.read() == b"dynamic GET /elsewhere\n"
    finally:
        conn.close()


# -- conditional requests --------------------------------------------------------------


@pytest.fixture(scope="module")
def validators(server):
    response = request(server, "/static/app.css")
    return response.header("etag"), response.header("last-modified")


def test_if_none_match(server, validators):
    etag, _ = validators
    for value in [etag, f'"nope", {etag}', "*", f"W/{etag}", f'  {etag} , "x"']:
        response = request(server, "/static/app.css", extra=f"If-None-Match: {value}\r\n")
        assert response.status == 304, (value, response)
        assert response.body == b""
        assert response.header("etag") == etag
        assert response.header("content-length") is None or response.header("content-length") == str(len(CSS))
    for value in ['"nope"', etag[:-2] + '"', 'W/"nope"']:
        response = request(server, "/static/app.css", extra=f"If-None-Match: {value}\r\n")
        assert response.status == 200 and response.body == CSS, value


def test_if_modified_since(server, validators):
    _, last_modified = validators
    mtime = email.utils.parsedate_to_datetime(last_modified).timestamp()
    for value, status in [
        (last_modified, 304),
        (http_date(mtime + 3600), 304),
        (http_date(mtime - 1), 200),
        ("not a date", 200),
    ]:
        response = request(server, "/static/app.css", extra=f"If-Modified-Since: {value}\r\n")
        assert response.status == status, (value, response)
        assert response.body == (CSS if status == 200 else b"")


def test_if_none_match_takes_precedence(server, validators):
    etag, last_modified = validators
    response = request(
        server, "/static/app.css", extra=f'If-None-Match: "other"\r\nIf-Modified-Since: {last_modified}\r\n'
    )
    assert response.status == 200 and response.body == CSS


def test_304_on_keep_alive(server, validators):
    etag, _ = validators
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(build("/static/app.css", extra=f"If-None-Match: {etag}\r\n") + build("/static/logo.png"))
        assert reader.read_response().status == 304
        assert reader.read_response().body == PNG


def test_if_match(server, validators):
    etag, _ = validators
    assert request(server, "/static/app.css", extra=f"If-Match: {etag}\r\n").status == 200
    assert request(server, "/static/app.css", extra='If-Match: "other"\r\n').status == 412


# -- ranges ---------------------------------------------------------------------------

RANGES = [
    ("bytes=0-99", 0, 99),
    ("bytes=100-", 100, len(CSS) - 1),
    ("bytes=-50", len(CSS) - 50, len(CSS) - 1),
    ("bytes=10-10", 10, 10),
    ("bytes=5990-999999", 5990, len(CSS) - 1),
    ("bytes=-999999", 0, len(CSS) - 1),
    ("BYTES=0-0", 0, 0),
    ("bytes= 1-2", 1, 2),
]


@pytest.mark.parametrize(("spec", "first", "last"), RANGES, ids=[r[0] for r in RANGES])
def test_single_range(server, spec, first, last):
    response = request(server, "/static/app.css", extra=f"Range: {spec}\r\n")
    assert response.status == 206, response
    assert response.body == CSS[first : last + 1]
    assert response.header("content-range") == f"bytes {first}-{last}/{len(CSS)}"
    assert response.header("content-length") == str(last - first + 1)
    assert response.header("content-type") == "text/css; charset=utf-8"


@pytest.mark.parametrize("spec", [f"bytes={len(CSS)}-", f"bytes={len(CSS) + 10}-{len(CSS) + 20}", "bytes=-0"])
def test_unsatisfiable_range(server, spec):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(build("/static/app.css", extra=f"Range: {spec}\r\n") + build("/static/data.json"))
        response = reader.read_response()
        assert response.status == 416, response
        assert response.header("content-range") == f"bytes */{len(CSS)}"
        assert reader.read_response().status == 200


@pytest.mark.parametrize("spec", ["bytes=0-1,5-6", "bytes=0-1, -5", "items=0-5", "bytes=5-1", "bytes=abc", "bytes="])
def test_multi_or_invalid_range_gives_whole_file(server, spec):
    response = request(server, "/static/app.css", extra=f"Range: {spec}\r\n")
    assert response.status == 200, response
    assert response.body == CSS
    assert response.header("content-range") is None


def test_if_range(server, validators):
    etag, last_modified = validators
    matching = request(server, "/static/app.css", extra=f"Range: bytes=0-9\r\nIf-Range: {etag}\r\n")
    assert matching.status == 206 and matching.body == CSS[:10]
    matching = request(server, "/static/app.css", extra=f"Range: bytes=0-9\r\nIf-Range: {last_modified}\r\n")
    assert matching.status == 206 and matching.body == CSS[:10]
    other = request(server, "/static/app.css", extra='Range: bytes=0-9\r\nIf-Range: "old"\r\n')
    assert other.status == 200 and other.body == CSS


def test_empty_file_range(server):
    response = request(server, "/static/empty.txt", extra="Range: bytes=0-10\r\n")
    assert response.status == 416
    assert response.header("content-range") == "bytes */0"


# -- precompressed variants ------------------------------------------------------------------


def decode(body: bytes, coding: str | None) -> bytes:
    if coding is None:
        return body
    if coding == "gzip":
        return gzip.decompress(body)
    if coding == "br":
        return brotli.decompress(body)
    return zstandard.ZstdDecompressor().decompress(body)


VARIANTS = [
    (None, None),
    ("gzip", "gzip"),
    ("br", "br"),
    ("zstd", "zstd"),
    ("gzip, deflate, br", "br"),
    ("gzip, deflate, br, zstd", "zstd"),
    ("*", "zstd"),
    ("zstd;q=0, *", "br"),
    ("gzip;q=0.5, br;q=0.4", "gzip"),
    ("identity", None),
    ("*;q=0", None),
    ("deflate", None),
    ("br;q=0, zstd;q=0, gzip;q=0", None),
]


@pytest.mark.parametrize(("accept", "coding"), VARIANTS, ids=[repr(v[0]) for v in VARIANTS])
def test_precompressed_variant(server, tree, accept, coding):
    extra = f"Accept-Encoding: {accept}\r\n" if accept is not None else ""
    response = request(server, "/static/app.css", extra=extra)
    assert response.status == 200
    assert response.header("content-encoding") == coding, response
    assert response.header("content-type") == "text/css; charset=utf-8"
    assert response.header("vary") == "Accept-Encoding"
    suffix = {"gzip": ".gz", "br": ".br", "zstd": ".zst", None: ""}[coding]
    assert response.body == (tree["root"] / f"app.css{suffix}").read_bytes()
    assert response.header("content-length") == str(len(response.body))
    assert decode(response.body, coding) == CSS


def test_variant_etags_differ_and_revalidate(server):
    etags = {}
    for coding in ["gzip", "br", "zstd", "identity"]:
        response = request(server, "/static/app.css", extra=f"Accept-Encoding: {coding}\r\n")
        etags[coding] = response.header("etag")
        again = request(
            server, "/static/app.css", extra=f"Accept-Encoding: {coding}\r\nIf-None-Match: {etags[coding]}\r\n"
        )
        assert again.status == 304, (coding, again)
        assert again.header("vary") == "Accept-Encoding"
    assert len(set(etags.values())) == 4, etags


def test_range_applies_to_variant(server, tree):
    encoded = (tree["root"] / "app.css.br").read_bytes()
    response = request(server, "/static/app.css", extra="Accept-Encoding: br\r\nRange: bytes=0-9\r\n")
    assert response.status == 206
    assert response.header("content-encoding") == "br"
    assert response.body == encoded[:10]
    assert response.header("content-range") == f"bytes 0-9/{len(encoded)}"


def test_only_existing_variants(server, tree):
    response = request(server, "/static/only-gz.js", extra="Accept-Encoding: zstd, br, gzip;q=0.1\r\n")
    assert response.header("content-encoding") == "gzip"
    assert decode(response.body, "gzip") == JS
    assert response.header("vary") == "Accept-Encoding"


def test_stale_variant_ignored(variants_only):
    response = request(variants_only, "/static/stale.css", extra="Accept-Encoding: br\r\n")
    assert response.status == 200
    assert response.header("content-encoding") is None
    assert response.body == CSS


def test_no_variants_no_vary(server):
    response = request(server, "/static/logo.png", extra="Accept-Encoding: gzip, br, zstd\r\n")
    assert response.header("content-encoding") is None and response.body == PNG
    assert response.header("vary") is None


def test_head_of_variant(server):
    head = request(server, "/static/app.css", "HEAD", extra="Accept-Encoding: zstd\r\n")
    get = request(server, "/static/app.css", extra="Accept-Encoding: zstd\r\n")
    assert head.body == b""
    assert head.header("content-encoding") == get.header("content-encoding") == "zstd"
    assert head.header("content-length") == get.header("content-length")
    assert head.header("etag") == get.header("etag")


# -- caching of hashed names ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "cache"),
    [
        ("app.0123456789ab.css", "public, max-age=31536000, immutable"),
        ("noext.0123456789ab", "public, max-age=31536000, immutable"),
        ("app.notahash1234.css", "public, max-age=60"),
        ("app.css", "public, max-age=60"),
    ],
)
def test_hashed_names_immutable(server, name, cache):
    response = request(server, f"/static/{name}")
    assert response.status == 200 and response.body == CSS
    assert response.header("cache-control") == cache


def test_static_max_age_option(start_server, tree):
    server = start_server("compressapps:main", "--static", f"/assets={tree['root']}", "--static-max-age", "7")
    assert request(server, "/assets/app.css").header("cache-control") == "public, max-age=7"
    hashed = request(server, "/assets/app.0123456789ab.css")
    assert hashed.header("cache-control") == "public, max-age=31536000, immutable"


# -- unsafe paths ---------------------------------------------------------------------------------------

UNSAFE = [
    "/static/../secret.txt",
    "/static/../root/app.css",
    "/static/%2e%2e/secret.txt",
    "/static/%2E%2E/secret.txt",
    "/static/.%2e/secret.txt",
    "/static/sub/../../secret.txt",
    "/static/sub/%2e%2e/%2e%2e/secret.txt",
    "/static/sub%2f..%2f..%2fsecret.txt",
    "/static/sub%2finner.txt",
    "/static/sub%2Finner.txt",
    "/static/a%2fb",
    "/static/..%5csecret.txt",
    "/static/..\\secret.txt",
    "/static/sub%5cinner.txt",
    "/static//app.css",
    "/static/./app.css",
    "/static/%2e/app.css",
    "/static/link-out",
    "/static/link-out-rel",
    "/static/link-dir-out/secret.txt",
    "/static/link-dir-out/root/app.css",
    "/static/%2fetc/passwd",
    "/static/%252e%252e/secret.txt",
    "/static/...",
]


@pytest.mark.parametrize("target", UNSAFE)
def test_traversal_refused(server, target):
    with server.connect() as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: test\r\n\r\n".encode("latin-1"))
        reader = ResponseReader(sock)
        response = reader.read_response()
        assert response.status == 404, response
        assert SECRET not in response.body and b"root:" not in response.body
        # The connection survives a 404.
        sock.sendall(build("/static/data.json"))
        assert reader.read_response().status == 200


@pytest.mark.parametrize("target", ["/static/app.css%00.png", "/static/app.css%00", "/static/%00"])
def test_encoded_nul_refused(server, target):
    """An encoded NUL is refused before the mounts are looked at (400 from the HTTP layer) or by them (404)."""
    response = request(server, target)
    assert response.status in (400, 404), response
    assert CSS not in response.body


def test_symlink_inside_root(server):
    """A relative symlink that stays inside the root may be followed (openat2) or refused (no openat2)."""
    response = request(server, "/static/link-in")
    assert response.status in (200, 404)
    if response.status == 200:
        assert response.body == CSS


@pytest.mark.parametrize("target", ["/static/sub", "/static/sub/", "/static/", "/static/js/deep"])
def test_directory_is_404(server, target):
    assert request(server, target).status == 404


def test_missing_file_is_404(server):
    response = request(server, "/static/nope.css")
    assert response.status == 404
    assert response.header("content-length") == str(len(response.body))


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_405(server, method):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(
            f"{method} /static/app.css HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello".encode()
            + build("/static/data.json")
        )
        response = reader.read_response()
        assert response.status == 405, response
        allow = {m.strip() for m in response.header("allow").split(",")}
        assert allow == {"GET", "HEAD"}
        assert reader.read_response().body == b'{"a": 1}\n'


# -- routing, pipelining, splitting ------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["/other", "/staticfoo/app.css", "/static", "/Static/app.css", "/x/static/app.css"])
def test_outside_mount_goes_to_app(server, target):
    response = request(server, target)
    assert response.status == 200
    assert response.body == f"dynamic GET {target}\n".encode()


def test_pipelined_static_and_dynamic(server):
    plan = [
        ("/static/app.css", CSS),
        ("/dyn/1", b"dynamic GET /dyn/1\n"),
        ("/static/logo.png", PNG),
        ("/static/big.bin", None),
        ("/dyn/2", b"dynamic GET /dyn/2\n"),
        ("/static/nope", None),
        ("/static/data.json", b'{"a": 1}\n'),
        ("/dyn/3", b"dynamic GET /dyn/3\n"),
    ]
    with server.connect(timeout=30) as sock:
        reader = ResponseReader(sock, timeout=30)
        sock.sendall(b"".join(build(target) for target, _ in plan))
        for target, expected in plan:
            response = reader.read_response()
            if target == "/static/nope":
                assert response.status == 404
            elif target == "/static/big.bin":
                assert len(response.body) == BIG_SIZE
            else:
                assert response.status == 200 and response.body == expected, target
        assert not reader.buffer


def test_request_split_at_every_byte(server, validators):
    etag, _ = validators
    data = build("/static/app.css", extra="Accept-Encoding: br\r\nRange: bytes=3-12\r\nUser-Agent: split\r\n")
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for at in range(1, len(data)):
            sock.sendall(data[:at])
            time.sleep(0.001)
            sock.sendall(data[at:])
            response = reader.read_response()
            assert response.status == 206, (at, response)
            assert response.header("content-encoding") == "br"
            assert response.header("content-range").startswith("bytes 3-12/")


# -- files change -------------------------------------------------------------------------------------------


def wait_status(server, target, predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        response = request(server, target)
        if predicate(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def replace(path, data: bytes) -> None:
    """Puts new content in place the way deployments do (collectstatic deletes and recreates): a new inode."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp, data)
    os.replace(tmp, path)


def consistent(response: RawResponse, versions: dict[bytes, str | None]) -> bool:
    """The body is one whole version, framed by its own length, under that version's ETag (once known)."""
    if response.body not in versions or response.header("content-length") != str(len(response.body)):
        return False
    known = versions[response.body]
    versions[response.body] = known or response.header("etag")
    return known is None or known == response.header("etag")


def test_changed_file_noticed(server, tree):
    path = tree["root"] / "changing.txt"
    write(path, b"version one\n")
    first = request(server, "/static/changing.txt")
    assert first.body == b"version one\n"
    versions = {b"version one\n": first.header("etag"), b"version two, longer\n": None, b"version TWO, longer\n": None}
    for content in [b"version two, longer\n", b"version TWO, longer\n"]:  # another size, then the same size
        time.sleep(0.01)
        replace(path, content)
        deadline = time.monotonic() + 3
        while True:
            response = request(server, "/static/changing.txt")
            assert response.status == 200
            assert consistent(response, versions), response
            if response.body == content or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert response.body == content, "the change was not noticed within 3 s"
    assert len(set(versions.values())) == 3, versions
    path.unlink()
    gone = wait_status(server, "/static/changing.txt", lambda r: r.status == 404)
    assert gone.status == 404
    write(path, b"back\n")
    back = wait_status(server, "/static/changing.txt", lambda r: r.status == 200)
    assert back.body == b"back\n"


def test_new_variant_noticed(variants_only, tree):
    path = tree["root"] / "late.css"
    write(path, CSS, time.time() - 60)
    assert (
        request(variants_only, "/static/late.css", extra="Accept-Encoding: br\r\n").header("content-encoding") is None
    )
    write(tree["root"] / "late.css.br", brotli.compress(CSS))
    deadline = time.monotonic() + 3
    while True:
        response = request(variants_only, "/static/late.css", extra="Accept-Encoding: br\r\n")
        if response.header("content-encoding") == "br" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.header("content-encoding") == "br"
    assert brotli.decompress(response.body) == CSS


# -- a large file to a slow reader ----------------------------------------------------------------------------


def worker_pid(server: Server) -> int:
    found = server.wait_for(r"Booting worker \d+ \(pid (\d+)\)", 10)
    assert found, server.output
    return int(found.group(1))


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_large_file_slow_reader(server, tree):
    pid = worker_pid(server)
    request(server, "/static/data.json")
    before = rss_kb(pid)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.settimeout(20)
    sock.connect((server.host, server.port))
    with sock:
        sock.sendall(build("/static/big.bin"))
        received = bytearray()
        started = time.monotonic()
        peak = before
        # Slowly for a second: 16 KiB every 20 ms.
        while time.monotonic() - started < 1.0:
            received += sock.recv(16384)
            time.sleep(0.02)
            peak = max(peak, rss_kb(pid))
        # A second client is served meanwhile.
        assert request(server, "/static/data.json").status == 200
        while True:
            data = sock.recv(1 << 20)
            if not data:
                break
            received += data
            if b"\r\n\r\n" in received:
                head_len = received.index(b"\r\n\r\n") + 4
                if len(received) - head_len >= BIG_SIZE:
                    break
        elapsed = time.monotonic() - started
    head, body = bytes(received).split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 ")
    assert f"Content-Length: {BIG_SIZE}".encode() in head
    assert len(body) == BIG_SIZE
    assert hashlib.sha256(body).hexdigest() == tree["big_sha"]
    assert peak - before < 8 * 1024, f"worker RSS grew by {peak - before} KiB while a slow reader was served"
    assert elapsed < 20


# -- start-up ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_static_mount_error_is_a_configuration_error(tmp_path, kind):
    """A --static directory that cannot be opened is a bad option value: one line naming the option and exit
    code 2, before anything is bound or booted."""
    target = tmp_path / "nothing-here"
    if kind == "file":
        target.write_text("not a directory")
    proc = subprocess.run(
        [sys.executable, "-m", "meltemi", "compressapps:main", "--bind", "127.0.0.1:0", "--static", f"/s/={target}"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert "meltemi: error: --static" in output, output
    assert "Traceback" not in output and "Listening at" not in output, output


@pytest.mark.parametrize("new", [b"v2: longer than the first version, in place\n", b"v2\n"], ids=["grow", "shrink"])
def test_file_rewritten_in_place(server, tree, new):
    """A file rewritten in place (same inode: cp, an editor, rsync --inplace) within the cache's 1 s TTL:
    each response must still be one whole version under its own ETag and length (or a 503), never the
    old length of new bytes under the old strong ETag (a torn body that caches keep)."""
    old = b"version one, a fairly long line\n"
    path = tree["root"] / f"inplace-{len(new)}.txt"
    write(path, old)
    first = request(server, f"/static/{path.name}")
    assert first.body == old
    with open(path, "r+b") as f:  # the same inode
        f.truncate(0)
        f.write(new)
    try:
        response = request(server, f"/static/{path.name}")
    except EOFError as error:
        pytest.fail(f"no response at all: {error}")
    if response.status == 503:
        return
    assert response.status == 200
    assert response.body in (old, new) and response.header("content-length") == str(len(response.body)), response
    if response.body == old:
        assert response.header("etag") == first.header("etag")
    else:
        assert response.header("etag") != first.header("etag"), "new bytes under the old strong ETag"
