"""PEP 3333 behaviour of the WSGI bridge, through the validated apps of apps.py.

The environ, wsgi.input for Content-Length and chunked bodies (every way of
reading it, never past the body), start_response with exc_info, write(),
iterables and generators, close() exactly once (also on errors and client
disconnects), wsgi.file_wrapper, and error handling (500 and a logged
traceback).  One server serves the module; tests that need other options
start their own.
"""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
import uuid
from urllib.parse import quote

import pytest
from test_http_checklist import (
    Conn,
    check_still_healthy,
    chunked,
    echo_body,
    for_each_split,
    is_close,
    post,
    read_until_close,
    start_module_server,
    stop_module_server,
    wait_for_file,
)


@pytest.fixture(scope="module")
def server():
    server = start_module_server("--threads", "4")
    try:
        yield server
    finally:
        stop_module_server(server)


@pytest.fixture(autouse=True)
def healthy(server):
    first_line = len(server.lines)
    yield
    check_still_healthy(server, first_line)


@pytest.fixture
def record(tmp_path) -> str:
    """A path the apps append their notes to (close() calls, chunks produced)."""
    return str(tmp_path / "record")


def q(path: str) -> str:
    return quote(path, safe="")


def get(server, target: str, method: str = "GET", headers: bytes = b"") -> tuple:
    with Conn(server) as conn:
        conn.send(f"{method} {target} HTTP/1.1\r\nHost: a\r\n".encode() + headers + b"\r\n")
        return conn.response(method)


def echo(server, request: bytes) -> dict:
    with Conn(server) as conn:
        conn.send(request)
        return echo_body(conn.response())


def notes(content: str) -> list[str]:
    return content.splitlines()


def wait_notes(record: str, line: str, count: int = 1, timeout: float = 5.0) -> list[str]:
    """Waits until `line` was noted `count` times, then a little longer (to catch a second close())."""
    content = wait_for_file(record, lambda text: notes(text).count(line) >= count, timeout)
    time.sleep(0.2)
    return notes(wait_for_file(record, lambda text: True, 0.01) or content)


# == environ ====================================================================


