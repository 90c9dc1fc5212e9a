"""The frozen question list of a run, and what is read to ask its questions.

A run's questions are fixed in ``run_questions`` when it is created, one row per
question, or in a circular run one row per rotation of its options (each asked as a
question of its own: its own opaque id, its own attempts). A question is pending while
it has no final attempt, which is what makes a run resumable after any
crash: attempts are only ever added (upserted on their key), never rewritten by a
resumed run. :func:`aload_items` reads a window of pending questions with their images
in one query.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gmai_eval.server.errors import NotFound
from gmai_eval.server.store.database import Database


@dataclass(frozen=True)
class PendingQuestion:
    """A question of a run without a final attempt."""

    idx: int
    """Benchmark question index."""
    next_attempt: int
    """Number of the next attempt (1-based, after any recorded non-final ones)."""
    rotation: int = 0
    """Rotation of the options to ask (0: the original order)."""


@dataclass(frozen=True)
class RunItem:
    """Everything needed to ask one question."""

    idx: int
    """Benchmark question index (never sent)."""
    qid: str
    """Opaque id sent on the wire."""
    next_attempt: int
    """Number of the next attempt."""
    question: str
    """Question text."""
    options: tuple[tuple[str, str], ...]
    """Non-empty (label, text) options in label order (the original order; the request
    rotates them by ``rotation``)."""
    image_sha256: str
    """Image key (hex)."""
    media_type: str
    """Image media type."""
    width: int
    """Pixels."""
    height: int
    """Pixels."""
    image: bytes
    """Encoded image bytes."""
    multi_choice: bool = False
    """The question is multi-answer (its benchmark was imported with ``--multi-choice``)."""
    rotation: int = 0
    """Rotation of the options (0: the original order)."""


def pending_questions(db: Database, run_id: str) -> list[PendingQuestion]:
    """Questions of a run without a final attempt, in asking order."""
    rows = db.read(
        lambda d: d.execute(
            "SELECT rq.idx, COALESCE(MAX(a.attempt), 0) + 1, rq.rotation FROM run_questions rq"
            " LEFT JOIN attempts a ON a.run_id = rq.run_id AND a.idx = rq.idx"
            " AND a.rotation = rq.rotation"
            " WHERE rq.run_id = ?"
            " GROUP BY rq.idx, rq.rotation HAVING COALESCE(MAX(a.final), 0) = 0"
            " ORDER BY MIN(rq.position)",
            (run_id,),
        ).fetchall()
    )
    return [PendingQuestion(int(r[0]), int(r[1]), int(r[2])) for r in rows]


async def apending_questions(db: Database, run_id: str) -> list[PendingQuestion]:
    """Awaitable :func:`pending_questions`."""
    return await asyncio.to_thread(pending_questions, db, run_id)


_LABELS = ("A", "B", "C", "D", "E")


def _item(r: Sequence[object], qid: str, next_attempt: int, rotation: int = 0) -> RunItem:
    options = tuple((lab, str(text)) for lab, text in zip(_LABELS, r[3:8], strict=True) if text)
    return RunItem(
        idx=int(r[0]),  # type: ignore[call-overload]
        qid=qid,
        next_attempt=next_attempt,
        question=str(r[2]),
        options=options,
        image_sha256=str(r[8]),
        media_type=str(r[9]),
        width=int(r[10]),  # type: ignore[call-overload]
        height=int(r[11]),  # type: ignore[call-overload]
        image=bytes(r[12]),  # type: ignore[call-overload]
        multi_choice=bool(r[13]),
        rotation=rotation,
    )


_ITEM_COLUMNS = (
    "q.idx, {qid}, q.question, q.option_a, q.option_b, q.option_c, q.option_d, q.option_e,"
    " q.image_sha256, i.media_type, i.width, i.height, i.data,"
    " (SELECT b.multi_choice FROM benchmarks b WHERE b.id = q.benchmark_id)"
)


def _load_items(
    d: sqlite3.Connection, run_id: str, benchmark_id: int, pending: Sequence[PendingQuestion]
) -> list[RunItem]:
    if not pending:
        return []
    idxs = sorted({p.idx for p in pending})
    marks = ",".join("?" * len(idxs))
    rows = d.execute(
        f"SELECT {_ITEM_COLUMNS.format(qid='rq.qid')}, rq.rotation FROM run_questions rq"
        " JOIN questions q ON q.benchmark_id = ? AND q.idx = rq.idx"
        " JOIN images i ON i.sha256 = q.image_sha256"
        f" WHERE rq.run_id = ? AND rq.idx IN ({marks})",
        [benchmark_id, run_id, *idxs],
    ).fetchall()
    by_key = {(int(r[0]), int(r[14])): r for r in rows}
    items = []
    for p in pending:
        r = by_key.get((p.idx, p.rotation))
        if r is None:
            raise NotFound(f"run {run_id}: question {p.idx} or its image is missing")
        items.append(_item(r, str(r[1]), p.next_attempt, p.rotation))
    return items


def load_items(
    db: Database, run_id: str, benchmark_id: int, pending: Sequence[PendingQuestion]
) -> list[RunItem]:
    """Synchronous :func:`aload_items` (for a worker thread)."""
    return db.read(lambda d: _load_items(d, run_id, benchmark_id, pending))


async def aload_items(
    db: Database, run_id: str, benchmark_id: int, pending: Sequence[PendingQuestion]
) -> list[RunItem]:
    """Load the questions and images of ``pending`` (one query), in the given order."""
    return await db.aread(lambda d: _load_items(d, run_id, benchmark_id, pending))


async def aload_question_items(
    db: Database, benchmark_id: int, idxs: Sequence[int], qid_of: Callable[[int], str]
) -> list[RunItem]:
    """Load questions of a benchmark as items outside any run (the pre-flight smoke call).

    Raises:
        NotFound: a question or its image is missing.
    """

    def fn(d: sqlite3.Connection) -> list[RunItem]:
        marks = ",".join("?" * len(idxs))
        rows = d.execute(
            f"SELECT {_ITEM_COLUMNS.format(qid='NULL')} FROM questions q"
            " JOIN images i ON i.sha256 = q.image_sha256"
            f" WHERE q.benchmark_id = ? AND q.idx IN ({marks})",
            [benchmark_id, *idxs],
        ).fetchall()
        by_idx = {int(r[0]): r for r in rows}
        missing = [i for i in idxs if i not in by_idx]
        if missing:
            raise NotFound(f"benchmark {benchmark_id}: question(s) {missing} or image missing")
        return [_item(by_idx[i], qid_of(i), 1) for i in idxs]

    return await db.aread(fn)


def option_counts(db: Database, benchmark_id: int, idxs: Sequence[int]) -> dict[int, int]:
    """idx -> the number of non-empty options of each question (a circular run's k)."""

    def fn(d: sqlite3.Connection) -> dict[int, int]:
        out: dict[int, int] = {}
        for start in range(0, len(idxs), 500):
            chunk = list(idxs[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for r in d.execute(
                "SELECT q.idx, q.option_a, q.option_b, q.option_c, q.option_d, q.option_e"
                f" FROM questions q WHERE q.benchmark_id = ? AND q.idx IN ({marks})",
                [benchmark_id, *chunk],
            ):
                out[int(r[0])] = sum(1 for text in r[1:] if text)
        return out

    return db.read(fn)


def run_question_indexes(db: Database, run_id: str) -> list[int]:
    """The frozen question list of a run, in asking order."""
    rows = db.read(
        lambda d: d.execute(
            "SELECT idx FROM run_questions WHERE run_id = ? AND rotation = 0 ORDER BY position",
            (run_id,),
        ).fetchall()
    )
    return [int(r[0]) for r in rows]
