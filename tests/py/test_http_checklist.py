"""HTTP-CHECKLIST.md, case by case, over raw sockets.

Every request is sent whole and split at every byte (two writes with a short
pause, so the server sees two reads).  Splits run on a few connections in
parallel; a case that keeps the connection alive reuses it from one split to
the next, a case that ends in "close" takes a fresh connection per split.
Requests longer than 4 KiB are split at every byte of their first 256 and
last 128 bytes and at every 97th byte in between (`split_points`).

Rejected requests carry a second, well-formed request right behind them
(`SMUGGLED`): after the error response the connection must be closed with
nothing more on it, so nothing can hide inside the rejected request.

One server serves the whole module, with small limits so the 414/431 cases
stay short.  After each test the same worker must still answer (nothing may
crash a worker) and the server must not have logged a validator
AssertionError.

Where the other sections of the checklist live:
- Resources (timeouts, slow clients, limits, many connections, fd exhaustion,
  bounded pipelining): test_limits.py.
- WSGI (environ, wsgi.input, close(), file_wrapper, exc_info): test_wsgi.py.
  Pipelining 100 requests, HEAD/204/304, bad application headers, Content-Length
  mismatches and 100-continue are here, under "Responses".
"""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable

import pytest
from conftest import RawResponse, ResponseReader, Server

SPLIT_PAUSE = 0.002
PARALLEL = 6
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

# Small limits for this module's server, so that over-limit requests stay short enough to split at every byte.
MAX_REQUEST_LINE = 256
MAX_HEAD_SIZE = 2048
MAX_HEADERS = 20
CHECKLIST_OPTIONS = [
    "--threads",
    "4",
    "--max-request-line",
    str(MAX_REQUEST_LINE),
    "--max-head-size",
    str(MAX_HEAD_SIZE),
    "--max-headers",
    str(MAX_HEADERS),
]


# -- helpers shared with test_wsgi.py and test_limits.py ---------------------


def check_common(response: RawResponse) -> None:
    """What every response must have: HTTP/1.1, one valid Date, one kind of framing, none where forbidden."""
    assert response.version == "HTTP/1.1", response
    if response.status >= 200:
        dates = response.header_list("date")
        assert len(dates) == 1, f"expected one Date header: {response!r}"
        assert email.utils.parsedate_to_datetime(dates[0]) is not None
    length = response.header_list("content-length")
    encoding = response.header_list("transfer-encoding")
    assert not (length and encoding), f"both Content-Length and Transfer-Encoding: {response!r}"
    assert len(length) <= 1 and len(encoding) <= 1, response
    if response.status < 200 or response.status == 204:
        assert not length and not encoding, f"no Content-Length/Transfer-Encoding on 1xx and 204: {response!r}"


def check_error_response(response: RawResponse, statuses: Iterable[int], must_close: bool = True) -> None:
    """An error answered by the server itself: the expected status, a short text/plain body, `Connection: close`."""
    assert response.status in tuple(statuses), response
    assert (response.header("content-type") or "").startswith("text/plain"), response
    assert 0 < len(response.body) <= 1024, f"error body should be short and name the problem: {response!r}"
    if must_close:
        assert (response.header("connection") or "").lower() == "close", response


def is_close(response: RawResponse) -> bool:
    return (response.header("connection") or "").lower() == "close"


