"""Repository of VLMEvalKit prediction files: a run's rows for export, and runs made from files.

``export_rows`` joins each question of a run to its final attempt (one index lookup per
question, see tests/test_query_plans.py) for ``gmai-eval export``; ``create_file_run``
stores a prediction file read by ``gmai-eval score-file`` as a run with one answered
attempt per row. Grading these rows is the scoring stage's business.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gmai_eval.server.errors import NotFound
from gmai_eval.server.records import (
    AnswerStatus,
    AttemptOutcome,
    Era,
    ModelSpec,
    Recorded,
    RunParams,
)
from gmai_eval.server.store.attempts import now_iso
from gmai_eval.server.store.grades import OPTION_COLUMNS


@dataclass(frozen=True)
class ExportRow:
    """A question of a run with its final attempt, for prediction files."""

    idx: int
    """Benchmark row index."""
    question: str
    """Question text."""
    options: tuple[str | None, ...]
    """Texts of options A..E (None when empty)."""
    answer: str | None
    """Correct label."""
    category: str
    """Answer label text."""
    task: str
    """Clinical VQA task."""
    department: str
    """Department."""
    granularity: str
    """Perceptual granularity."""
    modality: str
    """Modality."""
    original_task: str
    """Original task."""
    image_path: str
    """Image path as imported."""
    recorded: Recorded | None
    """The final attempt, None when the question was not answered (yet)."""
    option_scores: dict[str, float]
    """Option probabilities of the final attempt."""


def export_rows(s: sqlite3.Connection, run_id: str) -> list[ExportRow]:
    """Every question of a run with its final attempt (if any), ordered by index."""
    rows = s.execute(
        "SELECT rq.idx, q.question, " + OPTION_COLUMNS + ", q.answer, q.category, q.clinical_task,"
        " q.department, q.granularity, q.modality, q.original_task, q.image_path,"
        " a.outcome, a.status, a.labels, a.text, a.option_scores, a.attempt"
        " FROM run_questions rq JOIN runs r ON r.id = rq.run_id"
        " JOIN questions q ON q.benchmark_id = r.benchmark_id AND q.idx = rq.idx"
        " LEFT JOIN attempts a ON a.run_id = rq.run_id AND a.final = 1 AND a.idx = rq.idx"
        " AND a.rotation = rq.rotation"
        " WHERE rq.run_id = ? AND rq.rotation = 0 ORDER BY rq.idx",
        [run_id],
    ).fetchall()
    out = []
    for r in rows:
        rec = None
        scores: dict[str, float] = {}
        if r[15] is not None:
            labels = tuple(str(x) for x in json.loads(r[17] or "[]"))
            rec = Recorded(
                idx=r[0], outcome=AttemptOutcome(r[15]), status=AnswerStatus(r[16] or "answered"), labels=labels,
                text=r[18], attempt=r[20],
            )
            scores = {str(k): float(v) for k, v in json.loads(r[19] or "{}").items()}
        out.append(
            ExportRow(
                idx=r[0], question=r[1], options=tuple(r[2:7]), answer=r[7], category=r[8], task=r[9],
                department=r[10], granularity=r[11], modality=r[12], original_task=r[13],
                image_path=r[14], recorded=rec, option_scores=scores,
            )
        )
    return out


def benchmark_ref(s: sqlite3.Connection, name: str) -> tuple[int, str]:
    """(id, digest) of a benchmark by name.

    Raises:
        NotFound: no such benchmark.
    """
    row = s.execute(
        "SELECT id, digest FROM benchmarks WHERE name = ? AND state = 'ready'", [name]
    ).fetchone()
    if row is None:
        raise NotFound(f"no benchmark named {name!r}")
    return int(row[0]), str(row[1])


def benchmark_indexes(s: sqlite3.Connection, benchmark_id: int) -> set[int]:
    """Every question index of a benchmark."""
    return {int(r[0]) for r in s.execute("SELECT idx FROM questions WHERE benchmark_id = ?", [benchmark_id])}


def create_file_run(
    s: sqlite3.Connection,
    *,
    model: str,
    benchmark_id: int,
    digest: str,
    era: str,
    evaluator_version: str,
    predictions: Sequence[tuple[int, str]],
) -> str:
    """Create a succeeded run whose answers come from a prediction file.

    Args:
        s: database handle (inside one write).
        model: run model name, ``file:<name>``.
        benchmark_id: benchmark row id.
        digest: the benchmark's digest.
        era: extraction era stored in the run parameters.
        evaluator_version: gmai-eval version.
        predictions: (index, prediction text) pairs; indexes must exist in the benchmark.

    Returns:
        The new run id.
    """
    run_id = f"r-{secrets.token_hex(6)}"
    now = now_iso()
    params = asdict(RunParams(extraction_era=Era(era)))
    s.execute(
        "INSERT INTO runs (id, model, benchmark_id, benchmark_digest, state, params, model_spec,"
        " evaluator_version, salt, total, created_at, started_at, finished_at)"
        " VALUES (?, ?, ?, ?, 'succeeded', ?, ?, ?, ?, ?, ?, ?, ?)",
        (run_id, model, benchmark_id, digest, json.dumps(params, sort_keys=True),
         json.dumps(asdict(ModelSpec(name=model, endpoints=())), sort_keys=True),
         evaluator_version, secrets.token_hex(16), len(predictions), now, now, now),
    )
    s.executemany(
        "INSERT INTO run_questions (run_id, idx, qid, position) VALUES (?, ?, ?, ?)",
        [(run_id, idx, f"q-{pos}", pos) for pos, (idx, _) in enumerate(predictions)],
    )
    s.executemany(
        "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, status, text, created_at)"
        " VALUES (?, ?, 1, ?, 'answered', 1, 'answered', ?, ?)",
        [(run_id, idx, f"file-{pos}", text, now) for pos, (idx, text) in enumerate(predictions)],
    )
    return run_id
