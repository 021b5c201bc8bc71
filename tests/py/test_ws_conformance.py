"""WebSocket conformance: a raw-frame case suite after Autobahn|Testsuite's sections 1-7, 9, 10, 12 and 13.

Autobahn's fuzzingclient is Python 2.7 only; these cases follow its
sections case by case in spirit, against meltemi serving an ASGI echo app
(tests/py/asgiapps.py, /echo), with frames built byte by byte in
wsclient.py. Case ids are "<section>.<n>"; scripts/ws_conformance.py runs
this file and writes the per-section table in docs/reliability.md.

Expected behaviour is RFC 6455 / RFC 7692 as Autobahn judges it: an echo
for valid input, a close with 1002 (protocol), 1007 (invalid data) or 1009
(too big) for invalid input, then the TCP close.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time

import pytest
from conftest import ROOT, Server
from wsclient import BINARY, CLOSE, CONT, PING, PONG, TEXT, WS, Closed, Deflate
from wsclient import frame as _frame

MAX_MESSAGE = 16 << 20  # --ws-max-size's default (meltemi/config.py)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The app's reports (asgiapps.REPORT_DIR) in this run's own folder, not one shared with other runs.
    reports = tmp_path_factory.mktemp("ws-reports")
    srv = Server(["asgiapps:ws_app", "--bind", "127.0.0.1:0", "--workers", "1"], env={"ASGI_REPORT_DIR": str(reports)})
    yield srv
    code = srv.stop()
    assert code == 0, srv.output
    srv.assert_balanced()


CASES: list[tuple[str, object]] = []


def case(section: str):
    """Registers a case under the next number of its section."""

    def register(fn, *args):
        n = sum(1 for cid, _ in CASES if cid.rsplit(".", 1)[0] == section) + 1
        CASES.append((f"{section}.{n}", (fn, args)))

    return register


def connect(server, extensions=None) -> WS:
    return WS(server.host, server.port, extensions=extensions)


def echo(ws: WS, opcode: int, payload: bytes, chop=None, **kw) -> None:
    ws.send_frame(opcode, payload, chop=chop, **kw)
    assert ws.recv_message() == (opcode, payload)


def clean_close(ws: WS) -> None:
    """The client closes with 1000; the server answers 1000 and closes TCP."""
    ws.send_frame(CLOSE, struct.pack("!H", 1000))
    ws.expect_close((1000,))


def fails(ws: WS, code: int, echoed: list[tuple[int, bytes]] = ()) -> None:
    """The server answers `echoed` (in order) then fails the connection with `code`."""
    for expected in echoed:
        assert ws.recv_message() == expected
    ws.expect_close((code,))


# ---- 1 Framing: text and binary messages of every length form -----------------------------

LENGTHS = [0, 125, 126, 127, 128, 65535, 65536]


def c_framing(server, opcode, n, chop):
    ws = connect(server)
    payload = (b"*" if opcode == TEXT else bytes([0xFE])) * n
    echo(ws, opcode, payload, chop=chop)
    clean_close(ws)


for _op in (TEXT, BINARY):
    for _n in LENGTHS:
        case("1")(c_framing, _op, _n, None)
    case("1")(c_framing, _op, 65536, 997)  # 1.x.8: sent in 997-byte pieces


def c_length_forms(server, n, form):
    """A length written in a longer form than needed (RFC 6455 leaves minimality to the sender)."""
    ws = connect(server)
    echo(ws, BINARY, os.urandom(n), length_form=form)
    clean_close(ws)


for _n, _form in [(0, 16), (5, 16), (5, 64), (125, 64), (300, 64), (65535, 64)]:
    case("1")(c_length_forms, _n, _form)


def c_length_top_bit(server):
    """A 64-bit length with its most significant bit set: 1002."""
    ws = connect(server)
    ws.send(bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + os.urandom(4))
    fails(ws, 1002)


case("1")(c_length_top_bit)


def c_unmasked(server):
    """A client frame without the mask bit: 1002."""
    ws = connect(server)
    ws.send_frame(TEXT, b"hello", masked=False)
    fails(ws, 1002)


case("1")(c_unmasked)

# ---- 2 Pings and pongs ------------------------------------------------------------------


def c_ping(server, payload, chop=None):
    ws = connect(server)
    ws.send_frame(PING, payload, chop=chop)
    fin, rsv, opcode, data = ws.recv_frame()
    assert (fin, rsv, opcode, data) == (True, 0, PONG, payload)
    clean_close(ws)


case("2")(c_ping, b"")
case("2")(c_ping, b"Hello, world!")
case("2")(c_ping, bytes([0x00, 0xFF, 0xFE, 0xFD, 0xFC, 0xFB, 0x00, 0xFF]))
case("2")(c_ping, b"\xfe" * 125)


def c_ping_too_long(server):
    ws = connect(server)
    ws.send_frame(PING, b"\xfe" * 126)
    fails(ws, 1002)


case("2")(c_ping_too_long)
case("2")(c_ping, b"\xfe" * 125, 1)  # 2.6: sent one byte at a time


def c_unsolicited_pong(server, payload):
    ws = connect(server)
    ws.send_frame(PONG, payload)
    ws.expect_silence()
    clean_close(ws)


case("2")(c_unsolicited_pong, b"")
case("2")(c_unsolicited_pong, b"unsolicited pong payload")


def c_pong_then_ping(server):
    ws = connect(server)
    ws.send_frame(PONG, b"unsolicited")
    ws.send_frame(PING, b"solicited")
    assert ws.recv_frame()[2:] == (PONG, b"solicited")
    clean_close(ws)


case("2")(c_pong_then_ping)


def c_many_pings(server, chop):
    ws = connect(server)
    payloads = [f"payload-{i}".encode() for i in range(10)]
    ws.send(b"".join(_frame(PING, p) for p in payloads), chop=chop)
    for p in payloads:
        assert ws.recv_frame()[2:] == (PONG, p)
    clean_close(ws)


case("2")(c_many_pings, None)
case("2")(c_many_pings, 1)

# ---- 3 Reserved bits ---------------------------------------------------------------------


def c_rsv(server, rsv, before_text, opcode, payload, chop=None):
    """Autobahn 3.x: a frame with RSV bits no extension negotiated (optionally after a valid text
    and followed by a ping that must not be answered): 1002."""
    ws = connect(server)
    data = b""
    echoed = []
    if before_text:
        data += _frame(TEXT, b"Hello, world!")
        echoed.append((TEXT, b"Hello, world!"))
    data += _frame(opcode, payload, rsv=rsv)
    data += _frame(PING, b"")
    ws.send(data, chop=chop)
    fails(ws, 1002, echoed)


case("3")(c_rsv, 1, False, TEXT, b"Hello, world!")
case("3")(c_rsv, 2, True, TEXT, b"Hello, world!")
case("3")(c_rsv, 3, True, TEXT, b"Hello, world!")
case("3")(c_rsv, 4, True, TEXT, b"Hello, world!", 1)
case("3")(c_rsv, 5, False, BINARY, bytes(range(256)) * 4)
case("3")(c_rsv, 6, False, PING, b"Hello, world!")
case("3")(c_rsv, 7, False, CLOSE, struct.pack("!H", 1000))


def c_rsv1_on_control_with_deflate(server):
    """RSV1 is the compression bit of a data message; on a control frame it stays an error."""
    ws = connect(server, "permessage-deflate")
    assert ws.extension
    ws.send_frame(PING, b"x", rsv=4)
    fails(ws, 1002)


def c_rsv1_on_continuation_with_deflate(server):
    ws = connect(server, "permessage-deflate")
    z = Deflate()
    body = z.compress(b"hello hello hello")
    ws.send_frame(TEXT, body[:3], fin=False, rsv=4)
    ws.send_frame(CONT, body[3:], rsv=4)
    fails(ws, 1002)


case("3")(c_rsv1_on_control_with_deflate)
case("3")(c_rsv1_on_continuation_with_deflate)

# ---- 4 Opcodes ---------------------------------------------------------------------------


def c_opcode(server, opcode, payload, before_text):
    ws = connect(server)
    data = b""
    echoed = []
    if before_text:
        data += _frame(TEXT, b"Hello, world!")
        echoed.append((TEXT, b"Hello, world!"))
    data += _frame(opcode, payload) + _frame(PING, b"")
    ws.send(data)
    fails(ws, 1002, echoed)


for _first, _ops in ((3, (3, 4, 5, 6, 7)), (11, (11, 12, 13, 14, 15))):
    for _i, _op in enumerate(_ops):
        case("4")(c_opcode, _op, b"" if _i == 0 else b"reserved opcode payload", _i >= 2)

# ---- 5 Fragmentation ---------------------------------------------------------------------


def c_fragmented_control(server, opcode):
    ws = connect(server)
    ws.send(_frame(opcode, b"fragment1", fin=False) + _frame(CONT, b"fragment2"))
    fails(ws, 1002)


case("5")(c_fragmented_control, PING)
case("5")(c_fragmented_control, PONG)


def c_fragmented_text(server, ping, chop, delay=0.0):
    ws = connect(server)
    parts = [_frame(TEXT, b"fragment1", fin=False)]
    if ping:
        parts.append(_frame(PING, b"ping payload"))
    parts.append(_frame(CONT, b"fragment2"))
    if delay:
        for p in parts:
            ws.send(p)
            time.sleep(delay)
    else:
        ws.send(b"".join(parts), chop=chop)
    if ping:
        assert ws.recv_frame()[2:] == (PONG, b"ping payload")
    assert ws.recv_message() == (TEXT, b"fragment1fragment2")
    clean_close(ws)


case("5")(c_fragmented_text, False, None)
case("5")(c_fragmented_text, False, 1)
case("5")(c_fragmented_text, False, None, 0.1)
case("5")(c_fragmented_text, True, None)
case("5")(c_fragmented_text, True, 1)
case("5")(c_fragmented_text, True, None, 0.1)


def c_continuation_alone(server, fin, chop, delay=0.0):
    """A continuation with no message started (then a valid text): 1002, no echo."""
    ws = connect(server)
    data = _frame(CONT, b"non-continuation payload", fin=fin) + _frame(TEXT, b"Hello, world!")
    if delay:
        ws.send(data, chop=1, delay=delay / len(data))
    else:
        ws.send(data, chop=chop)
    fails(ws, 1002)


for _fin in (True, False):
    case("5")(c_continuation_alone, _fin, None)
    case("5")(c_continuation_alone, _fin, 1)
    case("5")(c_continuation_alone, _fin, None, 0.2)


def c_new_message_in_fragmented(server, frames, echoed):
    ws = connect(server)
    ws.send(b"".join(_frame(op, p, fin=fin) for op, p, fin in frames))
    fails(ws, 1002, echoed)


# 5.15: a message, then continuations with no message, then a text in the middle of nowhere.
case("5")(
    c_new_message_in_fragmented,
    [(TEXT, b"fragment1", False), (CONT, b"fragment2", True), (CONT, b"fragment3", False), (TEXT, b"fragment4", True)],
    [(TEXT, b"fragment1fragment2")],
)
# 5.16 / 5.17: continuations before any message, twice.
case("5")(
    c_new_message_in_fragmented,
    [(CONT, b"fragment1", False), (TEXT, b"fragment2", False), (CONT, b"fragment3", True)] * 2,
    [],
)
case("5")(
    c_new_message_in_fragmented,
    [(CONT, b"fragment1", True), (TEXT, b"fragment2", False), (CONT, b"fragment3", True)] * 2,
    [],
)
# 5.18: a new text message inside a fragmented one.
case("5")(c_new_message_in_fragmented, [(TEXT, b"fragment1", False), (TEXT, b"fragment2", True)], [])
case("5")(c_new_message_in_fragmented, [(BINARY, b"fragment1", False), (TEXT, b"fragment2", True)], [])


def c_fragments_with_pings(server, delay):
    """5.19 / 5.20: a text in five fragments with two pings among them, sent slowly."""
    ws = connect(server)
    steps = [
        _frame(TEXT, b"fragment1", fin=False),
        _frame(CONT, b"fragment2", fin=False),
        _frame(PING, b"pongme 1!"),
        _frame(CONT, b"fragment3", fin=False),
        _frame(CONT, b"fragment4", fin=False),
        _frame(PING, b"pongme 2!"),
        _frame(CONT, b"fragment5"),
    ]
    for step in steps:
        ws.send(step)
        time.sleep(delay)
    assert ws.recv_frame()[2:] == (PONG, b"pongme 1!")
    assert ws.recv_frame()[2:] == (PONG, b"pongme 2!")
    assert ws.recv_message() == (TEXT, b"fragment1fragment2fragment3fragment4fragment5")
    clean_close(ws)


case("5")(c_fragments_with_pings, 0.0)
case("5")(c_fragments_with_pings, 0.1)

# ---- 6 UTF-8 handling --------------------------------------------------------------------


def c_empty_fragments(server, frames, expected):
    ws = connect(server)
    ws.send(b"".join(_frame(op, p, fin=fin) for op, p, fin in frames))
    assert ws.recv_message() == expected
    clean_close(ws)


case("6")(c_empty_fragments, [(TEXT, b"", False), (CONT, b"", False), (CONT, b"", True)], (TEXT, b""))
case("6")(c_empty_fragments, [(TEXT, b"", False), (CONT, b"middle", False), (CONT, b"", True)], (TEXT, b"middle"))
case("6")(c_empty_fragments, [(TEXT, b"", True)], (TEXT, b""))


def c_utf8(server, data: bytes, split: str):
    """A text message as one frame, in two frames at every byte, or one byte per frame: echoed if it
    is UTF-8 (RFC 3629, as Python's strict decoder judges), else 1007."""
    try:
        data.decode("utf-8")
        valid = True
    except UnicodeDecodeError:
        valid = False
    ws = connect(server)
    if split == "one":
        pieces = [data]
    elif split == "octets":
        pieces = [data[i : i + 1] for i in range(len(data))] or [b""]
    else:
        k = int(split)
        pieces = [data[:k], data[k:]]
    ws.send(b"".join(_frame(TEXT if i == 0 else CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces)))
    if valid:
        assert ws.recv_message() == (TEXT, data)
        clean_close(ws)
    else:
        fails(ws, 1007)


HELLO = "Hello-µ@ßöäüàá-UTF-8!!".encode()
KOSME = "κόσμε".encode()
case("6")(c_utf8, HELLO, "one")
for _k in range(1, len(HELLO)):
    case("6")(c_utf8, HELLO, str(_k))  # split inside and between multi-byte characters
case("6")(c_utf8, HELLO, "octets")
case("6")(c_utf8, KOSME, "octets")
case("6")(c_utf8, KOSME + b"\xed\xa0\x80" + b"edited", "one")
case("6")(c_utf8, KOSME + b"\xed\xa0\x80" + b"edited", "octets")

# Markus Kuhn's UTF-8 decoder stress test, as Autobahn 6.5-6.23 uses it.
UTF8_SEQUENCES = [
    KOSME,
    b"\x00",
    b"\xc2\x80",
    b"\xe0\xa0\x80",
    b"\xf0\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfc\x84\x80\x80\x80\x80",
    b"\x7f",
    b"\xdf\xbf",
    b"\xef\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",
    b"\xf7\xbf\xbf\xbf",
    b"\xfb\xbf\xbf\xbf\xbf",
    b"\xfd\xbf\xbf\xbf\xbf\xbf",
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbd",
    b"\xf4\x90\x80\x80",
    b"\x80",
    b"\xbf",
    b"\x80\xbf",
    b"\x80\xbf\x80",
    b"\x80\xbf\x80\xbf",
    b"\x80\xbf\x80\xbf\x80",
    bytes(range(0x80, 0xC0)),
    bytes(b for c in range(0xC0, 0xE0) for b in (c, 0x20)),
    bytes(b for c in range(0xE0, 0xF0) for b in (c, 0x20)),
    bytes(b for c in range(0xF0, 0xF8) for b in (c, 0x20)),
    b"\xf8 \xf9 \xfa \xfb ",
    b"\xfc \xfd ",
    b"\xc0",
    b"\xe0\x80",
    b"\xf0\x80\x80",
    b"\xdf",
    b"\xef\xbf",
    b"\xf7\xbf\xbf",
    b"\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf",
    b"\xfe",
    b"\xff",
    b"\xfe\xfe\xff\xff",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xf8\x80\x80\x80\xaf",
    b"\xc1\xbf",
    b"\xe0\x9f\xbf",
    b"\xf0\x8f\xbf\xbf",
    b"\xc0\x80",
    b"\xe0\x80\x80",
    b"\xf0\x80\x80\x80",
    b"\xed\xa0\x80",
    b"\xed\xad\xbf",
    b"\xed\xae\x80",
    b"\xed\xaf\xbf",
    b"\xed\xb0\x80",
    b"\xed\xbe\x80",
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80",
    b"\xed\xaf\xbf\xed\xbf\xbf",
    b"\xef\xbf\xbe",
    b"\xef\xbf\xbf",
    b"\xef\xb7\x90",
    b"\xef\xb7\xaf",
    b"\xf0\x9f\xbf\xbe",
    b"\xf4\x8f\xbf\xbe",
    b"\xef\xbf\xb9",
    b"\xef\xbf\xbc",
    b"\xef\xbf\xbd",
    "\U0001f600 emoji \u2603 snowman".encode(),
]
for _seq in UTF8_SEQUENCES:
    case("6")(c_utf8, _seq, "one")
    case("6")(c_utf8, _seq, "octets")


def c_utf8_fail_fast(server, first: bytes, bad: bytes, rest: bytes, whole_frames: bool):
    """Autobahn 6.4: a text whose first part is valid and whose second part makes it invalid fails
    the connection when the second part arrives, before the rest is sent (the server must not wait
    for the message's end). As fragments (6.4.1/2) or as parts of one frame (6.4.3/4)."""
    ws = connect(server)
    if whole_frames:
        ws.send_frame(TEXT, first, fin=False)
        time.sleep(0.05)
        ws.send_frame(CONT, bad, fin=False)
    else:
        full = _frame(TEXT, first + bad + rest)
        header = len(full) - len(first + bad + rest)
        ws.send(full[: header + len(first)])
        time.sleep(0.05)
        ws.send(full[header + len(first) : header + len(first) + len(bad)])  # not the rest
    ws.expect_close((1007,), timeout=2.0)


case("6")(c_utf8_fail_fast, KOSME, b"\xf4\x90\x80\x80", b"edited", True)
case("6")(c_utf8_fail_fast, KOSME + b"\xf4", b"\x90", b"\x80\x80edited", True)
case("6")(c_utf8_fail_fast, KOSME, b"\xf4\x90\x80\x80", b"edited", False)
case("6")(c_utf8_fail_fast, KOSME + b"\xf4", b"\x90", b"\x80\x80edited", False)

# ---- 7 Close handling --------------------------------------------------------------------


def c_close_after(server, steps, echoed):
    """Frames, the last of which is a close: the server echoes what came before it, answers the
    close with 1000 and ignores anything after it."""
    ws = connect(server)
    ws.send(b"".join(_frame(op, p, fin=fin) for op, p, fin in steps))
    for expected in echoed:
        assert ws.recv_message() == expected
    ws.expect_close((1000,))


_close = (CLOSE, struct.pack("!H", 1000), True)
case("7")(c_close_after, [(TEXT, b"Hello World!", True), _close], [(TEXT, b"Hello World!")])
case("7")(c_close_after, [_close, _close], [])
case("7")(c_close_after, [_close, (PING, b"Hello World!", True)], [])
case("7")(c_close_after, [_close, (TEXT, b"Hello World!", True)], [])
case("7")(c_close_after, [(TEXT, b"fragment1", False), _close, (CONT, b"fragment2", True)], [])
case("7")(c_close_after, [(TEXT, b"BAsd7&jh23" * 26214 + b"Bs", True), _close], [(TEXT, b"BAsd7&jh23" * 26214 + b"Bs")])


def c_close_payload(server, payload, codes):
    ws = connect(server)
    ws.send_frame(CLOSE, payload)
    ws.expect_close(codes)


case("7")(c_close_payload, b"", (1000, None))  # 7.3.1: no status: answered 1000 (or empty)
case("7")(c_close_payload, b"\x03", (1002,))  # 7.3.2: a payload of one byte
case("7")(c_close_payload, struct.pack("!H", 1000), (1000,))
case("7")(c_close_payload, struct.pack("!H", 1000) + b"Hello World!", (1000,))
case("7")(c_close_payload, struct.pack("!H", 1000) + b"*" * 123, (1000,))
case("7")(c_close_payload, struct.pack("!H", 1000) + b"*" * 124, (1002,))  # 7.3.6: 126 bytes of control
case("7")(c_close_payload, struct.pack("!H", 1000) + "ü".encode() * 61, (1000,))
case("7")(c_close_payload, struct.pack("!H", 1000) + KOSME + b"\xed\xa0\x80" + b"edited", (1007,))  # 7.5.1
case("7")(c_close_payload, struct.pack("!H", 1000) + b"\xce", (1007,))  # a reason cut inside a character

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


def c_close_code(server, code, valid):
    """7.7: a valid code is answered with the same code; 7.9: an invalid one is a protocol error."""
    ws = connect(server)
    ws.send_frame(CLOSE, struct.pack("!H", code))
    ws.expect_close((code,) if valid else (1002,))


for _code in VALID_CODES:
    case("7")(c_close_code, _code, True)
for _code in INVALID_CODES:
    case("7")(c_close_code, _code, False)

# ---- 9 Limits and large messages ---------------------------------------------------------


def c_large(server, opcode, n, fragment=None, chop=None):
    ws = connect(server)
    ws.timeout = 60.0
    payload = (b"BAsd7&jh23" * (n // 10 + 1))[:n] if opcode == TEXT else os.urandom(n)
    if fragment:
        pieces = [payload[i : i + fragment] for i in range(0, n, fragment)]
        data = b"".join(_frame(opcode if i == 0 else CONT, p, fin=i == len(pieces) - 1) for i, p in enumerate(pieces))
        ws.send(data, chop=chop)
    else:
        ws.send_frame(opcode, payload, chop=chop)
    assert ws.recv_message(timeout=60.0) == (opcode, payload)
    clean_close(ws)


for _op in (TEXT, BINARY):
    for _n in (64 << 10, 256 << 10, 1 << 20, 4 << 20, MAX_MESSAGE):
        case("9")(c_large, _op, _n)
for _op in (TEXT, BINARY):
    for _frag in (64, 256, 1 << 10, 4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20):
        case("9")(c_large, _op, 1 << 20, _frag)
for _op in (TEXT, BINARY):
    for _chop in (64, 1 << 10, 16 << 10, 256 << 10):
        case("9")(c_large, _op, 1 << 20, None, _chop)


def c_many_small(server, opcode, count, size):
    """9.7 / 9.8: many small messages written back to back, all echoed in order."""
    ws = connect(server)
    payloads = [(b"%06d" % i + b"x" * size)[:size] for i in range(count)]
    ws.send(b"".join(_frame(opcode, p) for p in payloads))
    for p in payloads:
        assert ws.recv_message() == (opcode, p)
    clean_close(ws)


for _op in (TEXT, BINARY):
    for _size in (0, 16, 64, 256, 1024, 4096):
        case("9")(c_many_small, _op, 1000, _size)


def c_too_big(server, how):
    """A frame or a message over the limit: 1009, from the header, before the payload arrives."""
    ws = connect(server)
    if how == "frame-64":
        ws.send(bytes([0x82, 0xFF]) + struct.pack("!Q", MAX_MESSAGE + 1) + os.urandom(4) + b"x" * 100)
    elif how == "frame-huge":
        ws.send(bytes([0x81, 0xFF]) + struct.pack("!Q", (1 << 63) - 1) + os.urandom(4))
    else:
        ws.send(
            _frame(BINARY, b"\0" * (MAX_MESSAGE // 2), fin=False) + _frame(CONT, b"\0" * (MAX_MESSAGE // 2), fin=False)
        )
        ws.send(bytes([0x80, 0x82]) + os.urandom(4))  # a 2-byte last fragment: one byte too many
    ws.expect_close((1009,), timeout=30.0)


for _how in ("frame-64", "frame-huge", "message"):
    case("9")(c_too_big, _how)

# ---- 10 Misc: auto-fragmentation ----------------------------------------------------------


def c_autofragment(server, opcode, n, fragment):
    """10.1: a message in fragments of odd sizes comes back whole."""
    c_large(server, opcode, n, fragment)


case("10")(c_autofragment, TEXT, 65536, 1300)
case("10")(c_autofragment, BINARY, 65536, 1300)
case("10")(c_autofragment, TEXT, 65536, 1)

# ---- 12 permessage-deflate: compressed echo ---------------------------------------------

SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]


def payload_for(kind: str, n: int) -> bytes:
    if kind == "text":
        words = b"lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
        return (words * (n // len(words) + 1))[:n]
    if kind == "random":
        return os.urandom(n)
    return bytes((i * 7) & 0xFF for i in range(n))  # binary with structure


def c_deflate_echo(server, kind, n, count, offer="permessage-deflate"):
    """Messages compressed by the client, echoed compressed by the server."""
    ws = connect(server, offer)
    params = ws.deflate_params()
    z = Deflate(
        client_bits=int(params.get("client_max_window_bits", 15)),
        server_bits=int(params.get("server_max_window_bits", 15)),
        client_reset=bool(params.get("client_no_context_takeover")),
        server_reset=bool(params.get("server_no_context_takeover")),
    )
    opcode = TEXT if kind == "text" else BINARY
    for i in range(count):
        data = payload_for(kind, n)
        if kind != "random":
            data = (b"%d:" % i + data)[:n]
        ws.send_frame(opcode, z.compress(data), rsv=4)
        assert ws.recv_message(deflate=z) == (opcode, data)
    clean_close(ws)


for _kind in ("text", "binary", "random"):
    for _n in SIZES:
        case("12")(c_deflate_echo, _kind, _n, 10)


def c_deflate_fragmented(server, n, fragment):
    """A compressed message in several frames (RSV1 on the first only)."""
    ws = connect(server, "permessage-deflate")
    z = Deflate()
    data = payload_for("text", n)
    body = z.compress(data)
    pieces = [body[i : i + fragment] for i in range(0, len(body), fragment)]
    for i, p in enumerate(pieces):
        ws.send_frame(TEXT if i == 0 else CONT, p, fin=i == len(pieces) - 1, rsv=4 if i == 0 else 0)
    assert ws.recv_message(deflate=z) == (TEXT, data)
    clean_close(ws)


for _n, _frag in ((1024, 1), (65536, 100), (131072, 4096)):
    case("12")(c_deflate_fragmented, _n, _frag)


def c_deflate_mixed(server):
    """Compressed and uncompressed messages on one connection (RSV1 is per message)."""
    ws = connect(server, "permessage-deflate")
    z = Deflate()
    for i in range(10):
        data = payload_for("text", 300 + i)
        if i % 2:
            ws.send_frame(TEXT, data)
        else:
            ws.send_frame(TEXT, z.compress(data), rsv=4)
        assert ws.recv_message(deflate=z) == (TEXT, data)
    clean_close(ws)


def c_deflate_bad(server, body, code):
    """A compressed message that does not inflate (1007), or inflates to invalid UTF-8 (1007)."""
    ws = connect(server, "permessage-deflate")
    ws.send_frame(TEXT, body, rsv=4)
    ws.expect_close((code,))


case("12")(c_deflate_mixed)
case("12")(c_deflate_bad, b"\xff\xff\xff\xff\xff", 1007)
case("12")(c_deflate_bad, Deflate().compress(KOSME + b"\xed\xa0\x80"), 1007)


def c_deflate_bomb(server):
    """A small compressed message that inflates past the message limit: 1009, not memory growth."""
    ws = connect(server, "permessage-deflate")
    z = Deflate()
    ws.send_frame(BINARY, z.compress(b"\0" * (MAX_MESSAGE + 1024)), rsv=4)
    ws.expect_close((1009,), timeout=30.0)


case("12")(c_deflate_bomb)

# ---- 13 permessage-deflate: parameter negotiation --------------------------------------

OFFERS = [
    "permessage-deflate",
    "permessage-deflate; client_no_context_takeover",
    "permessage-deflate; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=9",
    "permessage-deflate; client_max_window_bits=15",
    "permessage-deflate; server_max_window_bits=9",
    "permessage-deflate; server_max_window_bits=12",
    "permessage-deflate; server_max_window_bits=15",
    "permessage-deflate; server_max_window_bits=9; server_no_context_takeover; client_max_window_bits=9; "
    "client_no_context_takeover",
    # Two offers: the first the server can take is taken.
    "permessage-deflate; server_max_window_bits=10, permessage-deflate",
    "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
]


def c_negotiate(server, offer):
    """The answer honours the offer (RFC 7692 7.1): what the client asked of the server is answered,
    nothing the client did not allow is set; then messages whose repeats are far apart are echoed,
    so a server that kept more context or a larger window than it announced fails to inflate here."""
    ws = connect(server, offer)
    params = ws.deflate_params()
    first = offer.split(",")[0] if "x-webkit" not in offer else offer.split(",")[1]
    asked = dict(
        (k.strip(), int(v) if v else True) for k, _, v in (item.partition("=") for item in first.split(";")[1:])
    )
    if "server_no_context_takeover" in asked:
        assert params.get("server_no_context_takeover") is True
    if type(asked.get("server_max_window_bits")) is int:
        assert params.get("server_max_window_bits", 15) <= asked["server_max_window_bits"]
    if "client_max_window_bits" not in asked:
        assert "client_max_window_bits" not in params
    elif type(asked["client_max_window_bits"]) is int:
        assert params.get("client_max_window_bits", 15) <= asked["client_max_window_bits"]
    for name in params:
        assert name in {
            "server_no_context_takeover",
            "client_no_context_takeover",
            "server_max_window_bits",
            "client_max_window_bits",
        }, name
    client_bits = int(params.get("client_max_window_bits", asked.get("client_max_window_bits", 15)))
    if client_bits is True:
        client_bits = 15
    z = Deflate(
        client_bits=client_bits,
        server_bits=int(params.get("server_max_window_bits", 15)),
        client_reset=bool(params.get("client_no_context_takeover") or asked.get("client_no_context_takeover")),
        server_reset=bool(params.get("server_no_context_takeover")),
    )
    block = os.urandom(200)
    for i in range(8):
        # The same 200 random bytes twice, 1,000 and 20,000 bytes apart: only a window of the
        # announced size and the announced context can reproduce them.
        data = block + os.urandom(800) + block + os.urandom(20000) + block
        for opcode in (BINARY, TEXT):
            if opcode == TEXT:
                data = payload_for("text", 4000 + i)
            ws.send_frame(opcode, z.compress(data), rsv=4)
            assert ws.recv_message(deflate=z) == (opcode, data)
    clean_close(ws)


for _offer in OFFERS:
    case("13")(c_negotiate, _offer)


def c_offer_declined(server, offer):
    """An offer the server cannot honour is declined (no extension), never refused."""
    ws = connect(server, offer)
    assert ws.extension is None, ws.extension
    echo(ws, TEXT, b"plain")
    clean_close(ws)


case("13")(c_offer_declined, "permessage-deflate; server_max_window_bits=8")
case("13")(c_offer_declined, "permessage-deflate; unknown_parameter")
case("13")(c_offer_declined, "permessage-deflate; server_max_window_bits=16")
case("13")(c_offer_declined, "permessage-deflate; client_max_window_bits=7")
case("13")(c_offer_declined, "permessage-deflate; server_no_context_takeover; server_no_context_takeover")


@pytest.mark.parametrize("cid", [cid for cid, _ in CASES])
def test_case(server, cid):
    fn, args = dict(CASES)[cid]
    try:
        fn(server, *args)
    except Closed:
        pytest.fail(f"case {cid}: the server closed the connection unexpectedly:\n" + server.output[-2000:])


def test_the_server_survived(server):
    """After every case the worker is the one that started (no crash, no restart)."""
    ws = connect(server)
    echo(ws, TEXT, b"still here")
    clean_close(ws)
    assert "Traceback" not in server.output, server.output[-3000:]


def test_the_table_is_current():
    """docs/reliability.md shows this suite's case counts per section (scripts/ws_conformance.py writes it)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ws_conformance.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
