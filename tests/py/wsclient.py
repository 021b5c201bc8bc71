"""A raw-frame WebSocket client for the conformance suite: it writes any frame, valid or not.

Frames are built here byte by byte (masking included), so a test can send
what no well-behaved client library would: reserved bits, reserved opcodes,
oversized control frames, non-minimal lengths, frames split at any byte.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time
import zlib

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def mask(payload: bytes, key: bytes) -> bytes:
    """XORs the payload with the 4-byte key (RFC 6455 5.3), a word at a time."""
    if not payload:
        return b""
    n = len(payload)
    reps = (n + 3) // 4
    k = int.from_bytes(key * reps, "little")
    return (int.from_bytes(payload, "little") ^ k).to_bytes(reps * 4, "little")[:n]


def frame(
    opcode: int,
    payload: bytes = b"",
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    length_form: int | None = None,
) -> bytes:
    """A client frame. length_form 7, 16 or 64 forces that length encoding (else the shortest)."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0xF
    m = 0x80 if masked else 0
    form = length_form or (7 if n < 126 else 16 if n < 65536 else 64)
    if form == 7:
        head = struct.pack("!BB", b0, m | n)
    elif form == 16:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + mask(payload, key)


class Deflate:
    """permessage-deflate for the client side (RFC 7692 7.2): a compressor and a decompressor."""

    def __init__(self, client_bits=15, server_bits=15, client_reset=False, server_reset=False):
        self.client_bits, self.server_bits = client_bits, server_bits
        self.client_reset, self.server_reset = client_reset, server_reset
        self.c = zlib.compressobj(6, zlib.DEFLATED, -client_bits)
        self.d = zlib.decompressobj(-server_bits)

    def compress(self, data: bytes) -> bytes:
        if self.client_reset:
            self.c = zlib.compressobj(6, zlib.DEFLATED, -self.client_bits)
        out = self.c.compress(data) + self.c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def decompress(self, data: bytes) -> bytes:
        if self.server_reset:
            self.d = zlib.decompressobj(-self.server_bits)
        return self.d.decompress(data + b"\x00\x00\xff\xff")


class Closed(Exception):
    """The server closed the TCP connection."""


class WS:
    """One raw WebSocket connection to a meltemi server."""

    def __init__(self, host: str, port: int, path: str = "/echo", extensions: str | None = None, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        key = base64.b64encode(os.urandom(16))
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        )
        if extensions:
            head += f"Sec-WebSocket-Extensions: {extensions}\r\n"
        self.sock.sendall((head + "\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        raw, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = raw.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        assert self.status == 101, raw
        expected = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        assert self.headers["sec-websocket-accept"] == expected
        self.extension = self.headers.get("sec-websocket-extensions")

    def deflate_params(self) -> dict[str, int | bool]:
        """The negotiated permessage-deflate parameters, from the 101."""
        assert self.extension and self.extension.startswith("permessage-deflate")
        params: dict[str, int | bool] = {}
        for item in self.extension.split(";")[1:]:
            name, _, value = item.strip().partition("=")
            params[name] = int(value) if value else True
        return params

    def _fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise Closed
        self.buf += data

    def send(self, data: bytes, chop: int | None = None, delay: float = 0.0) -> None:
        """Writes bytes, in pieces of `chop` bytes (with `delay` between them) when asked."""
        if not chop:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), chop):
            self.sock.sendall(data[i : i + chop])
            if delay:
                time.sleep(delay)

    def send_frame(self, opcode: int, payload: bytes = b"", chop: int | None = None, **kw) -> None:
        self.send(frame(opcode, payload, **kw), chop)

    def recv_frame(self, timeout: float | None = None) -> tuple[bool, int, int, bytes]:
        """(fin, rsv, opcode, payload) of the next server frame; Closed if the server closed TCP."""
        self.sock.settimeout(timeout or self.timeout)
        while len(self.buf) < 2:
            self._fill()
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "a server frame must not be masked"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill()
            (n,), pos = struct.unpack("!H", self.buf[2:4]), 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill()
            (n,), pos = struct.unpack("!Q", self.buf[2:10]), 10
        while len(self.buf) < pos + n:
            self._fill()
        payload, self.buf = self.buf[pos : pos + n], self.buf[pos + n :]
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload

    def recv_message(self, deflate: Deflate | None = None, timeout: float | None = None) -> tuple[int, bytes]:
        """The next data message, (opcode, payload), answering nothing; fails on a close."""
        fin, rsv, opcode, payload = self.recv_frame(timeout)
        assert opcode in (TEXT, BINARY), (opcode, payload[:200])
        compressed = bool(rsv & 4)
        assert rsv & 3 == 0
        assert compressed == (deflate is not None) or not payload, "compressed iff deflate was negotiated"
        parts = [payload]
        while not fin:
            fin, rsv, op, payload = self.recv_frame(timeout)
            assert op == CONT and rsv == 0
            parts.append(payload)
        data = b"".join(parts)
        if compressed:
            data = deflate.decompress(data)
        return opcode, data

    def expect_close(self, codes: tuple[int, ...] | None, timeout: float | None = None) -> tuple[int | None, bytes]:
        """Reads until the server's close frame (data frames before it fail the test unless codes is None),
        answers it, and checks the server then closes TCP. Returns (code, reason)."""
        while True:
            fin, rsv, opcode, payload = self.recv_frame(timeout)
            if opcode == CLOSE:
                break
            assert codes is None, f"expected a close {codes}, got opcode {opcode} {payload[:100]!r}"
        assert fin and rsv == 0
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        reason = payload[2:]
        reason.decode("utf-8")  # the server's reason is valid UTF-8
        if codes is not None:
            assert code in codes, (code, reason)
        try:
            self.sock.sendall(frame(CLOSE, payload[:2]))
        except OSError:
            pass
        self.expect_eof(timeout)
        return code, reason

    def expect_eof(self, timeout: float | None = None) -> None:
        """The server closes TCP (after its close frame) without sending anything more."""
        assert self.buf == b"", f"data after the close: {self.buf[:100]!r}"
        self.sock.settimeout(timeout or self.timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return
        assert data == b"", f"data after the close: {data[:100]!r}"

    def expect_silence(self, seconds: float = 0.3) -> None:
        """Nothing arrives for a while (an unsolicited pong is not answered)."""
        self.sock.settimeout(seconds)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            data = None
        assert not self.buf and data is None, (self.buf, data)

    def close(self) -> None:
        self.sock.close()
