"""Repository of run events: a run's history, one row per life-cycle event, oldest first.

The runs stage writes them (creation, pre-flight, resumes, outages, the end); readers get
them through :func:`list_events` (``gmai-eval runs show``, GetRunReport).
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
from dataclasses import dataclass

from gmai_eval.server.store.attempts import now_iso
from gmai_eval.server.store.database import Database


@dataclass(frozen=True)
class RunEvent:
    """One step of a run's history."""

    at: str
    """ISO-8601 UTC."""
    kind: str
    """created, preflight_passed, resumed, outage_started, outage_ended, interrupted,
    cancelled, succeeded or failed."""
    message: str
    """Details, one line."""


def _insert(run_id: str, kind: str, message: str) -> tuple[str, tuple[object, ...]]:
    return (
        "INSERT INTO run_events (run_id, at, kind, message) VALUES (?, ?, ?, ?)",
        (run_id, now_iso(), kind, message),
    )


def submit_event(
    db: Database, run_id: str, kind: str, message: str = ""
) -> concurrent.futures.Future[None]:
    """Queue an event for the writer; the future resolves once it is committed."""
    sql, args = _insert(run_id, kind, message)

    def fn(d: sqlite3.Connection) -> None:
        d.execute(sql, args)

    return db.submit(fn)


async def arecord_event(db: Database, run_id: str, kind: str, message: str = "") -> None:
    """Record an event and wait for its commit."""
    sql, args = _insert(run_id, kind, message)

    def fn(d: sqlite3.Connection) -> None:
        d.execute(sql, args)

    await db.awrite(fn)


def list_events(db: Database, run_id: str) -> list[RunEvent]:
    """A run's events, oldest first."""
    rows = db.read(
        lambda d: d.execute(
            "SELECT at, kind, message FROM run_events WHERE run_id = ? ORDER BY id", (run_id,)
        ).fetchall()
    )
    return [RunEvent(str(r[0]), str(r[1]), str(r[2])) for r in rows]
