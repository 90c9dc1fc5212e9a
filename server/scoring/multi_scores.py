"""Grades and scores of multi-answer questions: exact set, ACC_mcls and Recall_mcls (pure).

A multi-answer question's key is a set of letters (stored ``A,C``). A prediction is a set
too: typed labels as they are, or free text read by :mod:`.multi_extraction`.

Verdicts keep their meaning: ``correct`` when the predicted set equals the key exactly,
``incorrect`` for any other non-empty set, ``unparsed``, ``refused``, ``error`` and
``unscored`` as for single answers. So a node's accuracy is the exact-set accuracy, with
its Wilson interval.

The paper's loose metrics (reference §5.5), per question, with P the predicted set and G
the key::

    ACC_mcls    = |P ∩ G| / |P|      (0 when P is empty)
    Recall_mcls = |P ∩ G| / |G|

An unparsed, refused or error answer has P empty and scores 0 on both. A node's value is
the **mean over its questions**; the reference says the averaging is inferred (the paper
gives only the per-case formulas), and this is the reading that matches its other
per-question means. Each mean gets a normal 95% interval, ``mean ± 1.96 s / sqrt(n)``
with ``s`` the sample standard deviation, clamped to [0, 1] ((0, 1) below two questions).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from gmai_eval.server.records import AttemptOutcome, Grade, Recorded, Verdict
from gmai_eval.server.scoring.aggregate import Item, node_keys
from gmai_eval.server.scoring.multi_extraction import canonical, infer_letters, letter_set
from gmai_eval.server.scoring.stats import Z95
from gmai_eval.server.scoring.verdicts import NON_ANSWER_STATUSES

NodeKey = tuple[str, tuple[str, ...]]
"""A node: (dimension, path), as :func:`~.aggregate.node_keys` yields it."""


def grade_multi(rec: Recorded, choices: Mapping[str, str], answer: str | None) -> Grade:
    """Grade one recorded answer to a multi-answer question.

    Args:
        rec: the final attempt.
        choices: label -> option text of the question.
        answer: the key as stored (``A,C``), None when the question cannot be scored.

    Returns:
        The grade; ``extracted`` holds the predicted set as stored (``A,C``), ``Z`` or ``""``.
    """
    if rec.outcome != AttemptOutcome.ANSWERED:
        return Grade(rec.idx, "", "error", Verdict.UNSCORED if answer is None else Verdict.ERROR, attempt=rec.attempt)
    if rec.status in NON_ANSWER_STATUSES:
        verdict = Verdict.UNSCORED if answer is None else Verdict.REFUSED
        return Grade(rec.idx, "", "status", verdict, rec.status, rec.attempt)
    if rec.labels:
        chosen, method = canonical(rec.labels), "label"
    else:
        found = infer_letters(rec.text, choices)
        chosen, method = found.joined, found.method
    if answer is None:
        verdict = Verdict.UNSCORED
    elif chosen == "Z":
        verdict = Verdict.REFUSED
    elif not chosen:
        verdict = Verdict.UNPARSED
    else:
        verdict = Verdict.CORRECT if letter_set(chosen) == letter_set(answer) else Verdict.INCORRECT
    return Grade(rec.idx, chosen, method, verdict, attempt=rec.attempt)


def question_mcls(extracted: str, verdict: str, answer: str | None) -> tuple[float, float]:
    """(ACC_mcls, Recall_mcls) of one graded question; (0, 0) unless it chose options."""
    if verdict not in (Verdict.CORRECT, Verdict.INCORRECT) or not answer:
        return 0.0, 0.0
    predicted, key = letter_set(extracted), letter_set(answer)
    if not predicted or not key:
        return 0.0, 0.0
    match = len(predicted & key)
    return match / len(predicted), match / len(key)


def _mean_interval(total: float, squares: float, n: int) -> tuple[float, float]:
    if n < 2:
        return 0.0, 1.0
    mean = total / n
    var = max(0.0, (squares - n * mean * mean) / (n - 1))
    half = Z95 * math.sqrt(var / n)
    return max(0.0, mean - half), min(1.0, mean + half)


@dataclass(frozen=True)
class MclsScore:
    """The paper's multi-answer metrics of one node."""

    n: int
    """Questions scored (the node's n)."""
    acc_sum: float
    """Sum of the questions' ACC_mcls."""
    acc_squares: float
    """Sum of their squares (for the interval)."""
    recall_sum: float
    """Sum of the questions' Recall_mcls."""
    recall_squares: float
    """Sum of their squares."""

    @property
    def acc_mcls(self) -> float:
        """Mean ACC_mcls (0 for an empty node)."""
        return self.acc_sum / self.n if self.n else 0.0

    @property
    def recall_mcls(self) -> float:
        """Mean Recall_mcls (0 for an empty node)."""
        return self.recall_sum / self.n if self.n else 0.0

    @property
    def acc_ci(self) -> tuple[float, float]:
        """Normal 95% interval of the mean ACC_mcls."""
        return _mean_interval(self.acc_sum, self.acc_squares, self.n)

    @property
    def recall_ci(self) -> tuple[float, float]:
        """Normal 95% interval of the mean Recall_mcls."""
        return _mean_interval(self.recall_sum, self.recall_squares, self.n)


@dataclass(frozen=True)
class MclsFigures:
    """A node's multi-answer metrics as reported: the means with their intervals.

    What ``NodeScore.multi_answer`` carries; a report read through the API
    (``report --server``) holds these in place of the :class:`MclsScore` sums, and renders
    the same, since both have the same four attributes.
    """

    acc_mcls: float
    """Mean ACC_mcls."""
    acc_ci: tuple[float, float]
    """Its 95% interval."""
    recall_mcls: float
    """Mean Recall_mcls."""
    recall_ci: tuple[float, float]
    """Its 95% interval."""


def rollup(items: Sequence[Item], metrics: Sequence[tuple[float, float]]) -> dict[NodeKey, MclsScore]:
    """Mean ACC_mcls and Recall_mcls at every node the items count in.

    Args:
        items: one item per graded question (``unscored`` ones are skipped), as for
            :func:`~.aggregate.aggregate`.
        metrics: (ACC_mcls, Recall_mcls) of each item, parallel to ``items``.

    Returns:
        node -> its score, for every node with at least one scored question, plus the
        overall node (always present).
    """
    sums: dict[NodeKey, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
    sums[("overall", ())] = [0, 0.0, 0.0, 0.0, 0.0]
    for it, (acc, recall) in zip(items, metrics, strict=True):
        if it.verdict == Verdict.UNSCORED:
            continue
        for key in node_keys(it):
            s = sums[key]
            s[0] += 1
            s[1] += acc
            s[2] += acc * acc
            s[3] += recall
            s[4] += recall * recall
    return {key: MclsScore(int(s[0]), s[1], s[2], s[3], s[4]) for key, s in sums.items()}


def mcls_of_rows(rows: Iterable[tuple[Item, str, str | None]]) -> dict[NodeKey, MclsScore]:
    """:func:`rollup` over (item, extracted, key) triples of graded questions."""
    items: list[Item] = []
    metrics: list[tuple[float, float]] = []
    for it, extracted, answer in rows:
        items.append(it)
        metrics.append(question_mcls(extracted, it.verdict, answer))
    return rollup(items, metrics)
