"""The circular side of a run's report: its record and its HTML blocks (pure).

A circular run (``gmai-eval run --circular``) gives two numbers per node: vanilla accuracy
(rotation 0, the original option order; the official number, shown first) and circular
accuracy (a question counts only if every rotation of its options was answered
correctly), each with its Wilson 95 % interval; and the share of questions whose answers
follow a position rather than the option text (docs/scoring.md, "Circular evaluation").
:class:`CircularPart` holds them, built from the file (:func:`circular_part`) or from a
``GetRunScores`` answer (``report_convert.circular_from_proto``) to the same record, so
the report reads the same both ways. The ``*_html`` functions render the blocks that
``html`` places in the overall, per-dimension and position-bias sections.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

from gmai_eval.server.reports.html_numbers import ci, pct
from gmai_eval.server.scoring.aggregate import NodeScore, RunScores
from gmai_eval.server.scoring.circular import Following
from gmai_eval.server.scoring.stats import wilson_interval

NodeKey = tuple[str, tuple[str, ...]]
"""(dimension, path) of a node."""


@dataclass(frozen=True)
class CircularNode:
    """A node's circular accuracy."""

    n: int
    """Questions with a final answer for every rotation."""
    correct: int
    """Of those, questions answered correctly in every rotation."""

    @property
    def accuracy(self) -> float:
        """correct / n (0 for an empty node)."""
        return self.correct / self.n if self.n else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        """Wilson 95% interval of the accuracy (:func:`.stats.wilson_interval` already contains it)."""
        return wilson_interval(self.correct, self.n)


_EMPTY = CircularNode(0, 0)


@dataclass(frozen=True)
class CircularPart:
    """What a circular run's report adds to the vanilla numbers."""

    nodes: Mapping[NodeKey, CircularNode]
    """Every vanilla node's circular accuracy (n = 0 where no question is complete)."""
    following: Following
    """Whether the answers follow a position or the option text."""
    incomplete: int
    """Questions left out of the circular numbers: a rotation has no final answer yet."""

    def node(self, node: NodeScore) -> CircularNode:
        """The circular accuracy of a vanilla node."""
        return self.nodes.get((node.dimension, node.path), _EMPTY)


def circular_part(vanilla: RunScores, circular: RunScores, follows: Following, incomplete: int) -> CircularPart:
    """The report's circular part: ``circular``'s counts on each of ``vanilla``'s nodes."""
    by_key = {(n.dimension, n.path): n for n in circular.nodes}
    nodes = {}
    for v in vanilla.nodes:
        c = by_key.get((v.dimension, v.path))
        nodes[(v.dimension, v.path)] = CircularNode(c.n, c.correct) if c is not None else _EMPTY
    return CircularPart(nodes, follows, incomplete)


def _attrs(c: CircularNode) -> str:
    lo, hi = c.ci
    return (f'data-circular-n="{c.n}" data-circular-correct="{c.correct}" '
            f'data-circular-accuracy="{c.accuracy:.6f}" data-circular-ci-low="{lo:.6f}" '
            f'data-circular-ci-high="{hi:.6f}"')


def overall_html(part: CircularPart, overall: NodeScore) -> str:
    """The ``#circular-overall`` block under the vanilla accuracy."""
    c = part.node(overall)
    lo, hi = c.ci
    left = (f' <span data-key="circular-incomplete">{part.incomplete}</span> questions are left out of it: a '
            "rotation has no final answer yet." if part.incomplete else "")
    return (
        f'<div id="circular-overall" {_attrs(c)}><b>Circular accuracy {pct(c.accuracy)}</b> '
        f'<span class="muted">95% CI {ci(lo, hi)} (Wilson), {c.correct} of {c.n} questions</span></div>'
        '<p class="muted">Circular run: the accuracy above is vanilla, the official number (each question in its '
        "original option order, rotation 0). Circular accuracy counts a question only if every rotation of its "
        f"options was answered correctly (docs/scoring.md, \"Circular evaluation\").{left}</p>"
    )


LEGEND_HTML = ('<p class="muted" id="circular-legend">Circular run: the dot and its bar are vanilla accuracy (sorted '
               "by it); the hollow dot and the dashed bar under it are circular accuracy. The table under each plot "
               "gives both.</p>")
"""The note on the per-dimension plots of a circular run."""


def dimension_table_html(
    part: CircularPart, dimension: str, nodes: Sequence[NodeScore], label: Callable[[NodeScore], str]
) -> str:
    """Vanilla against circular accuracy for one dimension's nodes (in the forest plot's order)."""
    out = [f'<table class="circular-table" data-dimension="{escape(dimension)}"><thead><tr><th>node</th><th>n</th>'
           "<th>vanilla (95% CI)</th><th>circular n</th><th>circular (95% CI)</th><th>drop (points)</th></tr>"
           "</thead><tbody>"]
    for n in nodes:
        c = part.node(n)
        circ = f"{pct(c.accuracy)} {ci(*c.ci)}" if c.n else "-"
        drop = f"{100 * (n.accuracy - c.accuracy):.2f}" if c.n else "-"
        out.append(
            f'<tr data-node="{escape(n.name)}" {_attrs(c)}><td>{escape(label(n))}</td>'
            f"<td>{n.n}</td><td>{pct(n.accuracy)} {ci(*n.ci)}</td><td>{c.n}</td><td>{circ}</td><td>{drop}</td></tr>"
        )
    out.append("</tbody></table>")
    return "".join(out)


def following_html(part: CircularPart) -> str:
    """The ``#following`` paragraph of the position-bias section."""
    f = part.following
    return (
        f'<p id="following" data-eligible="{f.eligible}" data-position="{f.position}" data-text="{f.text}" '
        f'data-position-share="{f.position_share:.6f}" data-text-share="{f.text_share:.6f}">Circular run: of '
        f"{f.eligible} questions (at least two options) answered with one of their letters in every rotation, "
        f"<b>{f.position} ({pct(f.position_share)}) follow a position</b> (the same letter each time, so a "
        f"different text) and <b>{f.text} ({pct(f.text_share)}) follow the text</b> (the same option each time, "
        "so a different letter); the rest do neither. The table counts rotation 0 (the vanilla answers).</p>"
    )
