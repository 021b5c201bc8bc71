"""Content codings through meltemi._core: the Accept-Encoding matrix of the C test, and every coding decoded
byte for byte by the reference decoders (zlib, brotli, zstandard)."""

from __future__ import annotations

import ast
import gzip
import random
import re
import threading
import zlib

import brotli
import pytest
import zstandard
from conftest import ROOT

from meltemi import _core

ROW = re.compile(r'^\s*\{("(?:[^"\\]|\\.)*"), ("(?:[^"\\]|\\.)*"), "(\w+)"\},$')


def read_matrix() -> list[tuple[str, str, str]]:
    """The rows between the markers of tests/c/test_compress.c, so C and Python check the same table."""
    source = (ROOT / "tests" / "c" / "test_compress.c").read_text()
    body = source.split("/* matrix: begin */", 1)[1].split("/* matrix: end */", 1)[0]
    rows = []
    for line in body.strip().splitlines():
        match = ROW.match(line)
        assert match, f"unexpected matrix line: {line!r}"
        rows.append((ast.literal_eval(match[1]), ast.literal_eval(match[2]), match[3]))
    return rows


MATRIX = read_matrix()


def test_matrix_is_large_enough():
    assert len(MATRIX) >= 30


@pytest.mark.parametrize(("accept", "enabled", "expected"), MATRIX)
def test_negotiate(accept, enabled, expected):
    assert _core.negotiate_encoding(accept, enabled) == expected


def test_negotiate_defaults_and_errors():
    assert _core.negotiate_encoding("gzip, br, zstd") == "zstd"
    assert _core.negotiate_encoding(accept="gzip", enabled=" GZIP , identity ") == "gzip"
    with pytest.raises(ValueError, match="deflate"):
        _core.negotiate_encoding("gzip", "gzip,deflate")
    with pytest.raises(TypeError):
        _core.negotiate_encoding(None)


def decode(coding: str, data: bytes) -> bytes:
    """Decodes one complete stream strictly: an unfinished stream or bytes after its end fail."""
    if coding == "gzip":
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # the gzip container only
        out = d.decompress(data) + d.flush()
        assert d.eof and d.unused_data == b""
        assert gzip.decompress(data) == out  # and the gzip module agrees
        return out
    if coding == "br":
        d = brotli.Decompressor()
        out = d.process(data)
        assert d.is_finished()
        return out
    if coding == "zstd":
        d = zstandard.ZstdDecompressor().decompressobj()
        out = d.decompress(data)
        assert d.eof and d.unused_data == b""
        return out
    assert coding == "identity"
    return data


def make_text(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    parts, size = [], 0
    while size < n:
        item = f'{{"id": {rng.randrange(100000)}, "name": "user{rng.randrange(1000)}", "ok": {rng.random() < 0.5}}}, '
        parts.append(item)
        size += len(item)
    return "".join(parts).encode()[:n]


SIZES = [0, 1, 10 * 1024, 1024 * 1024]
CODINGS = ["gzip", "br", "zstd", "identity"]
INPUTS = {
    (kind, n): (make_text(n, n) if kind == "text" else random.Random(n).randbytes(n))
    for kind in ("text", "random")
    for n in SIZES
}


@pytest.mark.parametrize("chunks", [1, 7], ids=["whole", "chunked"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("kind", ["text", "random"])
@pytest.mark.parametrize("coding", CODINGS)
def test_round_trip(coding, kind, size, chunks):
    data = INPUTS[(kind, size)]
    encoded = _core.compress(data, coding, chunks=chunks)
    assert decode(coding, encoded) == data
    if coding != "identity" and kind == "text" and size >= 10 * 1024:
        assert len(encoded) < size / 3
    if coding == "identity":
        assert encoded == data


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_many_small_chunks(coding):
    # More pieces than bytes: empty flushes are harmless.
    data = make_text(5000, 1)
    for chunks in (2, 100, 4999, 6000):
        assert decode(coding, _core.compress(data, coding, chunks=chunks)) == data


@pytest.mark.parametrize(("coding", "levels"), [("gzip", range(0, 10)), ("br", range(0, 12)), ("zstd", range(1, 23))])
def test_every_level(coding, levels):
    data = make_text(30000, 2)
    for level in levels:
        assert decode(coding, _core.compress(data, coding, level)) == data, level


def test_zstd_frame_records_the_size_of_a_whole_body():
    data = make_text(10000, 3)
    assert zstandard.frame_content_size(_core.compress(data, "zstd")) == len(data)
    # Streamed chunk by chunk, the size is not known when the frame starts.
    assert zstandard.frame_content_size(_core.compress(data, "zstd", chunks=3)) == -1


def test_zstd_window_stays_within_what_browsers_accept():
    # RFC 9659: a decoder may refuse windows over 8 MB; levels 20-22 would use up to 128 MB unless capped.
    data = make_text(100000, 5)
    for level in (3, 19, 20, 22):
        encoded = _core.compress(data, "zstd", level, chunks=2)  # streamed: the size is unknown up front
        assert zstandard.get_frame_parameters(encoded).window_size <= 8 * 1024 * 1024, level
        assert decode("zstd", encoded) == data


def test_bytes_like_inputs():
    data = make_text(2000, 4)
    for view in (bytearray(data), memoryview(data)):
        assert decode("br", _core.compress(view, "br")) == data


def test_compress_errors():
    with pytest.raises(ValueError, match="deflate"):
        _core.compress(b"x", "deflate")
    with pytest.raises(ValueError, match="level"):
        _core.compress(b"x", "gzip", 10)
    with pytest.raises(ValueError, match="level"):
        _core.compress(b"x", "zstd", 23)
    with pytest.raises(ValueError, match="chunks"):
        _core.compress(b"x", "gzip", chunks=0)
    with pytest.raises(TypeError):
        _core.compress("text", "gzip")


def test_threads_compress_large_inputs_concurrently():
    # Large inputs are compressed without the GIL: several threads at once must not disturb each other.
    data = {coding: make_text(1024 * 1024, i) for i, coding in enumerate(("gzip", "br", "zstd"))}
    results: dict[str, bytes] = {}

    def work(coding: str) -> None:
        results[coding] = _core.compress(data[coding], coding, chunks=4)

    threads = [threading.Thread(target=work, args=(coding,)) for coding in data]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for coding, encoded in results.items():
        assert decode(coding, encoded) == data[coding]
    assert len(results) == 3
