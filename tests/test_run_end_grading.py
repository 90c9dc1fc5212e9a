"""A run's final grading happens when it ends, on the run manager's write path.

The manager is wired as ``app.py`` wires it (``grade_pending`` while answers arrive,
``finish_grading`` at the end) and driven against a scripted model over real gRPC. After a
run ends nothing is left for a read to grade, and the run's stored summary (what a scrape
exports) matches its scores; a cancelled run that is resumed is graded again when it ends.
"""

from __future__ import annotations

import asyncio

from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import RunParams
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.scoring.grading import compute_scores, finish_grading, grade_pending
from gmai_eval.server.scoring.summary import from_json
from gmai_eval.server.store import metrics_reads
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import register_model
from prometheus_client import CollectorRegistry

from tests._runs_helpers import (
    Script,
    ScriptedModel,
    build_benchmark,
    spec_for,
    start_model_server,
    wait_final,
)

N = 24


def _manager(db: Database) -> RunManager:
    async def grader(run_id: str) -> None:
        await grade_pending(db, run_id)

    async def final_grader(run_id: str) -> None:
        await finish_grading(db, run_id)

    return RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()), grader=grader, final_grader=final_grader,
                      backoff_base_s=0.01)


def _summary_n(db: Database, run_id: str) -> int | None:
    stored = db.read(lambda s: metrics_reads.summaries(s, [run_id]))
    return from_json(stored[run_id]).n if run_id in stored else None


async def _wait_done(mgr: RunManager, run_id: str, n: int) -> None:
    async def poll() -> None:
        while mgr.get_run(run_id).progress.done < n:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 30)


async def test_a_finished_run_is_graded_and_summarised(db: Database) -> None:
    build_benchmark(db, "bench", N)
    srv = await start_model_server(ScriptedModel(Script(free_text=True)))
    mgr = _manager(db)
    try:
        register_model(db, spec_for("m1", srv))
        rec = await mgr.create_run("m1", "bench", RunParams(concurrency=4))
        final = await wait_final(mgr, rec.id)
    finally:
        await mgr.shutdown(0)
        await srv.stop()
    assert final.state == "succeeded"
    scores = compute_scores(db, rec.id)
    assert scores.ungraded == 0 and scores.overall.n == N
    assert _summary_n(db, rec.id) == N


async def test_a_cancelled_run_resumed_is_graded_again_at_its_end(db: Database) -> None:
    build_benchmark(db, "bench", N)
    stuck = {f"Question {i}: which finding is shown?" for i in range(N - 4, N)}
    script = Script(slow_questions=stuck, slow_delay_s=60)
    srv = await start_model_server(ScriptedModel(script))
    mgr = _manager(db)
    try:
        register_model(db, spec_for("m1", srv))
        rec = await mgr.create_run("m1", "bench", RunParams(concurrency=2))
        await _wait_done(mgr, rec.id, N - 4)
        cancelled = await mgr.cancel_run(rec.id)
        assert cancelled.state == "cancelled"
        partial = compute_scores(db, rec.id)
        assert partial.overall.n == N - 4 and partial.ungraded == 4
        assert _summary_n(db, rec.id) == N - 4
        script.slow_questions = set()
        await mgr.resume_run(rec.id)
        final = await wait_final(mgr, rec.id)
    finally:
        await mgr.shutdown(0)
        await srv.stop()
    assert final.state == "succeeded"
    assert compute_scores(db, rec.id).ungraded == 0
    assert _summary_n(db, rec.id) == N
