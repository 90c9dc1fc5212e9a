"""The start-up integrity check: ``PRAGMA quick_check`` within a time budget.

``gmai-eval serve`` runs it before it opens the database for business, so a damaged file
(garbage over some pages, a truncated copy) is refused with a clear message instead of
accepting runs and failing later with a raw SQLite error. ``quick_check`` reads every page
but skips the index-content cross-checks of ``integrity_check``; on a file larger than the
budget allows, the check stops at the budget and says so (it never blocks a start for
long).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gmai_eval.server.errors import StoreCorrupted

_OPS_PER_CHECK = 1_000
"""SQLite virtual-machine steps between two looks at the clock."""


@dataclass(frozen=True)
class CheckResult:
    """What the start-up check found."""

    ok: bool
    """No problem found (in the part checked, when ``complete`` is False)."""
    complete: bool
    """The whole file was checked within the budget."""
    seconds: float
    """Time spent."""
    problems: tuple[str, ...] = ()
    """quick_check's first messages, when not ok."""


def quick_check(
    path: str | Path, budget_s: float = 30.0, *, clock: Callable[[], float] = time.monotonic
) -> CheckResult:
    """Run ``PRAGMA quick_check`` on ``path`` for at most about ``budget_s`` seconds.

    A file that does not exist yet passes (the store creates it). ``clock`` is injectable
    so that a test can run out of time without waiting.

    Raises:
        StoreCorrupted: the check found damage, or the file is not a SQLite database;
            the message names the file and the first problems.
    """
    path = Path(path)
    started = clock()
    if not path.exists():
        return CheckResult(ok=True, complete=True, seconds=0.0)
    deadline = started + budget_s
    uri = f"file:{path.resolve()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
    conn.set_progress_handler(lambda: 1 if clock() > deadline else 0, _OPS_PER_CHECK)
    try:
        rows = conn.execute("PRAGMA quick_check(8)").fetchall()
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            return CheckResult(ok=True, complete=False, seconds=clock() - started)
        raise _damaged(path, str(exc)) from exc
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, str(exc)) from exc
    finally:
        conn.close()
    problems = tuple(str(r[0]) for r in rows if r and r[0] != "ok")
    if problems:
        raise _damaged(path, "; ".join(problems[:3]))
    return CheckResult(ok=True, complete=True, seconds=clock() - started)


def _damaged(path: Path, what: str) -> StoreCorrupted:
    return StoreCorrupted(
        f"database {path.resolve()} is damaged: {what}. Refusing to serve it: restore the "
        "last backup (docs/deploy.md), or move the file aside to start with an empty one"
    )
