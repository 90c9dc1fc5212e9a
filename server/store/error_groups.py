"""Errors of a run grouped by code and message, with counts and example question indexes.

What ``gmai-eval runs show`` and GetRunReport print: the final errors (one per question
that ended in error) and the retried attempts, each grouped by ``(code, error)``, largest
groups first. Reads only.
"""

from __future__ import annotations

from dataclasses import dataclass

from gmai_eval.server.store.database import Database

EXAMPLES = 5
"""Example question indexes kept per group."""

MAX_GROUPS = 50
"""Most groups returned (the largest)."""


@dataclass(frozen=True)
class ErrorGroup:
    """Attempts that share a code and a message."""

    code: str
    """gRPC status name or the evaluator's reason."""
    message: str
    """The shared message."""
    count: int
    """Questions (final errors) or attempts (retries) in the group."""
    examples: tuple[int, ...]
    """Up to :data:`EXAMPLES` question indexes, ascending."""


_SQL = """
WITH g AS (
    SELECT code, error, idx,
           ROW_NUMBER() OVER (PARTITION BY code, error ORDER BY idx, attempt) AS rn,
           COUNT(*) OVER (PARTITION BY code, error) AS n
    FROM attempts WHERE run_id = ? AND final = ? AND outcome = 'error'
)
SELECT code, error, n, GROUP_CONCAT(idx) FROM (SELECT * FROM g WHERE rn <= ? ORDER BY idx)
GROUP BY code, error ORDER BY n DESC, code, error LIMIT ?
"""


def error_groups(db: Database, run_id: str, *, final: bool = True) -> list[ErrorGroup]:
    """A run's final errors (``final``) or retried attempts (not ``final``), grouped."""
    rows = db.read(
        lambda d: d.execute(_SQL, (run_id, 1 if final else 0, EXAMPLES, MAX_GROUPS)).fetchall()
    )
    return [
        ErrorGroup(
            code=str(code),
            message=str(error),
            count=int(n),
            examples=tuple(sorted(int(i) for i in str(idxs).split(","))),
        )
        for code, error, n, idxs in rows
    ]
