"""Scores per taxonomy node: a pure roll-up of verdicts, plus the store-backed entry points.

Accuracy is VLMEvalKit's micro mean of ``hit`` (correct / n) over the scored questions of
a node; ``unscored`` questions (no answer key) are excluded and counted apart. Dimensions:

``overall``      path ``()``: the official number.
``task``         ``(task,)`` in the paper's column order (AR, BVR, ...).
``department``   ``(department,)`` in the paper's order; ``("N/A",)`` last, not in the macro.
``granularity``  ``(granularity,)`` in paper Table 12 order.
``modality``     ``(modality,)`` alphabetical (VLMEvalKit does not report it).
``label``        ``(category,)`` alphabetical (VLMEvalKit's ``report_acc`` columns).
``tree``         ``(subject, name, modality[, label])`` for the lexical-tree subjects
                 ``task`` and ``department`` (down to labels) and ``granularity`` (down to
                 modalities), each level present, so a parent's n is the sum of its children's.

The macro average of a dimension is the unweighted mean of its node accuracies (nodes with
n > 0; the N/A department excluded), reported beside the micro overall.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gmai_eval.server.errors import InvalidArgument, NotFound
from gmai_eval.server.scoring.stats import wilson_interval
from gmai_eval.server.taxonomy import DEPARTMENTS, GRANULARITIES, TASKS

if TYPE_CHECKING:
    from gmai_eval.server.scoring.multi_scores import MclsFigures, MclsScore

DIMENSIONS: tuple[str, ...] = ("overall", "task", "department", "granularity", "modality", "label", "tree")
"""Every dimension, in report order."""

NA_DEPARTMENT = "N/A"
"""Display name of the department-less node (stored as ``''``)."""

_ORDER: dict[str, tuple[tuple[str, str], ...]] = {
    "task": TASKS,
    "department": DEPARTMENTS,
    "granularity": GRANULARITIES,
}


@dataclass(frozen=True)
class Item:
    """One scored question as the roll-up sees it."""

    verdict: str
    """Verdict (``unscored`` items are skipped)."""
    task: str
    """Clinical VQA task."""
    department: str
    """Department, ``''`` for N/A."""
    granularity: str
    """Perceptual granularity."""
    modality: str
    """Modality."""
    label: str
    """Answer label text (``category``)."""


@dataclass(frozen=True)
class NodeScore:
    """Accuracy of one taxonomy node."""

    dimension: str
    """One of :data:`DIMENSIONS`."""
    path: tuple[str, ...]
    """Node path within the dimension."""
    abbreviation: str
    """Paper abbreviation (tasks, departments, granularities), else ``""``."""
    n: int
    """Questions scored."""
    correct: int
    """Questions correct."""
    unparsed: int
    """Free text with no extractable option (wrong)."""
    refused: int
    """Refusals and abstentions (wrong)."""
    errors: int
    """Final attempt was an error (wrong)."""

    @property
    def accuracy(self) -> float:
        """correct / n (0 for an empty node)."""
        return self.correct / self.n if self.n else 0.0

    @property
    def ci(self) -> tuple[float, float]:
        """Wilson 95% interval of the accuracy (:func:`.stats.wilson_interval` already contains it)."""
        return wilson_interval(self.correct, self.n)

    @property
    def incorrect(self) -> int:
        """Questions answered with a wrong option."""
        return self.n - self.correct - self.unparsed - self.refused - self.errors

    @property
    def name(self) -> str:
        """Display name: the last path element, ``Overall`` for the root."""
        return self.path[-1] if self.path else "Overall"


@dataclass(frozen=True)
class RunScores:
    """Scores of one run under one grading (era, judge)."""

    run_id: str
    """Run id."""
    era: str
    """Extraction era."""
    judge: str
    """Judge model, ``""`` for exact matching."""
    nodes: tuple[NodeScore, ...]
    """Every node, dimension by dimension, in report order."""
    macro: Mapping[str, float] = field(default_factory=dict)
    """Macro accuracy per dimension (task, department, granularity, modality, label)."""
    unscored: int = 0
    """Questions graded but without an answer key (excluded)."""
    ungraded: int = 0
    """Questions of the run without a final answer yet."""
    multi_choice: bool = False
    """Multi-answer questions: accuracy is exact-set accuracy, and :attr:`mcls` is set."""
    mcls: Mapping[tuple[str, tuple[str, ...]], MclsScore | MclsFigures] = field(default_factory=dict)
    """(dimension, path) -> the paper's ACC_mcls and Recall_mcls (multi-answer runs only;
    :class:`~.multi_scores.MclsFigures` when read back from ``GetRunScores``)."""

    @property
    def overall(self) -> NodeScore:
        """The overall node."""
        return self.nodes[0]

    def dimension(self, name: str) -> tuple[NodeScore, ...]:
        """Nodes of one dimension."""
        return tuple(n for n in self.nodes if n.dimension == name)

    def node(self, dimension: str, *path: str) -> NodeScore:
        """One node by dimension and path.

        Raises:
            NotFound: no such node.
        """
        for n in self.nodes:
            if n.dimension == dimension and n.path == tuple(path):
                return n
        raise NotFound(f"no {dimension} node {'/'.join(path)!r} in run {self.run_id}")


def _order_key(dimension: str, name: str) -> tuple[int, str]:
    table = _ORDER.get(dimension)
    if table is not None:
        for i, (full, _) in enumerate(table):
            if name == (NA_DEPARTMENT if dimension == "department" and full == "" else full):
                return (i, "")
        return (len(table), name)
    return (0, name)


def _abbreviation(dimension: str, name: str) -> str:
    for full, abbr in _ORDER.get(dimension, ()):
        if name == (NA_DEPARTMENT if dimension == "department" and full == "" else full):
            return abbr
    return ""


class _Counts:
    __slots__ = ("correct", "errors", "n", "refused", "unparsed")

    def __init__(self) -> None:
        self.n = self.correct = self.unparsed = self.refused = self.errors = 0

    def add(self, verdict: str) -> None:
        self.n += 1
        if verdict == "correct":
            self.correct += 1
        elif verdict == "unparsed":
            self.unparsed += 1
        elif verdict == "refused":
            self.refused += 1
        elif verdict == "error":
            self.errors += 1
        elif verdict != "incorrect":
            raise InvalidArgument(f"unknown verdict {verdict!r}")


def node_keys(it: Item) -> Iterable[tuple[str, tuple[str, ...]]]:
    """Every (dimension, path) node that question ``it`` counts in."""
    dept = it.department or NA_DEPARTMENT
    yield "overall", ()
    yield "task", (it.task,)
    yield "department", (dept,)
    yield "granularity", (it.granularity,)
    yield "modality", (it.modality,)
    yield "label", (it.label,)
    for subject, name in (("task", it.task), ("department", dept)):
        yield "tree", (subject, name)
        yield "tree", (subject, name, it.modality)
        yield "tree", (subject, name, it.modality, it.label)
    yield "tree", ("granularity", it.granularity)
    yield "tree", ("granularity", it.granularity, it.modality)


def node_sort_key(key: tuple[str, tuple[str, ...]]) -> tuple[object, ...]:
    """Report order of a (dimension, path) node: dimension, paper order, then names."""
    dim, path = key
    if dim == "tree":
        subject = ("task", "department", "granularity").index(path[0])
        return (DIMENSIONS.index(dim), subject, _order_key(path[0], path[1]), *path[2:])
    if not path:
        return (DIMENSIONS.index(dim),)
    return (DIMENSIONS.index(dim), _order_key(dim, path[0]))


def aggregate(items: Iterable[Item]) -> tuple[tuple[NodeScore, ...], dict[str, float], int]:
    """Roll verdicts up to every node.

    Args:
        items: one item per graded question, in any order.

    Returns:
        (nodes in report order, macro accuracy per flat dimension, unscored count). The
        overall node is always first, even with no items.
    """
    counts: dict[tuple[str, tuple[str, ...]], _Counts] = defaultdict(_Counts)
    counts[("overall", ())] = _Counts()
    unscored = 0
    for it in items:
        if it.verdict == "unscored":
            unscored += 1
            continue
        for key in node_keys(it):
            counts[key].add(it.verdict)
    nodes = []
    for key in sorted(counts, key=node_sort_key):
        dim, path = key
        c = counts[key]
        abbr = _abbreviation(path[0], path[1]) if dim == "tree" and len(path) == 2 else (
            _abbreviation(dim, path[0]) if path else ""
        )
        nodes.append(NodeScore(dim, path, abbr, c.n, c.correct, c.unparsed, c.refused, c.errors))
    macro: dict[str, float] = {}
    for dim in ("task", "department", "granularity", "modality", "label"):
        accs = [
            n.accuracy for n in nodes
            if n.dimension == dim and n.n and not (dim == "department" and n.path == (NA_DEPARTMENT,))
        ]
        if accs:
            macro[dim] = sum(accs) / len(accs)
    return tuple(nodes), macro, unscored

