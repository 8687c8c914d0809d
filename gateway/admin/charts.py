"""Stacked bar charts over time as inline SVG, drawn on the server: no script, no CDN, readable when printed.

Colours come from the stylesheet (classes ``c-allow``, ``c-alert``, ``c-block``, ``c0``..``c6``), so
the chart obeys the page's CSP, which allows no inline style. Each bar has a ``<title>``: hovering
shows the series, the bucket and the count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

__all__ = ["Series", "stacked_bars"]

_W, _H = 760, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 8, 10, 26


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[int]
    css: str
    """The class that colours it."""


def stacked_bars(title: str, buckets: Sequence[datetime], series: Sequence[Series], *,
                 label_format: str = "%H:%M") -> Markup:
    """One bar per bucket, the series stacked in order; an empty chart says so instead of drawing nothing."""
    totals = [sum(s.values[i] for s in series) for i in range(len(buckets))]
    top = _nice(max(totals, default=0))
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    slot = plot_w / max(1, len(buckets))
    bar = max(1.0, slot * 0.8)
    parts = [f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}">',
             f"<title>{escape(title)}</title>"]
    for step in range(5):
        value = top * step / 4
        y = _TOP + plot_h - plot_h * step / 4
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{_count(value)}</text>')
    for i, when in enumerate(buckets):
        x = _LEFT + i * slot + (slot - bar) / 2
        y = _TOP + plot_h
        for s in series:
            value = s.values[i]
            if value <= 0:
                continue
            height = plot_h * value / top
            y -= height
            parts.append(f'<rect class="{escape(s.css)}" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" '
                         f'height="{height:.1f}"><title>{escape(s.name)}: {value} at '
                         f'{when:%Y-%m-%d %H:%M} UTC</title></rect>')
    for i in _ticks(len(buckets)):
        x = _LEFT + i * slot + slot / 2
        parts.append(f'<text class="axis" x="{x:.1f}" y="{_H - 8}" text-anchor="middle">'
                     f"{buckets[i]:{label_format}}</text>")
    if not any(totals):
        parts.append(f'<text class="empty" x="{_LEFT + plot_w / 2:.0f}" y="{_TOP + plot_h / 2:.0f}" '
                     'text-anchor="middle">nothing in this window</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _nice(value: int) -> float:
    """The smallest of 1, 2, 5 × 10^k at or above ``value`` (and at least 4, so the grid reads in integers)."""
    if value <= 4:
        return 4
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def _count(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1e6:g}M"
    if value >= 1000:
        return f"{value / 1e3:g}k"
    return f"{value:g}"


def _ticks(count: int) -> list[int]:
    if count <= 0:
        return []
    step = max(1, count // 6)
    return list(range(0, count, step))
