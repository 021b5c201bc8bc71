"""Compression of WSGI responses by the server (issue 5), through real server processes.

Requests go out on raw sockets (conftest's strict ResponseReader parses the
answers) and every compressed body is decoded with the reference decoders:
zlib for gzip, the `brotli` and `zstandard` packages, and must give back the
application's bytes exactly (compressapps.make_body).

What is checked: the Accept-Encoding negotiation (a matrix of headers and the
coding chosen), each way an application hands over its body (a list, a
one-chunk iterable with Content-Length as Django's HttpResponse, a generator,
write(), empty bodies, sizes around --compress-min-size), the headers (Vary
added or merged, Content-Length replaced or chunked framing, a strong ETag
made weak), the cases that must stay uncompressed, streamed chunks flushed as
they are produced (server-sent events), the level options, HTTP/1.0 and
keep-alive.

HEAD, as decided here (and as the server does): a HEAD request is answered
for the identity representation, whatever Accept-Encoding says, since no body
is sent that could be compressed.  Its headers are those of a GET of the same
resource without compression: the same Content-Type, Vary (Accept-Encoding
included, as the resource varies), the application's own Content-Length and
strong ETag, and no Content-Encoding.  Against a compressed GET they differ
only in Content-Encoding, Content-Length / Transfer-Encoding and the ETag's
weakness.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import zlib
from urllib.parse import quote

import brotli
import pytest
import requests
import zstandard
from compressapps import make_body
from conftest import ROOT, TESTS, RawResponse, ResponseReader, Server

CODINGS = ("gzip", "br", "zstd")


# -- helpers -------------------------------------------------------------------


def start(*options: str) -> Server:
    return Server(["compressapps:main", "--bind", "127.0.0.1:0", "--workers", "1", *options])


def stop(server: Server) -> None:
    code = server.stop()
    assert code == 0, f"meltemi exited with {code}:\n{server.output}"
    server.assert_balanced()
    assert "AssertionError" not in server.output, "the WSGI validator complained:\n" + server.output
    assert "Traceback" not in server.output, server.output


@pytest.fixture(scope="module")
def server():
    server = start()
    try:
        yield server
    finally:
        stop(server)


def build(target: str, ae: str | None = None, method: str = "GET", version: str = "1.1", extra: str = "") -> bytes:
    head = f"{method} {target} HTTP/{version}\r\n"
    if version == "1.1":
        head += "Host: test\r\n"
    if ae is not None:
        head += f"Accept-Encoding: {ae}\r\n"
    return (head + extra + "\r\n").encode("latin-1")


def request(
    server: Server, target: str, ae: str | None = None, method: str = "GET", version: str = "1.1", extra: str = ""
) -> RawResponse:
    """One request on a fresh connection; the response, strictly parsed."""
    with server.connect() as sock:
        sock.sendall(build(target, ae, method, version, extra))
        response = ResponseReader(sock).read_response(method)
    return response


def decode(body: bytes, coding: str | None) -> bytes:
    """The body decoded with the reference decoder of `coding`; the encoded data must end exactly."""
    if coding is None:
        return body
    if coding == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = d.decompress(body)
        assert d.eof and not d.unused_data, "gzip stream incomplete or followed by junk"
        return out
    if coding == "br":
        d = brotli.Decompressor()
        out = d.process(body)
        assert d.is_finished(), "brotli stream incomplete"
        return out
    if coding == "zstd":
        d = zstandard.ZstdDecompressor().decompressobj()
        out = d.decompress(body)
        assert d.eof and not d.unused_data, "zstd frame incomplete or followed by junk"
        return out
    raise AssertionError(f"unexpected coding {coding!r}")


def vary_tokens(response: RawResponse) -> list[str]:
    return [token.strip().lower() for value in response.header_list("vary") for token in value.split(",")]


def check_body(response: RawResponse, original: bytes, coding: str | None) -> None:
    """Status 200, the expected coding, Vary: Accept-Encoding, framing consistent, and the body decoding back."""
    assert response.status == 200, response
    assert response.header("content-encoding") == coding, response
    assert len(response.header_list("content-encoding")) <= 1
    assert vary_tokens(response).count("accept-encoding") == 1, response
    length = response.header("content-length")
    chunked = response.header("transfer-encoding")
    assert (length is None) != (chunked is None) or response.header("connection") == "close", response
    if length is not None:
        assert int(length) == len(response.body)
    assert decode(response.body, coding) == original


# -- negotiation ---------------------------------------------------------------

# (Accept-Encoding, expected coding) with all three codings enabled (the default).
MATRIX = [
    (None, None),
    ("", None),
    ("gzip", "gzip"),
    ("br", "br"),
    ("zstd", "zstd"),
    ("GZIP", "gzip"),
    ("Br", "br"),
    ("ZStd", "zstd"),
    ("x-gzip", "gzip"),
    ("deflate", None),
    ("compress, deflate", None),
    ("identity", None),
    ("gzip, deflate", "gzip"),
    ("gzip, deflate, br", "br"),
    ("gzip, deflate, br, zstd", "zstd"),
    ("*", "zstd"),
    ("*;q=0", None),
    ("gzip;q=0", None),
    ("gzip;Q=0", None),
    ("gzip;q=0, *", "zstd"),
    ("br;q=0, zstd;q=0, *", "gzip"),
    ("*, zstd;q=0", "br"),
    ("zstd;q=0, br;q=0, gzip;q=0", None),
    ("gzip;q=1.0, br;q=0.5", "gzip"),
    ("gzip;q=0.5, br;q=0.8, zstd;q=0.3", "br"),
    ("br;q=0.5, gzip;q=0.5, zstd;q=0.4", "br"),
    ("gzip; q=0.9, br ; q=0.9", "br"),
    ("gzip;q=0.001", "gzip"),
    ("zstd;q=0.001, gzip;q=0.002", "gzip"),
    ("gzip;q=1.5", None),
    ("gzip;q=abc, br", "br"),
    ("gzip;q=0.5;q=0.9, br;q=0.1", "br"),
    ("gzip,,br", "br"),
    (" , gzip ,", "gzip"),
    ("zstd;level=3", "zstd"),
    ("x-gzip;q=0, gzip", None),
    ("gzip;q=0.8, *;q=0.9", "zstd"),
    ("sdch, gzip;q=0.1, br;q=0", "gzip"),
    ("identity;q=1, gzip;q=0.5", None),
    ("gzip, identity;q=0", "gzip"),
    ("identity;q=0", None),
    ("identity, gzip", "gzip"),
    ("*;q=0.5, identity", None),
    ("*;q=0.5, identity;q=0.4", "zstd"),
    ("\tbr\t;\tq=0.7\t, gzip;q=0.6", "br"),
]


@pytest.mark.parametrize(("accept", "expected"), MATRIX, ids=[repr(a) for a, _ in MATRIX])
def test_negotiation_matrix(server, accept, expected):
    original = make_body(3000)
    response = request(server, "/raw/body?size=3000", accept)
    check_body(response, original, expected)


# -- every body shape decodes ----------------------------------------------------

SHAPES = [
    # (query, framing: True for Content-Length, False for chunked, None for either)
    ("mode=list", True),
    ("mode=list&chunk=100", True),
    ("mode=list&cl=1", True),
    ("mode=one&cl=1", True),
    ("mode=one", True),
    ("mode=gen", False),
    ("mode=gen&chunk=333", False),
    ("mode=gen&cl=1&chunk=1000", None),  # one chunk that completes its Content-Length may be sent with a length
    ("mode=write", False),
    ("mode=write&cl=1&chunk=700", False),
]


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("size", [600, 5000, 200_000])
@pytest.mark.parametrize(("query", "known"), SHAPES, ids=[q for q, _ in SHAPES])
def test_raw_shapes_decode(server, coding, size, query, known):
    """Unvalidated apps (lists and one-chunk iterables reach the server as such): exact bytes back."""
    response = request(server, f"/raw/body?size={size}&{query}", coding)
    check_body(response, make_body(size), coding)
    if known is None:
        pass
    elif known:
        assert response.header("transfer-encoding") is None
        assert int(response.header("content-length")) < size, "a compressed body should be smaller"
    else:
        assert response.header("transfer-encoding") == "chunked"
        assert response.header("content-length") is None


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("query", ["mode=list", "mode=one&cl=1", "mode=gen&chunk=1000", "mode=write&chunk=999"])
def test_validated_shapes_decode(server, coding, query):
    """The same through wsgiref.validate (which turns every body into an iterator: chunked)."""
    response = request(server, f"/body?size=30000&{query}", coding)
    check_body(response, make_body(30000), coding)


@pytest.mark.parametrize("coding", CODINGS)
def test_many_small_chunks_stream(server, coding):
    """A generator of 2000 chunks of 7 bytes: each flushed, the whole still one valid stream."""
    response = request(server, "/raw/body?size=14000&mode=gen&chunk=7", coding)
    check_body(response, make_body(14000), coding)


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("query", ["mode=list", "mode=one&cl=1", "mode=gen", "mode=write"])
def test_empty_body(server, coding, query):
    """An empty body is not compressed (nothing to gain): Content-Length 0 or an empty chunked body."""
    response = request(server, f"/raw/body?size=0&{query}", coding)
    assert response.status == 200
    assert response.body == b""
    assert response.header("content-encoding") is None, response


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("query", ["mode=list", "mode=list&chunk=100", "mode=one&cl=1", "mode=gen&cl=1"])
def test_min_size_boundary(server, coding, query):
    """Bodies of known length under --compress-min-size (512) go out as they are; from 512 on, compressed."""
    below = request(server, f"/raw/body?size=511&{query}", coding)
    assert below.status == 200 and below.body == make_body(511)
    assert below.header("content-encoding") is None, below
    at = request(server, f"/raw/body?size=512&{query}", coding)
    check_body(at, make_body(512), coding)


@pytest.mark.parametrize("coding", CODINGS)
def test_small_stream_of_unknown_length_is_compressed(server, coding):
    """As documented: a streamed body without Content-Length is compressed whatever its size."""
    response = request(server, "/raw/body?size=20&mode=gen", coding)
    check_body(response, make_body(20), coding)


# -- headers ---------------------------------------------------------------------


def test_vary_added(server):
    response = request(server, "/raw/body?size=3000", "gzip")
    assert response.header_list("vary") == ["Accept-Encoding"]


@pytest.mark.parametrize("ae", [None, "identity", "deflate", "gzip;q=0"])
def test_vary_present_when_identity_chosen(server, ae):
    """A compressible response sent uncompressed still varies on Accept-Encoding (RFC 9110 12.5.5)."""
    response = request(server, "/raw/body?size=3000", ae)
    assert response.header("content-encoding") is None
    assert response.body == make_body(3000)
    assert vary_tokens(response) == ["accept-encoding"], response


@pytest.mark.parametrize("query", ["mode=list", "mode=one&cl=1", "mode=gen"])
@pytest.mark.parametrize("ae", ["zstd", None])
def test_vary_merged_with_cookie(server, query, ae):
    response = request(server, f"/raw/body?size=3000&vary=Cookie&{query}", ae)
    tokens = vary_tokens(response)
    assert sorted(tokens) == ["accept-encoding", "cookie"], response
    assert decode(response.body, ae) == make_body(3000)


@pytest.mark.parametrize("vary", ["Accept-Encoding", "accept-encoding", "Cookie, Accept-Encoding", "*"])
def test_vary_not_duplicated(server, vary):
    response = request(server, f"/raw/body?size=3000&vary={vary.replace(' ', '%20')}", "br")
    if vary != "*":
        check_body(response, make_body(3000), "br")
    values = response.header_list("vary")
    assert values == [vary], response


def test_content_length_replaced(server):
    identity = request(server, "/raw/body?size=50000&mode=one&cl=1")
    assert identity.header("content-length") == "50000"
    for coding in CODINGS:
        response = request(server, "/raw/body?size=50000&mode=one&cl=1", coding)
        assert response.header_list("content-length") == [str(len(response.body))]
        assert len(response.body) < 50000
        assert decode(response.body, coding) == make_body(50000)


def test_declared_length_of_stream_replaced_by_chunked(server):
    response = request(server, "/raw/body?size=50000&mode=gen&cl=1&chunk=4096", "gzip")
    assert response.header("content-length") is None
    assert response.header("transfer-encoding") == "chunked"
    assert decode(response.body, "gzip") == make_body(50000)


@pytest.mark.parametrize("query", ["mode=one&cl=1", "mode=gen"])
def test_strong_etag_made_weak(server, query):
    compressed = request(server, f'/raw/body?size=3000&etag="v1"&{query}', "gzip")
    assert compressed.header_list("etag") == ['W/"v1"'], compressed
    identity = request(server, f'/raw/body?size=3000&etag="v1"&{query}')
    assert identity.header_list("etag") == ['"v1"'], identity


def test_weak_etag_stays_weak(server):
    response = request(server, '/raw/body?size=3000&etag=W/"v1"', "zstd")
    assert response.header_list("etag") == ['W/"v1"'], response
    assert decode(response.body, "zstd") == make_body(3000)


# -- not compressed --------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize(
    "query",
    [
        "ce=gzip",
        "ce=identity",
        "cc=no-transform",
        "cc=public,%20no-transform,%20max-age=60",
        "cc=NO-TRANSFORM",
        "type=image/png",
        "type=application/octet-stream",
        "type=video/mp4",
        "type=none",
    ],
)
@pytest.mark.parametrize("mode", ["list", "gen"])
def test_not_compressed(server, coding, query, mode):
    response = request(server, f"/raw/body?size=5000&mode={mode}&{query}", coding)
    assert response.status == 200
    assert response.body == make_body(5000), "the body must go out untouched"
    encodings = response.header_list("content-encoding")
    assert encodings == ([query[3:]] if query.startswith("ce=") else []), response
    assert response.header("etag") is None


@pytest.mark.parametrize(
    "ctype",
    [
        "text/plain",
        "text/css",
        "application/json",
        "application/javascript",
        "image/svg+xml",
        "application/ld+json",
        "application/atom+xml",
        "TEXT/HTML; charset=utf-8",
        "text/event-stream",
    ],
)
def test_compressible_types(server, ctype):
    response = request(server, f"/raw/body?size=3000&type={quote(ctype)}", "gzip")
    check_body(response, make_body(3000), "gzip")
    assert response.header("content-type") == ctype


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("status", [204, 304])
@pytest.mark.parametrize("mode", ["list", "gen"])
def test_bodiless_statuses_not_compressed(server, coding, status, mode):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(build(f'/raw/body?status={status}&etag="e"&mode={mode}', coding))
        response = reader.read_response()
        assert response.status == status
        assert response.header("content-encoding") is None, response
        assert response.header("transfer-encoding") is None, response
        assert response.header("content-length") is None, response
        if status == 304:
            assert response.header("etag") == '"e"', response
        # Nothing follows the head: the next response on the connection parses.
        sock.sendall(build("/raw/body?size=3000", coding))
        check_body(reader.read_response(), make_body(3000), coding)


@pytest.mark.parametrize("coding", CODINGS)
def test_partial_content_not_compressed(server, coding):
    response = request(server, "/raw/body?size=3000&status=206", coding)
    assert response.status == 206
    assert response.header("content-encoding") is None
    assert response.header("content-range") == "bytes 0-2999/6000"
    assert response.body == make_body(3000)


@pytest.mark.parametrize("query", ["mode=one&cl=1&etag=%22h%22&vary=Cookie", "mode=gen", "mode=list"])
@pytest.mark.parametrize("coding", CODINGS)
def test_head_headers(server, query, coding):
    """HEAD: the identity representation's headers (see the module's docstring), no body, keep-alive intact."""
    target = f"/raw/body?size=3000&{query}"
    with server.connect() as sock:
        reader = ResponseReader(sock)
        sock.sendall(build(target, coding, method="HEAD") + build(target) + build(target, coding))
        head = reader.read_response("HEAD")
        plain = reader.read_response()
        compressed = reader.read_response()
    assert head.status == plain.status == compressed.status == 200
    assert head.header("content-encoding") is None
    assert head.body == b""

    def fields(response: RawResponse, drop: set[str]) -> list[tuple[str, str]]:
        return sorted((k.lower(), v) for k, v in response.headers if k.lower() not in {"date", "x-request-id", *drop})

    # Chunked framing is the one thing HEAD may say differently from an uncompressed GET of a known list.
    framing = {"content-length", "transfer-encoding"} if "mode=list" in query else set()
    assert fields(head, framing) == fields(plain, framing)
    encoding_related = {"content-encoding", "content-length", "transfer-encoding", "etag"}
    assert fields(head, encoding_related) == fields(compressed, encoding_related)
    assert compressed.header("content-encoding") == coding
    assert "accept-encoding" in vary_tokens(head)


def test_compress_off(start_server):
    server = start_server("compressapps:main", "--compress", "off")
    for ae in ["gzip", "br", "zstd", "*", "gzip, deflate, br, zstd"]:
        for query in ["mode=list", "mode=one&cl=1", "mode=gen"]:
            response = request(server, f"/raw/body?size=5000&{query}", ae)
            assert response.status == 200
            assert response.header("content-encoding") is None, response
            assert response.body == make_body(5000)
            assert "accept-encoding" not in vary_tokens(response)
    assert "Traceback" not in server.output


# -- options -------------------------------------------------------------------------

LEVELS = [
    ("--gzip-level", "1", "--brotli-level", "0", "--zstd-level", "1"),
    ("--gzip-level", "9", "--brotli-level", "11", "--zstd-level", "19"),
]


@pytest.mark.parametrize("levels", LEVELS, ids=["low", "high"])
def test_levels_accepted(start_server, levels):
    server = start_server("compressapps:main", *levels)
    for coding in CODINGS:
        for query in ["mode=one&cl=1", "mode=gen&chunk=5000"]:
            response = request(server, f"/raw/body?size=100000&{query}", coding)
            check_body(response, make_body(100_000), coding)
    assert "Traceback" not in server.output


def test_codings_subset_and_min_size(start_server):
    """--compress gzip,br offers only those; --compress-min-size 4K moves the threshold."""
    server = start_server("compressapps:main", "--compress", "br,gzip", "--compress-min-size", "4K")
    cases = [
        ("zstd", None),
        ("zstd, gzip;q=0.1", "gzip"),
        ("zstd, br;q=0.5, gzip;q=0.4", "br"),
        ("*", "br"),
        ("gzip, br", "br"),
        ("gzip", "gzip"),
    ]
    for ae, expected in cases:
        check_body(request(server, "/raw/body?size=5000", ae), make_body(5000), expected)
    below = request(server, "/raw/body?size=4095&mode=one&cl=1", "gzip")
    assert below.header("content-encoding") is None and below.body == make_body(4095)
    check_body(request(server, "/raw/body?size=4096&mode=one&cl=1", "gzip"), make_body(4096), "gzip")


@pytest.mark.parametrize(
    "option",
    [
        ("--compress", "gzip,lzma"),
        ("--gzip-level", "0"),
        ("--brotli-level", "-1"),
    ],
)
def test_bad_option_values_refused(option):
    """Bad values stop meltemi at start with a one-line error and exit code 2 (docs/config.md)."""
    proc = subprocess.run(
        [sys.executable, "-m", "meltemi", "compressapps:main", "--bind", "127.0.0.1:0", *option],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=str(ROOT),
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])},
    )
    assert proc.returncode == 2, proc
    assert f"meltemi: error: {option[0]}" in proc.stderr, proc.stderr


# -- HTTP/1.0, keep-alive --------------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
@pytest.mark.parametrize("query", ["mode=gen&chunk=1000", "mode=write&chunk=1000", "mode=one&cl=1"])
def test_http10(server, coding, query):
    """HTTP/1.0 has no chunked framing: a streamed compressed body is delimited by the close."""
    with server.connect() as sock:
        sock.sendall(build(f"/raw/body?size=20000&{query}", coding, version="1.0"))
        response = ResponseReader(sock).read_response()
    assert response.header("transfer-encoding") is None
    if "cl=1" not in query:
        assert response.header("content-length") is None
        assert response.header("connection") == "close"
    check_body(response, make_body(20000), coding)


def test_http10_keep_alive_with_compressed_known_length(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for coding in CODINGS:
            sock.sendall(
                build("/raw/body?size=20000&mode=one&cl=1", coding, version="1.0", extra="Connection: keep-alive\r\n")
            )
            response = reader.read_response()
            assert response.header("connection") == "keep-alive", response
            check_body(response, make_body(20000), coding)


def test_keep_alive_after_compressed_responses(server):
    """Compressed responses of every shape, one after the other on one connection, then pipelined."""
    plan = []
    for coding in (*CODINGS, None):
        for query in ["mode=list", "mode=one&cl=1", "mode=gen&chunk=700", "mode=write&chunk=900", "mode=list&size=10"]:
            size = 10 if "size=10" in query else 7000
            plan.append((f"/raw/body?size={size}&{query}", coding, size))
        plan.append(("/body?size=3000&mode=gen", coding, 3000))
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for target, coding, size in plan:
            sock.sendall(build(target, coding))
            response = reader.read_response()
            assert response.status == 200
            assert decode(response.body, response.header("content-encoding")) == make_body(size)
            if size >= 512 or "gen" in target:
                assert response.header("content-encoding") == coding
        sock.sendall(b"".join(build(target, coding) for target, coding, _ in plan))
        for _target, _coding, size in plan:
            response = reader.read_response()
            assert decode(response.body, response.header("content-encoding")) == make_body(size)
        assert not reader.buffer


def test_requests_client(server):
    """An ordinary client (requests/urllib3, which offers gzip, deflate and br) gets the original bytes back."""
    with requests.Session() as session:
        for query in ["mode=list", "mode=one&cl=1", "mode=gen&chunk=1000", "mode=write&chunk=999"]:
            response = session.get(f"{server.url}/raw/body?size=40000&{query}", timeout=10)
            assert response.status_code == 200
            assert response.headers["Content-Encoding"] in {"br", "gzip"}
            assert response.content == make_body(40000)
        streamed = session.get(f"{server.url}/body?size=100000&mode=gen&chunk=3000", stream=True, timeout=10)
        assert b"".join(streamed.iter_content(4096)) == make_body(100000)


# -- streaming flush -------------------------------------------------------------------


class ChunkedStream:
    """Reads a chunked body incrementally off a socket, handing out the data as it arrives."""

    def __init__(self, sock: socket.socket, rest: bytes):
        self.sock = sock
        self.buffer = rest
        self.done = False

    def _parse(self) -> bytes:
        out = []
        while True:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self.buffer[:line_end].split(b";")[0], 16)
            if size == 0:
                self.done = True
                break
            if len(self.buffer) < line_end + 2 + size + 2:
                break
            out.append(self.buffer[line_end + 2 : line_end + 2 + size])
            assert self.buffer[line_end + 2 + size : line_end + 4 + size] == b"\r\n"
            self.buffer = self.buffer[line_end + 4 + size :]
        return b"".join(out)

    def read(self, timeout: float) -> bytes:
        """The data of the complete chunks that arrive within `timeout` (at least one recv)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            data = b""
        self.buffer += data
        return self._parse()


