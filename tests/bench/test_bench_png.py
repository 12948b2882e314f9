"""The PNG writer produces files any decoder accepts: signature, IHDR, CRCs, pixel data."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consortia.bench.charts import Series, bar_chart, line_chart, nice_ticks
from consortia.bench.errors import BenchError
from consortia.bench.png import PNG_SIGNATURE, Canvas, encode_png, write_png


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Split a PNG into (type, data), checking every chunk's CRC on the way."""
    assert data[:8] == PNG_SIGNATURE
    out, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF, f"bad CRC in {kind!r}"
        out.append((kind, body))
        pos += 12 + length
    return out


def decode_rgb(data: bytes) -> tuple[int, int, list[bytes]]:
    parts = chunks(data)
    assert parts[0][0] == b"IHDR" and parts[-1] == (b"IEND", b"")
    width, height, depth, color, comp, filt, interlace = struct.unpack(">IIBBBBB", parts[0][1])
    assert (depth, color, comp, filt, interlace) == (8, 2, 0, 0, 0)
    raw = zlib.decompress(b"".join(body for kind, body in parts if kind == b"IDAT"))
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    rows = [raw[i * stride : (i + 1) * stride] for i in range(height)]
    assert all(r[0] == 0 for r in rows)  # filter type none
    return width, height, [r[1:] for r in rows]


def test_signature_and_ihdr(tmp_path: Path) -> None:
    c = Canvas(7, 3)
    c.pixel(2, 1, (10, 20, 30))
    path = tmp_path / "x.png"
    write_png(path, c)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert data[12:16] == b"IHDR"
    width, height, rows = decode_rgb(data)
    assert (width, height) == (7, 3)
    assert rows[1][6:9] == bytes([10, 20, 30])
    assert rows[0][6:9] == bytes([255, 255, 255])


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.data())
def test_pixels_round_trip(width: int, height: int, data: st.DataObject) -> None:
    c = Canvas(width, height)
    x, y = data.draw(st.integers(0, width - 1)), data.draw(st.integers(0, height - 1))
    c.pixel(x, y, (1, 2, 3))
    c.pixel(width + 5, height + 5, (9, 9, 9))  # off the canvas: clipped, not an error
    _, _, rows = decode_rgb(c.png())
    assert rows[y][3 * x : 3 * x + 3] == b"\x01\x02\x03"
    inked = sum(1 for r in rows for i in range(0, len(r), 3) if r[i : i + 3] != b"\xff\xff\xff")
    assert inked == 1


def test_bad_sizes_raise() -> None:
    with pytest.raises(BenchError):
        Canvas(0, 10)
    with pytest.raises(BenchError):
        encode_png(2, 2, [bytearray(6)])


def test_charts_are_valid_pngs_with_ink() -> None:
    line = line_chart("tps", "seconds", "tx/s", [Series("a", [(0, 1.0), (1, None), (2, 5.0), (3, 4.0)])])
    bars = bar_chart("hist", "ms", "n", [(0.0, 3), (10.0, 7), (20.0, 0)], 10.0)
    for canvas in (line, bars):
        width, height, rows = decode_rgb(canvas.png())
        assert (width, height) == (canvas.width, canvas.height)
        colored = sum(1 for r in rows for i in range(0, len(r), 3) if r[i] != r[i + 1] or r[i] != r[i + 2])
        assert colored > 50  # the series / bars were drawn in colour


@given(st.floats(0.001, 1e9, allow_nan=False))
def test_ticks_cover_the_top(top: float) -> None:
    ticks = nice_ticks(top)
    assert ticks[0] == 0 and ticks[-1] >= top
    assert len(ticks) <= 12
