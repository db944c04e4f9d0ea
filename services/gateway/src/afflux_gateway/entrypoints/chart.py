"""The dashboard's chart, drawn as SVG on the server (no script, nothing fetched).

Three small panels share the day axis: clicks, conversions and payout. Each is a
bar per day scaled to its own maximum, with the maximum written on the panel, and a
``<title>`` per bar so hovering shows the exact figure. Pure: figures in, markup out
(every text is escaped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape

WIDTH = 720
PANEL = 110
GAP = 26
LEFT = 70
FONT = 'font-family="sans-serif"'


@dataclass(frozen=True)
class DayFigures:
    day: date
    clicks: int
    conversions: int
    payout: Decimal


def _panel(
    top: int, label: str, values: Sequence[Decimal], days: Sequence[date], color: str, shown: Sequence[str]
) -> list[str]:
    peak = max(values, default=Decimal(0))
    step = (WIDTH - LEFT - 10) / max(len(values), 1)
    parts = [
        f'<text x="4" y="{top + 14}" {FONT} font-size="12" font-weight="600">{escape(label)}</text>',
        f'<text x="4" y="{top + 30}" {FONT} font-size="11" fill="#555">'
        f"max {escape(shown[values.index(peak)] if values else '0')}</text>",
        f'<line x1="{LEFT}" y1="{top + PANEL}" x2="{WIDTH - 10}" y2="{top + PANEL}" stroke="#999"/>',
    ]
    for index, (value, day) in enumerate(zip(values, days, strict=True)):
        height = 0.0 if peak == 0 else float(value / peak) * (PANEL - 8)
        x = LEFT + index * step + step * 0.15
        parts.append(
            f'<rect x="{x:.1f}" y="{top + PANEL - height:.1f}" width="{max(step * 0.7, 1):.1f}" '
            f'height="{height:.1f}" fill="{color}"><title>{escape(day.isoformat())}: '
            f"{escape(shown[index])} {escape(label.lower())}</title></rect>"
        )
    return parts


def daily_chart(figures: Sequence[DayFigures], currency: str) -> str:
    """An SVG of clicks, conversions and payout per day (one bar per day)."""
    days = [f.day for f in figures]
    height = 3 * PANEL + 3 * GAP + 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="Clicks, conversions and payout by day" id="chart">',
    ]
    panels = [
        ("Clicks", [Decimal(f.clicks) for f in figures], "#3b6fd8", [str(f.clicks) for f in figures]),
        (
            "Conversions",
            [Decimal(f.conversions) for f in figures],
            "#2f9e62",
            [str(f.conversions) for f in figures],
        ),
        (f"Payout ({currency})", [f.payout for f in figures], "#c9772b", [str(f.payout) for f in figures]),
    ]
    for number, (label, values, color, shown) in enumerate(panels):
        parts += _panel(GAP + number * (PANEL + GAP), label, values, days, color, shown)
    if days:
        bottom = height - 6
        parts.append(
            f'<text x="{LEFT}" y="{bottom}" {FONT} font-size="10" fill="#555">'
            f"{escape(days[0].isoformat())}</text>"
        )
        parts.append(
            f'<text x="{WIDTH - 10}" y="{bottom}" text-anchor="end" {FONT} font-size="10" fill="#555">'
            f"{escape(days[-1].isoformat())}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
