"""A small raster canvas and PNG encoder (zlib + the PNG chunk format), for report charts.

No imaging library is needed: charts are lines, rectangles and text in a 3x5 pixel font
scaled up, which is all a throughput or latency chart needs.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from consortia.bench.errors import BenchError

Color = tuple[int, int, int]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIDE_MAX = 8192

# 3x5 glyphs, rows top to bottom, "#" = ink. Upper case is drawn as lower case.
_FONT_ROWS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"),
    "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("##.", "..#", ".#.", "#..", "###"),
    "3": ("##.", "..#", ".#.", "..#", "##."),
    "4": ("#.#", "#.#", "###", "..#", "..#"),
    "5": ("###", "#..", "##.", "..#", "##."),
    "6": (".##", "#..", "###", "#.#", "###"),
    "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"),
    "9": ("###", "#.#", "###", "..#", "##."),
    "a": (".#.", "#.#", "###", "#.#", "#.#"),
    "b": ("##.", "#.#", "##.", "#.#", "##."),
    "c": (".##", "#..", "#..", "#..", ".##"),
    "d": ("##.", "#.#", "#.#", "#.#", "##."),
    "e": ("###", "#..", "##.", "#..", "###"),
    "f": ("###", "#..", "##.", "#..", "#.."),
    "g": (".##", "#..", "#.#", "#.#", ".##"),
    "h": ("#.#", "#.#", "###", "#.#", "#.#"),
    "i": ("###", ".#.", ".#.", ".#.", "###"),
    "j": ("..#", "..#", "..#", "#.#", ".#."),
    "k": ("#.#", "#.#", "##.", "#.#", "#.#"),
    "l": ("#..", "#..", "#..", "#..", "###"),
    "m": ("#.#", "###", "###", "#.#", "#.#"),
    "n": ("##.", "#.#", "#.#", "#.#", "#.#"),
    "o": (".#.", "#.#", "#.#", "#.#", ".#."),
    "p": ("##.", "#.#", "##.", "#..", "#.."),
    "q": (".#.", "#.#", "#.#", "##.", ".##"),
    "r": ("##.", "#.#", "##.", "#.#", "#.#"),
    "s": (".##", "#..", ".#.", "..#", "##."),
    "t": ("###", ".#.", ".#.", ".#.", ".#."),
    "u": ("#.#", "#.#", "#.#", "#.#", "###"),
    "v": ("#.#", "#.#", "#.#", "#.#", ".#."),
    "w": ("#.#", "#.#", "###", "###", "#.#"),
    "x": ("#.#", "#.#", ".#.", "#.#", "#.#"),
    "y": ("#.#", "#.#", ".#.", ".#.", ".#."),
    "z": ("###", "..#", ".#.", "#..", "###"),
    " ": ("...", "...", "...", "...", "..."),
    ".": ("...", "...", "...", "...", ".#."),
    ",": ("...", "...", "...", ".#.", "#.."),
    ":": ("...", ".#.", "...", ".#.", "..."),
    "-": ("...", "...", "###", "...", "..."),
    "+": ("...", ".#.", "###", ".#.", "..."),
    "=": ("...", "###", "...", "###", "..."),
    "/": ("..#", "..#", ".#.", "#..", "#.."),
    "%": ("#.#", "..#", ".#.", "#..", "#.#"),
    "(": (".#.", "#..", "#..", "#..", ".#."),
    ")": (".#.", "..#", "..#", "..#", ".#."),
    "_": ("...", "...", "...", "...", "###"),
    "<": ("..#", ".#.", "#..", ".#.", "..#"),
    ">": ("#..", ".#.", "..#", ".#.", "#.."),
    "?": ("##.", "..#", ".#.", "...", ".#."),
    "'": (".#.", ".#.", "...", "...", "..."),
}
FONT = {ch: [[c == "#" for c in row] for row in rows] for ch, rows in _FONT_ROWS.items()}


class Canvas:
    """An RGB raster, origin at the top left."""

    def __init__(self, width: int, height: int, background: Color = (255, 255, 255)) -> None:
        if not (1 <= width <= SIDE_MAX and 1 <= height <= SIDE_MAX):
            raise BenchError(f"canvas sides must be within 1..{SIDE_MAX}")
        self.width, self.height = width, height
        self.rows = [bytearray(bytes(background) * width) for _ in range(height)]

    def pixel(self, x: int, y: int, color: Color) -> None:
        if 0 <= x < self.width and 0 <= y < self.height:
            i = 3 * x
            self.rows[y][i : i + 3] = bytes(color)

    def rect(self, x0: int, y0: int, x1: int, y1: int, color: Color) -> None:
        """Fill [x0, x1] x [y0, y1] (inclusive, clipped)."""
        xa, xb = max(0, min(x0, x1)), min(self.width - 1, max(x0, x1))
        ya, yb = max(0, min(y0, y1)), min(self.height - 1, max(y0, y1))
        if xa > xb or ya > yb:
            return
        run = bytes(color) * (xb - xa + 1)
        for y in range(ya, yb + 1):
            self.rows[y][3 * xa : 3 * xb + 3] = run

    def line(self, x0: int, y0: int, x1: int, y1: int, color: Color, width: int = 1) -> None:
        """Bresenham's line, `width` pixels thick."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        half = width // 2
        while True:
            if width == 1:
                self.pixel(x0, y0, color)
            else:
                self.rect(x0 - half, y0 - half, x0 + half, y0 + half, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def text(self, x: int, y: int, s: str, color: Color, scale: int = 2) -> int:
        """Draw `s` with its top-left corner at (x, y); returns the x after the last glyph."""
        for ch in s.lower():
            glyph = FONT.get(ch, FONT["?"])
            for gy, row in enumerate(glyph):
                for gx, ink in enumerate(row):
                    if ink:
                        self.rect(
                            x + gx * scale,
                            y + gy * scale,
                            x + gx * scale + scale - 1,
                            y + gy * scale + scale - 1,
                            color,
                        )
            x += 4 * scale
        return x

    def png(self) -> bytes:
        return encode_png(self.width, self.height, self.rows)


def text_width(s: str, scale: int = 2) -> int:
    return 4 * scale * len(s) - scale if s else 0


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def encode_png(width: int, height: int, rows: list[bytearray]) -> bytes:
    """8-bit RGB, no interlace; every row uses filter type 0 (none).

    Raises BenchError when the rows do not match the size.
    """
    if len(rows) != height or any(len(r) != 3 * width for r in rows):
        raise BenchError("pixel rows do not match the image size")
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")
    )


def write_png(path: Path, canvas: Canvas) -> None:
    path.write_bytes(canvas.png())
