"""Repository of benchmarks, their source files, questions, images and import defects: reads.

Readers see only benchmarks in state ``ready``. The importer is the only writer, through
:mod:`gmai_eval.server.store.benchmark_imports`: it creates a benchmark in state
``importing``, adds rows in batches and flips it to ``ready`` at the end, or deletes it
(cascading) on failure.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from gmai_eval.server.errors import Defect, NotFound
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


def _benchmark(d: sqlite3.Connection, row: Any) -> Benchmark:
    bid = int(row[0])
    files = tuple(
        SourceFile(name=str(f[0]), sha256=str(f[1]), rows=int(f[2]), size_bytes=int(f[3]))
        for f in d.execute(
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

    def q(d: sqlite3.Connection) -> Benchmark:
        row = d.execute(f"{_BENCH_SELECT} WHERE {column} = ? AND state = 'ready'", (value,)).fetchone()
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

    def q(d: sqlite3.Connection) -> list[Benchmark]:
        rows = d.execute(f"{_BENCH_SELECT} WHERE state = 'ready' ORDER BY name").fetchall()
        return [_benchmark(d, r) for r in rows]

    return db.read(q)


def load_import_defects(db: Database, benchmark_id: int) -> list[tuple[Defect, bool]]:
    """The defects recorded at import, with their ``skipped`` flag, in file/row order."""

    def q(d: sqlite3.Connection) -> list[tuple[Defect, bool]]:
        return [
            (Defect(file=str(r[0]), row=int(r[1]), column=str(r[2]), message=str(r[3])), bool(r[4]))
            for r in d.execute(
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

    def q(d: sqlite3.Connection) -> list[Question]:
        base = f"SELECT {_QUESTION_COLUMNS} FROM questions WHERE benchmark_id = ?"
        if idxs is None:
            rows = d.execute(base + " ORDER BY idx", (benchmark_id,)).fetchall()
        else:
            wanted = sorted(set(int(i) for i in idxs))
            rows = []
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                rows.extend(d.execute(f"{base} AND idx IN ({marks})", (benchmark_id, *chunk)).fetchall())
            rows.sort(key=lambda r: int(r[0]))
        return [_question(benchmark_id, tuple(r)) for r in rows]

    return db.read(q)


def load_image(db: Database, sha256: str) -> Image:
    """The stored image with digest ``sha256``.

    Raises:
        NotFound: no such image.
    """

    def q(d: sqlite3.Connection) -> Image:
        row = d.execute(
            "SELECT sha256, media_type, data, width, height FROM images WHERE sha256 = ?", (sha256,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no image {sha256}")
        return Image(sha256=str(row[0]), media_type=str(row[1]), data=bytes(row[2]), width=int(row[3]), height=int(row[4]))

    return db.read(q)


def select_question_indexes(db: Database, benchmark_id: int, flt: QuestionFilter | None = None) -> list[int]:
    """Indexes of the benchmark's questions that match ``flt`` (all when None), ascending."""
    cond, params = _where(flt)

    def q(d: sqlite3.Connection) -> list[int]:
        return [
            int(r[0])
            for r in d.execute(
                f"SELECT idx FROM questions WHERE benchmark_id = ?{cond} ORDER BY idx", (benchmark_id, *params)
            )
        ]

    return db.read(q)


def taxonomy_nodes(
    db: Database, benchmark_id: int, flt: QuestionFilter | None = None
) -> list[tuple[NodePath, int]]:
    """Question counts at every taxonomy node (see :func:`~gmai_eval.server.taxonomy.count_nodes`)."""
    cond, params = _where(flt)

    def q(d: sqlite3.Connection) -> list[tuple[NodePath, int]]:
        rows = d.execute(
            "SELECT clinical_task, department, granularity, modality, category, COUNT(*) FROM questions "
            f"WHERE benchmark_id = ?{cond} GROUP BY 1, 2, 3, 4, 5",
            (benchmark_id, *params),
        ).fetchall()
        return count_nodes_weighted(
            ((str(t), str(dep), str(g), str(m), str(lab)), int(n)) for t, dep, g, m, lab, n in rows
        )

    return db.read(q)
