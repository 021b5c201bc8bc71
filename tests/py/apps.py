"""WSGI applications that the HTTP and WSGI tests run meltemi with.

Every application is wrapped in `wsgiref.validate.validator`, so a server that
breaks PEP 3333 (a bad environ, a missing close(), a str where bytes belong)
turns into an AssertionError inside the worker, a 500 on the wire and a
traceback in the server's output.  A few are deliberately left unvalidated and
are named `raw_*`; each says why (usually: the validator itself would reject
what the test feeds the server, such as a header value with a CR in it).

The server runs in another process, so applications that must report something
the response cannot carry (that close() was called, how far a generator got)
append to a file whose path the test passes in the query string (`record=`,
`count=`).  Apps that need parameters take them from the query string too.

`main` dispatches on the first path segment (`/hello`, `/echo/...`) so one
server process serves every test of a module; anything unknown goes to `echo`.
"""

from __future__ import annotations

import hashlib
import http
import io
import json
import os
import sys
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

# A WSGI warning from the validator (a missing QUERY_STRING, an odd method
# reaching the app) is a server bug like any other: make it an exception.
warnings.simplefilter("error", WSGIWarning)

TEXT = [("Content-Type", "text/plain; charset=utf-8")]


class AppError(RuntimeError):
    """Raised on purpose by the error apps (so that it is told apart from a validator AssertionError)."""


def _query(environ) -> dict[str, str]:
    parsed = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    return {key: values[-1] for key, values in parsed.items()}


def _note(path: str | None, line: str) -> None:
    """Appends one line to a record file (one write, so lines of concurrent writers do not interleave)."""
    if path:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)


def _status(code: int) -> str:
    return f"{code} {http.HTTPStatus(code).phrase}"


# -- plain answers ----------------------------------------------------------


def _hello(environ, start_response):
    body = b"Hello, world!\n"
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def _seq(environ, start_response):
    """Answers with its query string: tells pipelined responses apart."""
    body = ("seq " + environ.get("QUERY_STRING", "")).encode()
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def _sleep(environ, start_response):
    seconds = float(_query(environ).get("s", "1"))
    time.sleep(seconds)
    body = b"slept\n"
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def _status_app(environ, start_response):
    """`?code=204[&body=x]`: any status; 204/304 get no Content-Type (the validator forbids one)."""
    query = _query(environ)
    code = int(query.get("code", "200"))
    headers = [] if code in (204, 304) else list(TEXT)
    if code == 304:
        headers.append(("ETag", '"v1"'))
    start_response(_status(code), headers)
    body = query.get("body", "")
    return [body.encode()] if body else []


# -- request echo -------------------------------------------------------------

ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "PATH_INFO",
    "QUERY_STRING",
    "SCRIPT_NAME",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "wsgi.url_scheme",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
    "wsgi.input_terminated",
)


def _unwrapped_input(environ):
    # The validator's InputWrapper insists on read(size); `read()` without a
    # size is not in PEP 3333 but every server supports it and frameworks call
    # it, so the `read` mode talks to the server's own object underneath.
    stream = environ["wsgi.input"]
    return getattr(stream, "input", stream)


def _read_body(environ, mode: str, size: int) -> tuple[bytes, list[bytes]]:
    """Reads the whole body the way `mode` says; returns it and the pieces the reads returned."""
    stream = environ["wsgi.input"]
    pieces: list[bytes] = []
    if mode == "none":
        return b"", pieces
    if mode == "cl":  # The PEP 3333 way: exactly CONTENT_LENGTH bytes.
        remaining = int(environ.get("CONTENT_LENGTH") or 0)
        while remaining > 0:
            piece = stream.read(remaining)
            if not piece:
                break
            pieces.append(piece)
            remaining -= len(piece)
    elif mode == "read":
        pieces.append(_unwrapped_input(environ).read())
    elif mode == "readn":
        while piece := stream.read(size):
            assert len(piece) <= size, (len(piece), size)
            pieces.append(piece)
    elif mode == "readline":
        while piece := stream.readline():
            pieces.append(piece)
    elif mode == "readline_n":
        while piece := stream.readline(size):
            assert len(piece) <= size, (len(piece), size)
            pieces.append(piece)
    elif mode == "readlines":
        pieces.extend(stream.readlines())
    elif mode == "iter":
        pieces.extend(stream)
    else:
        raise AppError(f"unknown mode {mode!r}")
    return b"".join(pieces), pieces


