"""RunManager end to end against real scripted model servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator

import gmai_eval
import grpc
import pytest
from gmai_eval.server.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PreflightFailed,
    RunStateError,
)
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import ModelSpec, RunParams
from gmai_eval.server.runs.manager import RunManager
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
    running_manager,
    spec_for,
    start_model_server,
    wait_final,
)


@pytest.fixture
def metrics() -> EvaluatorMetrics:
    return EvaluatorMetrics(CollectorRegistry())


@pytest.fixture
async def manager(db: Database, metrics: EvaluatorMetrics) -> AsyncIterator[RunManager]:
    async with running_manager(db, metrics) as mgr:
        yield mgr


def final_answers(db: Database, run_id: str) -> dict[int, tuple[str, tuple[str, ...]]]:
    return {
        a.idx: (a.outcome, a.labels) for a in list_attempts(db, run_id) if a.final
    }


async def test_run_end_to_end(db: Database, manager: RunManager) -> None:
    idxs = build_benchmark(db, "bench", 30)
    srv = await start_model_server()
    srv.model.keep_requests = True
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=4))
        assert rec.state == "running"
        assert rec.progress.total == 30
        assert rec.model_info["protocol_version"] == "gmai_eval.model.v1"
        assert rec.evaluator_version == gmai_eval.__version__
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded", final.error_message
    assert final.progress.done == 30 and final.progress.errors == 0
    assert final.finished_at
    # One smoke call plus one call per question.
    assert srv.model.calls == 31
    attempts = list_attempts(db, rec.id)
    assert sorted(a.idx for a in attempts) == idxs
    assert all(a.final and a.attempt == 1 and a.outcome == "answered" for a in attempts)
    # Answers are what the model computed from the question content.
    expected = {
        r.request_id: answer_for(r.question, [(o.label, o.text) for o in r.options])
        for r in srv.model.requests
    }
    assert all(a.labels == (expected[a.request_id],) for a in attempts)
    assert len(set(expected.values())) > 1
    # Blinding: opaque ids, no index, no answer in the request.
    req = srv.model.requests[-1]
    qid_of = {a.idx: a.request_id.rsplit("-", 1)[0] for a in attempts}  # request_id = qid-attempt
    assert len(set(qid_of.values())) == 30
    assert all(re.fullmatch(r"q-[0-9a-f]{16}", q) for q in qid_of.values())
    # No id is its index written out (decimal or hex, padded). A substring check would fail
    # by chance: 16 random hex digits contain a given 4-digit index about once in 5,000 runs.
    assert all(q[2:] not in (f"{i:016d}", f"{i:016x}") for i, q in qid_of.items())
    assert req.prompt.startswith("Question: ")
    assert req.images[0].sha256 and len(req.images[0].data) == 64
    assert [r.id for r in manager.list_runs()] == [rec.id]
    assert manager.get_run(rec.id).state == "succeeded"


async def test_opaque_ids_differ_between_runs_but_answers_match(
    db: Database, manager: RunManager
) -> None:
    build_benchmark(db, "bench", 12)
    srv = await start_model_server()
    try:
        register_model(db, spec_for("m1", srv))
        a = await manager.create_run("m1", "bench", RunParams())
        await wait_final(manager, a.id)
        ids_a = set(srv.model.question_ids)
        srv.model.question_ids.clear()
        b = await manager.create_run("m1", "bench", RunParams())
        await wait_final(manager, b.id)
        ids_b = set(srv.model.question_ids)
    finally:
        await srv.stop()
    assert not ids_a & ids_b
    assert final_answers(db, a.id) == final_answers(db, b.id)


async def test_model_parameters_filter_and_limit(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 40)
    srv = await start_model_server()
    srv.model.keep_requests = True
    try:
        register_model(db, spec_for("m1", srv))
        params = RunParams(
            filter="modality=CT", limit=5, seed=7, model_parameters={"temperature": 0.5}
        )
        rec = await manager.create_run("m1", "bench", params)
        final = await wait_final(manager, rec.id)
        again = await manager.create_run("m1", "bench", params)
        await wait_final(manager, again.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded" and final.progress.total == 5
    assert set(final_answers(db, rec.id)) == set(final_answers(db, again.id))
    assert all(r.parameters["temperature"] == 0.5 for r in srv.model.requests)
    ct = {f"Question {i}: which finding is shown?" for i in range(0, 40, 4)}
    assert {r.question for r in srv.model.requests} <= ct


async def test_create_run_errors(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 5)
    srv = await start_model_server()
    try:
        register_model(db, spec_for("m1", srv))
        with pytest.raises(NotFound):
            await manager.create_run("nope", "bench", RunParams())
        with pytest.raises(NotFound):
            await manager.create_run("m1", "nope", RunParams())
        with pytest.raises(InvalidArgument, match="selects no question"):
            await manager.create_run("m1", "bench", RunParams(filter="modality=PET"))
        with pytest.raises(InvalidArgument, match="extraction_era"):
            await manager.create_run("m1", "bench", RunParams(extraction_era="1999"))
        with pytest.raises(NotFound):
            manager.get_run("r-000000000000")
    finally:
        await srv.stop()
    assert manager.list_runs() == []


async def test_request_id_is_idempotent(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 5)
    srv = await start_model_server()
    try:
        register_model(db, spec_for("m1", srv))
        a = await manager.create_run("m1", "bench", RunParams(), request_id="k1")
        b = await manager.create_run("m1", "bench", RunParams(), request_id="k1")
        assert a.id == b.id
        with pytest.raises(AlreadyExists):
            await manager.create_run("m1", "bench", RunParams(limit=2), request_id="k1")
        await wait_final(manager, a.id)
    finally:
        await srv.stop()
    assert len(manager.list_runs()) == 1


@pytest.mark.parametrize(
    ("script", "serving", "reason"),
    [
        (Script(), False, r"127\.0\.0\.1:\d+: NOT_SERVING"),
        (Script(protocol_version="other.v9"), True, "speaks protocol"),
        (Script(wrong_id=True), True, "smoke question failed"),
        (Script(unknown_label=True), True, "smoke question failed"),
    ],
)
async def test_preflight_failures(
    db: Database, manager: RunManager, script: Script, serving: bool, reason: str
) -> None:
    build_benchmark(db, "bench", 3)
    srv = await start_model_server(ScriptedModel(script), serving=serving)
    try:
        register_model(db, spec_for("m1", srv))
        with pytest.raises(PreflightFailed, match=reason):
            await manager.create_run("m1", "bench", RunParams())
    finally:
        await srv.stop()
    assert manager.list_runs() == []


async def test_preflight_unreachable(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 3)
    srv = await start_model_server()
    await srv.stop()
    register_model(db, ModelSpec("gone", (srv.endpoint,)))
    # A closed port is said to be one, not "not SERVING".
    with pytest.raises(PreflightFailed, match=f"{srv.endpoint}: connection refused"):
        await manager.create_run("gone", "bench", RunParams())


async def test_retries_recorded_per_attempt(
    db: Database, manager: RunManager, metrics: EvaluatorMetrics
) -> None:
    idxs = build_benchmark(db, "bench", 10)
    # The smoke question (call 1) is answered; then every question fails twice first.
    model = ScriptedModel(Script(from_call=1, fail_times=2))
    model.keep_requests = True
    srv = await start_model_server(model)
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(max_attempts=4))
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded"
    assert final.progress.done == 10 and final.progress.retries == 20
    attempts = list_attempts(db, rec.id)
    assert len(attempts) == 30
    for idx in idxs:
        rows = [a for a in attempts if a.idx == idx]
        assert [a.attempt for a in rows] == [1, 2, 3]
        assert [a.final for a in rows] == [False, False, True]
        assert [a.code for a in rows] == ["UNAVAILABLE", "UNAVAILABLE", "OK"]
        assert len({a.request_id for a in rows}) == 3
    # What the model received on each retry is the request with that attempt's id.
    sent = {r.request_id for r in model.requests}
    assert {a.request_id for a in attempts} <= sent
    value = metrics.registry.get_sample_value(
        "gmai_eval_answer_retries_total", {"model": "m1", "reason": "UNAVAILABLE"}
    )
    assert value == 20


async def test_non_retryable_code_is_final_at_once(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 10)
    bad = "Question 3: which finding is shown?"
    srv = await start_model_server(
        ScriptedModel(Script(always_fail={bad}, always_fail_code=grpc.StatusCode.INVALID_ARGUMENT))
    )
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(max_error_fraction=0.5))
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded"
    assert final.progress.errors == 1
    err = [a for a in list_attempts(db, rec.id) if a.outcome == "error"]
    assert len(err) == 1 and err[0].final and err[0].code == "INVALID_ARGUMENT"
    assert srv.model.calls_by_question[bad] == 1


async def test_slow_model_hits_deadlines(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 6)
    slow = "Question 2: which finding is shown?"
    srv = await start_model_server(
        ScriptedModel(Script(slow_questions={slow}, slow_delay_s=2.0))
    )
    try:
        register_model(db, spec_for("m1", srv))
        params = RunParams(deadline_s=0.2, max_attempts=2, max_error_fraction=0.5)
        rec = await manager.create_run("m1", "bench", params)
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop(0)
    assert final.state == "succeeded"
    assert final.progress.errors == 1 and final.progress.retries == 1
    rows = [a for a in list_attempts(db, rec.id) if a.outcome == "error"]
    assert [a.code for a in rows] == ["DEADLINE_EXCEEDED", "DEADLINE_EXCEEDED"]
    assert rows[-1].final and all(0.15 < a.latency_s < 1.5 for a in rows)


@pytest.mark.parametrize(
    ("switch", "message"),
    [("wrong_id", "does not echo"), ("unknown_label", "is not one of the options")],
)
async def test_invalid_responses_are_recorded_as_errors(
    db: Database, manager: RunManager, switch: str, message: str
) -> None:
    build_benchmark(db, "bench", 8)
    srv = await start_model_server(ScriptedModel(Script(from_call=1, **{switch: True})))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(max_error_fraction=1.0))
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded" and final.progress.errors == 8
    assert final.progress.retries == 0  # protocol errors are not retried
    attempts = list_attempts(db, rec.id)
    assert len(attempts) == 8
    assert all(a.code == "PROTOCOL_ERROR" and message in a.error for a in attempts)


async def test_free_text_answers_are_recorded(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 5)
    srv = await start_model_server(ScriptedModel(Script(free_text=True)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams())
        await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    attempts = list_attempts(db, rec.id)
    assert all(a.labels == () and a.text.startswith("The answer is ") for a in attempts)
    assert all(a.status == "answered" for a in attempts)


async def test_error_threshold_fails_the_run(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 20)
    bad = {f"Question {i}: which finding is shown?" for i in range(1, 20, 2)}  # 10 of 20
    srv = await start_model_server(ScriptedModel(Script(always_fail=bad)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run(
            "m1", "bench", RunParams(max_error_fraction=0.2, concurrency=1)
        )
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "failed"
    assert "max_error_fraction 0.2" in final.error_message
    # It stops as soon as the fraction cannot be met any more: 5 errors > 0.2 * 20.
    assert final.progress.errors == 5
    assert final.progress.done < 20


async def test_oversized_image_rejected_before_sending(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 6, big_images=(3,), big_image_bytes=5000)
    srv = await start_model_server(ScriptedModel(Script(max_image_bytes=1000)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(max_error_fraction=0.5))
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.progress.errors == 1 and final.state == "succeeded"
    big = "Question 3: which finding is shown?"
    assert srv.model.calls_by_question[big] == 0
    (err,) = [a for a in list_attempts(db, rec.id) if a.outcome == "error"]
    assert err.code == "INPUT_TOO_LARGE" and "max_image_bytes 1000" in err.error


async def test_oversized_request_and_unsupported_type_rejected_before_sending(
    db: Database, manager: RunManager
) -> None:
    build_benchmark(db, "bench", 8, big_images=(2,), big_image_bytes=4000, jpeg=(5,))
    srv = await start_model_server(
        ScriptedModel(Script(max_request_bytes=3000, media_types=("image/png",)))
    )
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(max_error_fraction=0.5))
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded" and final.progress.errors == 2
    for i in (2, 5):
        assert srv.model.calls_by_question[f"Question {i}: which finding is shown?"] == 0
    errors = {a.idx: a for a in list_attempts(db, rec.id) if a.outcome == "error"}
    assert errors[1002].code == "INPUT_TOO_LARGE" and "max_request_bytes 3000" in errors[1002].error
    assert errors[1005].code == "MEDIA_TYPE_UNSUPPORTED" and "image/jpeg" in errors[1005].error
    assert errors[1002].request_bytes > 3000 and errors[1002].final


async def test_three_replicas_share_the_load(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 60)
    servers = [await start_model_server(ScriptedModel(name=f"r{i}")) for i in range(3)]
    try:
        register_model(db, spec_for("m3", *servers))
        rec = await manager.create_run("m3", "bench", RunParams(concurrency=6))
        final = await wait_final(manager, rec.id)
    finally:
        for s in servers:
            await s.stop()
    assert final.state == "succeeded"
    calls = [s.model.calls for s in servers]
    assert sum(calls) == 61
    assert all(c >= 15 for c in calls), calls
    endpoints = {a.endpoint for a in list_attempts(db, rec.id)}
    assert endpoints == {s.endpoint for s in servers}


async def test_cancel_and_resume(db: Database, manager: RunManager) -> None:
    idxs = build_benchmark(db, "bench", 30)
    srv = await start_model_server(ScriptedModel(Script(delay_s=0.05)))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=2))
        while manager.get_run(rec.id).progress.done < 5:
            await asyncio.sleep(0.02)
        cancelled = await manager.cancel_run(rec.id)
        assert cancelled.state == "cancelled" and cancelled.finished_at
        done_at_cancel = cancelled.progress.done
        # Nothing can ask the model any more: the run's task is over (cancel_run awaited it),
        # so the call count is frozen and no answer is recorded after the cancel.
        assert not manager.is_driving(rec.id)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == f"run {rec.id}"]
        calls_at_cancel = srv.model.calls
        await asyncio.sleep(0)
        assert srv.model.calls == calls_at_cancel
        assert manager.get_run(rec.id).progress.done == done_at_cancel
        with pytest.raises(RunStateError):
            await manager.cancel_run(rec.id)
        resumed = await manager.resume_run(rec.id)
        assert resumed.state == "running"
        final = await wait_final(manager, rec.id)
        with pytest.raises(RunStateError):
            await manager.resume_run(rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded" and final.progress.done == 30
    finals = [a for a in list_attempts(db, rec.id) if a.final]
    assert sorted(a.idx for a in finals) == idxs


async def test_resume_refuses_another_model_version(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 20)
    script = Script(delay_s=0.05)
    srv = await start_model_server(ScriptedModel(script))
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=2))
        while manager.get_run(rec.id).progress.done < 3:
            await asyncio.sleep(0.02)
        await manager.cancel_run(rec.id)
        script.version = "2.0"
        with pytest.raises(PreflightFailed, match=r"version '1.0' .* now reports '2.0'"):
            await manager.resume_run(rec.id)
        assert manager.get_run(rec.id).state == "cancelled"
        assert manager.get_run(rec.id).model_info["version"] == "1.0"
        script.version = "1.0"
        resumed = await manager.resume_run(rec.id)
        assert resumed.state == "running"
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded"
    assert {a.model_version for a in list_attempts(db, rec.id) if a.final} == {"1.0"}


async def test_model_params_are_stored(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 3)
    srv = await start_model_server()
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run(
            "m1", "bench", RunParams(concurrency=3, model_parameters={"seed": 1})
        )
        await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    row = run_store.get_run(db, rec.id)
    assert row.params.concurrency == 3 and row.params.deadline_s == 60.0
    assert row.params.model_parameters == {"seed": 1}
    assert row.model_spec.endpoints == (srv.endpoint,)
    assert row.benchmark_digest.startswith("sha256:")
    assert json.loads(json.dumps(row.model_info))["name"] == "scripted"
