"""The ASGI http.response.trailers extension over HTTP/1.1: trailer fields after the last chunk (RFC 9112 7.1.2)
for a client that sent "TE: trailers", dropped for the others, checked as header fields, and the rules an
application can break. Real meltemi processes; raw sockets and h11 as clients."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket

import h11
import pytest
from conftest import ResponseReader, recv_all

APP = "trailerapps:app"


def body_of(chunks: int = 3, repeat: int = 1) -> bytes:
    return b"".join(f"part {i} ".encode() * repeat for i in range(chunks))


def get(sock: socket.socket, target: str, *fields: str, version: str = "1.1", method: str = "GET") -> None:
    head = f"{method} {target} HTTP/{version}\r\nHost: x\r\n" + "".join(f + "\r\n" for f in fields) + "\r\n"
    sock.sendall(head.encode())


@pytest.fixture
def server(start_server):
    return start_server(APP)


def test_trailers_after_the_last_chunk_for_a_client_that_accepts_them(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/stream", "TE: trailers")
        r = reader.read_response()
        assert r.status == 200
        assert r.header("transfer-encoding") == "chunked" and r.header("content-length") is None
        assert r.header("trailer") == "x-checksum, x-count"
        assert r.body == body_of()
        assert r.trailers == [("x-checksum", hashlib.sha256(body_of()).hexdigest()), ("x-count", "3")]
        # The framing held: the connection carries the next request, with its own trailers.
        get(sock, "/stream?chunks=1", "TE: trailers")
        r = reader.read_response()
        assert r.body == body_of(1) and r.trailers[1] == ("x-count", "1")


def test_the_raw_trailer_section(server):
    """Byte for byte: the last chunk, the fields, the blank line that ends the message."""
    with server.connect() as sock:
        get(sock, "/stream?chunks=1", "TE: trailers", "Connection: close")
        data = recv_all(sock)
    digest = hashlib.sha256(body_of(1)).hexdigest()
    assert data.endswith(f"\r\n0\r\nx-checksum: {digest}\r\nx-count: 1\r\n\r\n".encode()), data[-200:]


def test_a_single_body_message_is_chunked_for_its_trailers(server):
    """One body message would get a Content-Length; with trailers due it is chunked, head and body in one write."""
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/stream?chunks=1", "TE: gzip, Trailers;q=1, deflate")
        r = reader.read_response()
    assert r.header("transfer-encoding") == "chunked"
    assert r.body == body_of(1) and [name for name, _ in r.trailers] == ["x-checksum", "x-count"]


def test_h11_reads_the_trailers(server):
    conn = h11.Connection(h11.CLIENT)
    with server.connect() as sock:
        request = h11.Request(method="GET", target="/stream?chunks=4", headers=[("Host", "x"), ("TE", "trailers")])
        sock.sendall(conn.send(request))
        sock.sendall(conn.send(h11.EndOfMessage()))
        events, body = [], b""
        while not events or not isinstance(events[-1], h11.EndOfMessage):
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
                continue
            events.append(event)
            if isinstance(event, h11.Data):
                body += event.data
    assert events[0].status_code == 200
    assert body == body_of(4)
    digest = hashlib.sha256(body_of(4)).hexdigest().encode()
    assert list(events[-1].headers) == [(b"x-checksum", digest), (b"x-count", b"4")]


@pytest.mark.parametrize(
    ("te", "offered"),
    [
        ("trailers", True),
        ("TRAILERS", True),
        ("deflate;q=0.5, trailers", True),
        (None, False),
        ("trailersx", False),
        ("gzip", False),
    ],
)
def test_the_extension_is_offered_only_when_the_client_accepts_trailers(server, te, offered):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/offered", *([f"TE: {te}"] if te else []))
        r = reader.read_response()
    assert json.loads(r.body) == {"offered": offered}
    assert r.trailers == ([("x-offered", "True")] if offered else [])
    # Without trailers to send, a body in one message keeps its Content-Length.
    assert (r.header("content-length") is None) == offered


def test_trailers_are_dropped_for_a_client_that_did_not_ask(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/stream")
        r = reader.read_response()
        assert r.body == body_of() and r.trailers == []
        get(sock, "/stream?chunks=1")
        r = reader.read_response()
        assert r.header("content-length") == str(len(body_of(1))) and r.body == body_of(1)


def test_trailers_are_dropped_for_http_1_0(server):
    with server.connect() as sock:
        get(sock, "/stream", "TE: trailers", version="1.0")
        data = recv_all(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"200 OK" in head.split(b"\r\n")[0] and b"chunked" not in head.lower()
    assert body == body_of()  # the close ends the body: no chunk, no trailer


def test_trailers_are_dropped_for_head_and_bodiless_statuses(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/stream", "TE: trailers", method="HEAD")
        r = reader.read_response("HEAD")
        assert r.status == 200 and r.body == b""
        get(sock, "/stream?status=204", "TE: trailers")
        r = reader.read_response()
        assert r.status == 204
        # Nothing of either leaked into the stream: the next response parses.
        get(sock, "/stream", "TE: trailers")
        r = reader.read_response()
        assert r.body == body_of() and len(r.trailers) == 2


def test_an_application_content_length_drops_the_trailers(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/stream?length=1", "TE: trailers")
        r = reader.read_response()
        assert r.header("content-length") == str(len(body_of())) and r.body == body_of()
        get(sock, "/stream?chunks=1", "TE: trailers")
        assert reader.read_response().body == body_of(1)


def test_compressed_body_then_trailers(start_server):
    server = start_server(APP, "--compress", "gzip")
    with server.connect() as sock:
        reader = ResponseReader(sock)
        for chunks in (5, 1):
            get(sock, f"/stream?chunks={chunks}&repeat=200", "TE: trailers", "Accept-Encoding: gzip")
            r = reader.read_response()
            assert r.header("content-encoding") == "gzip" and r.header("transfer-encoding") == "chunked"
            assert gzip.decompress(r.body) == body_of(chunks, 200)
            assert r.trailers == [
                ("x-checksum", hashlib.sha256(body_of(chunks, 200)).hexdigest()),
                ("x-count", str(chunks)),
            ]


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("content-length", "message framing"),
        ("Transfer-Encoding", "message framing"),
        ("trailer", "message framing"),
        ("host", "routing"),
        ("content-encoding", "content format"),
        ("set-cookie", "authentication"),
        ("cache-control", "response controls"),
    ],
)
def test_a_forbidden_trailer_field_is_a_logged_500(server, name, rule):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, f"/forbidden?name={name}&chunks=1", "TE: trailers")
        r = reader.read_response()
        assert r.status == 500 and r.trailers == []
        assert server.wait_for(rf"{name} is not allowed as a trailer field \({rule}, RFC 9110 section 6.5.1\)", 5)
        # The head had not gone out: the connection is intact.
        get(sock, "/stream", "TE: trailers")
        assert reader.read_response().status == 200


def test_a_forbidden_trailer_field_is_refused_for_a_client_that_did_not_ask_too(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/forbidden?name=content-length&chunks=1")
        assert reader.read_response().status == 500
    assert server.wait_for("content-length is not allowed as a trailer field", 5)


def test_a_forbidden_trailer_after_a_large_body_closes_the_connection(server):
    """The body went out before the trailers came: the chunked stream is cut, never ended with a bad field."""
    with server.connect() as sock:
        get(sock, "/forbidden?name=content-length&chunks=1&repeat=20000", "TE: trailers")
        data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\n0\r\n" not in data and b"content-length: 1" not in data.lower()
    assert server.wait_for("content-length is not allowed as a trailer field", 5)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/bad-value", r"invalid trailer field 'x-checksum' \(bad character in name or value\)"),
        ("/not-bytes", r"trailer field 0 must be a pair of bytes"),
        ("/body-after", r"http.response.body sent after the body ended \(http.response.trailers is due\)"),
        ("/never", r"the ASGI application returned without completing its response"),
    ],
)
def test_protocol_violations_are_logged_500s(server, path, message):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, path + "?chunks=1", "TE: trailers")
        r = reader.read_response()
        assert r.status == 500 and b"x-injected" not in r.body
    assert server.wait_for(message, 5)


def test_trailers_before_the_body_ended_cut_the_response(server):
    """The first part went out (streamed): only the close can tell the client the response is cut."""
    with server.connect() as sock:
        get(sock, "/early", "TE: trailers")
        data = recv_all(sock)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"8\r\nnot done\r\n")
    assert server.wait_for(r"http.response.trailers sent before the body ended", 5)


def test_trailers_without_the_announcement_are_refused(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/unannounced", "TE: trailers")
        r = reader.read_response()
        assert r.status == 200 and r.body == body_of() and r.trailers == []
        assert reader.closed()
    assert server.wait_for(r"http.response.trailers sent, but http.response.start did not announce trailers", 5)


def test_trailers_after_the_last_trailers_message_are_refused(server):
    with server.connect() as sock:
        reader = ResponseReader(sock)
        get(sock, "/twice", "TE: trailers")
        r = reader.read_response()
        assert r.status == 200 and len(r.trailers) == 2
        assert reader.closed()
    assert server.wait_for(r"http.response.trailers sent after the response completed", 5)