def _echo(environ, start_response):
    """Answers with JSON: the environ keys of interest, every HTTP_* key, and the body as read.

    Query: `mode` (cl, read, readn, readline, readline_n, readlines, iter, none;
    default readn), `n` (size for readn/readline_n, default 7), `sleep` (seconds
    to wait before the first read), `quiet` (leave the body itself out).
    """
    query = _query(environ)
    mode = query.get("mode", "readn")
    size = int(query.get("n", "7"))
    if "sleep" in query:
        time.sleep(float(query["sleep"]))
    body, pieces = _read_body(environ, mode, size)
    # Past the end of the body wsgi.input must keep answering EOF.
    after = environ["wsgi.input"].read(1) if mode != "none" else b""
    after += environ["wsgi.input"].read(1) if mode != "none" else b""
    result = {key: environ.get(key) for key in ENVIRON_KEYS}
    result["headers"] = {key: value for key, value in environ.items() if key.startswith("HTTP_")}
    result["environ_keys"] = sorted(key for key in environ if isinstance(key, str))
    result["body_length"] = len(body)
    result["body_sha256"] = hashlib.sha256(body).hexdigest()
    result["after"] = after.decode("latin-1")
    result["pid"] = os.getpid()
    result["mode"] = mode
    if "quiet" not in query and len(body) <= 65536:
        result["body"] = body.decode("latin-1")
        result["pieces"] = [piece.decode("latin-1") for piece in pieces]
    payload = json.dumps(result, sort_keys=True).encode()
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("X-Echo-Method", environ["REQUEST_METHOD"]),
        ],
    )
    return [payload]


def _noread(environ, start_response):
    """Answers at once and never touches wsgi.input (the server must drain the body or close)."""
    body = b"did not read the body\n"
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def _record_body(environ, start_response):
    """Reads the body to EOF and records `complete <length>` or `error <exception>` to `record=`.

    A truncated body (client gone, chunked stream cut before its last chunk)
    must end in an exception here, never in a short body that looks complete.
    """
    record = _query(environ).get("record")
    stream = environ["wsgi.input"]
    total = 0
    try:
        while piece := stream.read(65536):
            total += len(piece)
    except Exception as error:
        _note(record, f"error {type(error).__name__} after {total}")
        raise
    _note(record, f"complete {total}")
    body = f"read {total}\n".encode()
    start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    return [body]


def _errors(environ, start_response):
    """Writes `?msg=` to wsgi.errors (which should end up in the server's log)."""
    errors = environ["wsgi.errors"]
    errors.write("wsgi.errors says " + _query(environ).get("msg", "") + "\n")
    errors.writelines(["second line\n"])
    errors.flush()
    start_response("200 OK", TEXT + [("Content-Length", "0")])
    return []


# -- response bodies ----------------------------------------------------------


def _write(environ, start_response):
    """The legacy write() callable, then a returned iterable: body `written then returned`."""
    write = start_response("200 OK", list(TEXT))
    write(b"written ")
    write(b"then ")
    return [b"returned"]


def _write_only(environ, start_response):
    body = b"only written"
    write = start_response("200 OK", TEXT + [("Content-Length", str(len(body)))])
    write(body[:4])
    write(body[4:])
    return []


def _chunks(environ, start_response):
    """`?n=10000&size=1`: a list of n chunks of `size` bytes, no Content-Length."""
    query = _query(environ)
    n, size = int(query.get("n", "1000")), int(query.get("size", "1"))
    start_response("200 OK", list(TEXT))
    return [bytes([48 + i % 10]) * size for i in range(n)]


def _gen(environ, start_response):
    """`?n=&size=`: the same body as `chunks`, from a generator, with empty chunks mixed in."""
    query = _query(environ)
    n, size = int(query.get("n", "1000")), int(query.get("size", "1"))
    start_response("200 OK", list(TEXT))

    def body():
        for i in range(n):
            yield b""
            yield bytes([48 + i % 10]) * size

    return body()


class _Closing:
    """An iterable that records each close() call, and each chunk it produced, to `record=`."""

    def __init__(self, chunks: list[bytes], record: str | None, delay: float, fail_at: int | None = None):
        self.chunks = chunks
        self.record = record
        self.delay = delay
        self.fail_at = fail_at

    def __iter__(self):
        for index, chunk in enumerate(self.chunks):
            if index == self.fail_at:
                raise AppError("failing on purpose in the middle of the body")
            if self.delay and index:
                time.sleep(self.delay)
            _note(self.record, f"chunk {index}")
            yield chunk

    def close(self):
        _note(self.record, "close")


