"""Repository of the grading area: grades, judge calls, and the reads scoring needs.

Every function takes the ``sqlite3.Connection`` handed out by
:meth:`~gmai_eval.server.store.database.Database.read` or ``write``; callers wrap them, for
example ``db.read(lambda s: graded_rows(s, run_id, "2024", ""))``. Grades are keyed by
``(run_id, idx, era, judge)`` and upserted, so grading is idempotent.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gmai_eval.server.records import (
    OPTION_LABELS,
    AnswerStatus,
    AttemptOutcome,
    Grade,
    Recorded,
)
from gmai_eval.server.store.suggest import unknown_in

OPTION_COLUMNS = ", ".join(f"q.option_{lab.lower()}" for lab in OPTION_LABELS)
"""The option columns of `questions` (alias q) in label order, for SELECT lists."""


@dataclass(frozen=True)
class RunInfo:
    """What scoring needs to know about a run."""

    id: str
    """Run id."""
    model: str
    """Model name."""
    benchmark_id: int
    """Benchmark row id."""
    benchmark: str
    """Benchmark name."""
    benchmark_digest: str
    """Benchmark digest at creation."""
    state: str
    """Run state."""
    era: str
    """The run's extraction era (from its parameters)."""
    total: int
    """Questions in the run (in a circular run too: questions, not asks)."""
    created_at: str
    """ISO-8601 UTC."""
    finished_at: str
    """ISO-8601 UTC or ``""``."""
    model_version: str = ""
    """Most frequent model version reported in the run's answers."""
    multi_choice: bool = False
    """The run's benchmark holds multi-answer questions."""
    circular: bool = False
    """A circular run: every question was asked once per rotation of its options."""


@dataclass(frozen=True)
class PendingRow:
    """A final attempt together with its question's key and options."""

    recorded: Recorded
    """The attempt."""
    choices: tuple[tuple[str, str], ...]
    """The question's non-empty options."""
    answer: str | None
    """The correct label (``A,C`` for a multi-answer question), or None."""
    multi_choice: bool = False
    """The question is multi-answer."""


@dataclass(frozen=True)
class GradedRow:
    """One graded question with its taxonomy fields."""

    idx: int
    """Benchmark row index."""
    verdict: str
    """Verdict."""
    extracted: str
    """Extracted label(s)."""
    method: str
    """Extraction method."""
    answer: str | None
    """Correct label."""
    category: str
    """Answer label text."""
    task: str
    """Clinical VQA task."""
    department: str
    """Department ('' = N/A)."""
    granularity: str
    """Perceptual granularity."""
    modality: str
    """Modality."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def run_info(s: sqlite3.Connection, run_id: str) -> RunInfo:
    """Load a run's header.

    Raises:
        NotFound: no such run.
    """
    row = s.execute(
        "SELECT r.id, r.model, r.benchmark_id, b.name, r.benchmark_digest, r.state, r.params,"
        " r.total, r.created_at, r.finished_at, b.multi_choice FROM runs r JOIN benchmarks b ON b.id = r.benchmark_id"
        " WHERE r.id = ?",
        [run_id],
    ).fetchone()
    if row is None:
        raise unknown_in(s, "run", run_id)
    era = _era_of(row[6])
    circular = _circular_of(row[6])
    total = row[7]
    if circular:
        (total,) = s.execute(
            "SELECT COUNT(*) FROM run_questions WHERE run_id = ? AND rotation = 0", [run_id]
        ).fetchone()
    version = s.execute(
        "SELECT model_version FROM attempts WHERE run_id = ? AND final = 1 AND model_version != ''"
        " GROUP BY model_version ORDER BY COUNT(*) DESC LIMIT 1",
        [run_id],
    ).fetchone()
    return RunInfo(
        id=row[0],
        model=row[1],
        benchmark_id=row[2],
        benchmark=row[3],
        benchmark_digest=row[4],
        state=row[5],
        era=era,
        total=total,
        created_at=row[8],
        finished_at=row[9] or "",
        model_version=version[0] if version else "",
        multi_choice=bool(row[10]),
        circular=circular,
    )


def run_era(s: sqlite3.Connection, run_id: str) -> str:
    """The extraction era of a run's parameters (what :func:`run_info` says, in one lookup).

    Raises:
        NotFound: no such run.
    """
    row = s.execute("SELECT params FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None:
        raise unknown_in(s, "run", run_id)
    return _era_of(row[0])


def _era_of(params_json: str | None) -> str:
    try:
        return str(json.loads(params_json or "{}").get("extraction_era") or "2024")
    except (ValueError, AttributeError):
        return "2024"


def _circular_of(params_json: str | None) -> bool:
    try:
        return bool(json.loads(params_json or "{}").get("circular"))
    except (ValueError, AttributeError):
        return False


def pending_from(rows: Iterable[Sequence[object]]) -> list[PendingRow]:
    """Decode rows of (idx, outcome, status, labels, text, answer, options A-E, attempt, ...)."""
    out = []
    for r in rows:
        labels = tuple(str(x) for x in json.loads(str(r[3]) or "[]"))
        rec = Recorded(
            idx=int(str(r[0])), outcome=AttemptOutcome(str(r[1])), status=AnswerStatus(str(r[2] or "answered")),
            labels=labels, text=str(r[4]),
            attempt=int(str(r[11])),
        )
        opts = tuple((lab, str(text)) for lab, text in zip(OPTION_LABELS, r[6:11], strict=True) if text not in (None, ""))
        out.append(PendingRow(rec, opts, None if r[5] in (None, "") else str(r[5]), bool(r[12])))
    return out


def final_attempts(
    s: sqlite3.Connection, run_id: str, *, ungraded_for: tuple[str, str] | None = None
) -> list[PendingRow]:
    """Final attempts of a run with their questions, ordered by index (rotation 0: in a
    circular run, the vanilla answers; :func:`rotation_attempts` reads the others).

    Args:
        s: database handle.
        run_id: the run.
        ungraded_for: ``(era, judge)``: only attempts that have no grade for it.
    """
    sql = (
        "SELECT a.idx, a.outcome, a.status, a.labels, a.text, q.answer, "
        f"{OPTION_COLUMNS}, a.attempt, b.multi_choice FROM attempts a JOIN runs r ON r.id = a.run_id "
        "JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = a.idx "
        "JOIN benchmarks b ON b.id = r.benchmark_id "
        "WHERE a.run_id = ? AND a.final = 1 AND a.rotation = 0"
    )
    params: list[object] = [run_id]
    if ungraded_for is not None:
        sql += (
            " AND NOT EXISTS (SELECT 1 FROM grades g WHERE g.run_id = a.run_id AND g.idx = a.idx"
            " AND g.era = ? AND g.judge = ? AND (g.attempt = a.attempt OR g.attempt = 0))"
        )
        params += list(ungraded_for)
    sql += " ORDER BY a.idx"
    return pending_from(s.execute(sql, params).fetchall())


def upsert_grades(s: sqlite3.Connection, run_id: str, era: str, judge: str, grades: Iterable[Grade]) -> int:
    """Insert or replace grades; return how many."""
    rows = [
        (run_id, g.idx, era, judge, g.extracted, g.method, g.verdict, g.log, g.attempt) for g in grades
    ]
    s.executemany(
        "INSERT OR REPLACE INTO grades (run_id, idx, era, judge, extracted, method, verdict, log, attempt)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    return len(rows)


def delete_grades(s: sqlite3.Connection, run_id: str, era: str, judge: str) -> int:
    """Delete a run's grades for one (era, judge); return how many."""
    cur = s.execute("DELETE FROM grades WHERE run_id = ? AND era = ? AND judge = ?", (run_id, era, judge))
    return cur.rowcount


