"""Inline SVG charts (no scripts, no external assets): histogram with threshold lines, bars, lines by round."""

from __future__ import annotations

import math
from html import escape

import numpy as np

WIDTH, HEIGHT, PAD = 360, 180, 32
COLORS = ("#3b6ea5", "#d9822b", "#3f9e4d", "#b84a62", "#7d5ba6", "#8c6d31")


def _frame(body: list[str], title: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    head = f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
    head += f' role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    text = f'<text x="{PAD}" y="14" font-size="12" font-weight="bold">{escape(title)}</text>'
    return head + text + "".join(body) + "</svg>"


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def histogram(values: list[float], title: str, thresholds: dict[str, float] | None = None, bins: int = 20) -> str:
    """Bars of the finite `values`, with a dashed vertical line and label per threshold."""
    finite = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if finite.size == 0:
        return _frame([f'<text x="{PAD}" y="{HEIGHT // 2}" font-size="12">no finite values</text>'], title)
    marks = {name: v for name, v in (thresholds or {}).items() if v is not None and math.isfinite(v)}
    low = min([finite.min(), *marks.values()])
    high = max([finite.max(), *marks.values()])
    if high <= low:
        low, high = low - 0.5, high + 0.5
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    scale_x = plot_w / (high - low)
    top = max(int(counts.max()), 1)
    body = []
    for count, left, right in zip(counts, edges[:-1], edges[1:], strict=True):
        bar_h = plot_h * count / top
        x, w = PAD + (left - low) * scale_x, max((right - left) * scale_x - 1, 1)
        body.append(f'<rect x="{x:.1f}" y="{PAD + plot_h - bar_h:.1f}" width="{w:.1f}" height="{bar_h:.1f}" '
                    f'fill="{COLORS[0]}"><title>[{_fmt(left)}, {_fmt(right)}): {count}</title></rect>')
    for index, (name, value) in enumerate(sorted(marks.items())):
        x = PAD + (value - low) * scale_x
        body.append(f'<line x1="{x:.1f}" y1="{PAD - 4}" x2="{x:.1f}" y2="{PAD + plot_h}" stroke="#c0392b" '
                    'stroke-width="1.5" stroke-dasharray="4 3"/>')
        anchor, shift = ("end", -3) if x > WIDTH / 2 else ("start", 3)
        label = f"{name} {_fmt(value)}"
        body.append(f'<text x="{x + shift:.1f}" y="{PAD + 8 + 11 * index}" font-size="10" fill="#c0392b" '
                    f'stroke="#fff" stroke-width="3" paint-order="stroke" text-anchor="{anchor}">'
                    f'{escape(label)}<title>{escape(name)}</title></text>')
    body += _axes(plot_w, plot_h, _fmt(low), _fmt(high), str(top))
    body.append(f'<text x="{WIDTH - PAD}" y="14" font-size="10" text-anchor="end">n={finite.size}</text>')
    return _frame(body, title)


def _axes(plot_w: float, plot_h: float, x_low: str, x_high: str, y_top: str) -> list[str]:
    base_y = PAD + plot_h
    return [
        f'<line x1="{PAD}" y1="{base_y}" x2="{PAD + plot_w}" y2="{base_y}" stroke="#444"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{base_y}" stroke="#444"/>',
        f'<text x="{PAD}" y="{base_y + 14}" font-size="10">{escape(x_low)}</text>',
        f'<text x="{PAD + plot_w}" y="{base_y + 14}" font-size="10" text-anchor="end">{escape(x_high)}</text>',
        f'<text x="{PAD - 4}" y="{PAD + 4}" font-size="10" text-anchor="end">{escape(y_top)}</text>',
    ]


def bars(items: dict[str, float], title: str) -> str:
    """Horizontal bars, one per label, with the value printed at the end."""
    if not items:
        return _frame([f'<text x="{PAD}" y="40" font-size="12">nothing to show</text>'], title)
    row_h = 18
    label_w = max(60, 7 * max(len(label) for label in items) + 10)  # ~7 px per character at font-size 11
    width, height = label_w + WIDTH - 150, PAD + row_h * len(items) + 10
    top = max(max(items.values()), 1e-12)
    body = []
    for index, (label, value) in enumerate(items.items()):
        y = PAD + index * row_h
        w = (width - label_w - 60) * value / top if value > 0 else 0
        body.append(f'<text x="{label_w - 6}" y="{y + 12}" font-size="11" text-anchor="end">{escape(label)}</text>')
        body.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 5}" '
                    f'fill="{COLORS[index % len(COLORS)]}"/>')
        body.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 12}" font-size="11">{_fmt(value)}</text>')
    return _frame(body, title, width=width, height=height)


