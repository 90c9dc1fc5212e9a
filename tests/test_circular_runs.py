"""Circular runs end to end against a real scripted model server on 127.0.0.1: one ask per
rotation, each under its own opaque id, interleaved, stored per attempt and rotation."""

from __future__ import annotations

import csv
import itertools
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api.report_convert import circular_from_proto
from gmai_eval.server.api.scoring_service import scores_response
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.metrics.collector import AccuracyCollector
from gmai_eval.server.records import ModelSpec, RunParams
from gmai_eval.server.reports import build_report, render_html
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.store import question_browser as qb
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.attempts import list_attempts
from gmai_eval.server.store.benchmarks import get_benchmark, load_questions
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.lifecycle import RUN_TABLES, delete_run
from gmai_eval.server.store.models import register_model
from gmai_eval.server.store.rotations import rotation_answers
from prometheus_client import CollectorRegistry

from tests._data_helpers import make_row, write_tsv
from tests._runs_helpers import (
    answer_for,
    build_benchmark,
    running_manager,
    spec_for,
    start_model_server,
    wait_final,
)
from tests._service_helpers import run_cli


@pytest.fixture
async def manager(db: Database) -> AsyncIterator[RunManager]:
    async with running_manager(db, graded=True) as mgr:
        yield mgr


async def test_each_rotation_is_asked_under_its_own_id(db: Database, manager: RunManager) -> None:
    build_benchmark(db, "bench", 12)  # question i has 2 + i % 4 options
    questions = {q.question: q for q in load_questions(db, get_benchmark(db, "bench").id)}
    srv = await start_model_server()
    srv.model.keep_requests = True
    try:
        register_model(db, spec_for("m1", srv))
        plain = await manager.create_run("m1", "bench", RunParams(concurrency=2))
        await wait_final(manager, plain.id)
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=2, circular=True))
        final = await wait_final(manager, rec.id)
    finally:
        await srv.stop()
    assert final.state == "succeeded", final.error_message
    assert final.params.circular
    assert run_store.get_run(db, rec.id).params.circular  # stored on the run
    # k asks per question: 2+3+4+5 options, three times over.
    assert final.progress.total == final.progress.done == 3 * (2 + 3 + 4 + 5)
    # The plain run's smoke call and 12 asks, then the circular run's smoke call and asks.
    requests = srv.model.requests[14 : 14 + final.progress.total]
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
    plain_requests = {r.question: r for r in srv.model.requests[1:13]}
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
    # Prometheus: the vanilla gauge as for any run, and the circular one beside it.
    registry = CollectorRegistry()
    registry.register(AccuracyCollector(db))
    labels = {"model": "m1", "model_version": "1.0", "benchmark": "bench", "release": "latest",
              "dimension": "overall", "node": "all"}
    assert registry.get_sample_value("gmai_eval_accuracy_ratio", labels) == vanilla_right / 12
    assert registry.get_sample_value("gmai_eval_circular_accuracy_ratio", labels) == circular_right / 12
    by_qid = {r.question_id: r for r in requests}
    vanilla_ids = {a.request_id.rsplit("-", 1)[0] for a in attempts if a.rotation == 0}
    for qid in vanilla_ids:
        r = by_qid[qid]
        assert list(r.options) == list(plain_requests[r.question].options)
        assert r.prompt == plain_requests[r.question].prompt


