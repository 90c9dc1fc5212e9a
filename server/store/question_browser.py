"""Reads for the viewer's question browser: one page of a run's questions, filtered (read-only).

A page is the run's questions with their final attempt and grade (the run's era; in a
circular run, rotation 0: the vanilla answers, as every vanilla read), narrowed
by a :class:`QuestionFilter`: one node of the lexical tree, a verdict, an answer status and
a text search over the question and the model's text. Every function takes the
``sqlite3.Connection`` handed out by
:meth:`~gmai_eval.server.store.database.Database.read`; nothing here writes.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from gmai_eval.server.records import OPTION_LABELS

NODE_COLUMNS: dict[str, str] = {
    "task": "clinical_task",
    "department": "department",
    "granularity": "granularity",
    "modality": "modality",
}
"""Dimension -> its column of ``questions``."""

UNGRADED = "ungraded"
"""Verdict filter value for answers without a grade."""
ERROR_STATUS = "error"
"""Status filter value for a final attempt that is an error."""
NOT_ANSWERED = "not_answered"
"""Status filter value for a question without a final attempt."""


@dataclass(frozen=True)
class QuestionFilter:
    """What the question browser narrows a run's questions to ('' = no condition)."""

    dimension: str = ""
    """Dimension of the node (a key of :data:`NODE_COLUMNS`)."""
    node: str = ""
    """Node name as stored (department: '' is the N/A node, so ``dimension`` decides)."""
    verdict: str = ""
    """A verdict, or :data:`UNGRADED`."""
    status: str = ""
    """An answer status, :data:`ERROR_STATUS` or :data:`NOT_ANSWERED`."""
    text: str = ""
    """Substring of the question or the model's text (case-insensitive for ASCII)."""


@dataclass(frozen=True)
class BrowserRow:
    """One question as the browser shows it."""

    idx: int
    """Benchmark row index."""
    question: str
    """Question text."""
    options: tuple[tuple[str, str], ...]
    """(label, text) of the non-empty options."""
    answer: str | None
    """Correct label."""
    image_sha256: str
    """Key of the question's image."""
    task: str
    """Clinical VQA task."""
    department: str
    """Department ('' = N/A)."""
    granularity: str
    """Perceptual granularity."""
    modality: str
    """Modality."""
    status: str
    """Answer status, ``error`` for an error, '' when not answered."""
    labels: tuple[str, ...]
    """Labels the model selected."""
    text: str
    """The model's text, or the error's code and message."""
    verdict: str
    """Verdict of the grading ('' when ungraded)."""


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(flt: QuestionFilter, era: str, judge: str, run_id: str) -> tuple[str, list[object]]:
    clauses = ["rq.run_id = ?", "rq.rotation = 0"]
    args: list[object] = [era, judge, run_id]
    if flt.dimension:
        clauses.append(f"q.{NODE_COLUMNS[flt.dimension]} = ?")
        args.append(flt.node)
    if flt.verdict == UNGRADED:
        clauses.append("g.verdict IS NULL")
    elif flt.verdict:
        clauses.append("g.verdict = ?")
        args.append(flt.verdict)
    if flt.status == ERROR_STATUS:
        clauses.append("a.outcome = 'error'")
    elif flt.status == NOT_ANSWERED:
        clauses.append("a.outcome IS NULL")
    elif flt.status:
        clauses.append("a.outcome = 'answered' AND a.status = ?")
        args.append(flt.status)
    if flt.text:
        clauses.append("(q.question LIKE ? ESCAPE '\\' OR coalesce(a.text, '') LIKE ? ESCAPE '\\')")
        args.extend([_like(flt.text)] * 2)
    return " AND ".join(clauses), args


_FROM = (
    " FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
    " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx"
    " LEFT JOIN attempts a ON a.run_id = rq.run_id AND a.idx = rq.idx AND a.rotation = rq.rotation"
    " AND a.final = 1"
    " LEFT JOIN grades g ON g.run_id = rq.run_id AND g.idx = rq.idx AND g.era = ? AND g.judge = ?"
)


def question_page(
    s: sqlite3.Connection, run_id: str, era: str, judge: str, flt: QuestionFilter, offset: int, limit: int
) -> tuple[int, list[BrowserRow]]:
    """(questions matching ``flt``, the page of them from ``offset``), ordered by index."""
    where, args = _where(flt, era, judge, run_id)
    total = int(s.execute(f"SELECT count(*){_FROM} WHERE {where}", args).fetchone()[0])
    options = ", ".join(f"q.option_{lab.lower()}" for lab in OPTION_LABELS)
    rows = s.execute(
        f"SELECT q.idx, q.question, {options}, q.answer, q.image_sha256, q.clinical_task, q.department,"
        " q.granularity, q.modality, a.outcome, a.status, a.labels, a.text, a.code, a.error, g.verdict"
        f"{_FROM} WHERE {where} ORDER BY q.idx LIMIT ? OFFSET ?",
        [*args, max(0, limit), max(0, offset)],
    ).fetchall()
    out = []
    for r in rows:
        opts = tuple((lab, str(t)) for lab, t in zip(OPTION_LABELS, r[2:7], strict=True) if t not in (None, ""))
        outcome = str(r[13] or "")
        out.append(BrowserRow(
            idx=int(r[0]), question=str(r[1]), options=opts, answer=None if r[7] in (None, "") else str(r[7]),
            image_sha256=str(r[8]), task=str(r[9]), department=str(r[10]), granularity=str(r[11]),
            modality=str(r[12]), status="error" if outcome == "error" else str(r[14] or ""),
            labels=tuple(str(x) for x in json.loads(r[15] or "[]")),
            text=f"{r[17]}: {r[18]}" if outcome == "error" else str(r[16] or ""), verdict=str(r[19] or ""),
        ))
    return total, out


def node_counts(s: sqlite3.Connection, run_id: str) -> dict[str, list[tuple[str, int]]]:
    """Dimension -> (node name, questions of the run in it), by name: the node filter's choices."""
    out: dict[str, list[tuple[str, int]]] = {}
    for dim, col in NODE_COLUMNS.items():
        out[dim] = [
            (str(r[0]), int(r[1]))
            for r in s.execute(
                f"SELECT q.{col}, count(*) FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
                " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx"
                f" WHERE rq.run_id = ? AND rq.rotation = 0 GROUP BY q.{col} ORDER BY q.{col}",
                [run_id],
            )
        ]
    return out

