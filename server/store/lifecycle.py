"""The end of the life cycle: deleting a run, removing a benchmark, each in one transaction.

This module is the only one that deletes what a run or an import recorded. A run's rows are
in :data:`RUN_TABLES` and the ``runs`` row itself; a benchmark's in :data:`BENCHMARK_TABLES`,
the ``benchmarks`` row, and the images no other benchmark's questions use (images are shared
by content digest). Each removal checks its precondition and deletes inside one write: a
refusal or a failure leaves every row in place, and nothing is ever half deleted.

Refusals (:class:`~gmai_eval.server.errors.FailedPrecondition`), in one line naming the runs:

- a run that is queued, running or interrupted (an interrupted run resumes at the
  evaluator's next start): cancel it first, or let it end;
- a benchmark with a run in one of those states, whatever ``with_runs`` says;
- a benchmark that still has runs, unless ``with_runs``: its runs' results would otherwise
  lose the questions they were graded on. With ``with_runs`` its finished runs are deleted
  with it, in the same transaction.

Unknown names raise :class:`~gmai_eval.server.errors.NotFound` with the closest names.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gmai_eval.server.errors import FailedPrecondition
from gmai_eval.server.records import Benchmark, RunState
from gmai_eval.server.store.benchmarks import get_benchmark
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.runs import RunRow, get_run
from gmai_eval.server.store.suggest import unknown_in

RUN_TABLES: tuple[str, ...] = (
    "run_events", "run_summaries", "judge_calls", "grades", "attempts", "run_questions",
)
"""Every table that holds rows of a run (by ``run_id``), deleted before the ``runs`` row."""

BENCHMARK_TABLES: tuple[str, ...] = ("import_defects", "questions", "source_files")
"""Every table that holds rows of a benchmark (by ``benchmark_id``), deleted before its row."""

IN_USE_STATES: tuple[RunState, ...] = (RunState.QUEUED, RunState.RUNNING, RunState.INTERRUPTED)
"""States of a run that still calls its model; such a run is neither deleted nor orphaned."""

SHOWN_RUNS = 5
"""Run ids a refusal names at most."""


@dataclass(frozen=True)
class DeletedRun:
    """A run that was deleted, as it was, with the rows deleted per table."""

    run: RunRow
    """The run before deletion."""
    rows: dict[str, int]
    """Rows deleted, by table (``runs`` included)."""


@dataclass(frozen=True)
class RemovedBenchmark:
    """A benchmark that was removed, as it was, with the runs deleted along with it."""

    benchmark: Benchmark
    """The benchmark before removal."""
    runs: tuple[str, ...]
    """Ids of the runs deleted with it (only with ``with_runs``)."""
    rows: dict[str, int]
    """Rows deleted, by table (``benchmarks`` and ``images`` included)."""


def _idle(run_id: str) -> bool:
    return False


def _shown(ids: Sequence[str]) -> str:
    more = len(ids) - SHOWN_RUNS
    return ", ".join(ids[:SHOWN_RUNS]) + (f" and {more} more" if more > 0 else "")


def _delete_run_rows(d: sqlite3.Connection, run_ids: Sequence[str], rows: dict[str, int]) -> None:
    for table in (*RUN_TABLES, "runs"):
        column = "id" if table == "runs" else "run_id"
        count = 0
        for run_id in run_ids:
            count += d.execute(f"DELETE FROM {table} WHERE {column} = ?", (run_id,)).rowcount
        rows[table] = rows.get(table, 0) + count


def delete_run(db: Database, run_id: str, busy: Callable[[str], bool] = _idle) -> DeletedRun:
    """Delete run ``run_id`` and every row it recorded, in one transaction.

    Args:
        db: the database.
        run_id: the run.
        busy: ``busy(run_id)`` is true while the caller still drives or finishes the run (the
            evaluator's run manager); such a run is refused like a running one.

    Raises:
        NotFound: no such run (the message names the closest run ids).
        FailedPrecondition: the run is queued, running or interrupted.
    """
    run = get_run(db, run_id)

    def fn(d: sqlite3.Connection) -> dict[str, int]:
        found = d.execute("SELECT state FROM runs WHERE id = ?", (run_id,)).fetchone()
        if found is None:  # deleted meanwhile
            raise unknown_in(d, "run", run_id)
        state = str(found[0])
        if state in IN_USE_STATES:
            resumes = "; it resumes at the evaluator's next start" if state == RunState.INTERRUPTED else ""
            raise FailedPrecondition(
                f"run {run_id} is {state}{resumes}: cancel it first (gmai-eval cancel {run_id}) or let it end"
            )
        if busy(run_id):
            raise FailedPrecondition(
                f"run {run_id} is {state} but the evaluator is still finishing it (grading, history); retry in a moment"
            )
        rows: dict[str, int] = {}
        _delete_run_rows(d, [run_id], rows)
        return rows

    return DeletedRun(run=run, rows=db.write(fn))


def remove_benchmark(
    db: Database, name: str, *, with_runs: bool = False, busy: Callable[[str], bool] = _idle
) -> RemovedBenchmark:
    """Remove benchmark ``name`` with its questions, files, defects and unshared images.

    Args:
        db: the database.
        name: the benchmark.
        with_runs: also delete its runs (all must be finished); without it, a benchmark
            that has runs is refused.
        busy: as for :func:`delete_run`.

    Raises:
        NotFound: no such benchmark (the message names the known or closest ones).
        FailedPrecondition: a run of the benchmark is queued, running or interrupted; or it
            has runs and ``with_runs`` is false.
    """
    benchmark = get_benchmark(db, name)

    def fn(d: sqlite3.Connection) -> tuple[tuple[str, ...], dict[str, int]]:
        if d.execute("SELECT 1 FROM benchmarks WHERE id = ?", (benchmark.id,)).fetchone() is None:
            raise unknown_in(d, "benchmark", name)  # removed meanwhile
        runs = [
            (str(r[0]), str(r[1]))
            for r in d.execute(
                "SELECT id, state FROM runs WHERE benchmark_id = ? ORDER BY created_at, id", (benchmark.id,)
            )
        ]
        live = [i for i, state in runs if state in IN_USE_STATES or busy(i)]
        if live:
            raise FailedPrecondition(
                f"benchmark {name!r} has {len(live)} run(s) going ({_shown(live)}); cancel them or let them end first"
            )
        ids = [i for i, _ in runs]
        if ids and not with_runs:
            raise FailedPrecondition(
                f"benchmark {name!r} has {len(ids)} run(s) ({_shown(ids)}); delete them first "
                "(gmai-eval runs delete RUN), or remove the benchmark with its runs (--with-runs)"
            )
        rows: dict[str, int] = {}
        _delete_run_rows(d, ids, rows)
        images = [
            str(r[0])
            for r in d.execute(
                "SELECT DISTINCT image_sha256 FROM questions WHERE benchmark_id = ?", (benchmark.id,)
            )
        ]
        for table in BENCHMARK_TABLES:
            rows[table] = d.execute(f"DELETE FROM {table} WHERE benchmark_id = ?", (benchmark.id,)).rowcount
        rows["benchmarks"] = d.execute("DELETE FROM benchmarks WHERE id = ?", (benchmark.id,)).rowcount
        rows["images"] = sum(
            d.execute(
                "DELETE FROM images WHERE sha256 = ?"
                " AND NOT EXISTS (SELECT 1 FROM questions q WHERE q.image_sha256 = ?)",
                (sha, sha),
            ).rowcount
            for sha in images
        )
        return tuple(ids), rows

    ids, rows = db.write(fn)
    return RemovedBenchmark(benchmark=benchmark, runs=ids, rows=rows)