def lines_by_round(series: dict[str, dict[int, float | None]], rounds: list[int], title: str) -> str:
    """One polyline per series over `rounds`; a missing value breaks the line and is marked 'missing'."""
    values = [v for points in series.values() for v in points.values() if v is not None and math.isfinite(v)]
    if not values or not rounds:
        return _frame([f'<text x="{PAD}" y="40" font-size="12">no metrics yet</text>'], title)
    low, high = min(values), max(values)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD - 14 * len(series)
    step = plot_w / max(len(rounds) - 1, 1)

    def point(i: int, v: float) -> tuple[float, float]:
        return PAD + i * step, PAD + plot_h - plot_h * (v - low) / (high - low)

    body = _axes(plot_w, plot_h, "", "", _fmt(high))
    for i, r in enumerate(rounds):
        body.append(f'<text x="{PAD + i * step:.1f}" y="{PAD + plot_h + 14}" font-size="10" text-anchor="middle">'
                    f'r{r}</text>')
    body.append(f'<text x="{PAD - 4}" y="{PAD + plot_h}" font-size="10" text-anchor="end">{_fmt(low)}</text>')
    for index, (name, points) in enumerate(series.items()):
        color = COLORS[index % len(COLORS)]
        coords = [point(i, points[r]) if points.get(r) is not None else None for i, r in enumerate(rounds)]
        for a, b in zip(coords, coords[1:], strict=False):
            if a and b:
                body.append(f'<line x1="{a[0]:.1f}" y1="{a[1]:.1f}" x2="{b[0]:.1f}" y2="{b[1]:.1f}" '
                            f'stroke="{color}" stroke-width="2"/>')
        for r, xy in zip(rounds, coords, strict=True):
            if xy:
                body.append(f'<circle cx="{xy[0]:.1f}" cy="{xy[1]:.1f}" r="3" fill="{color}">'
                            f'<title>{escape(name)} round {r}: {_fmt(points[r])}</title></circle>')
        legend_y = PAD + plot_h + 28 + 14 * index
        missing = [str(r) for r, xy in zip(rounds, coords, strict=True) if xy is None]
        note = f" (missing: round {', '.join(missing)})" if missing else ""
        body.append(f'<text x="{PAD}" y="{legend_y}" font-size="11" fill="{color}">{escape(name)}{note}</text>')
    return _frame(body, title)


def curve(points: list[tuple[float, float]], title: str) -> str:
    """One polyline of (x, y) points, e.g. the training loss by step."""
    if not points:
        return _frame([f'<text x="{PAD}" y="40" font-size="12">no points</text>'], title)
    xs, ys = [x for x, _ in points], [y for _, y in points]
    x_low, y_low = min(xs), min(ys)
    x_high, y_high = max(max(xs), x_low + 1e-12), max(max(ys), y_low + 1e-12)  # one point: a flat line, no 0/0
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    coords = " ".join(f"{PAD + plot_w * (x - x_low) / (x_high - x_low):.1f},"
                      f"{PAD + plot_h - plot_h * (y - y_low) / (y_high - y_low):.1f}" for x, y in points)  # fmt: skip
    body = _axes(plot_w, plot_h, f"step {_fmt(x_low)}", _fmt(x_high), _fmt(y_high))
    body.append(f'<text x="{PAD - 4}" y="{PAD + plot_h}" font-size="10" text-anchor="end">{_fmt(y_low)}</text>')
    body.append(f'<polyline points="{coords}" fill="none" stroke="{COLORS[0]}" stroke-width="1.5"/>')
    return _frame(body, title)
