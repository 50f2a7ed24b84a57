"""Consumption as a server-rendered SVG bar chart: each interval's figure beside the same interval a year
earlier, estimated figures drawn hatched (and named in the table beside the chart). No script, no style
attribute: classes styled by the portal's stylesheet."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from markupsafe import Markup, escape

from . import i18n

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 260, 48, 36, 12


def _number(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def label(start: str, group_by: str) -> str:
    """A short label for an interval starting on ``start`` (ISO date)."""
    year, month = start[:4], int(start[5:7])
    if group_by == "year":
        return year
    if group_by == "quarter":
        return f"{year} Q{(month - 1) // 3 + 1}"
    return f"{month:02d}.{year}"


def bars(items: list[dict[str, Any]], group_by: str) -> Markup:
    """Return the chart for the consumption ``items``."""
    values = [(_number(i.get("consumption_m3")), _number(i.get("previous_year_m3"))) for i in items]
    top = max([v for pair in values for v in pair if v is not None] + [Decimal(1)])
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(1, len(items))
    bar = max(2.0, slot * 0.36)
    title = escape(i18n.text("chart_title"))
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{title}</title>',
             '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
             'patternTransform="rotate(45)"><rect width="6" height="6" class="hatch-bg"/>'
             '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line"/></pattern></defs>']
    for step in range(5):
        y = TOP + plot_h - plot_h * step / 4
        tick = (top * step / 4).quantize(Decimal(1))
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="axis" text-anchor="end">{tick}</text>')
    for index, (item, (now, before)) in enumerate(zip(items, values, strict=True)):
        x = LEFT + slot * index + slot / 2
        for offset, value, css in ((-bar, before, "bar-previous"), (0.0, now, "bar")):
            if value is None:
                continue
            h = float(value / top) * plot_h
            quality = " estimated" if css == "bar" and item.get("quality") == "estimated" else ""
            parts.append(f'<rect x="{x + offset:.1f}" y="{TOP + plot_h - h:.1f}" width="{bar:.1f}" '
                         f'height="{h:.1f}" class="{css}{quality}"><title>{escape(str(value))} m³</title></rect>')
        parts.append(f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" class="axis" text-anchor="middle">'
                     f'{escape(label(str(item.get("interval_start", "")), group_by))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece of text in it was escaped above