async def test_export_compare_gate_and_rescore_of_circular_runs(db: Database, manager: RunManager, tmp_path: Path) -> None:
    build_benchmark(db, "bench", 12)
    questions = {q.index: q for q in load_questions(db, get_benchmark(db, "bench").id)}
    srv = await start_model_server()
    try:
        register_model(db, spec_for("m1", srv))
        runs = []
        for circular in (True, True, False):
            rec = await manager.create_run("m1", "bench", RunParams(concurrency=2, circular=circular))
            assert (await wait_final(manager, rec.id)).state == "succeeded"
            runs.append(rec.id)
    finally:
        await srv.stop()
    a, b, plain = runs
    dbf = ["--db", str(tmp_path / "eval.db")]
    right = {}  # idx -> right in each rotation, by hand (the scripted model's answer_for)
    for q in questions.values():
        k = len(q.options)
        key_text = dict(q.options)[q.answer]
        right[q.index] = [
            dict(shown)[answer_for(q.question, shown)] == key_text
            for shown in ([(q.options[j][0], q.options[(j + r) % k][1]) for j in range(k)] for r in range(k))
        ]
    circular_right = sum(all(v) for v in right.values())

    # export: rotation 0 in VLMEvalKit's layout, the other rotations in the companion file.
    out = tmp_path / "exp" / "a.tsv"
    done = run_cli("export", a, "--out", str(out), *dbf)
    assert done.returncode == 0, done.stderr
    assert f"wrote {tmp_path / 'exp' / 'a_rotations.tsv'}" in done.stdout
    with out.open(newline="") as f:
        main = list(csv.DictReader(f, delimiter="\t"))
    assert len(main) == 12 and "rotation" not in main[0]
    for row in main:  # the original options, and the letter the model chose for them
        q = questions[int(row["index"])]
        assert [row[lab] for lab, _ in q.options] == [t for _, t in q.options]
        assert row["prediction"] == answer_for(q.question, list(q.options))
    # Vanilla parity: rotation 0's files are byte for byte those of the plain run.
    assert run_cli("export", plain, "--out", str(tmp_path / "exp" / "p.tsv"), *dbf).returncode == 0
    assert (tmp_path / "exp" / "p.tsv").read_bytes() == out.read_bytes()
    for column in ("clinical vqa task", "department", "perceptual granularity"):
        mine = (tmp_path / "exp" / f"a_{column}_acc.csv").read_bytes()
        assert mine == (tmp_path / "exp" / f"p_{column}_acc.csv").read_bytes()
    assert not (tmp_path / "exp" / "p_rotations.tsv").exists()
    with (tmp_path / "exp" / "a_rotations.tsv").open(newline="") as f:
        rot = list(csv.DictReader(f, delimiter="\t"))
    assert sorted((int(r["index"]), int(r["rotation"])) for r in rot) == sorted(
        (i, r) for i, q in questions.items() for r in range(1, len(q.options))
    )
    for row in rot:
        q, r = questions[int(row["index"])], int(row["rotation"])
        k = len(q.options)
        shown = [(q.options[j][0], q.options[(j + r) % k][1]) for j in range(k)]
        assert [row[lab] for lab, _ in shown] == [t for _, t in shown]
        key_pos = [lab for lab, _ in q.options].index(q.answer)
        assert row["answer"] == q.options[(key_pos - r) % k][0]  # where the key's text is shown
        assert row["prediction"] == answer_for(q.question, shown)
        chosen_text = dict(shown)[row["prediction"]]
        assert row["extracted"] == next(lab for lab, t in q.options if t == chosen_text)
        assert row["hit"] == str(int(right[q.index][r]))

    # compare: vanilla by default, circular when asked; both runs must be circular then.
    done = run_cli("compare", a, b, "--circular", "--format", "json", *dbf)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["accuracy"] == "circular"
    (overall,) = [n for n in doc["nodes"] if n["dimension"] == "overall"]
    assert overall["accuracy_a"] == overall["accuracy_b"] == circular_right / 12
    done = run_cli("compare", a, plain, "--format", "json", *dbf)
    assert done.returncode == 0, done.stderr
    (overall,) = [n for n in json.loads(done.stdout)["nodes"] if n["dimension"] == "overall"]
    assert overall["accuracy_a"] == overall["accuracy_b"] == sum(v[0] for v in right.values()) / 12
    done = run_cli("compare", a, plain, "--circular", *dbf)
    assert done.returncode == 1 and f"run {plain} is not a circular run" in done.stderr

    # The gate: vanilla unless the policy asks for circular accuracy.
    floor = (circular_right + 0.5) / 12  # between circular and vanilla accuracy
    assert floor < sum(v[0] for v in right.values()) / 12
    policy = tmp_path / "gate.toml"
    policy.write_text(f"min_overall_accuracy = {floor}\n")
    assert run_cli("compare", a, b, "--gate", str(policy), *dbf).returncode == 0
    policy.write_text(f'min_overall_accuracy = {floor}\naccuracy = "circular"\n')
    done = run_cli("compare", a, b, "--gate", str(policy), *dbf)
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"{circular_right / 12:.4f}, below min_overall_accuracy" in done.stdout

    # rescore in another era: the vanilla grades change era, the circular numbers follow.
    done = run_cli("rescore", a, "--era", "2025-08", "--format", "json", *dbf)
    assert done.returncode == 0, done.stderr
    (overall,) = [n for n in json.loads(done.stdout)["nodes"] if n["dimension"] == "overall"]
    assert overall["circular"]["correct"] == circular_right

    # The leaderboard: vanilla (latest whole run of each model) unless asked for circular.
    done = run_cli("leaderboard", "--benchmark", "bench", "--format", "json", *dbf)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    assert (row["run_id"], row["accuracy"]) == (plain, sum(v[0] for v in right.values()) / 12)
    done = run_cli("leaderboard", "--benchmark", "bench", "--circular", "--format", "json", *dbf)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    (row,) = doc["rows"]
    assert doc["accuracy"] == "circular"
    assert (row["run_id"], row["accuracy"]) == (b, circular_right / 12)


async def test_a_circular_run_of_a_multi_answer_benchmark_is_refused(
    db: Database, manager: RunManager, tmp_path: Path
) -> None:
    tsv = write_tsv(tmp_path / "m.tsv", [make_row(0, answer="A,C"), make_row(1, answer="B")])
    import_tsv_files(db, "multi", [tsv], multi_choice=True)
    # Refused before any model is contacted: the endpoint has nothing listening.
    register_model(db, ModelSpec(name="m-multi", endpoints=("127.0.0.1:9",)))
    with pytest.raises(InvalidArgument, match="--circular is for single-answer benchmarks; 'multi'"):
        await manager.create_run("m-multi", "multi", RunParams(circular=True))
    assert run_store.list_runs(db) == []


