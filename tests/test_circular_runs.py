"""Circular runs end to end against a real scripted model server on 127.0.0.1: one ask per
rotation, each under its own opaque id, interleaved, stored per attempt and rotation."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api.scoring_service import scores_response
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import RunParams
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.scoring.grading import finish_grading
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.attempts import list_attempts
from gmai_eval.server.store.benchmarks import get_benchmark, load_questions
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import register_model
from prometheus_client import CollectorRegistry

from tests._runs_helpers import (
    answer_for,
    build_benchmark,
    spec_for,
    start_model_server,
    wait_final,
)


@pytest.fixture
async def manager(db: Database) -> AsyncIterator[RunManager]:
    async def final_grader(run_id: str) -> None:  # as app.py wires it
        await finish_grading(db, run_id)

    mgr = RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()), final_grader=final_grader, backoff_base_s=0.01)
    await mgr.start()
    yield mgr
    await mgr.shutdown(grace_s=0)


async def test_each_rotation_is_asked_under_its_own_id(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 12)  # question i has 2 + i % 4 options
    questions = {q.question: q for q in load_questions(db, get_benchmark(db, "bench").id)}
    srv = await start_model_server()
    srv.model.keep_requests = True
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=2, circular=True))
        final = await wait_final(manager, rec.id)
        plain = await manager.create_run("m1", "bench", RunParams(concurrency=2))
        await wait_final(manager, plain.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded", final.error_message
    assert final.params.circular
    assert run_store.get_run(db, rec.id).params.circular  # stored on the run
    # k asks per question: 2+3+4+5 options, three times over.
    assert final.progress.total == final.progress.done == 3 * (2 + 3 + 4 + 5)
    requests = srv.model.requests[1 : 1 + final.progress.total]  # after the pre-flight smoke call
    ids = [r.question_id for r in requests]
    assert len(set(ids)) == len(ids)  # every rotation has its own id
    shown: dict[str, list[tuple[tuple[str, str], ...]]] = {}
    for r in requests:
        shown.setdefault(r.question, []).append(tuple((o.label, o.text) for o in r.options))
    for text, seen in shown.items():
        q = questions[text]
        original = q.options
        k = len(original)
        # Worked by hand: rotation r shows at label j the text of position (j + r) mod k.
        want = {tuple((original[j][0], original[(j + r) % k][1]) for j in range(k)) for r in range(k)}
        assert len(seen) == k and set(seen) == want, text
    # Interleaved: a question's rotations are not asked one after another.
    adjacent = sum(1 for a, b in itertools.pairwise(requests) if a.question == b.question)
    assert adjacent < len(requests) - len(shown)
    # Rotation 0 is the vanilla ask: the same options and prompt as in the plain run.
    plain_requests = {r.question: r for r in srv.model.requests[2 + final.progress.total :]}
    attempts = list_attempts(db, rec.id)
    assert Counter(a.idx for a in attempts) == {q.index: len(q.options) for q in questions.values()}
    assert {(a.idx, a.rotation) for a in attempts} == {
        (q.index, r) for q in questions.values() for r in range(len(q.options))
    }
    # The scores, against a hand count: the scripted model's choice is answer_for(question,
    # options as shown); a rotation is right when the text it chose is the key's text.
    vanilla_right = circular_right = 0
    for q in questions.values():
        k = len(q.options)
        key_text = dict(q.options)[q.answer]
        right = []
        for r in range(k):
            shown_r = [(q.options[j][0], q.options[(j + r) % k][1]) for j in range(k)]
            right.append(dict(shown_r)[answer_for(q.question, shown_r)] == key_text)
        vanilla_right += right[0]
        circular_right += all(right)
    resp = scores_response(db, pb.GetRunScoresRequest(id=rec.id))
    (overall,) = [n for n in resp.nodes if n.dimension == "overall"]
    assert (overall.n, overall.correct) == (12, vanilla_right)
    assert (overall.circular.n, overall.circular.correct) == (12, circular_right)
    assert circular_right < vanilla_right  # the example is not degenerate
    plain_resp = scores_response(db, pb.GetRunScoresRequest(id=plain.id))
    assert [n.correct for n in plain_resp.nodes] == [n.correct for n in resp.nodes]  # vanilla = plain run
    assert not any(n.HasField("circular") for n in plain_resp.nodes)
    by_qid = {r.question_id: r for r in requests}
    vanilla_ids = {a.request_id.rsplit("-", 1)[0] for a in attempts if a.rotation == 0}
    for qid in vanilla_ids:
        r = by_qid[qid]
        assert list(r.options) == list(plain_requests[r.question].options)
        assert r.prompt == plain_requests[r.question].prompt
