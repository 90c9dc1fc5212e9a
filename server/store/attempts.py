"""Repository of answer attempts: one row per AnswerVQA attempt, and progress counts.

Every attempt is one row of ``attempts`` keyed by ``(run_id, idx, rotation, attempt)``
(``rotation`` is 0 except in circular runs); the question's last attempt has ``final = 1``. Rows are upserted on their key, never deleted.
A write function must never return a cursor: finalising it on the event-loop thread races
the writer thread (SQLITE_MISUSE under load).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from gmai_eval.server.records import AnswerStatus, AttemptOutcome
from gmai_eval.server.store.database import Database


def now_iso() -> str:
    """Current UTC time, ISO-8601."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class Attempt:
    """One AnswerVQA attempt (or a question refused before sending)."""

    run_id: str
    """Run."""
    idx: int
    """Question index."""
    attempt: int
    """1-based attempt number."""
    request_id: str
    """AnswerVQARequest.request_id."""
    outcome: AttemptOutcome
    """How the attempt ended."""
    final: bool
    """The question's final attempt."""
    code: str = "OK"
    """gRPC status name or local reason."""
    error: str = ""
    """Error message."""
    status: AnswerStatus | None = None
    """What the model said it did; None for an error (stored as an empty string)."""
    labels: tuple[str, ...] = ()
    """Selected labels."""
    text: str = ""
    """Free text."""
    option_scores: dict[str, float] | None = None
    """Label -> probability."""
    model_version: str = ""
    """Version that answered."""
    endpoint: str = ""
    """Replica called."""
    latency_s: float = 0.0
    """Seconds."""
    request_bytes: int = 0
    """Serialized request size."""
    rotation: int = 0
    """Rotation of the question's options asked (0: the original order)."""


_INSERT_ATTEMPT = (
    "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, code, error,"
    " status, labels, text, option_scores, model_version, endpoint, latency_s, request_bytes,"
    " created_at, rotation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(run_id, idx, rotation, attempt) DO UPDATE SET request_id = excluded.request_id,"
    " outcome = excluded.outcome, final = excluded.final, code = excluded.code,"
    " error = excluded.error, status = excluded.status, labels = excluded.labels,"
    " text = excluded.text, option_scores = excluded.option_scores,"
    " model_version = excluded.model_version, endpoint = excluded.endpoint,"
    " latency_s = excluded.latency_s, request_bytes = excluded.request_bytes,"
    " created_at = excluded.created_at"
)


_LABELS_JSON: dict[tuple[str, ...], str] = {}
"""JSON of label tuples seen so far (a handful: single letters and a few sets)."""


def _labels_json(labels: tuple[str, ...]) -> str:
    text = _LABELS_JSON.get(labels)
    if text is None:
        text = json.dumps(list(labels))
        if len(_LABELS_JSON) < 4096:
            _LABELS_JSON[labels] = text
    return text


def _attempt_args(a: Attempt, created_at: str | None = None) -> tuple[object, ...]:
    return (
        a.run_id,
        a.idx,
        a.attempt,
        a.request_id,
        a.outcome,
        1 if a.final else 0,
        a.code,
        a.error,
        a.status or "",
        _labels_json(a.labels),
        a.text,
        json.dumps(a.option_scores, sort_keys=True) if a.option_scores else "{}",
        a.model_version,
        a.endpoint,
        a.latency_s,
        a.request_bytes,
        created_at or now_iso(),
        a.rotation,
    )


async def arecord_attempt(db: Database, attempt: Attempt) -> None:
    """Commit one attempt (upsert on its key); returns once it is durable."""
    args = _attempt_args(attempt)

    def fn(d: sqlite3.Connection) -> None:
        # Never hand a cursor back to another thread: finalising it there races the writer.
        d.execute(_INSERT_ATTEMPT, args)

    await db.awrite(fn)


def submit_attempts(
    db: Database, attempts: Sequence[Attempt]
) -> concurrent.futures.Future[None]:
    """Queue several attempts as one write (upserts on their keys).

    Returns:
        A future that resolves once they are committed (their ``created_at`` is the time
        of this call).
    """
    created_at = now_iso()
    rows = [_attempt_args(a, created_at) for a in attempts]

    def fn(d: sqlite3.Connection) -> None:
        d.executemany(_INSERT_ATTEMPT, rows)

    return db.submit(fn)


def list_attempts(db: Database, run_id: str) -> list[Attempt]:
    """Every attempt of a run, by question index, rotation, then attempt."""
    rows = db.read(
        lambda d: d.execute(
            "SELECT run_id, idx, attempt, request_id, outcome, final, code, error, status, labels,"
            " text, option_scores, model_version, endpoint, latency_s, request_bytes, rotation"
            " FROM attempts WHERE run_id = ? ORDER BY idx, rotation, attempt",
            (run_id,),
        ).fetchall()
    )
    return [
        Attempt(
            run_id=r[0],
            idx=r[1],
            attempt=r[2],
            request_id=r[3],
            outcome=AttemptOutcome(r[4]),
            final=bool(r[5]),
            code=r[6],
            error=r[7],
            status=AnswerStatus(r[8]) if r[8] else None,
            labels=tuple(json.loads(r[9])),
            text=r[10],
            option_scores=json.loads(r[11]),
            model_version=r[12],
            endpoint=r[13],
            latency_s=r[14],
            request_bytes=r[15],
            rotation=r[16],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class Counts:
    """Progress counts of a run as stored."""

    done: int
    """Questions (in a circular run: rotations) with a final attempt."""
    errors: int
    """Questions (in a circular run: rotations) whose final attempt is an error."""
    retries: int
    """Non-final attempts."""
    correct: int
    """Questions graded correct in the run's era (no judge)."""


def _counts(d: sqlite3.Connection, run_id: str, era: str) -> Counts:
    done, errors, retries = d.execute(
        "SELECT COALESCE(SUM(final), 0),"
        " COALESCE(SUM(final = 1 AND outcome = 'error'), 0), COALESCE(SUM(final = 0), 0)"
        " FROM attempts WHERE run_id = ?",
        (run_id,),
    ).fetchone()
    (correct,) = d.execute(
        "SELECT COUNT(*) FROM grades WHERE run_id = ? AND era = ? AND judge = ''"
        " AND verdict = 'correct'",
        (run_id, era),
    ).fetchone()
    return Counts(int(done), int(errors), int(retries), int(correct))


def run_counts(db: Database, run_id: str, era: str) -> Counts:
    """Progress counts of a run."""
    return db.read(lambda d: _counts(d, run_id, era))


async def arun_counts(db: Database, run_id: str, era: str) -> Counts:
    """Awaitable :func:`run_counts`."""
    return await db.aread(lambda d: _counts(d, run_id, era))
