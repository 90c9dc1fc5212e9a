"""Reads for the HTML report, the release history and the leaderboard (read-only).

Every function takes the ``sqlite3.Connection`` handed out by
:meth:`~gmai_eval.server.store.database.Database.read`; nothing here writes. The run headers
come from :mod:`.runs` and :mod:`.benchmarks`; this module adds what only the report needs:
the questions shown in its failure gallery, with their final attempt and grade.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from gmai_eval.server.records import OPTION_LABELS

_CHUNK = 500
"""Most SQL variables bound in one IN (...) list."""


def is_whole(filter_text: str, limit: int) -> bool:
    """Whether a run with these parameters stands for a release: it asked every question of
    its benchmark (no filter, no limit). History, the leaderboard and the accuracy series
    of the metrics use whole runs only."""
    return not filter_text.strip() and not limit


@dataclass(frozen=True)
class GalleryRow:
    """A question of a run as the failure gallery shows it."""

    idx: int
    """Benchmark row index."""
    question: str
    """Question text."""
    options: tuple[tuple[str, str], ...]
    """(label, text) of the non-empty options, in order."""
    answer: str | None
    """Correct label."""
    image_sha256: str
    """Key of the question's image."""
    outcome: str
    """Final attempt: ``answered`` or ``error`` ('' when not answered)."""
    status: str
    """Answer status (answered, refused, abstained, input_unsupported), '' for an error."""
    labels: tuple[str, ...]
    """Labels the model selected."""
    text: str
    """The model's text."""
    error: str
    """Error code and message of a failed final attempt, else ''."""
    extracted: str
    """Extracted label(s) of the grading."""
    verdict: str
    """Verdict of the grading ('' when ungraded)."""


def gallery_rows(
    s: sqlite3.Connection, run_id: str, era: str, judge: str, idxs: Sequence[int]
) -> list[GalleryRow]:
    """The questions ``idxs`` of a run with their final attempt and grade, ordered by index."""
    out: list[GalleryRow] = []
    options = ", ".join(f"q.option_{lab.lower()}" for lab in OPTION_LABELS)
    wanted = sorted(set(idxs))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        rows = s.execute(
            f"SELECT q.idx, q.question, {options}, q.answer, q.image_sha256, a.outcome, a.status,"
            " a.labels, a.text, a.code, a.error, g.extracted, g.verdict"
            " FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
            " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx"
            " LEFT JOIN attempts a ON a.run_id = rq.run_id AND a.final = 1 AND a.idx = rq.idx"
            " AND a.rotation = rq.rotation"
            " LEFT JOIN grades g ON g.run_id = rq.run_id AND g.idx = rq.idx AND g.era = ? AND g.judge = ?"
            f" WHERE rq.run_id = ? AND rq.rotation = 0 AND rq.idx IN ({marks}) ORDER BY q.idx",
            [era, judge, run_id, *chunk],
        ).fetchall()
        for r in rows:
            opts = tuple((lab, str(t)) for lab, t in zip(OPTION_LABELS, r[2:7], strict=True) if t not in (None, ""))
            outcome = str(r[9] or "")
            error = f"{r[13]}: {r[14]}" if outcome == "error" else ""
            out.append(GalleryRow(
                idx=int(r[0]), question=str(r[1]), options=opts, answer=None if r[7] in (None, "") else str(r[7]),
                image_sha256=str(r[8]), outcome=outcome, status=str(r[10] or ""),
                labels=tuple(str(x) for x in json.loads(r[11] or "[]")), text=str(r[12] or ""), error=error,
                extracted=str(r[15] or ""), verdict=str(r[16] or ""),
            ))
    out.sort(key=lambda g: g.idx)
    return out


def image_data(s: sqlite3.Connection, sha256: str) -> tuple[str, bytes] | None:
    """(media type, bytes) of a stored image, None when there is none."""
    row = s.execute("SELECT media_type, data FROM images WHERE sha256 = ?", [sha256]).fetchone()
    return None if row is None else (str(row[0]), bytes(row[1]))


def run_question_sets(s: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, frozenset[int]]:
    """run id -> the set of question indexes it asks (to tell whether two runs pair up)."""
    out: dict[str, frozenset[int]] = {}
    for run_id in run_ids:
        out[run_id] = frozenset(
            int(r[0]) for r in s.execute("SELECT idx FROM run_questions WHERE run_id = ? AND rotation = 0", [run_id])
        )
    return out
