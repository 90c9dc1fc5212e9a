"""Run and benchmark RPCs answered from the database file: the servicer and the CLI share them.

``ListRuns`` and ``GetRunReport`` read; ``DeleteRun`` and ``RemoveBenchmark`` end a life
cycle (admin only, through :mod:`~gmai_eval.server.store.lifecycle`, in one transaction).
The evaluator's servicer calls them with its run manager's view of the runs it drives
(``lister`` for live rate and sub-state, ``busy`` for runs still being driven or finished);
the CLI's ``--db`` path calls them on the file alone. Both ways build the same messages, so
``gmai-eval runs``, ``runs show``, ``runs delete`` and ``benchmarks remove`` print the same
either way (a run being driven shows its rate and "waiting for model" only through the
evaluator, which alone knows them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api import convert, paging
from gmai_eval.server.records import RunRecord
from gmai_eval.server.runs.progress import run_report, stored_record
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.lifecycle import delete_run, remove_benchmark

RunLister = Callable[[str, str, int, tuple[str, str] | None], Sequence[RunRecord]]
"""``lister(model, benchmark, limit, after)``: runs newest first after a page cursor."""


def _idle(run_id: str) -> bool:
    return False


def stored_lister(db: Database) -> RunLister:
    """The runs of ``db`` as the file alone tells them (no live rate or sub-state)."""

    def lister(model: str, benchmark: str, limit: int, after: tuple[str, str] | None) -> list[RunRecord]:
        return [stored_record(db, r) for r in run_store.list_runs(db, model, benchmark, limit, after)]

    return lister


def list_runs_response(request: pb.ListRunsRequest, lister: RunLister) -> pb.ListRunsResponse:
    """``ListRuns``: one page, newest first, with the token of the next one.

    Raises:
        InvalidArgument: a page_token not issued for these filters.
    """
    size = min(request.page_size or paging.DEFAULT_PAGE_SIZE, paging.MAX_PAGE_SIZE)
    scope = (request.model, request.benchmark)
    after = paging.decode(request.page_token, scope) if request.page_token else None
    found = lister(request.model, request.benchmark, size + 1, after)
    page, more = list(found[:size]), len(found) > size
    token = paging.encode((page[-1].created_at, page[-1].id), scope) if more else ""
    return pb.ListRunsResponse(runs=convert.runs_to_proto(page), next_page_token=token)


def run_report_response(db: Database, request: pb.GetRunReportRequest) -> pb.GetRunReportResponse:
    """``GetRunReport`` from the file alone.

    Raises:
        NotFound: no such run (the message names the closest ids).
    """
    return convert.run_report_to_proto(run_report(db, stored_record(db, run_store.get_run(db, request.id))))


def _rows(counts: dict[str, int]) -> dict[str, int]:
    return {table: n for table, n in sorted(counts.items())}


def delete_run_response(
    db: Database, request: pb.DeleteRunRequest, busy: Callable[[str], bool] = _idle
) -> pb.DeleteRunResponse:
    """``DeleteRun``: the run as it was, and the rows deleted per table.

    Raises:
        NotFound: no such run.
        FailedPrecondition: the run is queued, running, interrupted or ``busy``.
    """
    before = stored_record(db, run_store.get_run(db, request.id))
    deleted = delete_run(db, request.id, busy)
    return pb.DeleteRunResponse(run=convert.run_to_proto(before), deleted_rows=_rows(deleted.rows))


def remove_benchmark_response(
    db: Database, request: pb.RemoveBenchmarkRequest, busy: Callable[[str], bool] = _idle
) -> pb.RemoveBenchmarkResponse:
    """``RemoveBenchmark``: the benchmark as it was, the runs deleted with it, the rows per table.

    Raises:
        NotFound: no such benchmark.
        FailedPrecondition: a run of it is going, or it has runs and ``with_runs`` is false.
    """
    removed = remove_benchmark(db, request.name, with_runs=request.with_runs, busy=busy)
    return pb.RemoveBenchmarkResponse(
        benchmark=convert.benchmark_to_proto(removed.benchmark),
        deleted_runs=list(removed.runs),
        deleted_rows=_rows(removed.rows),
    )
