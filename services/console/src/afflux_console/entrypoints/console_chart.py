"""The dashboard's charts: SVG drawn on the server (nothing fetched, no script).

One panel per figure (clicks, conversions, payout, revenue, profit), sharing the day
axis: a bar per day scaled to the panel's own largest magnitude, a baseline at zero
(profit may be negative: its bars then hang below it), the largest value written on
the panel, and a ``<title>`` per bar so hovering shows the day and the exact figure.
Pure: figures in, markup out, every text escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape

WIDTH = 640
PANEL = 70
GAP = 30
LEFT = 8
TEXT = 'font-family="system-ui, sans-serif" fill="#1d2433"'


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[Decimal]
    shown: Sequence[str]
    color: str


def _bars(top: float, series: Series, days: Sequence[date]) -> list[str]:
    peak = max((abs(v) for v in series.values), default=Decimal(0))
    negative = any(v < 0 for v in series.values)
    zero = top + (PANEL / 2 if negative else PANEL)
    room = (PANEL / 2 if negative else PANEL) - 4
    step = (WIDTH - 2 * LEFT) / max(len(series.values), 1)
    parts = [
        f'<text x="{LEFT}" y="{top - 8:.0f}" {TEXT} font-size="13" font-weight="600">{escape(series.label)}'
        f'<tspan font-weight="400" font-size="12" dx="8">largest {escape(_largest(series))}</tspan></text>',
        f'<line x1="{LEFT}" y1="{zero:.1f}" x2="{WIDTH - LEFT}" y2="{zero:.1f}" stroke="#6b7280"/>',
    ]
    for index, (value, day) in enumerate(zip(series.values, days, strict=True)):
        height = 0.0 if peak == 0 else float(abs(value) / peak) * room
        y = zero - height if value >= 0 else zero
        parts.append(
            f'<rect x="{LEFT + index * step + step * 0.15:.1f}" y="{y:.1f}" '
            f'width="{max(step * 0.7, 1):.1f}" height="{max(height, 0.5):.1f}" fill="{series.color}">'
            f"<title>{escape(day.strftime('%b %-d'))}: {escape(series.shown[index])}</title></rect>"
        )
    return parts


def _largest(series: Series) -> str:
    if not series.values:
        return "0"
    index = max(range(len(series.values)), key=lambda i: abs(series.values[i]))
    return series.shown[index]


def daily_chart(days: Sequence[date], series: Sequence[Series], label: str) -> str:
    """Panels of ``series`` over ``days`` (each series has a value per day)."""
    height = len(series) * (PANEL + GAP) + GAP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(label)}" class="chart">',
        f"<title>{escape(label)}</title>",
    ]
    for number, one in enumerate(series):
        parts += _bars(GAP + number * (PANEL + GAP), one, days)
    if days:
        bottom = height - 6
        parts.append(
            f'<text x="{LEFT}" y="{bottom}" {TEXT} font-size="12">{escape(days[0].strftime("%b %-d"))}</text>'
        )
        parts.append(
            f'<text x="{WIDTH - LEFT}" y="{bottom}" text-anchor="end" {TEXT} font-size="12">'
            f"{escape(days[-1].strftime('%b %-d'))}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
