"""Differential check: the same bytes to meltemi, to gunicorn and to h11, verdicts compared.

Every case of the corpus below (the framing, chunked and request-line cases of
HTTP-CHECKLIST.md, plus valid and pipelined requests) is sent whole on a new
connection, the client's side then shut, to meltemi and to gunicorn (gthread
worker, keep-alive and pipelining like meltemi) serving the same application
(diffapps.py), and fed to h11, a strict pure-Python parser, as a second
opinion.  Each side's verdict is the list of requests it handed to the
application (method, decoded path, query, body digest) and whether it then
refused something (an error status) or said nothing.

What fails a case:

- meltemi hands over more requests than the bytes hold (`CASES` says how many
  at most): a request read as two is request smuggling, whoever is right;
- meltemi and a peer both hand over the i-th request but disagree on it
  (another body, another path): a desynchronisation;
- meltemi's verdict differs from a peer's (served vs refused, or how many) and
  the difference is not in `KNOWN`, with the reason meltemi's answer is right;
  a difference listed there that no longer happens fails too, so the table
  in docs/reliability.md stays true.  Which 4xx/5xx a refusal carries is
  shown in the table but not compared (400 and 501 are both "refused").

The table of every case is written to build/differential.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_to_bytes

import h11
import pytest
from conftest import ROOT, TESTS, ResponseReader, Server

H = b"Host: a\r\n"


def req(method: bytes = b"GET", target: bytes = b"/", head: bytes = b"", body: bytes = b"", version=b"HTTP/1.1"):
    return method + b" " + target + b" " + version + b"\r\n" + H + head + b"\r\n" + body


def post(head: bytes, body: bytes) -> bytes:
    return req(b"POST", b"/p", head, body)


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
TE = b"Transfer-Encoding: chunked\r\n"

# name -> (bytes, the most requests these bytes hold)
CASES: dict[str, tuple[bytes, int]] = {
    # -- valid requests
    "get": (req(), 1),
    "get_http10": (b"GET / HTTP/1.0\r\n\r\n", 1),
    "head": (req(b"HEAD"), 1),
    "percent_path_and_query": (req(target=b"/a%20b/%C3%A9?x=%41&y"), 1),
    "absolute_form": (req(target=b"http://example.com/abs?q=1"), 1),
    "options_asterisk": (req(b"OPTIONS", b"*"), 1),
    "post_content_length": (post(b"Content-Length: 5\r\n", b"hello"), 1),
    "content_length_leading_zeros": (post(b"Content-Length: 0005\r\n", b"hello"), 1),
    "post_chunked": (post(TE, b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), 1),
    "chunked_extension_and_trailer": (post(TE, b'5;a=b;c="d"\r\nhello\r\n0\r\nX-T: 1\r\n\r\n'), 1),
    "chunk_size_upper_hex": (post(TE, b"A\r\n0123456789\r\n0\r\n\r\n"), 1),
    "expect_100_continue": (post(b"Expect: 100-continue\r\nContent-Length: 3\r\n", b"abc"), 1),
    "pipelined_gets": (req(target=b"/1") + req(target=b"/2"), 2),
    "pipelined_post_then_get": (post(b"Content-Length: 3\r\n", b"abc") + req(target=b"/2"), 2),
    "pipelined_chunked_then_get": (post(TE, b"3\r\nabc\r\n0\r\n\r\n") + req(target=b"/2"), 2),
    "leading_empty_line": (b"\r\n" + req(), 1),
    "double_space_in_request_line": (b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 1),
    # -- framing (HTTP-CHECKLIST.md: 400 + close)
    "cl_and_te": (post(b"Content-Length: 37\r\n" + TE, b"0\r\n\r\n" + SMUGGLED), 2),
    "te_and_cl": (post(TE + b"Content-Length: 37\r\n", b"0\r\n\r\n" + SMUGGLED), 2),
    "two_cl_equal": (post(b"Content-Length: 5\r\nContent-Length: 5\r\n", b"hello"), 1),
    "two_cl_different": (post(b"Content-Length: 5\r\nContent-Length: 0\r\n", b"hello"), 2),
    "cl_list": (post(b"Content-Length: 5, 5\r\n", b"hello"), 1),
    "cl_plus_sign": (post(b"Content-Length: +5\r\n", b"hello"), 1),
    "cl_minus_sign": (post(b"Content-Length: -5\r\n", b"hello"), 1),
    "cl_space_inside": (post(b"Content-Length: 5 0\r\n", b"hello"), 1),
    "cl_hex": (post(b"Content-Length: 0x5\r\n", b"hello"), 1),
    "cl_overflow": (post(b"Content-Length: 99999999999999999999999\r\n", b"hello"), 1),
    "cl_empty": (post(b"Content-Length: \r\n", b"hello"), 1),
    "cl_tab_after_value": (post(b"Content-Length: 5\t\r\n", b"hello"), 1),
    "te_gzip_chunked": (post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n"), 1),
    "te_chunked_gzip": (post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n" + SMUGGLED), 2),
    "te_chunked_chunked": (post(b"Transfer-Encoding: chunked, chunked\r\n", b"0\r\n\r\n"), 1),
    "te_twice": (post(TE + TE, b"0\r\n\r\n"), 1),
    "te_unknown": (post(b"Transfer-Encoding: foo\r\n", b"0\r\n\r\n" + SMUGGLED), 2),
    "te_identity": (post(b"Transfer-Encoding: identity\r\nContent-Length: 5\r\n", b"hello"), 1),
    "te_in_http10": (b"POST /p HTTP/1.0\r\n" + TE + b"\r\n0\r\n\r\n" + SMUGGLED, 2),
    "te_space_before_colon": (post(b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), 2),
    "te_vertical_tab": (post(b"Transfer-Encoding: \x0bchunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), 2),
    "te_trailing_garbage": (post(b"Transfer-Encoding: chunkedx\r\n", b"0\r\n\r\n"), 1),
    "obs_fold": (req(head=b"X-A: a\r\n b\r\n"), 1),
    "obs_fold_te": (post(b"X-A: a\r\n" + b" Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", b"0\r\n\r\n"), 2),
    "space_before_colon": (req(head=b"X-A : b\r\n"), 1),
    "empty_header_name": (req(head=b": b\r\n"), 1),
    "underscore_content_length": (post(b"Content_Length: 37\r\n", SMUGGLED), 2),
    "bare_lf_line_ending": (b"GET / HTTP/1.1\n" + H + b"\r\n", 1),
    "bare_lf_in_fields": (b"GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 1),
    "bare_cr_in_fields": (b"GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n", 1),
    "nul_in_target": (req(target=b"/a\x00b"), 1),
    "encoded_nul_in_path": (req(target=b"/a%00b"), 1),
    "ctl_in_target": (req(target=b"/a\x01b"), 1),
    "nul_in_value": (req(head=b"X-A: a\x00b\r\n"), 1),
    "ctl_in_value": (req(head=b"X-A: a\x01b\r\n"), 1),
    "del_in_value": (req(head=b"X-A: a\x7fb\r\n"), 1),
    "high_byte_in_value": (req(head=b"X-A: caf\xc3\xa9\r\n"), 1),
    # -- chunked bodies (400 + close)
    "chunk_size_0x": (post(TE, b"0x5\r\nhello\r\n0\r\n\r\n"), 1),
    "chunk_size_underscore": (post(TE, b"1_0\r\n" + b"x" * 16 + b"\r\n0\r\n\r\n"), 1),
    "chunk_size_plus": (post(TE, b"+5\r\nhello\r\n0\r\n\r\n"), 1),
    "chunk_size_minus": (post(TE, b"-5\r\nhello\r\n0\r\n\r\n"), 1),
    "chunk_size_trailing_space": (post(TE, b"5 \r\nhello\r\n0\r\n\r\n"), 1),
    "chunk_size_leading_space": (post(TE, b" 5\r\nhello\r\n0\r\n\r\n"), 1),
    "chunk_size_overflow": (post(TE, b"1" + b"0" * 17 + b"\r\nhello\r\n0\r\n\r\n"), 1),
    "chunk_size_bare_lf": (post(TE, b"5\nhello\r\n0\r\n\r\n"), 1),
    "chunk_size_bare_cr": (post(TE, b"5\rhello\r\n0\r\n\r\n"), 1),
    "chunk_extension_bare_lf": (post(TE, b"5;a=b\nhello\r\n0\r\n\r\n"), 1),
    "chunk_data_without_crlf": (post(TE, b"5\r\nhelloXX0\r\n\r\n"), 1),
    "chunk_data_too_long": (post(TE, b"3\r\nhello\r\n0\r\n\r\n"), 1),
    "last_chunk_then_eof": (post(TE, b"5\r\nhello\r\n0\r\n"), 1),
    "body_shorter_than_cl": (post(b"Content-Length: 10\r\n", b"hello"), 1),
    "chunked_truncated": (post(TE, b"a\r\nhello"), 1),
    "trailer_bare_lf": (post(TE, b"0\r\nX-T: 1\n\r\n"), 1),
    "trailer_obs_fold": (post(TE, b"0\r\nX-T: 1\r\n 2\r\n\r\n"), 1),
    "long_chunk_extension": (post(TE, b"1;" + b"e" * 8000 + b"\r\nx\r\n0\r\n\r\n"), 1),
    # -- request line
    "http_2_0": (req(version=b"HTTP/2.0"), 1),
    "http_1_2": (req(version=b"HTTP/1.2"), 1),
    "http_0_9_line": (b"GET /\r\n\r\n", 1),
    "lower_case_version": (req(version=b"http/1.1"), 1),
    "http11_without_host": (b"GET / HTTP/1.1\r\n\r\n", 1),
    "two_hosts": (req(head=b"Host: b\r\n"), 1),
    "host_list": (b"GET / HTTP/1.1\r\nHost: a, b\r\n\r\n", 1),
    "asterisk_with_get": (req(target=b"*"), 1),
    "authority_form_with_get": (req(target=b"example.com:80"), 1),
    "connect": (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 1),
    "unknown_method": (req(b"FOO"), 1),
    "lower_case_method": (req(b"get"), 1),
    "relative_target": (req(target=b"index.html"), 1),
    "space_in_target": (b"GET /a b HTTP/1.1\r\n" + H + b"\r\n", 1),
    "request_line_10k": (req(target=b"/" + b"a" * 10000), 1),
    "header_field_10k": (req(head=b"X-A: " + b"a" * 10000 + b"\r\n"), 1),
}

# Why meltemi's verdict is the right one where a peer's differs: reason -> the (case, peer) pairs it covers.
_REASONS: dict[str, list[tuple[str, str]]] = {
    "RFC 9112 2.2: a server SHOULD ignore at least one empty line before the request line": [
        ("leading_empty_line", "gunicorn"),
        ("leading_empty_line", "h11"),
    ],
    "RFC 9112 6.1 lets a server process Transfer-Encoding and ignore Content-Length, but h11 then keeps the "
    "connection and serves the smuggled request a front end would have read as body; refusing closes that door": [
        ("cl_and_te", "h11"),
        ("te_and_cl", "h11"),
    ],
    "RFC 9110 8.6 allows collapsing equal Content-Length values; the checklist refuses them, since a proxy may "
    "not collapse them alike": [("two_cl_equal", "h11"), ("cl_list", "h11")],
    "deliberate strictness (docs/design.md): OWS after a framing header's value is legal but no client sends it, "
    "and framing headers are where parsers must not differ": [
        ("cl_tab_after_value", "gunicorn"),
        ("cl_tab_after_value", "h11"),
    ],
    "RFC 9112 6.1: a transfer coding the server does not implement gets 501; gunicorn hands the application a body "
    "it cannot decode (gzip) or a coding RFC 9112 removed (identity)": [
        ("te_gzip_chunked", "gunicorn"),
        ("te_identity", "gunicorn"),
    ],
    "RFC 9112 6.1: Transfer-Encoding in an HTTP/1.0 request is faulty framing; the server MUST close after it, "
    "and refusing is the checklist's answer": [("te_in_http10", "h11")],
    "RFC 9112 5.2: obs-fold is either refused or replaced by SP; refusing leaves no room for a proxy to see "
    "another header": [("obs_fold", "h11"), ("obs_fold_te", "h11"), ("trailer_obs_fold", "h11")],
    "RFC 9112 2.2 allows bare LF as a line end, but parsers that differ on it are how smuggling works; the "
    "checklist refuses it": [
        ("bare_lf_line_ending", "h11"),
        ("bare_lf_in_fields", "h11"),
        ("trailer_bare_lf", "h11"),
    ],
    "RFC 9112 3.2: the request target has no control characters; gunicorn hands a NUL or ^A in the path "
    "to the application": [("nul_in_target", "gunicorn"), ("ctl_in_target", "gunicorn")],
    "a decoded NUL in PATH_INFO cuts the path short in any C string or file name it reaches (docs/design.md)": [
        ("encoded_nul_in_path", "gunicorn"),
        ("encoded_nul_in_path", "h11"),
    ],
    "RFC 9110 5.5: a field value has no control characters (CTL, DEL)": [
        ("ctl_in_value", "h11"),
        ("del_in_value", "h11"),
    ],
    "RFC 9112 7.1: whitespace after a chunk size is allowed only before an extension": [
        ("chunk_size_trailing_space", "h11")
    ],
    "chunk extensions are limited (4 KiB per message) so that a body cannot be mostly extension bytes "
    "(the checklist's chunk-extension DoS)": [("long_chunk_extension", "gunicorn"), ("long_chunk_extension", "h11")],
    "RFC 9110 6.2 / 15.6.6: a server may refuse a major version it does not speak with 505; h11 reads HTTP/2.0 as "
    "HTTP/1.1": [("http_2_0", "h11")],
    "the checklist: HTTP/1.0 and HTTP/1.1 only; RFC 9110 15.6.6 lets a server refuse a version with 505, and no "
    "client sends HTTP/1.2": [("http_1_2", "gunicorn"), ("http_1_2", "h11")],
    "RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host": [("http11_without_host", "gunicorn")],
    "RFC 9112 3.2: a Host field with an invalid value (a list is two hosts to a proxy) MUST get 400": [
        ("host_list", "gunicorn"),
        ("host_list", "h11"),
    ],
    "RFC 9112 3.2: asterisk-form is only for OPTIONS, authority-form only for CONNECT, and any other target is "
    "origin-form (starts with /) or absolute-form": [
        ("asterisk_with_get", "h11"),
        ("authority_form_with_get", "h11"),
        ("relative_target", "h11"),
    ],
    "CONNECT (a tunnel) is not something a WSGI server does: RFC 9110 9.1 says 501 for an unimplemented method": [
        ("connect", "gunicorn"),
        ("connect", "h11"),
    ],
    "methods are case-sensitive tokens (RFC 9110 9.1); llhttp knows every registered method, and an unknown one "
    "is refused before an application can misread it (the checklist allows 400 or 501)": [
        ("unknown_method", "gunicorn"),
        ("unknown_method", "h11"),
        ("lower_case_method", "h11"),
    ],
    "a request line over the limit gets 414 (meltemi: 8190 bytes); h11 has no request-line limit of its own": [
        ("request_line_10k", "h11")
    ],
    "a limit, not a parse: meltemi bounds the whole head (16 KiB, 100 fields) rather than each field; gunicorn "
    "bounds each field at 8190 bytes": [("header_field_10k", "gunicorn")],
}
KNOWN: dict[tuple[str, str], str] = {pair: reason for reason, pairs in _REASONS.items() for pair in pairs}


@dataclass
class Verdict:
    served: list[dict] = field(default_factory=list)
    refused: int | None = None  # the error status that ended the exchange
    note: str = ""  # no answer, a reset, an unparsable answer

    def kind(self) -> tuple[int, bool]:
        """What is compared between parsers: how many requests were served, and whether one was refused."""
        return len(self.served), self.refused is not None or bool(self.note)

    def __str__(self) -> str:
        parts = [f"served {len(self.served)}"] if self.served else []
        if self.refused is not None:
            parts.append(f"refused {self.refused}")
        if self.note:
            parts.append(self.note)
        return ", ".join(parts) or "nothing"


def normalize(method: str, target: bytes, body: bytes) -> dict:
    """What an application is told about a request, from the raw request line and body."""
    target = target.split(b"#", 1)[0]  # a fragment is not part of what the application is told
    if re.match(rb"(?i)https?://", target):
        rest = target.split(b"//", 1)[1]
        target = b"/" + rest.split(b"/", 1)[1] if b"/" in rest else b"/"
    path, _, query = target.partition(b"?")
    return {
        "method": method,
        "path": unquote_to_bytes(path).decode("latin-1"),
        "query": query.decode("latin-1"),
        "length": len(body),
        "sha": hashlib.sha256(body).hexdigest()[:16],
    }


def ask_server(host: str, port: int, data: bytes, timeout: float = 4.0) -> Verdict:
    """Sends `data`, shuts the sending side, reads responses until the server closes."""
    verdict = Verdict()
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it read everything: the answer may still be there
        reader = ResponseReader(sock, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if not reader.buffer and not reader._fill():
                    break
                method = "HEAD" if data.startswith(b"HEAD") and not verdict.served else "GET"
                response = reader.read_response(method)
            except TimeoutError:
                verdict.note = "no answer"
                break
            except (EOFError, AssertionError, ValueError, IndexError) as exc:
                verdict.note = f"unparsable answer ({type(exc).__name__})"
                break
            if response.status == 100:
                continue
            if response.header("X-Diff-App") and response.status == 200:
                verdict.served.append(json.loads(response.body) if response.body else {"method": "HEAD"})
            else:
                verdict.refused = response.status
                break
    except ConnectionResetError:
        verdict.note = verdict.note or "reset"
    finally:
        sock.close()
    return verdict


def ask_h11(data: bytes) -> Verdict:
    """h11 as a server: the requests it parses out of `data`, then EOF."""
    verdict = Verdict()
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")
    current: h11.Request | None = None
    body = b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            verdict.refused = exc.error_status_hint
            return verdict
        if isinstance(event, h11.Request):
            current, body = event, b""
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert current is not None
            verdict.served.append(normalize(current.method.decode(), current.target, body))
            if conn.their_state is not h11.DONE:
                return verdict  # CONNECT or an upgrade: what follows is not HTTP
            conn.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            conn.start_next_cycle()
        elif event is h11.NEED_DATA:
            verdict.note = "truncated" if current is not None and conn.their_state is h11.SEND_BODY else ""
            return verdict
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return verdict


class Gunicorn:
    """gunicorn (gthread worker: keep-alive and pipelining) serving diffapps:describe on a free port."""

    def __init__(self, tmp: Path):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "2", "-w", "1"]
            + ["-b", "127.0.0.1:0", "--control-socket", str(tmp / "gunicorn.ctl"), "diffapps:describe"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(ROOT),
            text=True,
        )
        self.lines: list[str] = []
        deadline = time.monotonic() + 30
        self.port = 0
        while time.monotonic() < deadline and self.proc.poll() is None:
            line = self.proc.stderr.readline()
            self.lines.append(line)
            found = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.port = int(found.group(1))
            if "Booting worker" in line:
                break
        if not self.port:
            self.stop()
            raise RuntimeError("gunicorn did not start:\n" + "".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    meltemi = Server(["diffapps:describe", "--bind", "127.0.0.1:0", "--workers", "1"])
    gunicorn = Gunicorn(tmp_path_factory.mktemp("gunicorn"))
    yield meltemi, gunicorn
    gunicorn.stop()
    assert meltemi.stop() == 0, meltemi.output
    meltemi.assert_balanced()


RESULTS: dict[str, dict[str, Verdict]] = {}


def same_request(a: dict, b: dict) -> bool:
    # gunicorn gives an absolute-form target without a path ("http://host") an empty PATH_INFO,
    # meltemi and h11 "/" (RFC 9112 3.3): not a difference in what the request is.
    return (a.get("path") or "/") == (b.get("path") or "/") and all(
        a.get(k) == b.get(k) for k in ("method", "query", "length", "sha")
    )


@pytest.mark.parametrize("name", list(CASES))
def test_differential(servers, name):
    meltemi, gunicorn = servers
    data, most = CASES[name]
    verdicts = {
        "meltemi": ask_server(meltemi.host, meltemi.port, data),
        "gunicorn": ask_server("127.0.0.1", gunicorn.port, data),
        "h11": ask_h11(data),
    }
    RESULTS[name] = verdicts
    ours = verdicts["meltemi"]
    assert len(ours.served) <= most, f"meltemi read {len(ours.served)} requests out of {most}: {ours.served}"
    assert not ours.note, f"meltemi: {ours.note}"
    problems = []
    for peer in ("gunicorn", "h11"):
        theirs = verdicts[peer]
        for i, (a, b) in enumerate(zip(ours.served, theirs.served, strict=False)):
            if not same_request(a, b) and not (peer == "h11" and data.startswith(b"HEAD")):
                problems.append(f"request {i}: meltemi saw {a}, {peer} saw {b}")
        differs = ours.kind() != theirs.kind()
        known = KNOWN.get((name, peer))
        if differs and not known:
            problems.append(f"meltemi {ours} but {peer} {theirs}: not in KNOWN")
        if known and not differs:
            problems.append(f"KNOWN lists a difference with {peer} that no longer happens")
    assert not problems, "\n".join(problems)


FUZZ_CORPUS = ROOT / "tests" / "fuzz" / "corpus" / "fuzz_http1"


@pytest.mark.parametrize("path", sorted(FUZZ_CORPUS.iterdir()), ids=lambda p: p.name)
def test_fuzz_corpus(servers, path):
    """The request-parser fuzzer's corpus (its first 3 bytes are the driver's parameters): no verdict table, only
    the hard rules. meltemi reads no more requests than the peer that reads the most, and agrees with each peer
    on the requests both hand over."""
    meltemi, gunicorn = servers
    data = path.read_bytes()[3:]
    ours = ask_server(meltemi.host, meltemi.port, data)
    # Empty lines before the first request line are ignored by meltemi (RFC 9112 2.2) and refused by both
    # peers (the case leading_empty_line): the peers get the request without them.
    stripped = data
    while stripped.startswith(b"\r\n"):
        stripped = stripped[2:]
    peers = {"gunicorn": ask_server("127.0.0.1", gunicorn.port, stripped), "h11": ask_h11(stripped)}
    assert not ours.note, f"meltemi: {ours.note}"
    most = max(len(v.served) for v in peers.values())
    assert len(ours.served) <= most, f"meltemi read {len(ours.served)} requests, the peers at most {most}: {peers}"
    for peer, theirs in peers.items():
        for i, (a, b) in enumerate(zip(ours.served, theirs.served, strict=False)):
            if a.get("method") != "HEAD":
                assert same_request(a, b), f"request {i}: meltemi saw {a}, {peer} saw {b}"


DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- differential table: begin -->", "<!-- differential table: end -->"


def test_verdict_table_in_docs_is_current(servers):
    """docs/reliability.md shows every case where a verdict differs, with its reason, between two markers: it
    must be what this run found (MELTEMI_UPDATE_DOCS=1 rewrites it). The full table goes to build/differential.md.
    """
    meltemi, gunicorn = servers
    for name in CASES.keys() - RESULTS.keys():  # when run alone (pytest -k)
        data = CASES[name][0]
        RESULTS[name] = {
            "meltemi": ask_server(meltemi.host, meltemi.port, data),
            "gunicorn": ask_server("127.0.0.1", gunicorn.port, data),
            "h11": ask_h11(data),
        }
    header = [
        "| case | meltemi | gunicorn 26.2.0 | h11 0.16.0 | why meltemi's answer is right |",
        "|---|---|---|---|---|",
    ]
    full, differing = list(header), list(header)
    for name in CASES:
        v = RESULTS[name]
        why = "; ".join(dict.fromkeys(KNOWN[(name, peer)] for peer in ("gunicorn", "h11") if (name, peer) in KNOWN))
        row = f"| `{name}` | {v['meltemi']} | {v['gunicorn']} | {v['h11']} | {why} |"
        full.append(row)
        if why:
            differing.append(row)
    out = ROOT / "build" / "differential.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(full) + "\n")
    agree = len(CASES) - (len(differing) - 2)
    table = "\n".join(
        [f"{agree} of {len(CASES)} cases get the same verdict from all three; the others:", "", *differing]
    )
    text = DOC.read_text()
    before, found, rest = text.partition(BEGIN)
    current, found_end, after = rest.partition(END)
    assert found and found_end, f"{DOC} lacks the markers {BEGIN} ... {END}"
    if current.strip() != table:
        if os.environ.get("MELTEMI_UPDATE_DOCS") == "1":
            DOC.write_text(before + BEGIN + "\n" + table + "\n" + END + after)
        else:
            pytest.fail(f"the differential table in {DOC} is stale: run MELTEMI_UPDATE_DOCS=1 pytest {__file__}")
