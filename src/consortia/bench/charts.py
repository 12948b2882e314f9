"""Line and bar charts drawn on a `png.Canvas`: axes, ticks, a legend and a title."""

from __future__ import annotations

import math
from dataclasses import dataclass

from consortia.bench.png import Canvas, Color, text_width

WIDTH, HEIGHT = 900, 420
LEFT, RIGHT, TOP, BOTTOM = 80, 20, 44, 50
AXIS: Color = (60, 60, 60)
GRID: Color = (225, 225, 225)
PALETTE: tuple[Color, ...] = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189))


@dataclass(frozen=True)
class Series:
    label: str
    points: list[tuple[float, float | None]]  # None: a gap in the line
    color: Color | None = None


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least `top`."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    n = math.ceil(top / step)
    return [i * step for i in range(n + 1)]


def fmt(v: float) -> str:
    if abs(v) >= 10_000:
        return f"{v / 1000:.0f}k"
    if abs(v) >= 1000:
        return f"{v / 1000:.1f}k".replace(".0k", "k")
    if v == int(v):
        return str(int(v))
    return f"{v:.1f}"


def _frame(c: Canvas, title: str, x_label: str, y_label: str, xs: list[float], ys: list[float]) -> None:
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    c.text((WIDTH - text_width(title)) // 2, 12, title, AXIS)
    for y in ys:
        py = TOP + plot_h - round(plot_h * y / ys[-1])
        c.line(LEFT, py, LEFT + plot_w, py, GRID)
        label = fmt(y)
        c.text(LEFT - 8 - text_width(label), py - 5, label, AXIS)
    for x in xs:
        px = LEFT + round(plot_w * x / xs[-1])
        c.line(px, TOP + plot_h, px, TOP + plot_h + 4, AXIS)
        label = fmt(x)
        c.text(px - text_width(label) // 2, TOP + plot_h + 10, label, AXIS)
    c.line(LEFT, TOP, LEFT, TOP + plot_h, AXIS)
    c.line(LEFT, TOP + plot_h, LEFT + plot_w, TOP + plot_h, AXIS)
    c.text(LEFT + (plot_w - text_width(x_label)) // 2, HEIGHT - 18, x_label, AXIS)
    c.text(6, TOP - 20, y_label, AXIS)


def line_chart(title: str, x_label: str, y_label: str, series: list[Series]) -> Canvas:
    c = Canvas(WIDTH, HEIGHT)
    values = [(x, y) for s in series for x, y in s.points if y is not None]
    x_top = max((x for x, _ in values), default=1.0)
    y_top = max((y for _, y in values), default=1.0)
    xs, ys = nice_ticks(x_top), nice_ticks(y_top)
    _frame(c, title, x_label, y_label, xs, ys)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    lx = LEFT + 12
    for i, s in enumerate(series):
        color = s.color or PALETTE[i % len(PALETTE)]
        prev: tuple[int, int] | None = None
        for x, y in s.points:
            if y is None:
                prev = None
                continue
            p = (LEFT + round(plot_w * x / xs[-1]), TOP + plot_h - round(plot_h * y / ys[-1]))
            if prev is not None:
                c.line(prev[0], prev[1], p[0], p[1], color, 2)
            else:
                c.rect(p[0] - 1, p[1] - 1, p[0] + 1, p[1] + 1, color)
            prev = p
        c.rect(lx, TOP + 6, lx + 14, TOP + 14, color)
        lx = c.text(lx + 20, TOP + 6, s.label, AXIS) + 16
    return c


def bar_chart(title: str, x_label: str, y_label: str, bars: list[tuple[float, int]], width: float) -> Canvas:
    """Bars of `width` (x units) starting at each (x, count)."""
    c = Canvas(WIDTH, HEIGHT)
    x_top = max((x + width for x, _ in bars), default=1.0)
    y_top = float(max((n for _, n in bars), default=1))
    xs, ys = nice_ticks(x_top), nice_ticks(y_top)
    _frame(c, title, x_label, y_label, xs, ys)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    for x, n in bars:
        x0 = LEFT + round(plot_w * x / xs[-1])
        x1 = LEFT + round(plot_w * (x + width) / xs[-1]) - 1
        y = TOP + plot_h - round(plot_h * n / ys[-1])
        if n:
            c.rect(x0, y, max(x0, x1), TOP + plot_h - 1, PALETTE[0])
    return c
