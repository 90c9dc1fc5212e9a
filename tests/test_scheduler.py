"""Scheduling: adaptive concurrency, durability across restarts, model restarts, grading."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
from collections.abc import AsyncIterator

import pytest
from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import RunParams
from gmai_eval.server.runs.adaptive_limit import CUT_INTERVAL_S, AdaptiveLimit
from gmai_eval.server.runs.contract import run_concurrency
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.runs.opaque_ids import opaque_question_id
from gmai_eval.server.runs.preflight import normalize_params
from gmai_eval.server.scoring.grading import grade_pending
from gmai_eval.server.store import benchmarks as bench_store
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.attempts import list_attempts
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import register_model
from prometheus_client import CollectorRegistry

from tests._runs_helpers import (
    Script,
    ScriptedModel,
    answer_for,
    build_benchmark,
    spec_for,
    start_model_server,
    wait_final,
)


def new_manager(db: Database, **kw: object) -> RunManager:
    return RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()), backoff_base_s=0.01, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def manager(db: Database) -> AsyncIterator[RunManager]:
    mgr = new_manager(db)
    await mgr.start()
    yield mgr
    await mgr.shutdown(grace_s=0)


async def wait_done(mgr: RunManager, run_id: str, n: int) -> None:
    async def poll() -> None:
        while mgr.get_run(run_id).progress.done < n:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 30)


async def wait_inflight(model: ScriptedModel, n: int) -> None:
    """Return once ``n`` calls are in flight at ``model`` (fails after 30 s)."""

    async def poll() -> None:
        while model.inflight < n:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), 30)


async def attempt_with_code(db: Database, run_id: str, code: str) -> None:
    """Return once the run has an attempt that ended with ``code``."""
    while not any(a.code == code for a in list_attempts(db, run_id)):
        await asyncio.sleep(0.01)


def finals(db: Database, run_id: str) -> dict[int, tuple[str, ...]]:
    rows = [a for a in list_attempts(db, run_id) if a.final]
    counts = collections.Counter(a.idx for a in rows)
    assert max(counts.values()) == 1, "a question has two final attempts"
    return {a.idx: a.labels for a in rows}


# -- AIMD ---------------------------------------------------------------------------------


def test_adaptive_limit_halves_and_grows() -> None:
    now = 100.0
    seen: list[int] = []
    lim = AdaptiveLimit(8, 1, on_change=seen.append, clock=lambda: now)
    assert lim.limit == 8 and seen == [8]
    lim.on_overload()
    assert lim.limit == 4
    now += CUT_INTERVAL_S / 2
    lim.on_overload()  # within one interval of the last cut: one congestion event
    assert lim.limit == 4
    now += CUT_INTERVAL_S
    lim.on_overload()
    assert lim.limit == 2
    for _ in range(2):
        lim.on_success()
    assert lim.limit == 3
    for _ in range(3 + 4 + 5 + 6):
        lim.on_success()
    assert lim.limit == 7
    for _ in range(100):
        lim.on_success()
    assert lim.limit == 8
    assert seen == [8, 4, 2, 3, 4, 5, 6, 7, 8]


async def test_adaptive_limit_bounds_inflight() -> None:
    lim = AdaptiveLimit(3)
    inflight = peak = 0

    async def job() -> None:
        nonlocal inflight, peak
        await lim.acquire()
        inflight += 1
        peak = max(peak, inflight)
        await asyncio.sleep(0.01)
        inflight -= 1
        lim.release()

    await asyncio.gather(*(job() for _ in range(20)))
    assert peak == 3 and lim.inflight == 0
    lim.on_overload()
    peak = 0
    await asyncio.gather(*(job() for _ in range(10)))
    assert peak == 1


async def test_overload_lowers_concurrency_and_is_retried(db: Database) -> None:
    metrics = EvaluatorMetrics(CollectorRegistry())
    mgr = RunManager(db, metrics=metrics, backoff_base_s=0.01)
    build_benchmark(db, "bench", 40)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.01, from_call=1, exhausted_calls=12)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await mgr.create_run("m1", "bench", RunParams(concurrency=8, max_attempts=10))
        limits: list[float] = []
        while mgr.get_run(rec.id).state == "running":
            limits.append(metrics.registry.get_sample_value("gmai_eval_concurrency_limit", {"model": "m1"}) or 0)
            await asyncio.sleep(0.005)
        final = mgr.get_run(rec.id)
    finally:
        await mgr.shutdown(0)
        await srv.stop()
    assert final.state == "succeeded" and final.progress.errors == 0
    assert final.progress.retries == 12
    assert min(limits) < 8
    codes = collections.Counter(a.code for a in list_attempts(db, rec.id))
    assert codes == {"OK": 40, "RESOURCE_EXHAUSTED": 12}
    assert metrics.registry.get_sample_value(
        "gmai_eval_answer_retries_total", {"model": "m1", "reason": "RESOURCE_EXHAUSTED"}
    ) == 12


async def test_concurrency_caps_calls_in_flight(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 40)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.02)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=5))
        await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert srv.model.max_inflight == 5


async def test_model_advised_max_concurrency_is_honoured(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 30)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.02, max_concurrency=3)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=10))
        await wait_final(manager, rec.id)
        # Resumed runs read the limit from the stored model info.
        assert run_store.get_run(db, rec.id).model_info["max_concurrency"] == 3
    finally:
        await srv.stop()
    assert srv.model.max_inflight == 3


@pytest.mark.parametrize(
    ("asked", "advertised", "expected"),
    [
        (0, 0, 16),  # no advice: the fixed default
        (0, 128, 128),  # the SDK's cheap model: its advice, all of it
        (0, 1000, 128),  # capped
        (0, 64, 64),
        (0, 3, 3),
        (5, 128, 5),  # set by the run: kept (the model's ceiling still applies per call)
        (100, 3, 100),
    ],
)
def test_run_concurrency_rule(asked: int, advertised: int, expected: int) -> None:
    assert run_concurrency(asked, advertised) == expected


def test_concurrency_zero_is_kept_for_the_model_and_out_of_range_is_refused() -> None:
    assert normalize_params(RunParams()).concurrency == 0  # resolved after the handshake
    with pytest.raises(InvalidArgument, match="concurrency must be between 1 and 4096"):
        normalize_params(RunParams(concurrency=4097))


@pytest.mark.parametrize(("advertised", "expected"), [(0, 16), (24, 24), (200, 128)])
async def test_default_concurrency_follows_the_model(
    db: Database, manager: RunManager, advertised: int, expected: int
) -> None:
    build_benchmark(db, "bench", 160)  # more questions than the cap, so the run can fill it
    gate = asyncio.Event()
    model = ScriptedModel(Script(max_concurrency=advertised))
    model.gate = gate
    srv = await start_model_server(model)
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams())  # concurrency not set
        # Every call waits at the gate: the run fills exactly its concurrency, then waits.
        await wait_inflight(model, expected)
        gate.set()
        await wait_final(manager, rec.id)
        stored = run_store.get_run(db, rec.id).params.concurrency
    finally:
        gate.set()
        await srv.stop()
    assert stored == expected and rec.params.concurrency == expected
    assert model.max_inflight == expected


# -- durability ---------------------------------------------------------------------------


async def test_resume_after_manager_dropped_mid_run(db: Database) -> None:
    idxs = build_benchmark(db, "bench", 60)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.01, fail_times=1)))
    try:
        register_model(db, spec_for("m1", srv))
        first = new_manager(db)
        rec = await first.create_run("m1", "bench", RunParams(concurrency=4, max_attempts=3))
        await wait_done(first, rec.id, 20)
        # As if the process died: tasks cancelled, nothing marked.
        await first.shutdown(grace_s=0, mark_interrupted=False)
        dropped = first.get_run(rec.id)
        assert dropped.state == "running" and 20 <= dropped.progress.done < 60
        calls_before = srv.model.calls

        second = new_manager(db)
        await second.start()
        final = await wait_final(second, rec.id)
        await second.shutdown(0)
        calls_second = srv.model.calls - calls_before

        # The same questions, uninterrupted, in a fresh run.
        third = new_manager(db)
        srv.model.calls_by_question.clear()
        ref = await third.create_run("m1", "bench", RunParams(concurrency=4, max_attempts=3))
        ref_final = await wait_final(third, ref.id)
        await third.shutdown(0)
    finally:
        await srv.stop()
    assert final.state == "succeeded"
    assert final.progress.done == 60 and final.progress.errors == 0
    got = finals(db, rec.id)
    assert sorted(got) == idxs
    assert got == finals(db, ref.id) and ref_final.progress.done == 60
    # Nothing already final was asked again after the restart.
    assert calls_second <= 2 * (60 - dropped.progress.done)
    attempts = list_attempts(db, rec.id)
    keys = [(a.idx, a.attempt) for a in attempts]
    assert len(keys) == len(set(keys))
    for idx in idxs:
        numbers = [a.attempt for a in attempts if a.idx == idx]
        assert numbers == list(range(1, len(numbers) + 1))


async def test_model_upgraded_under_a_killed_run_does_not_mix_into_it(db: Database) -> None:
    build_benchmark(db, "bench", 40)
    script = Script(delay_s=0.01)
    srv = await start_model_server(ScriptedModel(script))
    try:
        register_model(db, spec_for("m1", srv))
        first = new_manager(db)
        rec = await first.create_run(
            "m1", "bench", RunParams(concurrency=4, max_attempts=1, max_error_fraction=0.2)
        )
        await wait_done(first, rec.id, 10)
        await first.shutdown(grace_s=0, mark_interrupted=False)
        done_before = first.get_run(rec.id).progress.done
        script.version = "2.0"  # the model was upgraded while the evaluator was down
        second = new_manager(db)
        await second.start()
        final = await wait_final(second, rec.id)
        await second.shutdown(0)
    finally:
        await srv.stop()
    assert final.state == "failed"
    attempts = list_attempts(db, rec.id)
    answered = [a for a in attempts if a.outcome == "answered"]
    assert len(answered) >= done_before and {a.model_version for a in answered} == {"1.0"}
    refused = [a for a in attempts if a.code == "MODEL_VERSION_CHANGED"]
    assert refused and all(a.outcome == "error" for a in refused)
    assert "'2.0'" in refused[0].error and "'1.0'" in refused[0].error


async def test_graceful_shutdown_interrupts_and_start_resumes(db: Database) -> None:
    idxs = build_benchmark(db, "bench", 40)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.02)))
    try:
        register_model(db, spec_for("m1", srv))
        first = new_manager(db)
        rec = await first.create_run("m1", "bench", RunParams(concurrency=2))
        await wait_done(first, rec.id, 5)
        await first.shutdown(grace_s=5)
        stopped = first.get_run(rec.id)
        assert stopped.state == "interrupted"
        # A watcher of an interrupted run that nobody drives ends at once.
        seen = [r async for r in first.watch(rec.id)]
        assert [r.state for r in seen] == ["interrupted"]
        # The shutdown awaited the run's task: nothing drives the run any more, so nothing
        # more can be asked or recorded.
        assert not first.is_driving(rec.id)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == f"run {rec.id}"]
        calls_at_stop = srv.model.calls
        await asyncio.sleep(0)
        assert srv.model.calls == calls_at_stop
        assert first.get_run(rec.id).progress.done == stopped.progress.done
        # No attempt was left non-final by the graceful stop.
        assert stopped.progress.retries == 0

        second = new_manager(db)
        await second.start()
        final = await wait_final(second, rec.id)
        await second.shutdown(0)
    finally:
        await srv.stop()
    assert final.state == "succeeded" and sorted(finals(db, rec.id)) == idxs


async def test_model_server_killed_and_restarted_mid_run(db: Database, manager: RunManager) -> None:
    idxs = build_benchmark(db, "bench", 60)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.01)))
    port = srv.port
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=4, max_attempts=12))
        await wait_done(manager, rec.id, 15)
        await srv.stop(0)
        # Restart only once the run has recorded the outage, not after a guessed time.
        await asyncio.wait_for(attempt_with_code(db, rec.id, "UNAVAILABLE"), 30)
        srv = await start_model_server(ScriptedModel(Script(delay_s=0.01)), port=port)
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded", final.error_message
    assert final.progress.errors == 0 and final.progress.retries > 0
    assert sorted(finals(db, rec.id)) == idxs
    codes = {a.code for a in list_attempts(db, rec.id) if not a.final}
    assert codes <= {"UNAVAILABLE", "CANCELLED"} and "UNAVAILABLE" in codes


# -- grading and progress -----------------------------------------------------------------


async def test_grader_fills_correct_count(db: Database) -> None:
    build_benchmark(db, "bench", 30)
    questions = {q.index: q for q in bench_store.load_questions(db, 1)}
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.005)))
    calls: list[str] = []

    async def grader(run_id: str) -> None:
        calls.append(run_id)
        await grade_pending(db, run_id)

    mgr = new_manager(db, grader=grader)
    try:
        register_model(db, spec_for("m1", srv))
        rec = await mgr.create_run("m1", "bench", RunParams(concurrency=2))
        final = await wait_final(mgr, rec.id)
    finally:
        await mgr.shutdown(0)
        await srv.stop()
    expected = sum(
        answer_for(q.question, list(q.options)) == q.answer for q in questions.values()
    )
    assert 0 < expected < 30
    assert final.state == "succeeded" and final.progress.correct == expected
    assert calls and set(calls) == {rec.id}


async def test_watch_reports_progress_then_ends(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 60)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.03)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=2))
        seen = [r async for r in manager.watch(rec.id)]
    finally:
        await srv.stop()
    assert seen[0].progress.done < 60 and seen[-1].state == "succeeded"
    dones = [r.progress.done for r in seen]
    assert dones == sorted(dones) and len(seen) >= 3
    assert any(r.progress.rate_per_s > 0 and r.progress.eta_s > 0 for r in seen[1:-1])


def test_opaque_ids_depend_on_salt_only() -> None:
    a = opaque_question_id("salt-1", 1234)
    assert a == opaque_question_id("salt-1", 1234)
    assert a != opaque_question_id("salt-2", 1234)
    assert a.startswith("q-") and len(a) == 18 and "1234" not in a
    # The documented construction: q- and the first 16 hex digits of HMAC-SHA256.
    assert a == "q-" + hmac.new(b"salt-1", b"1234", hashlib.sha256).hexdigest()[:16]


async def test_cancelled_rpc_on_server_stop_is_not_final(db: Database, manager: RunManager) -> None:
    """A question in flight when its replica goes away stays pending and is asked again."""
    build_benchmark(db, "bench", 8)
    slow = "Question 5: which finding is shown?"
    srv = await start_model_server(ScriptedModel(Script(slow_questions={slow}, slow_delay_s=1.0)))
    port = srv.port
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=8, max_attempts=12))
        await wait_done(manager, rec.id, 7)
        await srv.stop(0)
        srv = await start_model_server(ScriptedModel(), port=port)
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded" and final.progress.errors == 0



async def test_unreadable_question_fails_the_run_instead_of_hanging(
    db: Database, manager: RunManager
) -> None:
    build_benchmark(db, "bench", 100)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.005)))
    try:
        register_model(db, spec_for("m1", srv))

        def lose_1090(d: object) -> None:
            # The question goes while the run is being created (its list of questions is
            # already written), before anything is loaded: the loader may read the second
            # window at once, so a delete after create_run would race with it.
            d.execute(
                "CREATE TRIGGER lose_1090 AFTER INSERT ON run_questions WHEN NEW.idx = 1090"
                " BEGIN DELETE FROM questions WHERE idx = 1090; END"
            )

        db.write(lose_1090)  # the second window of questions will miss one
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=2))
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "failed"
    assert "question 1090 or its image is missing" in final.error_message
    assert final.progress.done < 100


async def test_a_models_retry_info_is_a_floor_under_the_backoff(db: Database) -> None:
    # The model asks for 1.5 s; the scheduler's own jittered backoff for a first retry is
    # at most backoff_base_s (0.01 s here), so any gap of 1.5 s or more comes from RetryInfo.
    mgr = RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()), backoff_base_s=0.01)
    build_benchmark(db, "bench", 1)
    # from_call=1: the pre-flight's smoke question is answered; the run's first call is not.
    srv = await start_model_server(ScriptedModel(Script(from_call=1, exhausted_calls=1, exhausted_retry_after_s=1.5)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await mgr.create_run("m1", "bench", RunParams(max_attempts=3))
        await wait_final(mgr, rec.id)
        final = mgr.get_run(rec.id)
    finally:
        await mgr.shutdown(0)
        await srv.stop()
    assert final.state == "succeeded" and final.progress.retries == 1
    (times,) = srv.model.call_times.values()  # the smoke question is the benchmark's only one
    assert len(times) == 3 and times[2] - times[1] >= 1.5