def streaming_decoder(coding: str):
    """A function that decodes the next piece of a `coding` stream (empty pieces are skipped)."""
    if coding == "gzip":
        decompress = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress
    elif coding == "br":
        decompress = brotli.Decompressor().process
    else:
        decompress = zstandard.ZstdDecompressor().decompressobj().decompress
    return lambda data: decompress(data) if data else b""


@pytest.mark.parametrize("coding", CODINGS)
def test_sse_first_event_decodable_before_second(server, coding):
    """A generator yields an event, sleeps 1 s, yields another: the first must decode well before 1 s."""
    with server.connect() as sock:
        started = time.monotonic()
        sock.sendall(build("/sse?delay=1", coding))
        sock.settimeout(5)
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            assert data, "closed before the head"
            head += data
        head, rest = head.split(b"\r\n\r\n", 1)
        assert f"content-encoding: {coding}".encode() in head.lower()
        assert b"transfer-encoding: chunked" in head.lower()
        stream = ChunkedStream(sock, rest)
        decompress = streaming_decoder(coding)
        text = b""
        while b"event: first" not in text or not text.endswith(b"\n\n"):
            assert time.monotonic() - started < 0.6, f"first event not decodable yet: {text!r}"
            text += decompress(stream.read(0.05))
        first_at = time.monotonic() - started
        assert text == b"event: first\ndata: " + b"x" * 40 + b"\n\n"
        while not stream.done:
            assert time.monotonic() - started < 5, "second event never came"
            text += decompress(stream.read(0.5))
        second_at = time.monotonic() - started
    assert text.endswith(b"event: second\ndata: " + b"y" * 40 + b"\n\n")
    assert first_at < 0.6 and second_at >= 0.95, (first_at, second_at)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (["gzip", "br"], "br"),
        (["br;q=0.1", "gzip"], "gzip"),
        (["*", "zstd;q=0"], "br"),
        (["gzip", "gzip;q=0"], None),
    ],
)
def test_negotiation_several_fields_are_one_list(server, fields, expected):
    """Several Accept-Encoding field lines are one comma-separated list (RFC 9110 5.3), as static.c joins them."""
    extra = "".join(f"Accept-Encoding: {value}\r\n" for value in fields)
    response = request(server, "/raw/body?size=3000", extra=extra)
    check_body(response, make_body(3000), expected)


