"""Inline SVG charts drawn on the server (no JavaScript)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 12, 32


def _date(value: datetime, lang: str) -> str:
    return value.strftime("%d/%m/%Y" if lang == "vi" else "%Y-%m-%d")


def score_chart(points: Sequence[tuple[datetime, float]], *, title: str, lang: str) -> str:
    """A line chart of a 0–1 score over time, as an accessible SVG string (already escaped)."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    if not points:
        return ""
    t0 = points[0][0].timestamp()
    t1 = points[-1][0].timestamp()
    span = (t1 - t0) or 1.0

    def x(t: datetime) -> float:
        if len(points) == 1:
            return LEFT + plot_w / 2
        return LEFT + (t.timestamp() - t0) / span * plot_w

    def y(v: float) -> float:
        return TOP + (1 - max(0.0, min(1.0, v))) * plot_h

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-title">{escape(title)}</title>',
    ]
    for pct in (0, 25, 50, 75, 100):
        yy = y(pct / 100)
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{yy:.1f}" x2="{WIDTH - RIGHT}" y2="{yy:.1f}"/>'
            f'<text class="axis" x="{LEFT - 6}" y="{yy + 4:.1f}" text-anchor="end">{pct}%</text>'
        )
    coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    parts.append(f'<polyline class="line" points="{coords}"/>')
    for t, v in points:
        label = f"{_date(t, lang)}: {v * 100:.0f}%"
        parts.append(
            f'<circle class="dot" cx="{x(t):.1f}" cy="{y(v):.1f}" r="3">'
            f"<title>{escape(label)}</title></circle>"
        )
    base = HEIGHT - BOTTOM + 18
    parts.append(f'<text class="axis" x="{LEFT}" y="{base}">{_date(points[0][0], lang)}</text>')
    if len(points) > 1:
        parts.append(
            f'<text class="axis" x="{WIDTH - RIGHT}" y="{base}" text-anchor="end">'
            f"{_date(points[-1][0], lang)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