def _closing(environ, start_response):
    """`?record=PATH&n=3&delay=0&fail_at=K&length=1`: an iterable whose close() is recorded."""
    query = _query(environ)
    n = int(query.get("n", "3"))
    chunks = [f"chunk {i}\n".encode() for i in range(n)]
    headers = list(TEXT)
    if query.get("length"):
        headers.append(("Content-Length", str(sum(map(len, chunks)))))
    start_response("200 OK", headers)
    fail_at = int(query["fail_at"]) if "fail_at" in query else None
    return _Closing(chunks, query.get("record"), float(query.get("delay", "0")), fail_at)


def _stream(environ, start_response):
    """`?size=65536&n=16384&count=PATH&record=PATH`: a large generated body for back-pressure tests.

    After each chunk it writes how many chunks it produced to `count=` (fixed
    width, overwritten in place) so a test can see whether the iterator was
    paused by a client that does not read.  close() is recorded to `record=`.
    """
    query = _query(environ)
    size, n = int(query.get("size", "65536")), int(query.get("n", "16384"))
    count_path = query.get("count")
    record = query.get("record")
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size * n))])
    chunk = b"x" * size

    def body():
        fd = os.open(count_path, os.O_WRONLY | os.O_CREAT, 0o644) if count_path else -1
        try:
            for i in range(n):
                yield chunk
                if fd >= 0:
                    os.pwrite(fd, b"%12d\n" % (i + 1), 0)
        finally:
            if fd >= 0:
                os.close(fd)
            _note(record, "close")

    return body()


class _RecordingFile(io.FileIO):
    """A real file (with a fileno, so sendfile can be used) whose first close() is recorded."""

    def __init__(self, path: str, record: str | None):
        super().__init__(path, "rb")
        self.record = record

    def read(self, size=-1):
        # Noted so that a test can tell sendfile (no Python-level read) from iteration.
        _note(self.record, "read")
        return super().read(size)

    def close(self):
        if not self.closed:
            _note(self.record, "file closed")
        super().close()


def _file(environ, start_response):
    """`?path=FILE&record=PATH[&nolength=1][&bytesio=1]`: the file through wsgi.file_wrapper."""
    query = _query(environ)
    if query.get("bytesio"):
        with open(query["path"], "rb") as source:
            filelike = io.BytesIO(source.read())
    else:
        filelike = _RecordingFile(query["path"], query.get("record"))
    headers = [("Content-Type", "application/octet-stream")]
    if not query.get("nolength"):
        headers.append(("Content-Length", str(os.path.getsize(query["path"]))))
    start_response("200 OK", headers)
    return environ["wsgi.file_wrapper"](filelike, 65536)


def _cl_mismatch(environ, start_response):
    """`?declared=10&actual=5`: a body shorter or longer than the app's own Content-Length."""
    query = _query(environ)
    declared, actual = int(query["declared"]), int(query["actual"])
    start_response("200 OK", TEXT + [("Content-Length", str(declared))])
    return [b"a" * actual]


# -- errors -------------------------------------------------------------------


def _raise(environ, start_response):
    """Raises before start_response; `?msg=` goes into the exception so the test finds its traceback."""
    raise AppError("raised on purpose: " + _query(environ).get("msg", ""))


def _raise_after_start(environ, start_response):
    start_response("200 OK", list(TEXT))
    raise AppError("raised after start_response: " + _query(environ).get("msg", ""))


def _raise_in_iter(environ, start_response):
    """start_response, then a generator that yields only empty strings before raising: headers unsent."""
    start_response("200 OK", list(TEXT))
    record = _query(environ).get("record")

    def body():
        try:
            yield b""
            raise AppError("raised in the first iteration")
        finally:
            _note(record, "generator finished")

    return body()


def _raise_mid_body(environ, start_response):
    """One chunk is sent, then the iterable raises: the response can only be cut short."""
    query = _query(environ)
    start_response("200 OK", list(TEXT))
    return _Closing([b"first chunk\n", b"must never be sent\n"], query.get("record"), 0.0, fail_at=1)


def _exc_info(environ, start_response):
    """The PEP 3333 error path: start_response again with exc_info before any body was sent."""
    start_response("200 OK", TEXT + [("X-Replaced", "yes")])
    try:
        raise AppError("handled by the application")
    except AppError:
        start_response("500 Internal Server Error", list(TEXT), sys.exc_info())
    return [b"error page from the app\n"]


def _exc_info_after_body(environ, start_response):
    """start_response with exc_info after the headers went out: it must re-raise (the server closes)."""
    record = _query(environ).get("record")
    start_response("200 OK", list(TEXT))

    def body():
        try:
            yield b"first chunk\n"
            try:
                raise AppError("error after the headers were sent")
            except AppError:
                start_response("500 Internal Server Error", list(TEXT), sys.exc_info())
                _note(record, "start_response did not raise")
            yield b"must never be sent\n"
        finally:
            _note(record, "generator finished")

    return body()


