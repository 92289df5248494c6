"""A small server-side SVG chart of a petition's count over time.

The chart is inline SVG built from the hourly series the stats keep: no script,
no style attribute (the page's CSP forbids both), only classes that
``static/style.css`` colours. It carries a ``<title>`` and a ``<desc>`` for
screen readers; pages add the same summary as text next to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

WIDTH = 640
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 36
HOUR = 3600


def nice_step(value: float) -> int:
    """The smallest 1, 2 or 5 times a power of ten that is at least ``value`` (and >= 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 5, 10):
        if factor * power >= value:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def step_points(series: Sequence[tuple[int, int]], step: int = HOUR) -> list[tuple[int, int]]:
    """The count as a line: 0 before the first hour, then each hour's change spread over it.

    ``series`` holds (hour start, count at the end of that hour) for hours with
    entries; between them the count stays flat.
    """
    points: list[tuple[int, int]] = []
    previous = 0
    for hour, count in series:
        if not points or points[-1][0] < hour:
            points.append((hour, previous))
        points.append((hour + step, count))
        previous = count
    return points


def _f(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def count_chart(
    series: Sequence[tuple[int, int]],
    *,
    title: str,
    desc: str,
    date_label: Callable[[int], str],
    number_label: Callable[[int], str],
    id_prefix: str = "chart",
    step: int = HOUR,
) -> str:
    """An SVG line chart of ``series`` (see :func:`step_points`), or "" when it is empty."""
    points = step_points(series, step)
    if not points:
        return ""
    start, end = points[0][0], points[-1][0]
    tick = nice_step(max(count for _, count in points) / 4)
    top = max(tick, math.ceil(max(count for _, count in points) / tick) * tick)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t: int) -> float:
        return LEFT + (t - start) / (end - start) * plot_w

    def y(count: int) -> float:
        return TOP + plot_h - count / top * plot_h

    line = " ".join(f"{_f(x(t))},{_f(y(c))}" for t, c in points)
    area = f"{_f(x(start))},{_f(y(0))} {line} {_f(x(end))},{_f(y(0))}"
    grid, labels = [], []
    for value in range(0, top + 1, tick):
        gy = _f(y(value))
        grid.append(f'<line x1="{LEFT}" y1="{gy}" x2="{WIDTH - RIGHT}" y2="{gy}"/>')
        labels.append(
            f'<text x="{LEFT - 8}" y="{gy}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(number_label(value))}</text>"
        )
    base = HEIGHT - BOTTOM + 22
    labels.append(
        f'<text x="{LEFT}" y="{base}" text-anchor="start">{escape(date_label(start))}</text>'
    )
    labels.append(
        f'<text x="{WIDTH - RIGHT}" y="{base}" text-anchor="end">{escape(date_label(end))}</text>'
    )
    ids = f"{id_prefix}-title {id_prefix}-desc"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{ids}">'
        f'<title id="{id_prefix}-title">{escape(title)}</title>'
        f'<desc id="{id_prefix}-desc">{escape(desc)}</desc>'
        f'<g class="chart-grid" aria-hidden="true">{"".join(grid)}</g>'
        f'<polygon class="chart-area" points="{area}"/>'
        f'<polyline class="chart-line" fill="none" points="{line}"/>'
        f'<g class="chart-labels" aria-hidden="true">{"".join(labels)}</g>'
        "</svg>"
    )


__all__ = ["count_chart", "nice_step", "step_points"]


def badge(label: str, value: str, title: str) -> str:
    """A small standalone SVG badge ("<label> | <value>") other sites can show as an
    image: fixed colours (it is a file of its own, not styled by a page), a ``<title>``
    for screen readers. Widths are estimated from the characters (7 px each)."""
    left = 12 + 7 * len(label)
    right = 12 + 7 * len(value)
    width = left + right
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="22" role="img" '
        f'aria-label="{escape(title)}: {escape(value)} {escape(label)}">'
        f"<title>{escape(title)}: {escape(value)} {escape(label)}</title>"
        f'<rect width="{left}" height="22" fill="#444"/>'
        f'<rect x="{left}" width="{right}" height="22" fill="#0b6e4f"/>'
        '<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="12">'
        f'<text x="6" y="15">{escape(label)}</text>'
        f'<text x="{left + 6}" y="15">{escape(value)}</text></g></svg>'
    )
