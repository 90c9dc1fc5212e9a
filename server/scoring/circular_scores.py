"""Circular scores of a run: every rotation graded, rolled up per node, and what answers follow.

Rotation 0 of a circular run is its vanilla answer: its verdict is the one the vanilla
scores use (the stored grade of the era, or of the judge's rescore). Rotations 1..k-1 are
graded here, in memory, by exact matching under the same era (extraction is pure, so a
read never writes): each answer is extracted against the rotated options the model saw
and mapped back to the original option. A question is circular-correct only when every
rotation is correct, so circular accuracy is never above vanilla accuracy. A question
with a rotation that has no final answer yet is left out of the circular numbers
(``incomplete``) and still counts in the vanilla ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gmai_eval.server.records import Verdict
from gmai_eval.server.scoring.aggregate import Item, RunScores, aggregate
from gmai_eval.server.scoring.circular import (
    Following,
    circular_verdict,
    following,
    grade_rotation,
    to_rotated,
)
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as store
from gmai_eval.server.store.rotations import rotation_answers, rotation_counts

_ANSWERED = frozenset({Verdict.CORRECT, Verdict.INCORRECT})


@dataclass(frozen=True)
class CircularResult:
    """The circular side of a circular run's scores."""

    scores: RunScores
    """Circular verdicts rolled up per node (``ungraded``: questions not scored)."""
    following: Following
    """Whether the answers follow a position or the option text."""
    incomplete: int
    """Questions with a rotation that has no final answer yet."""
    rows: tuple[store.GradedRow, ...] = ()
    """The complete questions, each with its circular verdict (for comparisons)."""


def circular_result(
    db: Database, info: store.RunInfo, era: str, judge: str, vanilla: list[store.GradedRow]
) -> CircularResult:
    """Grade a circular run's rotations and roll up its circular verdicts (read-only).

    Args:
        db: the database.
        info: the run's header.
        era: the extraction era of ``vanilla``.
        judge: the judge of ``vanilla`` (rotations 1..k-1 are always exact matching).
        vanilla: the run's graded rotation-0 rows, as the vanilla scores read them.
    """
    counts = db.read(lambda s: rotation_counts(s, info.id))
    labels = db.read(lambda s: store.option_labels(s, info.id))
    verdicts: dict[int, dict[int, str]] = {}
    chosen: dict[int, dict[int, str]] = {}
    for ans in db.read(lambda s: rotation_answers(s, info.id)):
        p = ans.row
        g = grade_rotation(p.recorded, p.choices, p.answer, era, ans.rotation)
        verdicts.setdefault(p.recorded.idx, {})[ans.rotation] = g.verdict
        letter = to_rotated(g.extracted, p.choices, ans.rotation) if g.verdict in _ANSWERED else ""
        chosen.setdefault(p.recorded.idx, {})[ans.rotation] = letter
    items, follow, incomplete, rows = [], [], 0, []
    for r in vanilla:
        k = counts.get(r.idx, 1)
        mine = {0: r.verdict, **verdicts.get(r.idx, {})}
        if any(rot not in mine for rot in range(k)):
            incomplete += 1
            continue
        v = circular_verdict([mine[rot] for rot in range(k)])
        items.append(Item(v, r.task, r.department, r.granularity, r.modality, r.category))
        rows.append(replace(r, verdict=v))
        first = r.extracted if r.verdict in _ANSWERED else ""
        letters = [first, *(chosen.get(r.idx, {}).get(rot, "") for rot in range(1, k))]
        follow.append((labels.get(r.idx, ()), letters))
    nodes, macro, unscored = aggregate(items)
    scores = RunScores(info.id, era, judge, nodes, macro, unscored, max(0, info.total - len(items)))
    return CircularResult(scores, following(follow), incomplete, tuple(rows))