class Conn:
    """A client connection: a socket and the strict ResponseReader from conftest."""

    def __init__(self, server: Server | None, timeout: float = 5.0, sock: socket.socket | None = None):
        self.sock = sock if sock is not None else server.connect(timeout)
        self.reader = ResponseReader(self.sock, timeout)

    def send(self, data: bytes, at: int | None = None, *, may_close: bool = False) -> None:
        """Sends data in two writes split at byte `at` (whole when None); a peer that already closed is
        tolerated when `may_close` (a rejected request may be answered before its end arrives)."""
        at = len(data) if at is None else at
        try:
            self.sock.sendall(data[:at])
            if at < len(data):
                time.sleep(SPLIT_PAUSE)
                self.sock.sendall(data[at:])
        except (BrokenPipeError, ConnectionResetError):
            if not may_close:
                raise

    def response(self, method: str = "GET") -> RawResponse:
        response = self.reader.read_response(method)
        check_common(response)
        return response

    def final_response(self, method: str = "GET") -> RawResponse:
        """The next final response; interim 1xx responses before it are checked and skipped."""
        while True:
            response = self.response(method)
            if response.status >= 200:
                return response

    def closed(self, timeout: float = 5.0) -> bool:
        return self.reader.closed(timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def split_points(data: bytes, limit: int = 4096) -> list[int]:
    """1..len(data): every split point, the last one meaning "sent whole"; strided for long data."""
    n = len(data)
    if n <= limit:
        return list(range(1, n + 1))
    return sorted(set(range(1, 257)) | set(range(n - 128, n + 1)) | set(range(1, n, 97)))


def for_each_split(
    server: Server,
    data: bytes,
    exchange: Callable[[Conn, int], bool],
    points: list[int] | None = None,
    parallel: int = PARALLEL,
) -> None:
    """Runs exchange(conn, at) for every split point, on `parallel` connections at once.

    exchange sends `data` split at `at`, checks what comes back and returns True
    when the connection can carry the next split.  The first failure stops the
    run and is reported with the split that caused it.
    """
    points = split_points(data) if points is None else points
    failed = threading.Event()
    errors: list[tuple[int, BaseException]] = []

    def run(share: list[int]) -> None:
        conn = None
        try:
            for at in share:
                if failed.is_set():
                    return
                try:
                    if conn is None:
                        conn = Conn(server)
                    keep = exchange(conn, at)
                except BaseException as error:  # pytest.fail() raises a BaseException too
                    errors.append((at, error))
                    failed.set()
                    return
                if not keep:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()

    threads = [threading.Thread(target=run, args=(points[i::parallel],)) for i in range(parallel)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        at, error = min(errors, key=lambda item: item[0])
        how = "sent whole" if at >= len(data) else f"split at byte {at} of {len(data)}: {data[:at]!r} | {data[at:]!r}"
        raise AssertionError(f"{how}\n{type(error).__name__}: {error}") from error


def assert_rejected(
    server: Server,
    request: bytes,
    statuses: Iterable[int] = (400,),
    *,
    must_close: bool = True,
    points: list[int] | None = None,
) -> None:
    """The request gets one error response from the server, split anywhere.

    With must_close, a well-formed request follows it in the same stream and
    the connection must be closed after the error with nothing more on it.
    Without, the connection may stay open but must then serve a next request.
    """
    statuses = tuple(statuses)
    data = request + SMUGGLED if must_close else request
    if points is None:
        points = split_points(request)
        if must_close:
            points.append(len(data))

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(data, at, may_close=True)
        response = conn.response()
        check_error_response(response, statuses, must_close)
        if must_close or is_close(response):
            assert conn.closed(), "connection not closed after the error (or a second response came)"
            return False
        conn.send(b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        assert conn.response().status == 200
        return True

    for_each_split(server, data, exchange, points)


def echo_body(response: RawResponse) -> dict:
    assert response.status == 200, response
    assert response.header("content-type") == "application/json", response
    return json.loads(response.body)


def assert_echo(server: Server, request: bytes, check: Callable[[dict], None], points: list[int] | None = None) -> None:
    """The request reaches the echo app (split anywhere, keep-alive) and check() accepts what it saw."""

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response()
        check(echo_body(response))
        return not is_close(response)

    for_each_split(server, request, exchange, points)


def worker_pid(server: Server) -> int:
    with Conn(server) as conn:
        conn.send(b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
        return echo_body(conn.response())["pid"]


def start_module_server(*options: str) -> Server:
    server = Server(["apps:main", "--bind", "127.0.0.1:0", "--workers", "1", *options])
    server.worker_pid = worker_pid(server)
    return server


def stop_module_server(server: Server) -> None:
    code = server.stop()
    assert code == 0, f"meltemi exited with {code}:\n{server.output}"
    server.assert_balanced()
    assert "AssertionError" not in server.output, "the WSGI validator complained:\n" + server.output


def check_still_healthy(server: Server, first_line: int) -> None:
    """The worker that served the module so far still serves it, and the validator did not complain."""
    assert worker_pid(server) == server.worker_pid, "the worker was replaced (crashed?):\n" + server.output
    new_output = "\n".join(server.lines[first_line:])
    assert "AssertionError" not in new_output, "the WSGI validator complained:\n" + new_output


def wait_for_file(path: str, predicate: Callable[[str], bool], timeout: float = 5.0) -> str:
    """Polls a record file written by the apps until predicate(content) holds; returns the content."""
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                content = f.read()
        except FileNotFoundError:
            content = ""
        if predicate(content):
            return content
        time.sleep(0.05)
    return content


# -- fixtures ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    server = start_module_server(*CHECKLIST_OPTIONS)
    try:
        yield server
    finally:
        stop_module_server(server)


@pytest.fixture(autouse=True)
def healthy(server):
    first_line = len(server.lines)
    yield
    check_still_healthy(server, first_line)


def post(head: bytes, body: bytes = b"", target: bytes = b"/echo") -> bytes:
    return b"POST " + target + b" HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n" + body


def chunked(body: bytes, target: bytes = b"/echo", head: bytes = b"") -> bytes:
    return post(head + b"Transfer-Encoding: chunked\r\n", body, target)


# == Framing ==================================================================

FRAMING_CASES = {
    "cl_then_te": post(b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te_then_cl": post(b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "cl_twice_equal": post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"),
    "cl_twice_different": post(b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!"),
    "cl_list_equal": post(b"Content-Length: 5, 5\r\n", b"hello"),
    "cl_list_no_space": post(b"Content-Length: 5,5\r\n", b"hello"),
    "cl_list_different": post(b"Content-Length: 5, 6\r\n", b"hello!"),
    "cl_plus_sign": post(b"Content-Length: +5\r\n", b"hello"),
    "cl_minus_sign": post(b"Content-Length: -5\r\n", b"hello"),
    "cl_space_inside": post(b"Content-Length: 5 0\r\n", b"hello"),
    "cl_hex": post(b"Content-Length: 0x5\r\n", b"hello"),
    "cl_trailing_letter": post(b"Content-Length: 5a\r\n", b"hello"),
    "cl_decimal_point": post(b"Content-Length: 5.0\r\n", b"hello"),
    "cl_overflow_2_64": post(b"Content-Length: 18446744073709551616\r\n", b"hello"),
    "cl_overflow_long": post(b"Content-Length: 99999999999999999999999999\r\n", b"hello"),
    "cl_empty": post(b"Content-Length: \r\n", b"hello"),
    "cl_empty_no_space": post(b"Content-Length:\r\n", b"hello"),
    "te_last_not_chunked": post(b"Transfer-Encoding: chunked, gzip\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te_empty": post(b"Transfer-Encoding: \r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te_chunked_chunked": post(b"Transfer-Encoding: chunked, chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te_twice": post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", b"5\r\nhello\r\n0\r\n\r\n"),
    "te_in_http_1_0": b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    "obs_fold_space": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n b\r\n\r\n",
    "obs_fold_tab": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\r\n\tb\r\n\r\n",
    "first_header_line_folded": b"GET /echo HTTP/1.1\r\n Host: a\r\n\r\n",
    "space_before_colon": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo : a\r\n\r\n",
    "tab_before_colon": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo\t: a\r\n\r\n",
    "space_before_colon_content_length": post(b"Content-Length : 5\r\n", b"hello"),
    "empty_header_name": b"GET /echo HTTP/1.1\r\nHost: a\r\n: a\r\n\r\n",
    "header_without_colon": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo\r\n\r\n",
    "header_name_with_slash": b"GET /echo HTTP/1.1\r\nHost: a\r\nX/Foo: a\r\n\r\n",
    "bare_lf_request_line": b"GET /echo HTTP/1.1\nHost: a\r\n\r\n",
    "bare_lf_header": b"GET /echo HTTP/1.1\r\nHost: a\nX-Foo: b\r\n\r\n",
    "bare_lf_end_of_head": b"GET /echo HTTP/1.1\r\nHost: a\r\n\n",
    "bare_lf_everywhere": b"GET /echo HTTP/1.1\nHost: a\n\n",
    "bare_cr_request_line": b"GET /echo HTTP/1.1\rHost: a\r\n\r\n",
    "bare_cr_header": b"GET /echo HTTP/1.1\r\nHost: a\rX-Foo: b\r\n\r\n",
    "bare_cr_in_value": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\rb\r\n\r\n",
    "bare_cr_end_of_head": b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\r\n",
    "nul_in_target": b"GET /echo/a\x00b HTTP/1.1\r\nHost: a\r\n\r\n",
    "ctl_01_in_target": b"GET /echo/a\x01b HTTP/1.1\r\nHost: a\r\n\r\n",
    "ctl_7f_in_target": b"GET /echo/a\x7fb HTTP/1.1\r\nHost: a\r\n\r\n",
    "tab_in_target": b"GET /echo/a\tb HTTP/1.1\r\nHost: a\r\n\r\n",
    "space_in_target": b"GET /echo/a b HTTP/1.1\r\nHost: a\r\n\r\n",
    "nul_in_value": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\x00b\r\n\r\n",
    "ctl_01_in_value": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\x01b\r\n\r\n",
    "ctl_0b_in_value": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\x0bb\r\n\r\n",
    "ctl_1f_in_value": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\x1fb\r\n\r\n",
    "ctl_7f_in_value": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\x7fb\r\n\r\n",
    "nul_in_name": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-F\x00oo: a\r\n\r\n",
    "nul_in_host": b"GET /echo HTTP/1.1\r\nHost: a\x00b\r\n\r\n",
}


@pytest.mark.parametrize("case", FRAMING_CASES)
def test_framing_rejected(server, case):
    assert_rejected(server, FRAMING_CASES[case])


@pytest.mark.parametrize(
    "coding",
    [
        b"gzip, chunked",
        b"deflate, chunked",
        b"foo, chunked",
        b"gzip",
        b"identity",
        b"xchunked",
        b"gzip\r\nTransfer-Encoding: chunked",
    ],
    ids=["gzip_chunked", "deflate_chunked", "foo_chunked", "gzip", "identity", "xchunked", "gzip_then_chunked_twice"],
)
def test_unknown_transfer_coding_rejected(server, coding):
    """An unknown or unsupported coding: 400 or 501 (the checklist allows either), and the connection closed.

    Codings that are also "last coding not chunked" (`gzip` alone) are here
    too: RFC 9112 asks for 400 there and for 501 for a coding not understood.
    """
    assert_rejected(server, post(b"Transfer-Encoding: " + coding + b"\r\n", b"5\r\nhello\r\n0\r\n\r\n"), (400, 501))


@pytest.mark.parametrize("value", [b"005", b"0005", b"5 ", b"\t5"])
def test_content_length_leading_zeros_and_whitespace_accepted(server, value):
    """Leading zeros are valid digits; whitespace around the value is not part of it."""

    def check(env):
        assert env["body"] == "hello" and env["CONTENT_LENGTH"] in ("5", value.strip().decode())
        assert env["after"] == ""

    assert_echo(server, post(b"Content-Length: " + value + b"\r\n", b"hello"), check)


def test_content_length_trailing_tab_rejected(server):
    """A deliberate strictness (llhttp's, kept: docs/design.md): RFC 9110 would allow a trailing tab as OWS,
    but no client sends one, and a framing header is the last place to be lenient."""
    assert_rejected(server, post(b"Content-Length: 5\t\r\n", b"hello"), (400,))


def test_tab_inside_field_value_accepted(server):
    def check(env):
        assert env["headers"]["HTTP_X_FOO"] == "a\tb"

    assert_echo(server, b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Foo: a\tb\r\n\r\n", check)


def test_transfer_encoding_chunked_alone_accepted(server):
    def check(env):
        assert env["body"] == "hello" and env["CONTENT_LENGTH"] in (None, "")

    assert_echo(server, chunked(b"5\r\nhello\r\n0\r\n\r\n"), check)


# -- header names that differ only by `_` and `-` ------------------------------


def _no_value_anywhere(env: dict, value: str) -> None:
    assert value not in env["headers"].values(), env["headers"]
    assert env["CONTENT_LENGTH"] != value and env["CONTENT_TYPE"] != value, env


def test_underscore_content_length_dropped(server):
    """`Content_Length: 5` must not become CONTENT_LENGTH (nor frame a body): the app sees no body."""

    def check(env):
        assert env["CONTENT_LENGTH"] in (None, "", "0"), env
        assert env["body"] == "" and env["after"] == ""
        _no_value_anywhere(env, "5")
        assert not any(key.startswith("HTTP_CONTENT") for key in env["headers"]), env["headers"]

    assert_echo(server, post(b"Content_Length: 5\r\n"), check)


def test_underscore_transfer_encoding_dropped(server):
    """`Transfer_Encoding: chunked` frames nothing and never reaches the environ."""

    def check(env):
        assert env["body"] == "hello"
        _no_value_anywhere(env, "chunked")

    assert_echo(server, post(b"Transfer_Encoding: chunked\r\nContent-Length: 5\r\n", b"hello"), check)


def test_underscore_content_type_dropped(server):
    def check(env):
        assert env["CONTENT_TYPE"] in (None, ""), env
        _no_value_anywhere(env, "evil/type")

    assert_echo(server, b"GET /echo HTTP/1.1\r\nHost: a\r\nContent_Type: evil/type\r\n\r\n", check)


@pytest.mark.parametrize(
    "head",
    [
        b"X_Foo: evil\r\nX-Foo: good\r\n",
        b"X-Foo: good\r\nX_Foo: evil\r\n",
        b"X-Foo: good\r\nX_Foo: evil\r\nX_fOO: evil\r\n",
    ],
    ids=["underscore_first", "underscore_last", "several"],
)
def test_underscore_header_does_not_shadow_dash_header(server, head):
    def check(env):
        assert env["headers"]["HTTP_X_FOO"] == "good", env["headers"]
        assert not any("evil" in value for value in env["headers"].values()), env["headers"]

    assert_echo(server, b"GET /echo HTTP/1.1\r\nHost: a\r\n" + head + b"\r\n", check)


def test_underscore_header_alone_dropped(server):
    def check(env):
        assert not any("evil" in value for value in env["headers"].values()), env["headers"]
        assert "HTTP_X_FOO" not in env["headers"], env["headers"]

    assert_echo(server, b"GET /echo HTTP/1.1\r\nHost: a\r\nX_Foo: evil\r\n\r\n", check)


# == Chunked bodies ===========================================================

CHUNKED_CASES = {
    "size_0x": b"0x5\r\nhello\r\n0\r\n\r\n",
    "size_underscore": b"0_5\r\nhello\r\n0\r\n\r\n",
    "size_plus": b"+5\r\nhello\r\n0\r\n\r\n",
    "size_minus": b"-5\r\nhello\r\n0\r\n\r\n",
    "size_trailing_space": b"5 \r\nhello\r\n0\r\n\r\n",
    "size_trailing_tab": b"5\t\r\nhello\r\n0\r\n\r\n",
    "size_leading_space": b" 5\r\nhello\r\n0\r\n\r\n",
    "size_empty": b"\r\nhello\r\n0\r\n\r\n",
    "size_not_hex": b"g\r\nhello\r\n0\r\n\r\n",
    "size_overflow_17_digits": b"10000000000000005\r\nhello\r\n0\r\n\r\n",
    "size_overflow_ffff": b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    "last_chunk_overflow": b"5\r\nhello\r\n10000000000000000\r\n\r\n",
    "bare_lf_size": b"5\nhello\r\n0\r\n\r\n",
    "bare_cr_size": b"5\rhello\r\n0\r\n\r\n",
    "bare_lf_extension": b"5;a=b\nhello\r\n0\r\n\r\n",
    "bare_cr_extension": b"5;a=b\rhello\r\n0\r\n\r\n",
    "bare_lf_last_chunk": b"5\r\nhello\r\n0\n\r\n",
    "bare_lf_final": b"5\r\nhello\r\n0\r\n\n",
    "bare_lf_trailer": b"5\r\nhello\r\n0\r\nX-T: y\n\r\n",
    "bare_cr_trailer": b"5\r\nhello\r\n0\r\nX-T: y\rX-U: z\r\n\r\n",
    "bare_cr_after_trailer": b"5\r\nhello\r\n0\r\nX-T: y\r\n\r\r\n",
    "nul_in_extension": b"5;a=\x00\r\nhello\r\n0\r\n\r\n",
    "nul_in_trailer": b"5\r\nhello\r\n0\r\nX-T: a\x00b\r\n\r\n",
    "folded_trailer": b"5\r\nhello\r\n0\r\nX-T: a\r\n b\r\n\r\n",
    "data_without_crlf": b"5\r\nhelloXX0\r\n\r\n",
    "data_then_lf": b"5\r\nhello\n0\r\n\r\n",
    "data_then_cr": b"5\r\nhello\r0\r\n\r\n",
    "data_then_next_size": b"5\r\nhello0\r\n\r\n",
    "data_longer_than_size": b"3\r\nhello\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("case", CHUNKED_CASES)
def test_chunked_rejected(server, case):
    assert_rejected(server, chunked(CHUNKED_CASES[case]))


@pytest.mark.parametrize("case", ["size_0x", "bare_lf_size", "data_without_crlf", "bare_lf_trailer"])
def test_chunked_rejected_when_app_does_not_read(server, case):
    """The same bodies with an app that answers before reading: the server still may not resync on them."""
    data = chunked(CHUNKED_CASES[case], target=b"/noread") + SMUGGLED

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(data, at, may_close=True)
        response = conn.response()
        if response.status == 200:
            # The app answered first; the broken body must then end the connection, not start a new request.
            assert response.body == b"did not read the body\n"
        else:
            check_error_response(response, (400,))
        assert conn.closed(), "connection not closed after a broken chunked body (or a second response came)"
        return False

    for_each_split(server, data, exchange, split_points(data[: -len(SMUGGLED)]) + [len(data)])


def test_chunk_extensions_allowed_when_small(server):
    def check(env):
        assert env["body"] == "hello world"

    assert_echo(server, chunked(b'5;name=value\r\nhello\r\n6;a="q s";b\r\n world\r\n0;last\r\n\r\n'), check)


def test_chunk_extension_far_longer_than_data_is_limited(server):
    """One byte of data under a 64 KiB extension: refused (400, or 413 for a limit) and closed."""
    body = b"1;ext=" + b"a" * 65536 + b"\r\nx\r\n0\r\n\r\n"
    assert_rejected(server, chunked(body), (400, 413))


def test_many_chunk_extensions_are_limited_in_total(server):
    """4000 one-byte chunks, each with a 60-byte extension: 240 KiB of extensions for 4 KiB of data."""
    body = b"".join(b"1;e=" + b"b" * 56 + b"\r\nx\r\n" for _ in range(4000)) + b"0\r\n\r\n"
    request = chunked(body)
    assert_rejected(server, request, (400, 413), points=[1, 100, len(request) // 2, len(request)])


# -- truncated bodies: never handed to the app as complete ---------------------

TRUNCATED_BODIES = {
    "after_last_chunk_line": b"5\r\nhello\r\n0\r\n",
    "inside_trailers": b"5\r\nhello\r\n0\r\nX-T: y\r\n",
    "after_chunk": b"5\r\nhello\r\n",
    "inside_chunk": b"5\r\nhel",
    "inside_size_line": b"5\r\nhello\r\n0",
}


@pytest.mark.parametrize("case", [*TRUNCATED_BODIES, "content_length"])
def test_truncated_body_is_not_complete(server, tmp_path, case):
    """The stream ends (client half-closes) before the body does: the app's read must fail, never return EOF."""
    record = str(tmp_path / "record")
    target = b"/record_body?record=" + record.encode()
    if case == "content_length":
        request = post(b"Content-Length: 10\r\n", b"hello", target)
    else:
        request = chunked(TRUNCATED_BODIES[case], target)

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        conn.sock.shutdown(socket.SHUT_WR)
        try:
            response = conn.response()
        except EOFError:
            return False  # Closed without an answer: acceptable.
        assert response.status >= 400, response
        assert conn.closed()
        return False

    for_each_split(server, request, exchange)
    time.sleep(0.3)
    content = wait_for_file(record, lambda text: True, timeout=0.1)
    assert "complete" not in content, f"a truncated body was handed to the app as complete: {content!r}"


# -- trailers ---------------------------------------------------------------------


def test_trailers_never_merged_into_headers(server):
    request = chunked(b"5\r\nhello\r\n0\r\nX-Trailer: t\r\nX-Foo: from-trailer\r\n\r\n", head=b"X-Foo: from-head\r\n")

    def check(env):
        assert env["body"] == "hello"
        assert env["headers"]["HTTP_X_FOO"] == "from-head", env["headers"]
        assert "HTTP_X_TRAILER" not in env["headers"], env["headers"]
        assert not any("trailer" in value for value in env["headers"].values()), env["headers"]

    assert_echo(server, request, check)


def test_trailer_content_length_ignored_or_rejected(server):
    """A framing field in the trailers never becomes CONTENT_LENGTH; rejecting the request is fine too."""
    request = chunked(b"5\r\nhello\r\n0\r\nContent-Length: 99\r\n\r\n")

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at, may_close=True)
        response = conn.response()
        if response.status != 200:
            check_error_response(response, (400,))
            assert conn.closed()
            return False
        env = echo_body(response)
        assert env["body"] == "hello" and env["CONTENT_LENGTH"] in (None, ""), env
        return not is_close(response)

    for_each_split(server, request, exchange)


def test_trailers_over_head_size_limit_rejected(server):
    body = b"5\r\nhello\r\n0\r\nX-Big: " + b"t" * (MAX_HEAD_SIZE + 100) + b"\r\n\r\n"
    assert_rejected(server, chunked(body), (400, 431))


def test_trailers_over_field_count_limit_rejected(server):
    fields = b"".join(b"X-T%d: v\r\n" % i for i in range(MAX_HEADERS + 5))
    assert_rejected(server, chunked(b"5\r\nhello\r\n0\r\n" + fields + b"\r\n"), (400, 431))


# == Request line ==============================================================


@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/1.2", b"HTTP/3.0"])
def test_unsupported_version_505(server, version):
    assert_rejected(server, b"GET /echo " + version + b"\r\nHost: a\r\n\r\n", (505,))


@pytest.mark.parametrize(
    "line",
    [
        b"GET /echo HTTP/1.1x",
        b"GET /echo HTTP/1",
        b"GET /echo http/1.1",
        b"GET /echo HTTP/1.1 ",
    ],
    ids=["suffix", "no_minor", "lowercase", "trailing_space"],
)
def test_malformed_version_rejected(server, line):
    """(Two spaces between method and target are not here: RFC 9112 lets a recipient parse on whitespace.)"""
    assert_rejected(server, line + b"\r\nHost: a\r\n\r\n", (400, 505))


@pytest.mark.parametrize("request_bytes", [b"GET /\r\n", b"GET /\r\n\r\n", b"GET / HTTP/0.9\r\n\r\n"])
def test_http_0_9_rejected(server, request_bytes):
    """An HTTP/0.9-style line: 400 (505 for an explicit HTTP/0.9), or a close without an answer."""

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request_bytes + SMUGGLED, at, may_close=True)
        try:
            response = conn.response()
        except EOFError:
            assert not conn.reader.buffer
            return False
        check_error_response(response, (400, 505))
        assert conn.closed()
        return False

    for_each_split(server, request_bytes + SMUGGLED, exchange, split_points(request_bytes))


def test_http_1_1_without_host_rejected(server):
    assert_rejected(server, b"GET /echo HTTP/1.1\r\nX-Foo: a\r\n\r\n", must_close=False)


@pytest.mark.parametrize("hosts", [b"Host: a\r\nHost: b\r\n", b"Host: a\r\nHost: a\r\n", b"Host: a, b\r\n"])
def test_two_hosts_rejected(server, hosts):
    assert_rejected(server, b"GET /echo HTTP/1.1\r\n" + hosts + b"\r\n", must_close=False)


def test_http_1_0_without_host_accepted(server):
    def exchange(conn: Conn, at: int) -> bool:
        conn.send(b"GET /echo HTTP/1.0\r\n\r\n", at)
        env = echo_body(conn.response())
        assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
        assert conn.closed(), "HTTP/1.0 without keep-alive: close after the response"
        return False

    for_each_split(server, b"GET /echo HTTP/1.0\r\n\r\n", exchange)


def test_absolute_form_target(server):
    """Path, query and Host are taken from the absolute-form target; the Host header is ignored."""
    request = b"GET http://example.com:8080/echo/abs?q=1 HTTP/1.1\r\nHost: other.example\r\n\r\n"

    def check(env):
        assert env["PATH_INFO"] == "/echo/abs"
        assert env["QUERY_STRING"] == "q=1"
        assert env["headers"]["HTTP_HOST"] == "example.com:8080", env["headers"]

    assert_echo(server, request, check)


def test_absolute_form_percent_decoded(server):
    request = b"GET http://example.com/echo/caf%C3%A9 HTTP/1.1\r\nHost: example.com\r\n\r\n"

    def check(env):
        assert env["PATH_INFO"] == "/echo/caf\xc3\xa9"

    assert_echo(server, request, check)


def test_asterisk_form_with_options(server):
    request = b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response()
        assert 200 <= response.status < 300, response
        return not is_close(response)

    for_each_split(server, request, exchange)


@pytest.mark.parametrize("method", [b"GET", b"POST", b"HEAD", b"DELETE"])
def test_asterisk_form_only_with_options(server, method):
    assert_rejected(server, method + b" * HTTP/1.1\r\nHost: a\r\n\r\n", must_close=False)


@pytest.mark.parametrize("method", [b"GET", b"POST", b"OPTIONS"])
def test_authority_form_only_with_connect(server, method):
    assert_rejected(server, method + b" example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", must_close=False)


def test_connect_not_supported(server):
    request = b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
    assert_rejected(server, request, (405, 501), must_close=False)


@pytest.mark.parametrize("excess", [1, 700])
def test_request_line_over_limit_414(server, excess):
    path = b"/echo/" + b"a" * (MAX_REQUEST_LINE + excess - len(b"GET /echo/ HTTP/1.1"))
    line = b"GET " + path + b" HTTP/1.1"
    assert len(line) == MAX_REQUEST_LINE + excess
    assert_rejected(server, line + b"\r\nHost: a\r\n\r\n", (414,))


def test_request_line_at_limit_accepted(server):
    path = b"/echo/" + b"a" * (MAX_REQUEST_LINE - len(b"GET /echo/ HTTP/1.1"))
    line = b"GET " + path + b" HTTP/1.1"
    assert len(line) == MAX_REQUEST_LINE

    def check(env):
        assert env["PATH_INFO"] == path.decode()

    assert_echo(server, line + b"\r\nHost: a\r\n\r\n", check)


def test_head_over_limit_431(server):
    head = b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Big: " + b"b" * MAX_HEAD_SIZE + b"\r\n\r\n"
    assert_rejected(server, head, (431,))


def test_head_of_many_fields_over_limit_431(server):
    fields = b"".join(b"X-F%02d: %s\r\n" % (i, b"v" * 150) for i in range(15))
    assert_rejected(server, b"GET /echo HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n", (431,))


def test_head_under_limit_accepted(server):
    fields = b"".join(b"X-F%02d: %s\r\n" % (i, b"v" * 100) for i in range(15))
    request = b"GET /echo HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n"
    assert len(request) < MAX_HEAD_SIZE - 100

    def check(env):
        assert env["headers"]["HTTP_X_F14"] == "v" * 100

    assert_echo(server, request, check)


def test_more_fields_than_limit_431(server):
    fields = b"".join(b"X-F%02d: v\r\n" % i for i in range(MAX_HEADERS))  # plus Host: one too many
    assert_rejected(server, b"GET /echo HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n", (431,))


def test_fields_at_limit_accepted(server):
    fields = b"".join(b"X-F%02d: v\r\n" % i for i in range(MAX_HEADERS - 1))

    def check(env):
        assert len([key for key in env["headers"] if key.startswith("HTTP_X_F")]) == MAX_HEADERS - 1

    assert_echo(server, b"GET /echo HTTP/1.1\r\nHost: a\r\n" + fields + b"\r\n", check)


DJANGO_METHODS = [b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"TRACE"]


@pytest.mark.parametrize("method", DJANGO_METHODS)
def test_django_methods_pass_through(server, method):
    def check(env):
        assert env["REQUEST_METHOD"] == method.decode()

    assert_echo(server, method + b" /echo HTTP/1.1\r\nHost: a\r\n\r\n", check)


def test_head_method_passes_through(server):
    request = b"HEAD /echo HTTP/1.1\r\nHost: a\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response("HEAD")
        assert response.status == 200 and response.header("x-echo-method") == "HEAD", response
        return True

    for_each_split(server, request, exchange)


@pytest.mark.parametrize("method", [b"FOO", b"GETS", b"get", b"G(T"])
def test_unknown_method_rejected(server, method):
    assert_rejected(server, method + b" /echo HTTP/1.1\r\nHost: a\r\n\r\n", (400, 501), must_close=False)


# == Connection management ======================================================


def test_http_1_0_keep_alive(server):
    request = b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response()
        assert response.status == 200 and response.body == b"Hello, world!\n"
        assert (response.header("connection") or "").lower() == "keep-alive", response
        return True

    for_each_split(server, request, exchange)


def test_http_1_0_streaming_response_closes(server):
    """No chunked encoding for an HTTP/1.0 client: a body without length is delimited by the close."""
    request = b"GET /gen?n=5&size=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response()
        assert response.status == 200 and response.header("transfer-encoding") is None, response
        assert response.body == b"000111222333444"
        assert conn.reader.eof or conn.closed()
        return False

    for_each_split(server, request, exchange)


def test_connection_close_from_client(server):
    request = b"GET /hello HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" + SMUGGLED

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at, may_close=True)
        response = conn.response()
        assert response.status == 200 and is_close(response), response
        assert conn.closed(), "the request after `Connection: close` was answered"
        return False

    for_each_split(server, request, exchange, split_points(request[: -len(SMUGGLED)]) + [len(request)])


def test_streaming_response_is_chunked_for_http_1_1(server):
    request = b"GET /gen?n=5&size=3 HTTP/1.1\r\nHost: a\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response()
        assert response.header("transfer-encoding") == "chunked", response
        assert response.body == b"000111222333444"
        return True

    for_each_split(server, request, exchange)


# == Responses ====================================================================


@pytest.mark.parametrize(
    "where",
    [
        "status_crlf",
        "status_lf",
        "status_cr",
        "status_nul",
        "name_crlf",
        "name_lf",
        "name_cr",
        "name_nul",
        "value_crlf",
        "value_lf",
        "value_cr",
        "value_nul",
        "value_bytes",
        "length_twice",
    ],
)
def test_bad_application_header_500(server, where):
    """CR, LF or NUL in the app's status or headers: 500, and nothing of that header on the wire."""
    request = b"GET /raw_bad_header?where=" + where.encode() + b" HTTP/1.1\r\nHost: a\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response()
        assert response.status == 500, response
        assert response.header("x-test") is None, response
        wire = repr(response.headers).encode() + response.body + conn.reader.buffer
        assert b"Injected" not in wire, response
        if is_close(response):
            assert conn.closed()
            return False
        return True

    for_each_split(server, request, exchange)


VARYING = ("date", "x-request-id")


def test_head_gives_get_headers_without_body(server):
    for target in (b"/hello", b"/status?code=200&body=some%20text"):
        get = b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n"
        head = b"HEAD " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n"
        with Conn(server) as conn:
            conn.send(get)
            expected = conn.response()
        # Date and the request id (one per request) differ from response to response.
        expected_headers = sorted((k.lower(), v) for k, v in expected.headers if k.lower() not in VARYING)

        def exchange(conn: Conn, at: int, head=head, expected_headers=expected_headers) -> bool:
            conn.send(head + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", at)
            response = conn.response("HEAD")
            assert sorted((k.lower(), v) for k, v in response.headers if k.lower() not in VARYING) == expected_headers
            follow = conn.response()  # A body sent after the HEAD response would break this one.
            assert follow.status == 200 and follow.body == b"Hello, world!\n", follow
            return True

        for_each_split(server, head, exchange)


@pytest.mark.parametrize("code", [204, 304])
@pytest.mark.parametrize("app_body", [b"", b"oops"], ids=["empty", "app_sends_body"])
def test_no_body_on_204_and_304(server, code, app_body):
    target = b"/status?code=%d" % code + (b"&body=" + app_body if app_body else b"")
    request = b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", at)
        response = conn.response()
        assert response.status == code, response
        follow = conn.response()
        assert follow.status == 200 and follow.body == b"Hello, world!\n", follow
        return True

    for_each_split(server, request, exchange)


def read_until_close(sock: socket.socket, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Everything until the peer closes; the flag says whether it did close (rather than time out)."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        except TimeoutError:
            return data, False
        if not piece:
            return data, True
        data += piece
    return data, False


@pytest.mark.parametrize("declared,actual", [(10, 5), (5, 10), (5, 0)])
def test_body_length_differs_from_app_content_length(server, declared, actual):
    """The response is cut at the declared length at most, and the connection closed, never left unframed."""
    request = b"GET /cl_mismatch?declared=%d&actual=%d HTTP/1.1\r\nHost: a\r\n\r\n" % (declared, actual)

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request + SMUGGLED, at, may_close=True)
        data, closed = read_until_close(conn.sock)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 "), data
        assert b"\r\ncontent-length: %d\r\n" % declared in head.lower() + b"\r\n", head
        assert closed, "connection left open after a body of the wrong length"
        assert body == b"a" * min(declared, actual), "bytes beyond the declared length reached the wire"
        return False

    for_each_split(server, request + SMUGGLED, exchange, split_points(request) + [len(request) + len(SMUGGLED)])


def test_expect_100_continue_when_app_reads(server):
    head = post(b"Content-Length: 5\r\nExpect: 100-continue\r\n")

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(head, at)
        interim = conn.response()
        assert interim.status == 100 and interim.reason == "Continue", interim
        conn.send(b"hello")
        env = echo_body(conn.response())
        assert env["body"] == "hello" and env["after"] == ""
        return True

    for_each_split(server, head, exchange)


def test_expect_100_continue_chunked(server):
    head = chunked(b"", head=b"Expect: 100-continue\r\n")

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(head, at)
        assert conn.response().status == 100
        conn.send(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        assert echo_body(conn.response())["body"] == "abcde"
        return True

    for_each_split(server, head, exchange)


def test_expect_100_continue_sent_only_when_app_reads(server):
    """The app sleeps 0.6 s before reading: no 100 Continue before that, then one."""
    with Conn(server) as conn:
        conn.send(post(b"Content-Length: 5\r\nExpect: 100-continue\r\n", target=b"/echo?sleep=0.6"))
        conn.sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            data = conn.sock.recv(100)
            pytest.fail(f"sent before the app read the body: {data!r}")
        conn.sock.settimeout(5)
        interim = conn.response()
        assert interim.status == 100, interim
        conn.send(b"hello")
        assert echo_body(conn.response())["body"] == "hello"


def test_expect_100_continue_skipped_by_early_response(server):
    """The app answers without reading: no 100; the body sent anyway is drained, or the connection closed."""
    head = post(b"Content-Length: 5\r\nExpect: 100-continue\r\n", target=b"/noread")

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(head, at)
        response = conn.response()
        assert response.status == 200 and response.body == b"did not read the body\n", response
        conn.send(b"hello" + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n", may_close=True)
        if is_close(response):
            assert conn.closed()
            return False
        follow = conn.response()
        assert follow.status == 200 and follow.body == b"Hello, world!\n", follow
        return True

    for_each_split(server, head, exchange)


def test_expect_100_continue_with_body_already_sent(server):
    request = post(b"Content-Length: 5\r\nExpect: 100-continue\r\n", b"hello")

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        env = echo_body(conn.final_response())
        assert env["body"] == "hello"
        return True

    for_each_split(server, request, exchange)


def test_expect_100_continue_ignored_for_http_1_0(server):
    request = b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request, at)
        response = conn.response()
        assert response.status == 200, f"an HTTP/1.0 client must not get 100 Continue: {response!r}"
        assert echo_body(response)["body"] == "hello"
        return False

    for_each_split(server, request, exchange)


def test_100_continue_not_sent_for_rejected_body(server):
    """A body over the limit is refused before it is asked for (see test_limits for the limit itself)."""
    request = post(b"Content-Length: 99999999999999999\r\nExpect: 100-continue\r\n")
    with Conn(server) as conn:
        conn.send(request)
        response = conn.response()
        check_error_response(response, (413,))
        assert conn.closed()


# -- pipelining ----------------------------------------------------------------------


def _pipeline_100() -> list[tuple[bytes, str, Callable[[RawResponse], None]]]:
    """100 requests of five kinds (GET, POST with Content-Length, chunked POST, HEAD, unread body)."""
    requests = []
    for i in range(100):
        kind = i % 5
        if kind == 0:

            def check(response, i=i):
                assert response.body == b"seq %d" % i, f"response {i} out of order: {response!r}"

            requests.append((b"GET /seq?%d HTTP/1.1\r\nHost: a\r\n\r\n" % i, "GET", check))
        elif kind in (1, 2):
            body = b"body %d" % i
            if kind == 1:
                request = post(b"Content-Length: %d\r\n" % len(body), body, b"/echo?mode=cl")
            else:
                request = chunked(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body), b"/echo?mode=readline")

            def check(response, body=body):
                assert echo_body(response)["body"] == body.decode(), response

            requests.append((request, "GET", check))
        elif kind == 3:

            def check(response):
                assert response.header("content-length") == str(len(b"seq 3")), response

            requests.append((b"HEAD /seq?%d HTTP/1.1\r\nHost: a\r\n\r\n" % (i % 10), "HEAD", check))
        else:

            def check(response):
                assert response.body == b"did not read the body\n", response

            requests.append((post(b"Content-Length: 3\r\n", b"abc", b"/noread?%d" % i), "GET", check))
    return requests


def test_pipelining_100_requests_in_one_write(server):
    """Answered in order; split at every byte of the first five requests and every 211th byte after."""
    requests = _pipeline_100()
    data = b"".join(request for request, _, _ in requests)
    first_five = sum(len(request) for request, _, _ in requests[:5])

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(data, at)
        for _, method, check in requests:
            response = conn.response(method)
            assert response.status == 200 and not is_close(response), response
            check(response)
        return True

    points = sorted(set(range(1, first_five + 1)) | set(range(1, len(data), 211)) | {len(data)})
    for_each_split(server, data, exchange, points)


def test_request_after_body_is_not_part_of_it(server):
    """A request inside the body of a previous one is data, not a request."""
    body = b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n"
    request = post(b"Content-Length: %d\r\n" % len(body), body)

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request + b"GET /seq?after HTTP/1.1\r\nHost: a\r\n\r\n", at)
        assert echo_body(conn.response())["body"] == body.decode()
        assert conn.response().body == b"seq after"
        return True

    for_each_split(server, request, exchange)