def test_environ_basics(server):
    host = f"127.0.0.1:{server.port}".encode()
    env = echo(server, b"GET /echo/x?a=%20b&c=d+e HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/echo/x"
    assert env["QUERY_STRING"] == "a=%20b&c=d+e", "QUERY_STRING is passed as sent, not decoded"
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["CONTENT_TYPE"] in (None, "") and env["CONTENT_LENGTH"] in (None, "")
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is True, "--threads 4: the app may run on several threads at once"
    assert env["wsgi.multiprocess"] in (True, False)
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    # The request id the server generated (none was sent) is passed like an incoming field.
    request_id = env["headers"].pop("HTTP_X_REQUEST_ID")
    assert len(request_id) == 32 and int(request_id, 16) >= 0
    assert env["headers"] == {"HTTP_HOST": host.decode()}


def test_environ_without_query_string(server):
    env = echo(server, b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n")
    assert env["QUERY_STRING"] == "" and env["PATH_INFO"] == "/echo"


def test_environ_content_type_and_length(server):
    request = post(b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n", b"a=1&b=2")
    env = echo(server, request)
    assert env["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert env["CONTENT_LENGTH"] == "7"
    assert env["body"] == "a=1&b=2"
    assert "HTTP_CONTENT_TYPE" not in env["headers"] and "HTTP_CONTENT_LENGTH" not in env["headers"]


def test_environ_http_1_0(server):
    env = echo(server, b"GET /echo HTTP/1.0\r\n\r\n")
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"


@pytest.mark.parametrize(
    "target,path_info",
    [
        (b"/echo/caf%C3%A9", "/echo/caf\xc3\xa9"),  # PEP 3333: bytes decoded as latin-1, i.e. 'cafÃ©'
        (b"/echo/caf%c3%a9", "/echo/caf\xc3\xa9"),
        (b"/echo/caf%E9", "/echo/caf\xe9"),
        (b"/echo/a%20b", "/echo/a b"),
        (b"/echo/a+b", "/echo/a+b"),
        (b"/echo/100%25", "/echo/100%"),
        (b"/echo/%7euser", "/echo/~user"),
    ],
)
def test_path_info_percent_decoded_latin_1(server, target, path_info):
    with Conn(server) as conn:
        conn.send(b"GET " + target + b"?q=%C3%A9 HTTP/1.1\r\nHost: a\r\n\r\n")
        response = conn.response()
    env = echo_body(response)
    assert env["PATH_INFO"] == path_info
    assert env["QUERY_STRING"] == "q=%C3%A9"


def test_header_keys(server):
    env = echo(
        server,
        b"GET /echo HTTP/1.1\r\nHost: example.com\r\nX-Custom-Thing: v\r\nACCEPT-language: fr\r\n"
        b"X-Spaces:   padded \t \r\nX-Latin: caf\xe9\r\nX-Empty:\r\n\r\n",
    )
    headers = env["headers"]
    assert headers["HTTP_HOST"] == "example.com"
    assert headers["HTTP_X_CUSTOM_THING"] == "v"
    assert headers["HTTP_ACCEPT_LANGUAGE"] == "fr"
    assert headers["HTTP_X_SPACES"] == "padded", "leading and trailing whitespace is not part of the value"
    assert headers["HTTP_X_LATIN"] == "caf\xe9", "obs-text is decoded as latin-1"
    assert headers.get("HTTP_X_EMPTY") == ""


def test_repeated_headers_joined(server):
    env = echo(server, b"GET /echo HTTP/1.1\r\nHost: a\r\nX-Dup: a\r\nX-Other: o\r\nX-Dup: b\r\n\r\n")
    assert env["headers"]["HTTP_X_DUP"] in ("a,b", "a, b")
    assert env["headers"]["HTTP_X_OTHER"] == "o"


@pytest.mark.parametrize("key", ["wsgi.multithread", "wsgi.multiprocess"])
def test_multithread_multiprocess_flags(start_server, key):
    """One thread in one worker: both False; two threads (or two workers): True."""
    if key == "wsgi.multithread":
        one = start_server("apps:main", "--threads", "1", workers=1)
        two = start_server("apps:main", "--threads", "2", workers=1)
    else:
        one = start_server("apps:main", "--threads", "1", workers=1)
        two = start_server("apps:main", "--threads", "1", workers=2)
    request = b"GET /echo HTTP/1.1\r\nHost: a\r\n\r\n"
    assert echo(one, request)[key] is False
    assert echo(two, request)[key] is True


# == wsgi.input ===================================================================

TEXT_BODY = b"first line\nsecond\r\n\nthird, longer than the read size\nno newline at the end"
BINARY_BODY = bytes(range(256)) + b"\n\x00\r\n" + bytes(range(255, -1, -1))


def expected_pieces(body: bytes, mode: str, n: int) -> list[bytes] | None:
    """What each way of reading returns piece by piece, from io.BytesIO, the reference file object."""
    stream = io.BytesIO(body)
    if mode == "readline":
        return list(iter(stream.readline, b""))
    if mode == "readline_n":
        return list(iter(lambda: stream.readline(n), b""))
    if mode in ("readlines", "iter"):
        return stream.readlines()
    if mode == "read":
        return [body]  # a single read() call
    if mode == "cl":
        return [body] if body else []
    return None  # readn: any split is fine, the app checks that no piece exceeds n


def chunked_body(body: bytes, sizes=(1, 3, 10)) -> bytes:
    """The body as chunks of the given sizes (the last size repeated), so lines span chunk boundaries."""
    out, index, i = [], 0, 0
    while index < len(body):
        size = sizes[min(i, len(sizes) - 1)]
        piece = body[index : index + size]
        out.append(b"%x\r\n%s\r\n" % (len(piece), piece))
        index += size
        i += 1
    return b"".join(out) + b"0\r\n\r\n"


MODES = ["cl", "read", "readn", "readline", "readline_n", "readlines", "iter"]


# Mode "cl" reads CONTENT_LENGTH bytes, which a chunked request does not have.
FRAMED_MODES = [("content-length", mode) for mode in MODES] + [("chunked", mode) for mode in MODES if mode != "cl"]


@pytest.mark.parametrize(("framing", "mode"), FRAMED_MODES)
@pytest.mark.parametrize("body", [TEXT_BODY, BINARY_BODY, b""], ids=["text", "binary", "empty"])
def test_input_reads_exactly_the_body(server, mode, framing, body):
    """Each way of reading returns the body and then EOF; the pipelined request behind it stays intact."""
    target = b"/echo?mode=" + mode.encode() + b"&n=4"
    if framing == "chunked":
        request = chunked(chunked_body(body), target)
    else:
        request = post(b"Content-Length: %d\r\n" % len(body), body, target)
    following = b"GET /seq?after HTTP/1.1\r\nHost: a\r\n\r\n"

    def exchange(conn: Conn, at: int) -> bool:
        conn.send(request + following, at)
        env = echo_body(conn.response())
        assert env["body"].encode("latin-1") == body
        assert env["after"] == "", "wsgi.input returned data past the end of the body"
        expected = expected_pieces(body, mode, 4)
        if expected is not None:
            assert [piece.encode("latin-1") for piece in env["pieces"]] == expected
        assert conn.response().body == b"seq after"
        return True

    points = None if body is TEXT_BODY and mode in ("readline", "readn") else [len(request) // 2, len(request)]
    for_each_split(server, request, exchange, points)


@pytest.mark.parametrize(
    ("framing", "mode"),
    [
        ("content-length", "cl"),
        ("content-length", "readn"),
        ("content-length", "read"),
        ("chunked", "readn"),
        ("chunked", "read"),
    ],
)
def test_input_large_body(server, framing, mode):
    body = os.urandom(3 * 1024 * 1024 + 7)
    target = f"/echo?mode={mode}&n=65536&quiet=1".encode()
    if framing == "chunked":
        request = chunked(chunked_body(body, (8191, 1, 65536)), target)
    else:
        request = post(b"Content-Length: %d\r\n" % len(body), body, target)
    with Conn(server, timeout=30) as conn:
        conn.send(request + b"GET /seq?after HTTP/1.1\r\nHost: a\r\n\r\n")
        env = echo_body(conn.response())
        assert env["body_length"] == len(body)
        assert env["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert env["after"] == ""
        assert conn.response().body == b"seq after"


def test_input_not_read_with_unread_body_pipelined(server):
    """An app that ignores a body: the server drains it (or closes); never parses it as a request."""
    for framing in ("content-length", "chunked"):
        body = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n" * 30
        if framing == "chunked":
            request = chunked(chunked_body(body, (7, 100)), b"/noread")
        else:
            request = post(b"Content-Length: %d\r\n" % len(body), body, b"/noread")
        with Conn(server) as conn:
            conn.send(request + b"GET /seq?after HTTP/1.1\r\nHost: a\r\n\r\n")
            response = conn.response()
            assert response.body == b"did not read the body\n"
            if is_close(response):
                assert conn.closed()
                continue
            follow = conn.response()
            assert follow.body == b"seq after", f"{framing}: {follow!r}"


# == responses ====================================================================


def test_write_callable(server):
    response = get(server, "/write")
    assert response.status == 200 and response.body == b"written then returned"


def test_write_callable_only_with_content_length(server):
    response = get(server, "/write_only")
    assert response.status == 200 and response.body == b"only written"
    assert response.header("content-length") == "12"


@pytest.mark.parametrize("app", ["chunks", "gen"])
def test_many_chunks(server, app):
    response = get(server, f"/{app}?n=10000&size=3")
    expected = b"".join(bytes([48 + i % 10]) * 3 for i in range(10000))
    assert response.status == 200 and response.body == expected


def test_empty_iterable_with_content_length_zero(server):
    response = get(server, "/status?code=200")
    assert response.status == 200 and response.body == b""


def test_first_chunk_not_held_back(server):
    """PEP 3333: a yielded block is transmitted, not held until the application produces the next one.

    The app yields chunk 0 at once and chunk 1 after 1.5 s; chunk 0 must be on
    the wire long before that (streaming responses and server-sent events
    depend on it).
    """
    with Conn(server) as conn:
        start = time.monotonic()
        conn.send(b"GET /closing?n=2&delay=1.5 HTTP/1.1\r\nHost: a\r\n\r\n")
        conn.sock.settimeout(5)
        while b"chunk 0" not in conn.reader.buffer:
            piece = conn.sock.recv(65536)
            assert piece, conn.reader.buffer
            conn.reader.buffer += piece  # Kept for the ResponseReader, which parses the whole response below.
        elapsed = time.monotonic() - start
        assert elapsed < 0.7, f"the first chunk came after {elapsed:.2f} s, with the second"
        assert b"chunk 1" not in conn.reader.buffer
        assert conn.response().body == b"chunk 0\nchunk 1\n"  # The rest of the response is still well framed.


# -- close() ---------------------------------------------------------------------------


def test_close_called_once(server, record):
    response = get(server, f"/closing?record={q(record)}&n=3")
    assert response.body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert wait_notes(record, "close") == ["chunk 0", "chunk 1", "chunk 2", "close"]


def test_close_called_once_with_content_length(server, record):
    response = get(server, f"/closing?record={q(record)}&n=3&length=1")
    assert response.body == b"chunk 0\nchunk 1\nchunk 2\n"
    assert wait_notes(record, "close").count("close") == 1


def test_close_called_once_on_head(server, record):
    response = get(server, f"/closing?record={q(record)}&n=3&length=1", method="HEAD")
    assert response.status == 200 and response.header("content-length") == "24"
    assert wait_notes(record, "close").count("close") == 1


def test_close_called_once_when_iteration_raises(server, record):
    with Conn(server) as conn:
        conn.send(f"GET /closing?record={q(record)}&n=3&fail_at=1 HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        data, closed = read_until_close(conn.sock)
    assert closed, f"connection left open after a body cut short by an error: {data[-400:]!r}"
    assert b"chunk 0\n" in data and b"chunk 1" not in data
    assert not data.endswith(b"0\r\n\r\n"), "a body cut by an error must not look complete"
    assert wait_notes(record, "close").count("close") == 1


def test_close_called_once_on_client_disconnect_mid_stream(server, record):
    with Conn(server) as conn:
        conn.send(f"GET /closing?record={q(record)}&n=100&delay=0.05 HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        conn.sock.settimeout(5)
        assert b"chunk 0" in conn.sock.recv(65536)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    lines = wait_notes(record, "close", timeout=10)
    assert lines.count("close") == 1, lines
    assert len(lines) < 60, "the iterable went on after the client had gone"


def test_close_called_once_on_client_disconnect_before_body(server, record):
    """The client goes away while the app is still producing its first chunk (delay before chunk 1)."""
    conn = Conn(server)
    conn.send(f"GET /closing?record={q(record)}&n=3&delay=0.5 HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    wait_for_file(record, lambda text: "chunk 0" in text)
    conn.close()
    assert wait_notes(record, "close").count("close") == 1


def test_generator_closed_when_first_iteration_raises(server, record):
    response = get(server, f"/raise_in_iter?record={q(record)}")
    assert response.status == 500, "nothing was sent yet, so the error is a 500"
    assert wait_notes(record, "generator finished") == ["generator finished"]


# -- errors -------------------------------------------------------------------------


def _assert_server_error(response) -> None:
    assert response.status == 500, response
    assert (response.header("content-type") or "").startswith("text/plain"), response
    assert 0 < len(response.body) <= 1024
    assert b"Traceback" not in response.body and b"AppError" not in response.body, "no traceback on the wire"


@pytest.mark.parametrize("app", ["raise", "raise_after_start"])
def test_app_exception_is_500_and_logged(server, app):
    marker = uuid.uuid4().hex
    first = len(server.lines)
    response = get(server, f"/{app}?msg={marker}")
    _assert_server_error(response)
    assert server.wait_for(marker, timeout=5, start=first), "the exception was not logged:\n" + server.output
    logged = "\n".join(server.lines[first:])
    assert "Traceback" in logged and "AppError" in logged, logged


def test_body_without_start_response_is_500_and_logged(server):
    """A list returned without start_response() (the compression decision read
    the missing status and crashed the worker): a 500, the worker lives on."""
    first = len(server.lines)
    _assert_server_error(get(server, "/raw_no_start_response"))
    assert server.wait_for("without calling start_response", timeout=5, start=first), server.output
    assert get(server, "/hello").status == 200


def test_connection_after_500(server):
    """A 500 sent before any body leaves the framing intact: the connection goes on, or says it closes."""
    with Conn(server) as conn:
        conn.send(b"GET /raise HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        response = conn.response()
        _assert_server_error(response)
        if is_close(response):
            assert conn.closed()
            return
        follow = conn.response()
        assert follow.status == 200 and follow.body == b"Hello, world!\n"


def test_head_500_has_no_body(server):
    """A 500 of the server's own to a HEAD request keeps the HEAD rule: the fields and no body, so a
    pipelined request after it is read as its own (a body here would be taken for the next response)."""
    with Conn(server) as conn:
        conn.send(b"HEAD /raise HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        response = conn.response("HEAD")
        assert response.status == 500, response
        assert response.body == b"", response
        if is_close(response):
            assert conn.closed()
            return
        follow = conn.response()
        assert follow.status == 200 and follow.body == b"Hello, world!\n", follow


def test_exc_info_before_body_replaces_response(server):
    response = get(server, "/exc_info")
    assert response.status == 500
    assert response.body == b"error page from the app\n"
    assert response.header("x-replaced") is None, "the headers of the first start_response were not replaced"


def test_exc_info_after_body_reraises_and_closes(server, record):
    first = len(server.lines)
    with Conn(server) as conn:
        conn.send(f"GET /exc_info_after_body?record={q(record)} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        data, closed = read_until_close(conn.sock)
    assert closed, f"connection left open after a body cut short by an error: {data[-400:]!r}"
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert b"first chunk" in data and b"must never be sent" not in data
    assert not data.endswith(b"0\r\n\r\n"), "a body cut by an error must not look complete"
    lines = wait_notes(record, "generator finished")
    assert lines == ["generator finished"], "start_response(exc_info) did not re-raise after the headers went out"
    assert server.wait_for("Traceback", timeout=5, start=first)


def test_exception_mid_body_closes_connection(server, record):
    with Conn(server) as conn:
        request = f"GET /raise_mid_body?record={q(record)} HTTP/1.1\r\nHost: a\r\n\r\n"
        conn.send(request.encode() + b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n")
        data, closed = read_until_close(conn.sock)
    assert closed, f"connection left open after a body cut short by an error: {data[-400:]!r}"
    assert b"first chunk" in data and b"must never be sent" not in data
    assert b"Hello, world" not in data, "the connection went on after a broken response"
    assert wait_notes(record, "close").count("close") == 1


def test_wsgi_errors_reach_the_log(server):
    marker = uuid.uuid4().hex
    first = len(server.lines)
    get(server, f"/errors?msg={marker}")
    assert server.wait_for(marker, timeout=5, start=first), "wsgi.errors output is not in the server log"


# -- wsgi.file_wrapper ------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path) -> tuple[str, bytes]:
    content = os.urandom(1024 * 1024 + 3)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    return str(path), content


@pytest.mark.parametrize("app", ["file", "raw_file"], ids=["validated_iteration", "raw_sendfile"])
@pytest.mark.parametrize("length", [True, False], ids=["content_length", "no_length"])
def test_file_wrapper(server, record, data_file, app, length):
    path, content = data_file
    target = f"/{app}?path={q(path)}&record={q(record)}" + ("" if length else "&nolength=1")
    with Conn(server, timeout=10) as conn:
        conn.send(f"GET {target} HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n".encode())
        response = conn.response()
        assert response.status == 200
        if length:
            assert response.header("content-length") == str(len(content))
        assert response.body == content
        assert conn.response().body == b"Hello, world!\n"
    lines = wait_notes(record, "file closed")
    assert lines.count("file closed") == 1 and lines[-1] == "file closed", lines
    if app == "raw_file":
        assert "read" not in lines, "the file was read in Python: wsgi.file_wrapper should send it with sendfile"
    else:
        assert "read" in lines, "iterating the wrapper (hidden by the validator) reads the file: the note works"


def test_file_wrapper_head(server, record, data_file):
    path, content = data_file
    response = get(server, f"/raw_file?path={q(path)}&record={q(record)}", method="HEAD")
    assert response.status == 200 and response.header("content-length") == str(len(content))
    assert wait_notes(record, "file closed").count("file closed") == 1


def test_file_wrapper_without_fileno(server, data_file):
    path, content = data_file
    response = get(server, f"/raw_file?path={q(path)}&bytesio=1")
    assert response.status == 200 and response.body == content


def test_file_wrapper_closed_on_client_disconnect(server, record, tmp_path):
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(256 * 1024 * 1024)
    conn = Conn(server)
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    conn.send(f"GET /raw_file?path={q(str(path))}&record={q(record)} HTTP/1.1\r\nHost: a\r\n\r\n".encode())
    assert conn.sock.recv(65536).startswith(b"HTTP/1.1 200 ")
    time.sleep(0.3)
    conn.close()
    assert wait_notes(record, "file closed", timeout=10).count("file closed") == 1