def raw_no_start_response(environ, start_response):
    """Unvalidated (the validator would stop it first): returns a body without calling start_response."""
    return [b"a body without a status"]


def raw_bad_header(environ, start_response):
    """Unvalidated: the validator would reject these headers itself, and the point is the server's own check.

    `?where=` picks what is broken; every variant smuggles the text `Injected`
    which must never reach the wire: the server answers 500 instead.
    """
    where = _query(environ).get("where", "value_crlf")
    status, name, value = "200 OK", "X-Test", "fine"
    extra = []
    if where == "length_twice":
        # Two lengths would frame the body two ways downstream: "Injected" could hide in the difference.
        extra = [("Content-Length", "9"), ("Content-Length", "14")]
    elif where == "status_crlf":
        status = "200 OK\r\nInjected: yes"
    elif where == "status_lf":
        status = "200 OK\nInjected: yes"
    elif where == "status_cr":
        status = "200 OK\rInjected: yes"
    elif where == "status_nul":
        status = "200 OK\x00Injected: yes"
    elif where == "name_crlf":
        name = "X-Test\r\nInjected"
    elif where == "name_lf":
        name = "X-Test\nInjected"
    elif where == "name_cr":
        name = "X-Test\rInjected"
    elif where == "name_nul":
        name = "X-Test\x00Injected"
    elif where == "value_crlf":
        value = "fine\r\nInjected: yes"
    elif where == "value_lf":
        value = "fine\nInjected: yes"
    elif where == "value_cr":
        value = "fine\rInjected: yes"
    elif where == "value_nul":
        value = "fine\x00Injected: yes"
    elif where == "value_bytes":
        value = b"Injected"  # PEP 3333: header values are str; bytes are an application error.
    else:
        raise AppError(f"unknown variant {where!r}")
    start_response(status, [("Content-Type", "text/plain"), (name, value), *extra])
    return [b"Injected body\n"]


def raw_echo(environ, start_response):
    """Unvalidated echo for asterisk-form (`OPTIONS *`): PEP 3333 has no PATH_INFO for `*`, and the
    validator asserts that a non-empty PATH_INFO starts with `/`."""
    result = {key: environ.get(key) for key in ENVIRON_KEYS}
    payload = json.dumps(result, sort_keys=True).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
    return [payload]


def raw_file(environ, start_response):
    """Unvalidated: the validator wraps the returned iterable, which hides the server's own
    wsgi.file_wrapper object and so its sendfile path.  Same query as `file`."""
    return _file(environ, start_response)


hello = validator(_hello)
seq = validator(_seq)
sleep = validator(_sleep)
status = validator(_status_app)
echo = validator(_echo)
noread = validator(_noread)
record_body = validator(_record_body)
errors = validator(_errors)
write = validator(_write)
write_only = validator(_write_only)
chunks = validator(_chunks)
gen = validator(_gen)
closing = validator(_closing)
stream = validator(_stream)
file = validator(_file)
cl_mismatch = validator(_cl_mismatch)
fail = validator(_raise)
raise_after_start = validator(_raise_after_start)
raise_in_iter = validator(_raise_in_iter)
raise_mid_body = validator(_raise_mid_body)
exc_info = validator(_exc_info)
exc_info_after_body = validator(_exc_info_after_body)

ROUTES = {
    "hello": hello,
    "seq": seq,
    "sleep": sleep,
    "status": status,
    "echo": echo,
    "noread": noread,
    "record_body": record_body,
    "errors": errors,
    "write": write,
    "write_only": write_only,
    "chunks": chunks,
    "gen": gen,
    "closing": closing,
    "stream": stream,
    "file": file,
    "raw_file": raw_file,
    "cl_mismatch": cl_mismatch,
    "raise": fail,
    "raise_after_start": raise_after_start,
    "raise_in_iter": raise_in_iter,
    "raise_mid_body": raise_mid_body,
    "exc_info": exc_info,
    "exc_info_after_body": exc_info_after_body,
    "raw_bad_header": raw_bad_header,
    "raw_no_start_response": raw_no_start_response,
}


def main(environ, start_response):
    """Dispatches on the first path segment; unknown paths go to `echo`, `*` and the like to `raw_echo`."""
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/"):
        return raw_echo(environ, start_response)
    return ROUTES.get(path.split("/", 2)[1], echo)(environ, start_response)
