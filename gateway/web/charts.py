"""Small server-side SVG charts for the activity report.

The hub may run without internet and the report must print, so charts are plain inline
SVG written here rather than a JavaScript library from a CDN. Each chart is an
``<svg role="img">`` labelled by its ``<title>`` and ``<desc>``, every mark carries its
own ``<title>`` (a tooltip on screen, a name for assistive technology) and the values are
written as text next to the marks, so a printed chart can be read without guessing
from an axis. Every piece of text goes through ``escape``: labels are member-supplied
project names and the like.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

FONT = 12
CHAR_W = 7.0  # generous width of a 12-unit sans-serif character, for layout
GRID = "#d6dbe0"
TRACK = "#eceff2"
INK = "#1d2329"
MUTED = "#5f6b76"

Format = Callable[[float], str]


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    color: str


def _f(x: float) -> str:
    """Coordinates with one decimal: enough for a screen, and stable in tests."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def nice_ceiling(value: float) -> tuple[float, float]:
    """An axis maximum >= value and its step, both of the 1-2-5 kind, about 4-5 steps."""
    if value <= 0:
        return 1.0, 0.25
    raw = value / 4
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return step * math.ceil(value / step - 1e-9), step


def _clip(text: str, width: float) -> str:
    limit = max(4, int(width / CHAR_W))
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _open(chart_id: str, title: str, desc: str, width: float, height: float, css: str) -> list[str]:
    cid = escape(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {escape(css)}" id="{cid}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" width="{_f(width)}" height="{_f(height)}" '
        f'role="img" aria-labelledby="{cid}-title {cid}-desc" '
        f'font-size="{FONT}" fill="{INK}">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
    ]


def _legend(series: Sequence[Series], width: float, y: float) -> list[str]:
    """One line of swatches, left to right; wraps when the chart is too narrow."""
    out = ['<g class="legend">']
    x, line = 0.0, 0
    for s in series:
        w = 18 + len(s.label) * CHAR_W + 14
        if x and x + w > width:
            x, line = 0.0, line + 1
        yy = y + line * 18
        out.append(
            f'<rect x="{_f(x)}" y="{_f(yy - 10)}" width="12" height="12" rx="2" '
            f'fill="{escape(s.color)}"/>'
            f'<text x="{_f(x + 17)}" y="{_f(yy)}">{escape(s.label)}</text>'
        )
        x += w
    out.append("</g>")
    return out


def _legend_lines(series: Sequence[Series], width: float) -> int:
    x, lines = 0.0, 1
    for s in series:
        w = 18 + len(s.label) * CHAR_W + 14
        if x and x + w > width:
            x, lines = 0.0, lines + 1
        x += w
    return lines


