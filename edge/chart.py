"""The status page's chart of people and unmasked people, drawn on the server as SVG.

No charting library and no CDN: the Pi may be offline, and a bar chart is a few rectangles.
Each bucket is a grey bar of its people with a red bar of its unmasked people over it,
both to one scale; each bar carries its count (``data-count``) and a tooltip, so that a
test — or a curious user — can read the figures back from the drawing.

>>> svg = chart([{"start": "2026-12-01T09:00:00+00:00", "people": 4, "unmasked": 1,
...               "violations": 1}], "per hour", "%H")
>>> 'class="people" data-count="4"' in svg and 'class="unmasked" data-count="1"' in svg
True
"""

from __future__ import annotations

from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 200
LEFT, RIGHT, TOP, BOTTOM = 36, 8, 24, 22        # margins round the plot, px
PEOPLE, UNMASKED, INK = "#6b7b8c", "#e04848", "#bbb"


def _ticks(top: int) -> list[int]:
    """Up to five round values (steps of 1, 2 or 5 times a power of ten) from 0 to at
    least ``top``.

    >>> _ticks(7), _ticks(37)
    ([0, 2, 4, 6, 8], [0, 10, 20, 30, 40])
    """
    step = next(m * 10 ** e for e in range(12) for m in (1, 2, 5) if top <= 4 * m * 10 ** e)
    return list(range(0, -(-top // step) * step + 1, step))


def chart(buckets: list[dict], title: str, label: str) -> str:
    """An SVG bar chart of ``buckets`` (``History.hours`` / ``days``), labelled with the
    ``strftime`` format ``label`` under every few bars."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    ticks = _ticks(max([b["people"] for b in buckets] + [1]))
    scale = plot_h / ticks[-1]
    slot = plot_w / max(len(buckets), 1)
    bar = max(slot * 0.8, 1.0)
    every = max(1, round(len(buckets) / 12))        # at most about 12 labels
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" role="img" class="chart" '
             f'font-family="system-ui, sans-serif" font-size="11">',
             f'<title>{escape(title)}</title>',
             f'<text x="{LEFT}" y="14" fill="{INK}">{escape(title)}: '
             f'<tspan fill="{PEOPLE}">■ people</tspan> '
             f'<tspan fill="{UNMASKED}">■ unmasked</tspan></text>']
    for tick in ticks:
        y = TOP + plot_h - tick * scale
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#333"/><text x="{LEFT - 4}" y="{y + 4:.1f}" fill="{INK}" '
                     f'text-anchor="end">{tick}</text>')
    for i, b in enumerate(buckets):
        x = LEFT + i * slot + (slot - bar) / 2
        start = datetime.fromisoformat(b["start"])
        when = escape(start.strftime("%a %d %b %H:%M"))
        for kind, color in (("people", PEOPLE), ("unmasked", UNMASKED)):
            h = b[kind] * scale
            parts.append(f'<rect class="{kind}" data-count="{b[kind]}" data-start="'
                         f'{escape(b["start"])}" x="{x:.1f}" y="{TOP + plot_h - h:.2f}" '
                         f'width="{bar:.1f}" height="{h:.2f}" fill="{color}">'
                         f'<title>{when}: {b[kind]} {kind}</title></rect>')
        if i % every == 0:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{HEIGHT - 6}" fill="{INK}" '
                         f'text-anchor="middle">{escape(start.strftime(label))}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
