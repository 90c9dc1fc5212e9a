"""Benchmark imports: the importer's writes of benchmarks, questions, images and defects.

The importer (``server/data/tsv_import.py``) is the only writer: it creates a benchmark in
state ``importing`` (:func:`begin_import`), adds rows in batches (:func:`write_batch`) and
flips it to ``ready`` at the end (:func:`finish_import`), or deletes it (cascading) on
failure (:func:`abort_import`). Readers (:mod:`gmai_eval.server.store.benchmarks`) see
only benchmarks in state ``ready``.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from gmai_eval.server.errors import AlreadyExists, Defect
from gmai_eval.server.records import SourceFile
from gmai_eval.server.store.database import Database

# -- records written by the importer --------------------------------------------------------


@dataclass(frozen=True)
class QuestionRow:
    """One question as the importer writes it."""

    idx: int
    """The TSV index."""
    question: str
    """Question text."""
    options: tuple[str, str, str, str, str]
    """Texts of A..E, empty for unused letters."""
    answer: str | None
    """Correct letter (letters as ``A,C`` on a multi-choice benchmark), or None when flagged."""
    answer_source: str
    """``answer`` (VAL column), ``category`` (derived) or ``none``."""
    category: str
    """``category``."""
    clinical_task: str
    """``clinical VQA task``."""
    department: str
    """``department`` ('' = N/A)."""
    granularity: str
    """``perceptual granularity``."""
    modality: str
    """``modality``."""
    original_task: str
    """``original task``."""
    image_path: str
    """``image_path`` (metadata only)."""
    image_sha256: str
    """Key into ``images``."""
    source_file: str
    """File name as given."""
    source_row: int
    """1-based data row."""
    extra: dict[str, str]
    """Non-standard columns."""


@dataclass(frozen=True)
class ImageRow:
    """One image as the importer writes it."""

    sha256: str
    """Hex digest of ``data``."""
    media_type: str
    """``image/png`` or ``image/jpeg``."""
    width: int
    """Pixels."""
    height: int
    """Pixels."""
    mode: str
    """Pillow mode."""
    data: bytes
    """Bytes as imported."""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# -- writes (importer only) ------------------------------------------------------------------


def find_any_state(db: Database, name: str) -> tuple[int, str, str] | None:
    """(id, digest, state) of the benchmark named ``name`` in any state, or None."""

    def q(d: sqlite3.Connection) -> tuple[int, str, str] | None:
        row = d.execute("SELECT id, digest, state FROM benchmarks WHERE name = ?", (name,)).fetchone()
        return (int(row[0]), str(row[1]), str(row[2])) if row else None

    return db.read(q)


def begin_import(db: Database, name: str, layout: str, multi_choice: bool = False) -> int:
    """Create a benchmark row in state ``importing`` and return its id.

    Raises:
        AlreadyExists: ``name`` is taken (in any state).
    """

    def w(d: sqlite3.Connection) -> int:
        try:
            cur = d.execute(
                "INSERT INTO benchmarks (name, digest, layout, state, created_at, multi_choice)"
                " VALUES (?, '', ?, 'importing', ?, ?)",
                (name, layout, _now(), int(multi_choice)),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"benchmark {name!r} already exists") from None
        return int(cur.lastrowid or 0)

    return db.write(w)


def write_batch(
    d: sqlite3.Connection, benchmark_id: int, images: Sequence[ImageRow], questions: Sequence[QuestionRow]
) -> None:
    """Insert one batch of images and questions (call inside ``db.write``)."""
    d.executemany(
        "INSERT OR IGNORE INTO images (sha256, media_type, width, height, mode, size_bytes, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i.sha256, i.media_type, i.width, i.height, i.mode, len(i.data), i.data) for i in images],
    )
    d.executemany(
        "INSERT INTO questions (benchmark_id, idx, question, option_a, option_b, option_c, option_d, "
        "option_e, answer, answer_source, category, clinical_task, department, granularity, modality, "
        "original_task, image_path, image_sha256, source_file, source_row, extra) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                benchmark_id, q.idx, q.question, *[o or None for o in q.options], q.answer,
                q.answer_source, q.category, q.clinical_task, q.department, q.granularity,
                q.modality, q.original_task, q.image_path, q.image_sha256, q.source_file,
                q.source_row, json.dumps(q.extra, sort_keys=True),
            )
            for q in questions
        ],
    )


def finish_import(
    db: Database,
    benchmark_id: int,
    digest: str,
    layout: str,
    files: Sequence[SourceFile],
    defects: Sequence[tuple[Defect, bool]],
) -> None:
    """Record digest, layout, files and defects (with their ``skipped`` flag); flip to ``ready``."""

    def w(d: sqlite3.Connection) -> None:
        d.executemany(
            "INSERT INTO source_files (benchmark_id, position, name, sha256, rows, size_bytes) VALUES (?, ?, ?, ?, ?, ?)",
            [(benchmark_id, i, f.name, f.sha256, f.rows, f.size_bytes) for i, f in enumerate(files)],
        )
        d.executemany(
            "INSERT INTO import_defects (benchmark_id, file, row, column_name, message, skipped) VALUES (?, ?, ?, ?, ?, ?)",
            [(benchmark_id, x.file, x.row, x.column, x.message, int(skipped)) for x, skipped in defects],
        )
        count, flagged = d.execute(
            "SELECT COUNT(*), COALESCE(SUM(answer IS NULL), 0) FROM questions WHERE benchmark_id = ?",
            (benchmark_id,),
        ).fetchone()
        d.execute(
            "UPDATE benchmarks SET digest = ?, layout = ?, state = 'ready', question_count = ?, "
            "flagged_count = ?, created_at = ? WHERE id = ?",
            (digest, layout, count, flagged, _now(), benchmark_id),
        )

    db.write(w)


def abort_import(db: Database, benchmark_id: int) -> None:
    """Delete an unfinished benchmark (cascading) and the images nothing references any more."""

    def w(d: sqlite3.Connection) -> None:
        d.execute("DELETE FROM benchmarks WHERE id = ? AND state = 'importing'", (benchmark_id,))
        _delete_orphan_images(d)

    db.write(w)


def delete_stale_imports(db: Database, keep: Sequence[int] = ()) -> int:
    """Delete every ``importing`` benchmark except ids in ``keep``; return how many."""

    def w(d: sqlite3.Connection) -> int:
        ids = [int(r[0]) for r in d.execute("SELECT id FROM benchmarks WHERE state = 'importing'")]
        stale = [i for i in ids if i not in set(keep)]
        for i in stale:
            d.execute("DELETE FROM benchmarks WHERE id = ?", (i,))
        if stale:
            _delete_orphan_images(d)
        return len(stale)

    return db.write(w)


def _delete_orphan_images(d: sqlite3.Connection) -> None:
    d.execute(
        "DELETE FROM images WHERE NOT EXISTS (SELECT 1 FROM questions q WHERE q.image_sha256 = images.sha256)"
    )
