"""Repository of benchmarks, their source files, questions, images and import defects.

Readers see only benchmarks in state ``ready``. The importer (``server/data/tsv_import.py``)
is the only writer: it creates a benchmark in state ``importing``, adds rows in batches
and flips it to ``ready`` at the end, or deletes it (cascading) on failure.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from gmai_eval.server.errors import AlreadyExists, Defect, NotFound
from gmai_eval.server.records import OPTION_LABELS, Benchmark, Image, Question, SourceFile
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.suggest import unknown
from gmai_eval.server.taxonomy import FIELD_OF_KEY, NodePath, QuestionFilter, count_nodes_weighted

_CHUNK = 500
"""Most SQL variables bound in one IN (...) list."""

_QUESTION_COLUMNS = (
    "idx, question, option_a, option_b, option_c, option_d, option_e, answer, category, "
    "clinical_task, department, granularity, modality, original_task, image_path, "
    "image_sha256, source_file, source_row, extra"
)


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

    def q(d: sqlite_utils.Database) -> tuple[int, str, str] | None:
        row = d.conn.execute("SELECT id, digest, state FROM benchmarks WHERE name = ?", (name,)).fetchone()
        return (int(row[0]), str(row[1]), str(row[2])) if row else None

    return db.read(q)


def begin_import(db: Database, name: str, layout: str, multi_choice: bool = False) -> int:
    """Create a benchmark row in state ``importing`` and return its id.

    Raises:
        AlreadyExists: ``name`` is taken (in any state).
    """

    def w(d: sqlite_utils.Database) -> int:
        try:
            cur = d.conn.execute(
                "INSERT INTO benchmarks (name, digest, layout, state, created_at, multi_choice)"
                " VALUES (?, '', ?, 'importing', ?, ?)",
                (name, layout, _now(), int(multi_choice)),
            )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"benchmark {name!r} already exists") from None
        return int(cur.lastrowid or 0)

    return db.write(w)


def write_batch(
    d: sqlite_utils.Database, benchmark_id: int, images: Sequence[ImageRow], questions: Sequence[QuestionRow]
) -> None:
    """Insert one batch of images and questions (call inside ``db.write``)."""
    d.conn.executemany(
        "INSERT OR IGNORE INTO images (sha256, media_type, width, height, mode, size_bytes, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(i.sha256, i.media_type, i.width, i.height, i.mode, len(i.data), i.data) for i in images],
    )
    d.conn.executemany(
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

    def w(d: sqlite_utils.Database) -> None:
        d.conn.executemany(
            "INSERT INTO source_files (benchmark_id, position, name, sha256, rows, size_bytes) VALUES (?, ?, ?, ?, ?, ?)",
            [(benchmark_id, i, f.name, f.sha256, f.rows, f.size_bytes) for i, f in enumerate(files)],
        )
        d.conn.executemany(
            "INSERT INTO import_defects (benchmark_id, file, row, column_name, message, skipped) VALUES (?, ?, ?, ?, ?, ?)",
            [(benchmark_id, x.file, x.row, x.column, x.message, int(skipped)) for x, skipped in defects],
        )
        count, flagged = d.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(answer IS NULL), 0) FROM questions WHERE benchmark_id = ?",
            (benchmark_id,),
        ).fetchone()
        d.conn.execute(
            "UPDATE benchmarks SET digest = ?, layout = ?, state = 'ready', question_count = ?, "
            "flagged_count = ?, created_at = ? WHERE id = ?",
            (digest, layout, count, flagged, _now(), benchmark_id),
        )

    db.write(w)


def abort_import(db: Database, benchmark_id: int) -> None:
    """Delete an unfinished benchmark (cascading) and the images nothing references any more."""

    def w(d: sqlite_utils.Database) -> None:
        d.conn.execute("DELETE FROM benchmarks WHERE id = ? AND state = 'importing'", (benchmark_id,))
        _delete_orphan_images(d)

    db.write(w)


def delete_stale_imports(db: Database, keep: Sequence[int] = ()) -> int:
    """Delete every ``importing`` benchmark except ids in ``keep``; return how many."""

    def w(d: sqlite_utils.Database) -> int:
        ids = [int(r[0]) for r in d.conn.execute("SELECT id FROM benchmarks WHERE state = 'importing'")]
        stale = [i for i in ids if i not in set(keep)]
        for i in stale:
            d.conn.execute("DELETE FROM benchmarks WHERE id = ?", (i,))
        if stale:
            _delete_orphan_images(d)
        return len(stale)

    return db.write(w)


def _delete_orphan_images(d: sqlite_utils.Database) -> None:
    d.conn.execute(
        "DELETE FROM images WHERE NOT EXISTS (SELECT 1 FROM questions q WHERE q.image_sha256 = images.sha256)"
    )


# -- reads -----------------------------------------------------------------------------------


def _benchmark(d: sqlite_utils.Database, row: Any) -> Benchmark:
    bid = int(row[0])
    files = tuple(
        SourceFile(name=str(f[0]), sha256=str(f[1]), rows=int(f[2]), size_bytes=int(f[3]))
        for f in d.conn.execute(
            "SELECT name, sha256, rows, size_bytes FROM source_files WHERE benchmark_id = ? ORDER BY position",
            (bid,),
        )
    )
    return Benchmark(
        id=bid,
        name=str(row[1]),
        digest=str(row[2]),
        layout=str(row[3]),
        question_count=int(row[4]),
        flagged_count=int(row[5]),
        created_at=str(row[6]),
        source_files=files,
        multi_choice=bool(row[7]),
    )


_BENCH_SELECT = (
    "SELECT id, name, digest, layout, question_count, flagged_count, created_at, multi_choice FROM benchmarks"
)


def _ready_benchmark(db: Database, column: str, value: object, missing: str) -> Benchmark:
    """The ready benchmark whose ``column`` (``name`` or ``id``) is ``value``; NotFound(missing)."""

    def q(d: sqlite_utils.Database) -> Benchmark:
        row = d.conn.execute(f"{_BENCH_SELECT} WHERE {column} = ? AND state = 'ready'", (value,)).fetchone()
        if row is None:
            raise NotFound(missing)
        return _benchmark(d, row)

    return db.read(q)


def get_benchmark(db: Database, name: str) -> Benchmark:
    """The ready benchmark named ``name``.

    Raises:
        NotFound: no such benchmark (or it is still importing).
    """

    try:
        return _ready_benchmark(db, "name", name, f"no benchmark named {name!r}")
    except NotFound:
        raise unknown(db, "benchmark", name, f"no benchmark named {name!r}") from None


def get_benchmark_by_id(db: Database, benchmark_id: int) -> Benchmark:
    """The ready benchmark with row id ``benchmark_id``.

    Raises:
        NotFound: no such benchmark.
    """

    return _ready_benchmark(db, "id", benchmark_id, f"no benchmark with id {benchmark_id}")


def list_benchmarks(db: Database) -> list[Benchmark]:
    """Every ready benchmark, by name."""

    def q(d: sqlite_utils.Database) -> list[Benchmark]:
        rows = d.conn.execute(f"{_BENCH_SELECT} WHERE state = 'ready' ORDER BY name").fetchall()
        return [_benchmark(d, r) for r in rows]

    return db.read(q)


def load_import_defects(db: Database, benchmark_id: int) -> list[tuple[Defect, bool]]:
    """The defects recorded at import, with their ``skipped`` flag, in file/row order."""

    def q(d: sqlite_utils.Database) -> list[tuple[Defect, bool]]:
        return [
            (Defect(file=str(r[0]), row=int(r[1]), column=str(r[2]), message=str(r[3])), bool(r[4]))
            for r in d.conn.execute(
                "SELECT file, row, column_name, message, skipped FROM import_defects "
                "WHERE benchmark_id = ? ORDER BY rowid",
                (benchmark_id,),
            )
        ]

    return db.read(q)


def _question(benchmark_id: int, r: Any) -> Question:
    options = tuple(
        (label, str(text)) for label, text in zip(OPTION_LABELS, r[2:7], strict=True) if text is not None and text != ""
    )
    return Question(
        benchmark_id=benchmark_id,
        index=int(r[0]),
        question=str(r[1]),
        options=options,
        answer=None if r[7] is None else str(r[7]),
        category=str(r[8]),
        clinical_task=str(r[9]),
        department=str(r[10]),
        granularity=str(r[11]),
        modality=str(r[12]),
        original_task=str(r[13]),
        image_path=str(r[14]),
        image_sha256=str(r[15]),
        source_file=str(r[16]),
        source_row=int(r[17]),
        extra=json.loads(str(r[18])),
    )


def _where(flt: QuestionFilter | None) -> tuple[str, list[object]]:
    """SQL conditions (after ``benchmark_id = ?``) and parameters for a filter."""
    if flt is None or flt.is_empty:
        return "", []
    sql: list[str] = []
    params: list[object] = []
    for key, values in flt.clauses:
        column = FIELD_OF_KEY[key]
        marks = ", ".join("lower(?)" for _ in values)
        sql.append(f" AND lower({column}) IN ({marks})")
        params.extend(values)
    return "".join(sql), params


def load_questions(db: Database, benchmark_id: int, idxs: Sequence[int] | None = None) -> list[Question]:
    """Questions of a benchmark sorted by index: all of them, or those with index in ``idxs``."""

    def q(d: sqlite_utils.Database) -> list[Question]:
        base = f"SELECT {_QUESTION_COLUMNS} FROM questions WHERE benchmark_id = ?"
        if idxs is None:
            rows = d.conn.execute(base + " ORDER BY idx", (benchmark_id,)).fetchall()
        else:
            wanted = sorted(set(int(i) for i in idxs))
            rows = []
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                rows.extend(d.conn.execute(f"{base} AND idx IN ({marks})", (benchmark_id, *chunk)).fetchall())
            rows.sort(key=lambda r: int(r[0]))
        return [_question(benchmark_id, tuple(r)) for r in rows]

    return db.read(q)


def load_image(db: Database, sha256: str) -> Image:
    """The stored image with digest ``sha256``.

    Raises:
        NotFound: no such image.
    """

    def q(d: sqlite_utils.Database) -> Image:
        row = d.conn.execute(
            "SELECT sha256, media_type, data, width, height FROM images WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no image {sha256}")
        return Image(sha256=str(row[0]), media_type=str(row[1]), data=bytes(row[2]), width=int(row[3]), height=int(row[4]))

    return db.read(q)


def select_question_indexes(db: Database, benchmark_id: int, flt: QuestionFilter | None = None) -> list[int]:
    """Indexes of the benchmark's questions that match ``flt`` (all when None), ascending."""
    cond, params = _where(flt)

    def q(d: sqlite_utils.Database) -> list[int]:
        return [
            int(r[0])
            for r in d.conn.execute(
                f"SELECT idx FROM questions WHERE benchmark_id = ?{cond} ORDER BY idx", (benchmark_id, *params)
            )
        ]

    return db.read(q)


def taxonomy_nodes(
    db: Database, benchmark_id: int, flt: QuestionFilter | None = None
) -> list[tuple[NodePath, int]]:
    """Question counts at every taxonomy node (see :func:`~gmai_eval.server.taxonomy.count_nodes`)."""
    cond, params = _where(flt)

    def q(d: sqlite_utils.Database) -> list[tuple[NodePath, int]]:
        rows = d.conn.execute(
            "SELECT clinical_task, department, granularity, modality, category, COUNT(*) FROM questions "
            f"WHERE benchmark_id = ?{cond} GROUP BY 1, 2, 3, 4, 5",
            (benchmark_id, *params),
        ).fetchall()
        return count_nodes_weighted(
            ((str(t), str(dep), str(g), str(m), str(lab)), int(n)) for t, dep, g, m, lab, n in rows
        )

    return db.read(q)
