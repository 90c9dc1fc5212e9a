"""Reads of a circular run's rotations: how many each question has, and their answers.

A circular run stores each rotation of a question as its own row of ``run_questions`` and
its own attempts, keyed by ``rotation`` (0 = the original order, read by every vanilla
path). These reads give scoring the other rotations; like :mod:`.grades`, each function
takes the ``sqlite3.Connection`` of a ``db.read``.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from gmai_eval.server.store.grades import OPTION_COLUMNS, PendingRow, pending_from


@dataclass(frozen=True)
class RotationAnswer:
    """The final attempt of one rotation r > 0 of a question."""

    rotation: int
    """Rotation asked (1..k-1)."""
    row: PendingRow
    """The attempt, with the question's original options and key."""


def rotation_counts(s: sqlite3.Connection, run_id: str) -> dict[int, int]:
    """idx -> how many rotations of the question the run asks (1 outside circular runs)."""
    return {
        int(r[0]): int(r[1])
        for r in s.execute(
            "SELECT idx, COUNT(*) FROM run_questions WHERE run_id = ? GROUP BY idx", [run_id]
        ).fetchall()
    }


def rotation_answers(s: sqlite3.Connection, run_id: str) -> list[RotationAnswer]:
    """The final attempts of rotations 1..k-1, by question index then rotation."""
    rows = s.execute(
        "SELECT a.idx, a.outcome, a.status, a.labels, a.text, q.answer, "
        f"{OPTION_COLUMNS}, a.attempt, b.multi_choice, a.rotation FROM attempts a JOIN runs r ON r.id = a.run_id "
        "JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = a.idx "
        "JOIN benchmarks b ON b.id = r.benchmark_id "
        "WHERE a.run_id = ? AND a.final = 1 AND a.rotation > 0 ORDER BY a.idx, a.rotation",
        [run_id],
    ).fetchall()
    return [
        RotationAnswer(int(r[13]), p) for r, p in zip(rows, pending_from(rows), strict=True)
    ]