def verdicts(s: sqlite3.Connection, run_id: str, era: str, judge: str) -> dict[int, str]:
    """idx -> verdict for one grading of a run."""
    return {
        int(r[0]): str(r[1])
        for r in s.execute(
            "SELECT idx, verdict FROM grades WHERE run_id = ? AND era = ? AND judge = ?", [run_id, era, judge]
        ).fetchall()
    }


def graded_rows(s: sqlite3.Connection, run_id: str, era: str, judge: str) -> list[GradedRow]:
    """Graded questions of a run with their taxonomy fields, ordered by index."""
    rows = s.execute(
        "SELECT g.idx, g.verdict, g.extracted, g.method, q.answer, q.category, q.clinical_task,"
        " q.department, q.granularity, q.modality FROM grades g JOIN runs r ON r.id = g.run_id"
        " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = g.idx"
        " WHERE g.run_id = ? AND g.era = ? AND g.judge = ? ORDER BY g.idx",
        [run_id, era, judge],
    ).fetchall()
    return [
        GradedRow(
            idx=r[0], verdict=r[1], extracted=r[2], method=r[3], answer=r[4], category=r[5],
            task=r[6], department=r[7], granularity=r[8], modality=r[9],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class QuestionFields:
    """A question's key and taxonomy fields (what a verdict needs to be rolled up)."""

    answer: str | None
    """Correct label."""
    category: str
    """Answer label text."""
    task: str
    """Clinical VQA task."""
    department: str
    """Department ('' = N/A)."""
    granularity: str
    """Perceptual granularity."""
    modality: str
    """Modality."""


def question_fields(s: sqlite3.Connection, run_id: str) -> dict[int, QuestionFields]:
    """idx -> key and taxonomy fields, for the questions of a run."""
    rows = s.execute(
        "SELECT q.idx, q.answer, q.category, q.clinical_task, q.department, q.granularity, q.modality"
        " FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
        " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx WHERE rq.run_id = ? AND rq.rotation = 0",
        [run_id],
    ).fetchall()
    return {int(r[0]): QuestionFields(r[1], r[2], r[3], r[4], r[5], r[6]) for r in rows}


def option_labels(s: sqlite3.Connection, run_id: str) -> dict[int, tuple[str, ...]]:
    """idx -> the labels of the non-empty options, for the questions of a run."""
    rows = s.execute(
        "SELECT q.idx, " + OPTION_COLUMNS + " FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
        " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx WHERE rq.run_id = ? AND rq.rotation = 0",
        [run_id],
    ).fetchall()
    return {
        int(r[0]): tuple(lab for lab, text in zip(OPTION_LABELS, r[1:], strict=True) if text not in (None, ""))
        for r in rows
    }


@dataclass(frozen=True)
class ScoredAnswer:
    """A question whose final attempt was answered with option scores, with its key."""

    idx: int
    """Benchmark row index."""
    labels: tuple[str, ...]
    """Labels of the question's non-empty options, in order."""
    option_scores: dict[str, float]
    """The answer's option probabilities, as the model sent them."""
    answer: str
    """Correct label."""


def scored_answers(s: sqlite3.Connection, run_id: str) -> list[ScoredAnswer]:
    """The questions of a run with a key whose final attempt is answered with option scores,
    ordered by index (what calibration reads; one attempt lookup per question). In a
    circular run these are the vanilla answers (rotation 0)."""
    rows = s.execute(
        "SELECT rq.idx, " + OPTION_COLUMNS + ", q.answer, a.option_scores"
        " FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
        " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx"
        " JOIN attempts a ON a.run_id = rq.run_id AND a.idx = rq.idx AND a.rotation = rq.rotation"
        " AND a.final = 1"
        " WHERE rq.run_id = ? AND rq.rotation = 0 AND a.outcome = 'answered' AND q.answer IS NOT NULL"
        " ORDER BY rq.idx",
        [run_id],
    ).fetchall()
    out = []
    for r in rows:
        scores = {str(k): float(v) for k, v in json.loads(r[7] or "{}").items()}
        if scores:
            labels = tuple(lab for lab, text in zip(OPTION_LABELS, r[1:6], strict=True) if text not in (None, ""))
            out.append(ScoredAnswer(int(r[0]), labels, scores, str(r[6])))
    return out


def put_summary(s: sqlite3.Connection, run_id: str, era: str, summary: str) -> None:
    """Store (replace) the JSON summary the metrics collector exports for a run."""
    s.execute(
        "INSERT OR REPLACE INTO run_summaries (run_id, era, summary, computed_at) VALUES (?, ?, ?, ?)",
        (run_id, era, summary, _now()),
    )


def finished_runs_without_summary(s: sqlite3.Connection) -> list[str]:
    """Runs in a final state (succeeded, failed, cancelled) with no stored summary, oldest first.

    These are runs of a database written by an older release (or whose end-of-run grading
    failed): their final grading has not been done by this release yet.
    """
    rows = s.execute(
        "SELECT id FROM runs r WHERE state IN ('succeeded', 'failed', 'cancelled')"
        " AND NOT EXISTS (SELECT 1 FROM run_summaries m WHERE m.run_id = r.id)"
        " ORDER BY created_at, id"
    ).fetchall()
    return [str(r[0]) for r in rows]


def question_texts(s: sqlite3.Connection, run_id: str) -> dict[int, str]:
    """idx -> question text for the questions of a run."""
    return {
        int(r[0]): str(r[1])
        for r in s.execute(
            "SELECT q.idx, q.question FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
            " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx WHERE rq.run_id = ? AND rq.rotation = 0",
            [run_id],
        ).fetchall()
    }


def record_judge_call(
    s: sqlite3.Connection, run_id: str, idx: int, judge: str, attempt: int, prompt: str, reply: str
) -> None:
    """Record one judge call (upsert on run, idx, judge, attempt)."""
    s.execute(
        "INSERT OR REPLACE INTO judge_calls (run_id, idx, judge, attempt, prompt, reply, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (run_id, idx, judge, attempt, prompt, reply, _now()),
    )


def judge_call_count(s: sqlite3.Connection, run_id: str, judge: str) -> int:
    """Number of recorded judge calls of a run."""
    return int(s.execute("SELECT COUNT(*) FROM judge_calls WHERE run_id = ? AND judge = ?", [run_id, judge]).fetchone()[0])


def latest_completed_run_ids(s: sqlite3.Connection) -> list[str]:
    """Id of the latest succeeded run of each (model, benchmark), by finish time."""
    rows = s.execute(
        "SELECT id FROM runs r WHERE state = 'succeeded' AND id = ("
        " SELECT r2.id FROM runs r2 WHERE r2.state = 'succeeded' AND r2.model = r.model"
        " AND r2.benchmark_id = r.benchmark_id"
        " ORDER BY COALESCE(r2.finished_at, r2.created_at) DESC, r2.id DESC LIMIT 1)"
        " ORDER BY model, benchmark_id"
    ).fetchall()
    return [r[0] for r in rows]