@pytest.mark.parametrize(
    ("option", "coding"),
    [(("--gzip-level", "10"), "gzip"), (("--brotli-level", "12"), "br"), (("--zstd-level", "23"), "zstd")],
)
def test_out_of_range_level_refused_at_start(option, coding):
    """docs/config.md gives gzip 1-9, brotli 0-11, zstd 1-19: a level the codec refuses must stop meltemi
    at start with exit code 2, not make every compressible response a 500 ("cannot start gzip compression")."""
    try:
        server = start(*option)
    except RuntimeError as error:  # did not start: what we want
        assert f"meltemi: error: {option[0]}" in str(error), error
        return
    try:
        response = request(server, "/raw/body?size=3000", coding)
    finally:
        server.kill()
    pytest.fail(f"{' '.join(option)} was accepted at start, then a compressible GET got {response.status}")


def test_vary_merge_matches_whole_field_names(server):
    """`Vary: X-Accept-Encoding-Hint` names another field: Accept-Encoding must still be added."""
    response = request(server, "/raw/body?size=3000&vary=X-Accept-Encoding-Hint", "zstd")
    assert response.header("content-encoding") == "zstd"
    assert "accept-encoding" in vary_tokens(response), response


# -- BREACH mitigation ----------------------------------------------------------


@pytest.mark.parametrize("coding", CODINGS)
def test_breach_padding_makes_compressed_html_lengths_vary(coding):
    """With --breach-padding, a compressed HTML page ends with a comment of random length: the same page
    compresses to different lengths, and decodes to the page plus one `<!-- ... -->`.  JSON is left alone."""
    server = start("--breach-padding")
    try:
        original = make_body(4000)
        lengths = set()
        for _ in range(12):
            response = request(server, "/raw/body?size=4000", coding)
            decoded = decode(response.body, coding)
            assert decoded.startswith(original), "the padding must come after the page"
            padding = decoded[len(original) :]
            assert re.fullmatch(rb"<!-- [A-Za-z0-9]{0,255} -->", padding), padding
            lengths.add(len(response.body))
        assert len(lengths) > 3, f"compressed lengths barely vary: {sorted(lengths)}"
        json_response = request(server, "/raw/body?size=4000&type=application/json", coding)
        assert decode(json_response.body, coding) == original, "only HTML is padded"
    finally:
        stop(server)


def test_no_breach_padding_by_default(server):
    original = make_body(4000)
    bodies = {request(server, "/raw/body?size=4000", "gzip").body for _ in range(3)}
    assert len(bodies) == 1 and decode(bodies.pop(), "gzip") == original
