"""Repository of runs: one ``runs`` row per run, its state, parameters and provenance.

A run's questions live in :mod:`.run_questions`, its attempts in :mod:`.attempts` and
the models it may name in :mod:`.models`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from gmai_eval.server.records import Era, ModelSpec, RunParams, RunState
from gmai_eval.server.store.attempts import now_iso
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import get_model as get_model  # for api/scoring_service
from gmai_eval.server.store.models import spec_from_json, spec_to_json
from gmai_eval.server.store.suggest import unknown


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
    state: RunState
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
    data = json.loads(text)
    if "extraction_era" in data:
        data["extraction_era"] = Era(data["extraction_era"])
    return RunParams(**data)


def _run_from_row(row: Sequence[object]) -> RunRow:
    return RunRow(
        id=str(row[0]),
        model=str(row[1]),
        benchmark_id=int(row[2]),  # type: ignore[call-overload]
        benchmark=str(row[3] or ""),
        benchmark_digest=str(row[4]),
        state=RunState(str(row[5])),
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


def insert_run(db: Database, run: RunRow, questions: Sequence[tuple[int, str, int]]) -> None:
    """Create a run with its frozen question list, atomically.

    Args:
        db: the database.
        run: the run (state, timestamps and totals as they should be stored).
        questions: ``(idx, opaque id, rotation)`` in asking order (rotation 0 except in a
            circular run).
    """

    def fn(d: sqlite3.Connection) -> None:
        d.execute(
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
        d.executemany(
            "INSERT INTO run_questions (run_id, idx, qid, position, rotation) VALUES (?, ?, ?, ?, ?)",
            [(run.id, idx, qid, pos, rot) for pos, (idx, qid, rot) in enumerate(questions)],
        )

    db.write(fn)


def get_run(db: Database, run_id: str) -> RunRow:
    """The run ``run_id``.

    Raises:
        NotFound: no such run.
    """
    row = db.read(
        lambda d: d.execute(
            _RUN_SELECT + " WHERE r.id = ?",
            (run_id,),
        ).fetchone()
    )
    if row is None:
        raise unknown(db, "run", run_id)
    return _run_from_row(row)


def find_run_by_request_id(db: Database, request_id: str) -> RunRow | None:
    """The run created with idempotency key ``request_id``, if any."""
    row = db.read(
        lambda d: d.execute(
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
    rows = db.read(lambda d: d.execute(sql, args).fetchall())
    return [_run_from_row(r) for r in rows]


def run_ids_in_states(db: Database, states: Sequence[str]) -> list[str]:
    """Ids of runs in any of ``states``, oldest first."""
    marks = ",".join("?" * len(states))
    rows = db.read(
        lambda d: d.execute(
            f"SELECT id FROM runs WHERE state IN ({marks}) ORDER BY created_at, rowid",
            list(states),
        ).fetchall()
    )
    return [str(r[0]) for r in rows]


async def aset_run_state(
    db: Database,
    run_id: str,
    state: RunState,
    *,
    error_message: str | None = None,
    started: bool = False,
    finished: bool = False,
    only_from: Sequence[RunState] = (),
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
    sets: list[str] = ["state = ?"]
    args: list[object] = [str(state)]
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

    def fn(d: sqlite3.Connection) -> bool:
        return d.execute(sql, args).rowcount > 0

    return await db.awrite(fn)


async def aset_model_info(db: Database, run_id: str, info: dict[str, object]) -> None:
    """Store the pre-flight GetModelInfo of a resumed run."""
    text = json.dumps(info, sort_keys=True)

    def fn(d: sqlite3.Connection) -> None:
        d.execute("UPDATE runs SET model_info = ? WHERE id = ?", (text, run_id))

    await db.awrite(fn)
