"""Grading: incremental grade_pending, rescore without any model, judge over real gRPC."""

from __future__ import annotations

from pathlib import Path

import pytest
from gmai_eval.server.errors import NotFound
from gmai_eval.server.scoring.grading import compute_scores, grade_pending, rescore
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as gstore

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions

LONG = "Option {} is the one because " + "the marked region looks typical on this image " * 3


async def test_grade_pending_is_incremental_and_idempotent(tmp_path: Path) -> None:
    qs = make_questions(20, seed=1)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, labels=[q.answer or "A"]) for q in qs[:10]],
                   state="running", extra_questions=[q.idx for q in qs[10:]])
        assert await grade_pending(db, "r-000000000001") == 10
        assert await grade_pending(db, "r-000000000001") == 0

        # more answers arrive
        def add(s: object) -> None:
            for q in qs[10:15]:
                s.execute(
                    "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, status, text, created_at)"
                    " VALUES ('r-000000000001', ?, 1, 'x', 'answered', 1, 'answered', ?, 'now')",
                    (q.idx, q.answer),
                )

        db.write(add)
        assert await grade_pending(db, "r-000000000001") == 5
        assert await grade_pending(db, "r-000000000001", era="2026-06") == 15
        v = db.read(lambda s: gstore.verdicts(s, "r-000000000001", "2024", ""))
        assert len(v) == 15 and set(v.values()) == {"correct"}
        scores = compute_scores(db, "r-000000000001")
        assert scores.overall.n == 15 and scores.ungraded == 5


async def test_grade_pending_takes_the_run_era_and_rejects_unknown_runs(tmp_path: Path) -> None:
    qs = make_questions(6, seed=3)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, text=LONG.format(q.answer)) for q in qs], era="2025-08", graded=False)
        assert db.read(lambda s: gstore.run_era(s, "r-000000000001")) == "2025-08"
        assert await grade_pending(db, "r-000000000001") == 6
        assert set(db.read(lambda s: gstore.verdicts(s, "r-000000000001", "2025-08", "")).values()) == {"unparsed"}
        assert db.read(lambda s: gstore.verdicts(s, "r-000000000001", "2024", "")) == {}
        with pytest.raises(NotFound):
            await grade_pending(db, "r-nope")


async def test_rescore_changes_era_without_a_model(tmp_path: Path) -> None:
    qs = make_questions(12, seed=2)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        attempts = [A(q.idx, text=LONG.format(q.answer)) for q in qs]
        insert_run(db, bid, attempts)
        base = compute_scores(db, "r-000000000001")
        assert base.overall.correct == 12  # 2024: a lone letter anywhere counts
        res = await rescore(db, "r-000000000001", "2025-08")
        assert res.graded == 12 and res.changed == 12 and res.judged == 0
        later = compute_scores(db, "r-000000000001", era="2025-08")
        assert later.overall.correct == 0 and later.overall.unparsed == 12
        # rescoring the run's own era reproduces its scores exactly
        res2 = await rescore(db, "r-000000000001")
        assert res2.changed == 0
        assert compute_scores(db, "r-000000000001") == base


# -- judge over a real gRPC model service ------------------------------------------------

import grpc  # noqa: E402
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc  # noqa: E402
from gmai_eval.server.api.scoring_service import rescore_with  # noqa: E402
from gmai_eval.server.errors import PreflightFailed  # noqa: E402
from gmai_eval.server.records import ModelSpec  # noqa: E402
from gmai_eval.server.scoring.judge import matching_prompt  # noqa: E402
from gmai_eval.server.store.models import register_model  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402


class TextJudge(model_pb2_grpc.ModelServiceServicer):
    """Answers from the last 'Answer:' line of the prompt: 'first' -> the first option's
    letter in words, 'spider' -> Z, 'fail' -> an error, anything else -> no letter."""

    def __init__(self) -> None:
        self.requests: list[model_pb2.AnswerVQARequest] = []

    async def AnswerVQA(self, request: model_pb2.AnswerVQARequest, context: grpc.aio.ServicerContext) -> model_pb2.AnswerVQAResponse:
        self.requests.append(request)
        answer = request.prompt.rsplit("Answer: ", 1)[1].split("\n", 1)[0].lower()
        if "fail" in answer:
            await context.abort(grpc.StatusCode.INTERNAL, "judge broke")
        if "first" in answer:
            text = f"{request.options[0].label}"
        elif "spider" in answer:
            text = "Z"
        else:
            text = "I cannot decide between these."
        return model_pb2.AnswerVQAResponse(question_id=request.question_id, text=text, request_id=request.request_id)