async def _one_circular_run(db: Database, manager: RunManager) -> str:
    build_benchmark(db, "bench", 12)  # question i has 2 + i % 4 options: 42 rotations in all
    srv = await start_model_server()
    try:
        register_model(db, spec_for("m1", srv))
        rec = await manager.create_run("m1", "bench", RunParams(concurrency=2, circular=True))
        assert (await wait_final(manager, rec.id)).state == "succeeded"
    finally:
        await srv.stop()
    return rec.id


async def test_the_viewers_question_browser_shows_each_question_of_a_circular_run_once(
    db: Database, manager: RunManager
) -> None:
    run_id = await _one_circular_run(db, manager)
    vanilla = {a.idx: a.labels for a in list_attempts(db, run_id) if a.final and a.rotation == 0}
    total, rows = db.read(lambda s: qb.question_page(s, run_id, "2024", "", qb.QuestionFilter(), 0, 100))
    # 12 questions, once each (not once per pair of rotation rows), with rotation 0's answer.
    assert total == 12
    assert [r.idx for r in rows] == sorted(vanilla) and len(vanilla) == 12
    assert {r.idx: r.labels for r in rows} == vanilla
    nodes = db.read(lambda s: qb.node_counts(s, run_id))
    assert {dim: sum(n for _, n in counts) for dim, counts in nodes.items()} == dict.fromkeys(qb.NODE_COLUMNS, 12)


async def test_deleting_a_circular_run_deletes_every_rotations_rows(db: Database, manager: RunManager) -> None:
    run_id = await _one_circular_run(db, manager)
    deleted = delete_run(db, run_id)
    # By hand: 3 questions each of 2, 3, 4 and 5 options, one row per rotation (one attempt each).
    assert (deleted.rows["run_questions"], deleted.rows["attempts"], deleted.rows["runs"]) == (42, 42, 1)
    left = db.read(lambda s: {t: s.execute(f"SELECT count(*) FROM {t} WHERE run_id = ?", [run_id]).fetchone()[0]
                              for t in RUN_TABLES})
    assert left == dict.fromkeys(RUN_TABLES, 0)


async def test_rotation_answers_read_the_benchmarks_multi_choice_flag_not_the_rotation(
    db: Database, manager: RunManager
) -> None:
    run_id = await _one_circular_run(db, manager)
    answers = db.read(lambda s: rotation_answers(s, run_id))
    # By hand: rotations 1..k-1 of 3 questions each of 2, 3, 4 and 5 options.
    assert sorted(Counter(a.rotation for a in answers).items()) == [(1, 12), (2, 9), (3, 6), (4, 3)]
    assert not any(a.row.multi_choice for a in answers)  # a single-answer benchmark


async def test_the_report_of_a_circular_run_counts_questions_not_asks(db: Database, manager: RunManager) -> None:
    run_id = await _one_circular_run(db, manager)
    assert run_store.get_run(db, run_id).total == 42  # the row counts asks: progress runs over them
    report = build_report(db, run_id, now="2026-01-01T00:00:00+00:00", images=False)
    assert report.run.total == 12  # 12 questions (by hand), as GetRunProvenance carries it
    assert '<dd data-key="subset">12, whole benchmark' in render_html(report)


async def test_the_report_of_a_circular_run_shows_circular_accuracy_the_same_both_ways(
    db: Database, manager: RunManager
) -> None:
    build_benchmark(db, "bench", 12)
    srv = await start_model_server()
    try:
        register_model(db, spec_for("m1", srv))
        ids = []
        for circular in (True, False):
            rec = await manager.create_run("m1", "bench", RunParams(concurrency=2, circular=circular))
            assert (await wait_final(manager, rec.id)).state == "succeeded"
            ids.append(rec.id)
    finally:
        await srv.stop()
    run_id, plain = ids
    circular_right = 0  # by hand: the scripted model's choice in each rotation (answer_for)
    for q in load_questions(db, get_benchmark(db, "bench").id):
        k, key_text = len(q.options), dict(q.options)[q.answer]
        shown = [[(q.options[j][0], q.options[(j + r) % k][1]) for j in range(k)] for r in range(k)]
        circular_right += all(dict(s)[answer_for(q.question, s)] == key_text for s in shown)
    report = build_report(db, run_id, now="2026-01-01T00:00:00+00:00", images=False)
    assert report.circular is not None
    overall = report.circular.node(report.scores.overall)
    assert (overall.n, overall.correct, report.circular.incomplete) == (12, circular_right, 0)
    page = render_html(report)
    assert f'data-circular-n="12" data-circular-correct="{circular_right}" ' in page
    assert f'data-circular-accuracy="{circular_right / 12:.6f}"' in page
    # Through the evaluator: the same record from GetRunScores' answer (report --server).
    assert circular_from_proto(scores_response(db, pb.GetRunScoresRequest(id=run_id))) == report.circular
    assert circular_from_proto(scores_response(db, pb.GetRunScoresRequest(id=plain))) is None
    plain_report = build_report(db, plain, now="2026-01-01T00:00:00+00:00", images=False)
    assert plain_report.circular is None and 'id="circular-overall"' not in render_html(plain_report)
