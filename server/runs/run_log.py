"""A run's life cycle, told twice: one log line per event, and one ``run_events`` row.

Every event (created, preflight_passed, resumed, outage_started, outage_ended,
interrupted, cancelled, succeeded, failed) is logged on the ``gmai_eval.server.runs.events``
logger as ``run ID KIND: MESSAGE`` with ``run_id`` and ``event`` as structured fields
(``serve --log-format json`` shows them), and stored as the run's history. A failure to
store an event (a full disk) is logged and never stops the run.
"""

from __future__ import annotations

import concurrent.futures
import logging

from gmai_eval.server.errors import StoreError
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.error_groups import ErrorGroup
from gmai_eval.server.store.run_events import arecord_event, submit_event

log = logging.getLogger("gmai_eval.server.runs.events")


def _log(run_id: str, kind: str, message: str, level: int) -> None:
    log.log(level, "run %s %s: %s", run_id, kind, message, extra={"run_id": run_id, "event": kind})


async def note(db: Database, run_id: str, kind: str, message: str, *, level: int = logging.INFO) -> None:
    """Log an event of a run and store it in the run's history."""
    _log(run_id, kind, message, level)
    try:
        await arecord_event(db, run_id, kind, message)
    except StoreError as exc:
        log.warning("run %s: event %s not stored: %s", run_id, kind, exc)


def note_soon(db: Database, run_id: str, kind: str, message: str, *, level: int = logging.INFO) -> None:
    """Like :func:`note`, from synchronous code: the event is stored without waiting."""
    _log(run_id, kind, message, level)

    def stored(f: concurrent.futures.Future[None]) -> None:
        if f.exception() is not None:
            log.warning("run %s: event %s not stored: %s", run_id, kind, f.exception())

    try:
        submit_event(db, run_id, kind, message).add_done_callback(stored)
    except StoreError as exc:  # the database is closed
        log.warning("run %s: event %s not stored: %s", run_id, kind, exc)


def retries_summary(groups: list[ErrorGroup]) -> str:
    """``"12 retried (10 UNAVAILABLE, 2 DEADLINE_EXCEEDED)"``, or ``"no retries"``."""
    by_code: dict[str, int] = {}
    for g in groups:
        by_code[g.code] = by_code.get(g.code, 0) + g.count
    if not by_code:
        return "no retries"
    parts = ", ".join(f"{n} {code}" for code, n in sorted(by_code.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"{sum(by_code.values())} retried ({parts})"