@pytest.fixture
async def judge_server() -> tuple[str, TextJudge, health.aio.HealthServicer]:
    server = grpc.aio.server()
    servicer = TextJudge()
    model_pb2_grpc.add_ModelServiceServicer_to_server(servicer, server)
    hs = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(hs, server)
    await hs.set("gmai_eval.model.v1.ModelService", health_pb2.HealthCheckResponse.SERVING)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", servicer, hs
    await server.stop(None)


async def test_judge_resolves_unparsed_answers(tmp_path: Path, judge_server: tuple) -> None:
    target, servicer, _ = judge_server
    qs = make_questions(5, seed=6)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        texts = ["the first one", "a spider", "no clue at all", "fail please", qs[4].category]
        insert_run(db, bid, [A(q.idx, text=t) for q, t in zip(qs, texts, strict=True)])
        register_model(db, ModelSpec(name="judgy", endpoints=(target,)))
        res = await rescore_with(db, "r-000000000001", None, "judgy")
        assert (res.judge, res.judged, res.judge_resolved) == ("judgy", 4, 2)
        grades = {g.idx: g for g in db.read(lambda s: gstore.graded_rows(s, "r-000000000001", "2024", "judgy"))}
        assert grades[0].method == "judge" and grades[0].extracted == "A"
        assert grades[0].verdict == ("correct" if qs[0].answer == "A" else "incorrect")
        assert (grades[1].extracted, grades[1].verdict) == ("Z", "incorrect")
        # three tries, then kept unparsed (never a random letter)
        assert (grades[2].method, grades[2].verdict) == ("judge_failed", "unparsed")
        assert (grades[3].method, grades[3].verdict) == ("judge_failed", "unparsed")
        assert grades[4].method == "text"  # readable answers never reach the judge
        assert db.read(lambda s: gstore.judge_call_count(s, "r-000000000001", "judgy")) == 1 + 1 + 3 + 3
        # text only, the matching prompt in AnswerVQARequest.prompt
        req = servicer.requests[0]
        assert len(req.images) == 0
        assert req.prompt == matching_prompt(qs[0].question, list(qs[0].choices.items()), "the first one")
        assert "There are several options:" in req.prompt and "Z" in req.prompt
        # the exact-matching grading is untouched; scores exist per judge
        base = compute_scores(db, "r-000000000001")
        judged = compute_scores(db, "r-000000000001", judge="judgy")
        assert base.overall.unparsed == 4 and judged.overall.unparsed == 2


async def test_judge_not_serving(tmp_path: Path, judge_server: tuple) -> None:
    target, _, hs = judge_server
    await hs.set("gmai_eval.model.v1.ModelService", health_pb2.HealthCheckResponse.NOT_SERVING)
    qs = make_questions(2)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(0, text="???")])
        register_model(db, ModelSpec(name="judgy", endpoints=(target,)))
        with pytest.raises(PreflightFailed, match="not serving"):
            await rescore_with(db, "r-000000000001", None, "judgy")


async def test_service_scoring_messages(tmp_path: Path) -> None:
    from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
    from gmai_eval.server.api.scoring_service import compare_runs, get_run_scores, rescore_run
    from gmai_eval.server.errors import FailedPrecondition, InvalidArgument

    qs = make_questions(30, seed=12)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, text=LONG.format(q.answer)) for q in qs], run_id="r-a")
        insert_run(db, bid, [A(q.idx, labels=[q.answer]) for q in qs], run_id="r-b")
        other = insert_benchmark(db, qs[:2], name="o", digest="sha256:99")
        insert_run(db, other, [A(0, labels=["A"])], run_id="r-o", digest="sha256:99")
        resp = await get_run_scores(db, pb.GetRunScoresRequest(id="r-a", dimensions=["task"]))
        assert resp.extraction_era == "2024"
        assert {n.dimension for n in resp.nodes} == {"task"} and set(resp.macro_accuracy) == {"task"}
        assert sum(n.n for n in resp.nodes) == 30 and all(n.abbreviation for n in resp.nodes)
        with pytest.raises(InvalidArgument):
            await get_run_scores(db, pb.GetRunScoresRequest(id="r-a", dimensions=["tasks"]))
        resp = await get_run_scores(db, pb.GetRunScoresRequest(id="r-a", extraction_era="2025-08"))
        assert resp.nodes[0].dimension == "overall" and resp.nodes[0].accuracy == 0.0
        cmp = await compare_runs(db, pb.CompareRunsRequest(run_a="r-a", run_b="r-b"))
        assert cmp.nodes[0].n == 30 and not cmp.flipped_to_wrong and not cmp.flipped_to_right
        with pytest.raises(FailedPrecondition):
            await compare_runs(db, pb.CompareRunsRequest(run_a="r-a", run_b="r-o"))
        res = await rescore_run(db, pb.RescoreRunRequest(id="r-a", extraction_era="2025-08"))
        assert res.changed == 30 and res.scores.extraction_era == "2025-08"
        assert res.scores.nodes[0].unparsed == 30


