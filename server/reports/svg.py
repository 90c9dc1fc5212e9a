"""Inline SVG charts of the report (pure; no script, no chart library).

- :func:`forest_plot`: one row per node, accuracy as a dot with its 95 % interval as a bar
  on a 0-100 % axis, ``n`` and the value printed; optional published values as diamonds,
  and a circular run's circular accuracy as a hollow dot with a dashed bar just under it.
- :func:`reliability_diagram`: accuracy against mean confidence per bin, with the diagonal.
- :func:`trend_chart`: overall accuracy with its interval, release after release.

Every mark carries ``data-*`` attributes with its numbers, so a browser test can read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

PALETTE: tuple[str, ...] = ("#d95f02", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#666666")
"""Colours of the published reference models, in order."""


@dataclass(frozen=True)
class ForestRow:
    """One row of a forest plot."""

    key: str
    """Node name (``data-node``)."""
    label: str
    """Text on the left."""
    n: int
    """Questions."""
    accuracy: float
    """Fraction."""
    low: float
    """CI lower bound, fraction."""
    high: float
    """CI upper bound, fraction."""
    published: tuple[float | None, ...] = ()
    """Published accuracies in percent, one per reference model (None: not published)."""
    circular: tuple[float, float, float] | None = None
    """Circular accuracy, CI low and high (fractions) of a circular run, drawn hollow under the dot."""


def _f(x: float) -> str:
    return f"{x:.1f}"


def _axis(x0: float, width: float, top: float, bottom: float) -> list[str]:
    out = []
    for pct in range(0, 101, 20):
        x = x0 + width * pct / 100
        out.append(f'<line class="grid" x1="{_f(x)}" y1="{_f(top)}" x2="{_f(x)}" y2="{_f(bottom)}"/>')
        out.append(f'<text class="tick" x="{_f(x)}" y="{_f(bottom + 12)}" text-anchor="middle">{pct}%</text>')
    return out


def forest_plot(dimension: str, rows: Sequence[ForestRow], models: Sequence[str] = ()) -> str:
    """A forest plot of ``rows`` (already sorted) for ``dimension``."""
    row_h, top, label_w, plot_w, right_w = 18, 8, 250, 420, 130
    height = top + row_h * len(rows) + 22
    width = label_w + plot_w + right_w
    parts = [
        f'<svg class="forest" data-dimension="{escape(dimension)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="accuracy per {escape(dimension)} node">'
    ]
    parts += _axis(label_w, plot_w, top, top + row_h * len(rows))
    for i, r in enumerate(rows):
        y = top + row_h * i + row_h / 2
        lo, hi, acc = (label_w + plot_w * v for v in (r.low, r.high, r.accuracy))
        attrs = (f'data-node="{escape(r.key)}" data-n="{r.n}" data-accuracy="{r.accuracy:.6f}" '
                 f'data-ci-low="{r.low:.6f}" data-ci-high="{r.high:.6f}"')
        if r.circular is not None:
            attrs += f' data-circular-accuracy="{r.circular[0]:.6f}"'
        parts.append(f'<g class="node" {attrs}>')
        label = r.label if len(r.label) <= 38 else r.label[:37] + "…"
        parts.append(f'<text class="label" x="4" y="{_f(y + 4)}"><title>{escape(r.label)}</title>{escape(label)}</text>')
        parts.append(f'<line class="ci" x1="{_f(lo)}" y1="{_f(y)}" x2="{_f(hi)}" y2="{_f(y)}"/>')
        parts.append(f'<circle class="point" cx="{_f(acc)}" cy="{_f(y)}" r="3.5"/>')
        if r.circular is not None:
            c_acc, c_lo, c_hi = (label_w + plot_w * v for v in r.circular)
            parts.append(f'<line class="circular-ci" x1="{_f(c_lo)}" y1="{_f(y + 5)}" x2="{_f(c_hi)}" y2="{_f(y + 5)}"/>'
                         f'<circle class="circular-point" cx="{_f(c_acc)}" cy="{_f(y + 5)}" r="2.5"/>')
        for k, value in enumerate(r.published):
            if value is None:
                continue
            x = label_w + plot_w * value / 100
            colour = PALETTE[k % len(PALETTE)]
            name = models[k] if k < len(models) else ""
            parts.append(
                f'<path class="published" data-model="{escape(name)}" data-value="{value:.2f}" '
                f'd="M{_f(x)} {_f(y - 4.5)} l4.5 4.5 l-4.5 4.5 l-4.5 -4.5 z" fill="{colour}">'
                f"<title>{escape(name)}: {value:.2f}% (published, paper)</title></path>"
            )
        parts.append(
            f'<text class="value" x="{label_w + plot_w + 8}" y="{_f(y + 4)}">{100 * r.accuracy:.1f}% '
            f'<tspan class="n">n={r.n}</tspan>'
            + (f' <tspan class="n">○ {100 * r.circular[0]:.1f}%</tspan>' if r.circular is not None else "")
            + "</text>"
        )
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def reliability_diagram(bins: Sequence[tuple[float, float, int, float, float]]) -> str:
    """Accuracy per confidence bin against the diagonal.

    Args:
        bins: (low, high, count, mean confidence, accuracy) per bin.
    """
    size, pad = 260, 34
    total = sum(b[2] for b in bins) or 1
    parts = [f'<svg class="reliability" viewBox="0 0 {size + 2 * pad} {size + 2 * pad}" '
             f'width="{size + 2 * pad}" height="{size + 2 * pad}" role="img" aria-label="reliability diagram">']
    x0, y0 = pad, pad + size
    parts.append(f'<line class="grid" x1="{x0}" y1="{y0}" x2="{x0 + size}" y2="{y0 - size}"/>')
    for low, high, count, conf, acc in bins:
        if not count:
            continue
        x = x0 + size * low
        w = size * (high - low) - 2
        h = size * acc
        shade = 0.35 + 0.65 * count / total
        parts.append(
            f'<rect class="bin" data-count="{count}" data-accuracy="{acc:.6f}" data-confidence="{conf:.6f}" '
            f'x="{_f(x + 1)}" y="{_f(y0 - h)}" width="{_f(w)}" height="{_f(h)}" fill-opacity="{shade:.2f}">'
            f"<title>confidence {low:.1f}-{high:.1f}: {count} answers, mean confidence {conf:.3f}, "
            f"accuracy {acc:.3f}</title></rect>"
        )
    for k in range(0, 11, 2):
        v = k / 10
        parts.append(f'<text class="tick" x="{_f(x0 + size * v)}" y="{y0 + 14}" text-anchor="middle">{v:.1f}</text>')
        parts.append(f'<text class="tick" x="{x0 - 6}" y="{_f(y0 - size * v + 4)}" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<text class="axis" x="{x0 + size / 2}" y="{y0 + 30}" text-anchor="middle">confidence</text>')
    parts.append(f'<text class="axis" x="10" y="{y0 - size / 2}" transform="rotate(-90 10 {y0 - size / 2})" '
                 'text-anchor="middle">accuracy</text>')
    parts.append("</svg>")
    return "".join(parts)


def trend_chart(points: Sequence[tuple[str, str, float, float, float]]) -> str:
    """Overall accuracy release after release.

    Args:
        points: (label, run id, accuracy, CI low, CI high) per whole run, oldest first.
    """
    width, height, left, bottom, top = 720, 200, 46, 40, 10
    plot_w, plot_h = width - left - 20, height - bottom - top
    parts = [f'<svg class="trend" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
             'aria-label="overall accuracy by release">']
    for pct in range(0, 101, 25):
        y = top + plot_h * (1 - pct / 100)
        parts.append(f'<line class="grid" x1="{left}" y1="{_f(y)}" x2="{left + plot_w}" y2="{_f(y)}"/>')
        parts.append(f'<text class="tick" x="{left - 6}" y="{_f(y + 4)}" text-anchor="end">{pct}%</text>')
    step = plot_w / max(1, len(points))
    coords = []
    for i, (label, run_id, acc, lo, hi) in enumerate(points):
        x = left + step * (i + 0.5)
        ys = [top + plot_h * (1 - v) for v in (acc, lo, hi)]
        coords.append(f"{_f(x)},{_f(ys[0])}")
        parts.append(
            f'<g class="release" data-run="{escape(run_id)}" data-accuracy="{acc:.6f}">'
            f'<line class="ci" x1="{_f(x)}" y1="{_f(ys[1])}" x2="{_f(x)}" y2="{_f(ys[2])}"/>'
            f'<circle class="point" cx="{_f(x)}" cy="{_f(ys[0])}" r="4"><title>{escape(label)}: '
            f"{100 * acc:.2f}% [{100 * lo:.2f}, {100 * hi:.2f}]</title></circle>"
            f'<text class="tick" x="{_f(x)}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{escape(label[:18])}</text></g>"
        )
    if len(coords) > 1:
        parts.insert(1, f'<polyline class="line" points="{" ".join(coords)}"/>')
    parts.append("</svg>")
    return "".join(parts)