def stacked_columns(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    values: Sequence[Sequence[float]],
    fmt: Format,
    *,
    width: float = 760,
    height: float = 300,
) -> Markup:
    """Vertical columns, one per label, stacked by series; the total is written on top.

    ``values[i][j]`` is series ``j`` in column ``i``.
    """
    legend_h = 18 * _legend_lines(series, width) + 8
    left, right, top, bottom = 44.0, 6.0, legend_h + 16, 24.0
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(v) for v in values]
    top_value, step = nice_ceiling(max(totals, default=0))
    out = _open(chart_id, title, desc, width, height, "columns")
    out += _legend(series, width, 12)
    out.append('<g class="axis">')
    ticks = int(round(top_value / step))
    for k in range(ticks + 1):
        v = k * step
        y = top + plot_h - plot_h * v / top_value
        out.append(
            f'<line x1="{_f(left)}" x2="{_f(width - right)}" y1="{_f(y)}" '
            f'y2="{_f(y)}" stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" '
            f'fill="{MUTED}">{escape(fmt(v))}</text>'
        )
    out.append("</g>")
    n = max(len(labels), 1)
    slot = plot_w / n
    bar_w = slot * 0.68
    for i, label in enumerate(labels):
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h
        out.append(f'<g class="column" data-label="{escape(label)}">')
        for s, v in zip(series, values[i], strict=True):
            if v <= 0:
                continue
            h = plot_h * v / top_value
            y -= h
            out.append(
                f'<rect class="bar" x="{_f(x)}" y="{_f(y)}" width="{_f(bar_w)}" '
                f'height="{_f(h)}" fill="{escape(s.color)}">'
                f"<title>{escape(label)} – {escape(s.label)} : {escape(fmt(v))}"
                f"</title></rect>"
            )
        cx = x + bar_w / 2
        if totals[i] > 0:
            out.append(
                f'<text class="value" x="{_f(cx)}" y="{_f(y - 4)}" '
                f'text-anchor="middle" font-weight="600">{escape(fmt(totals[i]))}'
                f"</text>"
            )
        out.append(
            f'<text x="{_f(cx)}" y="{_f(height - 7)}" text-anchor="middle" '
            f'fill="{MUTED}">{escape(label)}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def stacked_bars(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[Series],
    values: Sequence[Sequence[float]],
    fmt: Format,
    *,
    width: float = 760,
    row_h: float = 28,
    label_w: float | None = None,
) -> Markup:
    """Horizontal bars, one row per label, stacked by series; the total follows the bar.

    With a single series the legend is left out: the title says what is measured.
    """
    show_legend = len(series) > 1
    legend_h = 18 * _legend_lines(series, width) + 8 if show_legend else 0
    if label_w is None:
        label_w = min(260.0, max((len(s) for s in labels), default=4) * CHAR_W + 12)
    value_w = 70.0
    top = legend_h + 6
    height = top + row_h * max(len(labels), 1) + 4
    plot_w = width - label_w - value_w
    totals = [sum(v) for v in values]
    top_value, _ = nice_ceiling(max(totals, default=0))
    out = _open(chart_id, title, desc, width, height, "bars")
    if show_legend:
        out += _legend(series, width, 12)
    bar_h = row_h * 0.64
    for i, label in enumerate(labels):
        y = top + row_h * i
        by = y + (row_h - bar_h) / 2
        out.append(
            f'<g class="row" data-label="{escape(label)}">'
            f'<text x="{_f(label_w - 8)}" y="{_f(by + bar_h / 2 + 4)}" '
            f'text-anchor="end">{escape(_clip(label, label_w - 10))}'
            f"<title>{escape(label)}</title></text>"
            f'<rect x="{_f(label_w)}" y="{_f(by)}" width="{_f(plot_w)}" '
            f'height="{_f(bar_h)}" fill="{TRACK}"/>'
        )
        x = label_w
        for s, v in zip(series, values[i], strict=True):
            if v <= 0:
                continue
            w = plot_w * v / top_value
            out.append(
                f'<rect class="bar" x="{_f(x)}" y="{_f(by)}" width="{_f(w)}" '
                f'height="{_f(bar_h)}" fill="{escape(s.color)}">'
                f"<title>{escape(label)} – {escape(s.label)} : {escape(fmt(v))}"
                f"</title></rect>"
            )
            x += w
        out.append(
            f'<text class="value" x="{_f(x + 6)}" y="{_f(by + bar_h / 2 + 4)}" '
            f'font-weight="600">{escape(fmt(totals[i]))}</text></g>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def gauges(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    fractions: Sequence[float | None],
    fmt: Format,
    *,
    color: str = "#0072B2",
    width: float = 760,
    row_h: float = 34,
    marks: Sequence[float] = (0.25, 0.5, 0.75),
    empty: str = "–",
) -> Markup:
    """One 0-100 % gauge per label: a track, a fill and the value written after it.

    Quarter marks on the track let a printed page be compared by eye across machines.
    A fraction above 1 (sessions outside opening hours do not count, but rounding can
    nudge) is drawn full and written as it is.
    """
    label_w = min(260.0, max((len(s) for s in labels), default=4) * CHAR_W + 12)
    value_w = 64.0
    height = row_h * max(len(labels), 1) + 18
    plot_w = width - label_w - value_w
    out = _open(chart_id, title, desc, width, height, "gauges")
    bar_h = row_h * 0.5
    for i, (label, frac) in enumerate(zip(labels, fractions, strict=True)):
        y = row_h * i + (row_h - bar_h) / 2
        out.append(
            f'<g class="gauge" data-label="{escape(label)}">'
            f'<text x="{_f(label_w - 8)}" y="{_f(y + bar_h / 2 + 4)}" '
            f'text-anchor="end">{escape(_clip(label, label_w - 10))}'
            f"<title>{escape(label)}</title></text>"
            f'<rect x="{_f(label_w)}" y="{_f(y)}" width="{_f(plot_w)}" '
            f'height="{_f(bar_h)}" rx="3" fill="{TRACK}"/>'
        )
        text = empty if frac is None else fmt(frac)
        if frac is not None and frac > 0:
            w = plot_w * min(frac, 1.0)
            out.append(
                f'<rect class="bar" x="{_f(label_w)}" y="{_f(y)}" width="{_f(w)}" '
                f'height="{_f(bar_h)}" rx="3" fill="{escape(color)}">'
                f"<title>{escape(label)} : {escape(text)}</title></rect>"
            )
        for m in marks:
            mx = label_w + plot_w * m
            out.append(
                f'<line x1="{_f(mx)}" x2="{_f(mx)}" y1="{_f(y)}" '
                f'y2="{_f(y + bar_h)}" stroke="#fff" stroke-width="1.5"/>'
            )
        out.append(
            f'<text class="value" x="{_f(label_w + plot_w + 8)}" '
            f'y="{_f(y + bar_h / 2 + 4)}" font-weight="600">{escape(text)}</text></g>'
        )
    axis_y = row_h * max(len(labels), 1) + 12
    for m in (0.0, *marks, 1.0):
        out.append(
            f'<text x="{_f(label_w + plot_w * m)}" y="{_f(axis_y)}" '
            f'text-anchor="middle" fill="{MUTED}" font-size="10">'
            f"{escape(fmt(m))}</text>"
        )
    out.append("</svg>")
    return Markup("".join(out))
