"""Repository of models, runs and the frozen question list of each run.

Attempts live in :mod:`.attempts` and are re-exported here.

Every answer attempt is one row of ``attempts`` keyed by ``(run_id, idx, attempt)``; the
question's last attempt has ``final = 1``. A question is pending while it has no final
attempt, which is what makes a run resumable after any crash: rows are only ever added
(upserted on their key), never rewritten by a resumed run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import sqlite_utils
from gmai_eval.server.errors import NotFound
from gmai_eval.server.records import ModelSpec, RunParams, TlsSettings
from gmai_eval.server.store.attempts import (
    Attempt,
    Counts,
    arecord_attempt,
    arecord_attempts,
    arun_counts,
    list_attempts,
    now_iso,
    run_counts,
)
from gmai_eval.server.store.database import Database

# -- models ---------------------------------------------------------------------------------


def _spec_from_row(row: Sequence[object]) -> ModelSpec:
    name, endpoints, version, tls, updated = row
    return ModelSpec(
        name=str(name),
        endpoints=tuple(json.loads(str(endpoints))),
        version=str(version),
        tls=TlsSettings(**json.loads(str(tls))),
        updated_at=str(updated),
    )


def spec_to_json(spec: ModelSpec) -> str:
    """JSON of a model spec (stored with each run)."""
    return json.dumps(asdict(spec), sort_keys=True)


def spec_from_json(text: str) -> ModelSpec:
    """Inverse of :func:`spec_to_json`."""
    data = json.loads(text)
    return ModelSpec(
        name=data["name"],
        endpoints=tuple(data["endpoints"]),
        version=data.get("version", ""),
        tls=TlsSettings(**data.get("tls", {})),
        updated_at=data.get("updated_at", ""),
    )


def register_model(db: Database, spec: ModelSpec) -> ModelSpec:
    """Register a model, or replace the one with the same name.

    Returns:
        The spec as stored (with ``updated_at``).
    """
    stamp = now_iso()

    def fn(d: sqlite_utils.Database) -> None:
        d.conn.execute(
            "INSERT INTO models (name, endpoints, version, tls, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT(name) DO UPDATE SET endpoints = excluded.endpoints,"
            " version = excluded.version, tls = excluded.tls, updated_at = excluded.updated_at",
            (
                spec.name,
                json.dumps(list(spec.endpoints)),
                spec.version,
                json.dumps(asdict(spec.tls), sort_keys=True),
                stamp,
                stamp,
            ),
        )

    db.write(fn)
    return get_model(db, spec.name)


def get_model(db: Database, name: str) -> ModelSpec:
    """The registered model ``name``.

    Raises:
        NotFound: no such model.
    """
    row = db.read(
        lambda d: d.conn.execute(
            "SELECT name, endpoints, version, tls, updated_at FROM models WHERE name = ?", (name,)
        ).fetchone()
    )
    if row is None:
        raise NotFound(f"model {name!r} is not registered")
    return _spec_from_row(row)


def list_models(db: Database) -> list[ModelSpec]:
    """Every registered model, by name."""
    rows = db.read(
        lambda d: d.conn.execute(
            "SELECT name, endpoints, version, tls, updated_at FROM models ORDER BY name"
        ).fetchall()
    )
    return [_spec_from_row(r) for r in rows]


# -- runs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRow:
    """A ``runs`` row, decoded."""

    id: str
    """Run id."""
    model: str
    """Model name."""
    benchmark_id: int
    """Benchmark row id."""
    benchmark: str
    """Benchmark name."""
    benchmark_digest: str
    """Digest at creation."""
    state: str
    """Life-cycle state."""
    params: RunParams
    """Parameters (defaults applied)."""
    model_spec: ModelSpec
    """The registered model at creation."""
    model_info: dict[str, object]
    """GetModelInfo from the pre-flight, as JSON."""
    evaluator_version: str
    """gmai-eval version at creation."""
    request_id: str | None
    """Idempotency key."""
    salt: str
    """Secret of the opaque question ids."""
    total: int
    """Questions in the run."""
    error_message: str
    """Why it failed."""
    created_at: str
    """ISO-8601."""
    started_at: str
    """ISO-8601 of the last (re)start."""
    finished_at: str
    """ISO-8601 when final."""


_RUN_COLUMNS = (
    "r.id, r.model, r.benchmark_id, b.name, r.benchmark_digest, r.state, r.params, r.model_spec,"
    " r.model_info, r.evaluator_version, r.request_id, r.salt, r.total, r.error_message,"
    " r.created_at, r.started_at, r.finished_at"
)
_RUN_SELECT = f"SELECT {_RUN_COLUMNS} FROM runs r LEFT JOIN benchmarks b ON b.id = r.benchmark_id"
"""Every ``runs`` column :func:`_run_from_row` decodes, with the benchmark name."""


def params_to_json(params: RunParams) -> str:
    """JSON of run parameters."""
    return json.dumps(asdict(params), sort_keys=True)


def params_from_json(text: str) -> RunParams:
    """Inverse of :func:`params_to_json`."""
    return RunParams(**json.loads(text))


def _run_from_row(row: Sequence[object]) -> RunRow:
    return RunRow(
        id=str(row[0]),
        model=str(row[1]),
        benchmark_id=int(row[2]),  # type: ignore[call-overload]
        benchmark=str(row[3] or ""),
        benchmark_digest=str(row[4]),
        state=str(row[5]),
        params=params_from_json(str(row[6])),
        model_spec=spec_from_json(str(row[7])),
        model_info=json.loads(str(row[8])),
        evaluator_version=str(row[9]),
        request_id=None if row[10] is None else str(row[10]),
        salt=str(row[11]),
        total=int(row[12]),  # type: ignore[call-overload]
        error_message=str(row[13]),
        created_at=str(row[14]),
        started_at=str(row[15] or ""),
        finished_at=str(row[16] or ""),
    )


def insert_run(db: Database, run: RunRow, questions: Sequence[tuple[int, str]]) -> None:
    """Create a run with its frozen question list, atomically.

    Args:
        db: the database.
        run: the run (state, timestamps and totals as they should be stored).
        questions: ``(idx, opaque id)`` in asking order.
    """

    def fn(d: sqlite_utils.Database) -> None:
        d.conn.execute(
            "INSERT INTO runs (id, model, benchmark_id, benchmark_digest, state, params,"
            " model_spec, model_info, evaluator_version, request_id, salt, total, error_message,"
            " created_at, started_at, finished_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                run.id,
                run.model,
                run.benchmark_id,
                run.benchmark_digest,
                run.state,
                params_to_json(run.params),
                spec_to_json(run.model_spec),
                json.dumps(run.model_info, sort_keys=True),
                run.evaluator_version,
                run.request_id,
                run.salt,
                run.total,
                run.error_message,
                run.created_at,
                run.started_at or None,
                run.finished_at or None,
            ),
        )
        d.conn.executemany(
            "INSERT INTO run_questions (run_id, idx, qid, position) VALUES (?, ?, ?, ?)",
            [(run.id, idx, qid, pos) for pos, (idx, qid) in enumerate(questions)],
        )

    db.write(fn)


def get_run(db: Database, run_id: str) -> RunRow:
    """The run ``run_id``.

    Raises:
        NotFound: no such run.
    """
    row = db.read(
        lambda d: d.conn.execute(
            _RUN_SELECT + " WHERE r.id = ?",
            (run_id,),
        ).fetchone()
    )
    if row is None:
        raise NotFound(f"run {run_id!r} not found")
    return _run_from_row(row)


def find_run_by_request_id(db: Database, request_id: str) -> RunRow | None:
    """The run created with idempotency key ``request_id``, if any."""
    row = db.read(
        lambda d: d.conn.execute(
            _RUN_SELECT + " WHERE r.request_id = ?",
            (request_id,),
        ).fetchone()
    )
    return None if row is None else _run_from_row(row)


def list_runs(
    db: Database,
    model: str = "",
    benchmark: str = "",
    limit: int = 100,
    after: tuple[str, str] | None = None,
) -> list[RunRow]:
    """Runs, newest first, optionally of one model and/or benchmark.

    ``after`` is the (created_at, id) of the last run of the previous page: the page
    starts with the run listed just after it, so runs created meanwhile never shift a page.
    """
    where: list[str] = []
    args: list[object] = []
    if after is not None:
        where.append("(r.created_at < ? OR (r.created_at = ? AND r.id < ?))")
        args.extend([after[0], after[0], after[1]])
    if model:
        where.append("r.model = ?")
        args.append(model)
    if benchmark:
        where.append("b.name = ?")
        args.append(benchmark)
    sql = _RUN_SELECT
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY r.created_at DESC, r.id DESC LIMIT ?"
    args.append(max(0, limit))
    rows = db.read(lambda d: d.conn.execute(sql, args).fetchall())
    return [_run_from_row(r) for r in rows]


def run_ids_in_states(db: Database, states: Sequence[str]) -> list[str]:
    """Ids of runs in any of ``states``, oldest first."""
    marks = ",".join("?" * len(states))
    rows = db.read(
        lambda d: d.conn.execute(
            f"SELECT id FROM runs WHERE state IN ({marks}) ORDER BY created_at, rowid",
            list(states),
        ).fetchall()
    )
    return [str(r[0]) for r in rows]


async def aset_run_state(
    db: Database,
    run_id: str,
    state: str,
    *,
    error_message: str | None = None,
    started: bool = False,
    finished: bool = False,
    only_from: Sequence[str] = (),
) -> bool:
    """Change a run's state.

    Args:
        db: the database.
        run_id: the run.
        state: the new state.
        error_message: replaces the stored message when given.
        started: stamp ``started_at`` and clear ``finished_at``.
        finished: stamp ``finished_at``.
        only_from: change only if the current state is one of these (empty: any).

    Returns:
        True if the row changed.
    """
    sets, args = ["state = ?"], [state]
    if error_message is not None:
        sets.append("error_message = ?")
        args.append(error_message)
    stamp = now_iso()
    if started:
        sets.append("started_at = ?, finished_at = NULL")
        args.append(stamp)
    if finished:
        sets.append("finished_at = ?")
        args.append(stamp)
    sql = f"UPDATE runs SET {', '.join(sets)} WHERE id = ?"
    args.append(run_id)
    if only_from:
        sql += f" AND state IN ({','.join('?' * len(only_from))})"
        args.extend(only_from)

    def fn(d: sqlite_utils.Database) -> bool:
        return d.conn.execute(sql, args).rowcount > 0

    return await db.awrite(fn)


async def aset_model_info(db: Database, run_id: str, info: dict[str, object]) -> None:
    """Store the pre-flight GetModelInfo of a resumed run."""
    text = json.dumps(info, sort_keys=True)

    def fn(d: sqlite_utils.Database) -> None:
        d.conn.execute("UPDATE runs SET model_info = ? WHERE id = ?", (text, run_id))

    await db.awrite(fn)


# -- questions of a run ---------------------------------------------------------------------


@dataclass(frozen=True)
class PendingQuestion:
    """A question of a run without a final attempt."""

    idx: int
    """Benchmark question index."""
    next_attempt: int
    """Number of the next attempt (1-based, after any recorded non-final ones)."""


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
    """Non-empty (label, text) options in label order."""
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


def pending_questions(db: Database, run_id: str) -> list[PendingQuestion]:
    """Questions of a run without a final attempt, in asking order."""
    rows = db.read(
        lambda d: d.conn.execute(
            "SELECT rq.idx, COALESCE(MAX(a.attempt), 0) + 1 FROM run_questions rq"
            " LEFT JOIN attempts a ON a.run_id = rq.run_id AND a.idx = rq.idx"
            " WHERE rq.run_id = ?"
            " GROUP BY rq.idx HAVING COALESCE(MAX(a.final), 0) = 0"
            " ORDER BY MIN(rq.position)",
            (run_id,),
        ).fetchall()
    )
    return [PendingQuestion(int(r[0]), int(r[1])) for r in rows]


async def apending_questions(db: Database, run_id: str) -> list[PendingQuestion]:
    """Awaitable :func:`pending_questions`."""
    return await asyncio.to_thread(pending_questions, db, run_id)


_LABELS = ("A", "B", "C", "D", "E")


def _item(r: Sequence[object], qid: str, next_attempt: int) -> RunItem:
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
    )


_ITEM_COLUMNS = (
    "q.idx, {qid}, q.question, q.option_a, q.option_b, q.option_c, q.option_d, q.option_e,"
    " q.image_sha256, i.media_type, i.width, i.height, i.data"
)


READ_MMAP_BYTES = 1 << 30
"""Memory-map size of the connection that loads images: reading a 200 KB blob through
mmap costs a third of reading it page by page (bench/run_throughput.py)."""


def _load_items(
    d: sqlite_utils.Database, run_id: str, benchmark_id: int, pending: Sequence[PendingQuestion]
) -> list[RunItem]:
    if not pending:
        return []
    d.conn.execute(f"PRAGMA mmap_size={READ_MMAP_BYTES}").fetchall()
    marks = ",".join("?" * len(pending))
    rows = d.conn.execute(
        f"SELECT {_ITEM_COLUMNS.format(qid='rq.qid')} FROM run_questions rq"
        " JOIN questions q ON q.benchmark_id = ? AND q.idx = rq.idx"
        " JOIN images i ON i.sha256 = q.image_sha256"
        f" WHERE rq.run_id = ? AND rq.idx IN ({marks})",
        [benchmark_id, run_id, *(p.idx for p in pending)],
    ).fetchall()
    by_idx = {int(r[0]): r for r in rows}
    items = []
    for p in pending:
        r = by_idx.get(p.idx)
        if r is None:
            raise NotFound(f"run {run_id}: question {p.idx} or its image is missing")
        items.append(_item(r, str(r[1]), p.next_attempt))
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

    def fn(d: sqlite_utils.Database) -> list[RunItem]:
        marks = ",".join("?" * len(idxs))
        rows = d.conn.execute(
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


def run_question_indexes(db: Database, run_id: str) -> list[int]:
    """The frozen question list of a run, in asking order."""
    rows = db.read(
        lambda d: d.conn.execute(
            "SELECT idx FROM run_questions WHERE run_id = ? ORDER BY position", (run_id,)
        ).fetchall()
    )
    return [int(r[0]) for r in rows]


__all__ = [
    "Attempt",
    "Counts",
    "PendingQuestion",
    "RunItem",
    "RunRow",
    "aload_items",
    "aload_question_items",
    "apending_questions",
    "arecord_attempt",
    "arecord_attempts",
    "arun_counts",
    "aset_model_info",
    "aset_run_state",
    "find_run_by_request_id",
    "get_model",
    "get_run",
    "insert_run",
    "list_attempts",
    "list_models",
    "list_runs",
    "load_items",
    "now_iso",
    "params_from_json",
    "params_to_json",
    "pending_questions",
    "register_model",
    "run_counts",
    "run_ids_in_states",
    "run_question_indexes",
    "spec_from_json",
    "spec_to_json",
]
