"""The latency-versus-rate plot of `meltemi capacity`, drawn as a PNG without a plotting library.

meltemi has no runtime dependency, and matplotlib (with numpy) would be the
largest thing installed with it for the sake of one chart; the chart needs
lines, dots, a few words and numbers. So this module rasterizes it itself:
an RGB canvas, a 5x7 bitmap font, and PNG's own encoding (zlib, CRC-32)
from the standard library.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

from .loadgen import Step

WIDTH, HEIGHT = 900, 540
LEFT, RIGHT, TOP, BOTTOM = 90, 30, 64, 70
SCALE = 2  # pixels per font dot

WHITE = (255, 255, 255)
BLACK = (30, 30, 30)
GRID = (225, 225, 225)
GREY = (150, 150, 150)
GREEN = (30, 140, 60)
RED = (200, 40, 40)
BLUE = (40, 90, 200)

# A 5x7 font: each glyph is seven rows, each row five bits (the high bit on the left).
FONT = {
    "0": (0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E),
    "1": (0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "2": (0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F),
    "3": (0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E),
    "4": (0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02),
    "5": (0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E),
    "6": (0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E),
    "7": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08),
    "8": (0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E),
    "9": (0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C),
    "A": (0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "B": (0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E),
    "C": (0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E),
    "D": (0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C),
    "E": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F),
    "F": (0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10),
    "G": (0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F),
    "H": (0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11),
    "I": (0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E),
    "K": (0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11),
    "L": (0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F),
    "M": (0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11),
    "N": (0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11),
    "O": (0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "P": (0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10),
    "Q": (0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D),
    "R": (0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11),
    "S": (0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E),
    "T": (0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04),
    "U": (0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E),
    "V": (0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04),
    "W": (0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A),
    "X": (0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11),
    "Y": (0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04),
    "Z": (0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F),
    "(": (0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02),
    ")": (0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08),
    "/": (0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00),
    ".": (0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C),
    ",": (0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08),
    "-": (0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00),
    ":": (0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00),
    "=": (0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00),
    "≤": (0x02, 0x04, 0x08, 0x04, 0x02, 0x00, 0x1F),
}


class Canvas:
    """An RGB image in memory, drawn on with clipped primitives."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def dot(self, x: int, y: int, color: tuple[int, int, int]) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            at = 3 * (y * self.width + x)
            self.pixels[at : at + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: tuple[int, int, int]) -> None:
        for y in range(max(0, y0), min(self.height, y1 + 1)):
            for x in range(max(0, x0), min(self.width, x1 + 1)):
                self.dot(x, y, color)

    def line(self, x0: int, y0: int, x1: int, y1: int, color, width: int = 1, dash: int = 0) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            if dash and (i // dash) % 2:
                continue
            x = round(x0 + (x1 - x0) * i / steps)
            y = round(y0 + (y1 - y0) * i / steps)
            self.rect(x - width // 2, y - width // 2, x + (width - 1) // 2, y + (width - 1) // 2, color)

    def disc(self, cx: int, cy: int, radius: int, color) -> None:
        for y in range(-radius, radius + 1):
            for x in range(-radius, radius + 1):
                if x * x + y * y <= radius * radius:
                    self.dot(cx + x, cy + y, color)

    def text(self, x: int, y: int, text: str, color=BLACK, align: str = "left") -> None:
        """Draws `text` (upper-cased) with its top at y; align is left, right or center of x."""
        advance = 6 * SCALE
        width = len(text) * advance - SCALE
        if align == "right":
            x -= width
        elif align == "center":
            x -= width // 2
        for i, char in enumerate(text.upper()):
            for row, bits in enumerate(FONT.get(char, (0,) * 7)):
                for col in range(5):
                    if bits & (0x10 >> col):
                        left, top = x + i * advance + col * SCALE, y + row * SCALE
                        self.rect(left, top, left + SCALE - 1, top + SCALE - 1, color)

    def png(self) -> bytes:
        rows = b"".join(
            b"\x00" + bytes(self.pixels[3 * y * self.width : 3 * (y + 1) * self.width]) for y in range(self.height)
        )

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        # tEXt "Software": the file names its generator, as generated files here do.
        software = chunk(b"tEXt", b"Software\x00meltemi capacity (meltemi/plot.py)")
        image = chunk(b"IDAT", zlib.compress(rows, 9))
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + software + image + chunk(b"IEND", b"")


def nice_step(span: float, ticks: int = 6) -> float:
    """A 1, 2 or 5 times a power of ten that cuts span into about `ticks` intervals."""
    raw = span / ticks
    power = 10 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def tick_label(ms: float) -> str:
    return f"{ms:g}" if ms < 1 else f"{ms:,.0f}"


def write_capacity_png(path: Path, steps: Sequence[Step], p99_ms: float, answer_rate: float | None) -> None:
    """Plots p99 (green where the rate held, red where it broke) and p50 against the rate, on a log latency axis,
    with the target as a dashed line and the answer as a vertical one."""
    canvas = Canvas(WIDTH, HEIGHT)
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP
    ordered = sorted(steps, key=lambda s: s.rate)
    max_rate = max(s.rate for s in ordered) * 1.05
    latencies = [max(s.p50_us, 10) / 1000 for s in ordered] + [max(s.p99_us, 10) / 1000 for s in ordered]
    low = math.log10(min(min(latencies), p99_ms) / 1.5)
    high = math.log10(max(max(latencies), p99_ms) * 1.5)

    def px(rate: float) -> int:
        return round(x0 + (x1 - x0) * rate / max_rate)

    def py(ms: float) -> int:
        return round(y0 - (y0 - y1) * (math.log10(max(ms, 1e-3)) - low) / (high - low))

    # Grid and ticks: rates on a linear axis, latencies on a logarithmic one (1, 2, 5 per decade).
    step = nice_step(max_rate)
    for i in range(int(max_rate / step) + 1):
        x = px(i * step)
        canvas.line(x, y1, x, y0, GRID)
        canvas.text(x, y0 + 8, f"{i * step:,.0f}", GREY, "center")
    for decade in range(math.floor(low), math.ceil(high) + 1):
        for mantissa in (1, 2, 5):
            ms = mantissa * 10.0**decade
            if low <= math.log10(ms) <= high:
                y = py(ms)
                canvas.line(x0, y, x1, y, GRID)
                canvas.text(x0 - 8, y - 7, tick_label(ms), GREY, "right")
    canvas.line(x0, y0, x1, y0, BLACK)
    canvas.line(x0, y0, x0, y1, BLACK)
    canvas.text((x0 + x1) // 2, HEIGHT - 30, "offered rate (requests per second)", BLACK, "center")
    canvas.text(10, 8, f"latency (ms, log scale) - target p99 ≤ {p99_ms:g} ms", BLACK)

    canvas.line(x0, py(p99_ms), x1, py(p99_ms), BLUE, width=2, dash=8)
    if answer_rate is not None:
        canvas.line(px(answer_rate), y0, px(answer_rate), y1, GREEN, width=1, dash=4)
        canvas.text(px(answer_rate) + 6, y0 - 22, f"{answer_rate:,.0f}/s", GREEN)
    for quantile, colour in (("p50_us", GREY), ("p99_us", BLACK)):
        points = [(px(s.rate), py(getattr(s, quantile) / 1000)) for s in ordered]
        for (ax, ay), (bx, by) in zip(points, points[1:], strict=False):
            canvas.line(ax, ay, bx, by, colour)
    for s in ordered:
        canvas.disc(px(s.rate), py(s.p50_us / 1000), 2, GREY)
        canvas.disc(px(s.rate), py(s.p99_us / 1000), 5, GREEN if s.holds(p99_ms) else RED)
    # Legend, between the title and the plot.
    ly = 42
    canvas.disc(x0 + 6, ly, 5, GREEN)
    canvas.text(x0 + 16, ly - 6, "p99, holds", BLACK)
    canvas.disc(x0 + 166, ly, 5, RED)
    canvas.text(x0 + 176, ly - 6, "p99, breaks", BLACK)
    canvas.disc(x0 + 336, ly, 2, GREY)
    canvas.text(x0 + 346, ly - 6, "p50", GREY)
    canvas.line(x0 + 406, ly, x0 + 436, ly, BLUE, width=2, dash=8)
    canvas.text(x0 + 446, ly - 6, "target", BLUE)
    path.write_bytes(canvas.png())