async def test_resumed_question_is_regraded(tmp_path: Path) -> None:
    qs = make_questions(3, seed=13)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(0, outcome="error"), A(1, labels=[qs[1].answer]), A(2, text="??")], state="failed",
                   graded=False)
        assert await grade_pending(db, "r-000000000001") == 3
        assert db.read(lambda s: gstore.verdicts(s, "r-000000000001", "2024", ""))[0] == "error"

        def resume(s: object) -> None:  # the run manager retries question 0: a newer final attempt
            conn = s
            conn.execute("UPDATE attempts SET final = 0 WHERE run_id = 'r-000000000001' AND idx = 0")
            conn.execute(
                "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, status, labels, created_at)"
                " VALUES ('r-000000000001', 0, 2, 'y', 'answered', 1, 'answered', ?, 'now')",
                (f'["{qs[0].answer}"]',),
            )

        db.write(resume)
        assert await grade_pending(db, "r-000000000001") == 1
        v = db.read(lambda s: gstore.verdicts(s, "r-000000000001", "2024", ""))
        assert v == {0: "correct", 1: "correct", 2: "unparsed"}
        assert await grade_pending(db, "r-000000000001") == 0


def test_scoring_rpcs_through_the_real_evaluator(tmp_path: Path) -> None:
    """GetRunScores / CompareRuns / RescoreRun over a real ``gmai-eval serve`` process."""
    from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
    from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pbg

    from tests._service_helpers import running_server, wait_channel_ready

    qs = make_questions(20, seed=14)
    path = tmp_path / "e.db"
    with Database(path) as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, text=LONG.format(q.answer)) for q in qs], run_id="r-a")
        insert_run(db, bid, [A(q.idx, labels=[q.answer if q.idx >= 5 else _other(q.answer)]) for q in qs], run_id="r-b")
        other = insert_benchmark(db, qs[:2], name="o", digest="sha256:99")
        insert_run(db, other, [A(0, labels=["A"])], run_id="r-o", digest="sha256:99")
    with running_server(path) as server, grpc.insecure_channel(server.target) as channel:
        wait_channel_ready(channel)
        stub = pbg.EvaluatorServiceStub(channel)
        resp = stub.GetRunScores(pb.GetRunScoresRequest(id="r-a", dimensions=["overall", "department"]), timeout=30)
        assert resp.nodes[0].dimension == "overall" and resp.nodes[0].accuracy == 1.0
        assert "department" in resp.macro_accuracy
        cmp = stub.CompareRuns(pb.CompareRunsRequest(run_a="r-a", run_b="r-b"), timeout=30)
        assert list(cmp.flipped_to_wrong) == [str(i) for i in range(5)]
        res = stub.RescoreRun(pb.RescoreRunRequest(id="r-a", extraction_era="2025-08"), timeout=60)
        assert res.changed == 20 and res.scores.nodes[0].accuracy == 0.0
        for call, code in [
            (lambda: stub.GetRunScores(pb.GetRunScoresRequest(id="r-zz"), timeout=30), grpc.StatusCode.NOT_FOUND),
            (lambda: stub.GetRunScores(pb.GetRunScoresRequest(id="r-a", extraction_era="1999"), timeout=30),
             grpc.StatusCode.INVALID_ARGUMENT),
            (lambda: stub.CompareRuns(pb.CompareRunsRequest(run_a="r-a", run_b="r-o"), timeout=30),
             grpc.StatusCode.FAILED_PRECONDITION),
            (lambda: stub.RescoreRun(pb.RescoreRunRequest(id="r-a", judge_model="nobody"), timeout=30),
             grpc.StatusCode.NOT_FOUND),
        ]:
            with pytest.raises(grpc.RpcError) as info:
                call()
            assert info.value.code() == code


def _other(ans: str | None) -> str:
    return "B" if ans == "A" else "A"
