"""Comparison of two runs and release gates, on constructed runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gmai_eval.server.errors import FailedPrecondition, InvalidArgument, NotFound
from gmai_eval.server.scoring.compare import GatePolicy, apply_gate, compare_runs, load_policy
from gmai_eval.server.store import Database

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions


def _wrong(q_answer: str | None) -> str:
    return "B" if q_answer == "A" else "A"


def _setup(db: Database, n: int = 60, flips: int = 20, gains: int = 2) -> list:
    qs = make_questions(n, seed=8)
    bid = insert_benchmark(db, qs)
    insert_run(db, bid, [A(q.idx, labels=[q.answer]) for q in qs], run_id="r-a")
    b = []
    for q in qs:
        if q.idx < flips:
            b.append(A(q.idx, labels=[_wrong(q.answer)]))
        else:
            b.append(A(q.idx, labels=[q.answer]))
    insert_run(db, bid, b, run_id="r-b")
    return qs


def test_compare_counts_and_flips(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        qs = _setup(db)
        # run C: wrong on the first 5 in A's terms; then compare C (baseline) vs B (candidate)
        bid = 1
        insert_run(db, bid, [A(q.idx, labels=[_wrong(q.answer)] if 10 <= q.idx < 25 else [q.answer]) for q in qs],
                   run_id="r-c")
        cmp = compare_runs(db, "r-a", "r-b")
        ov = cmp.overall
        assert (ov.n, ov.correct_a, ov.correct_b, ov.a_only, ov.b_only) == (60, 60, 40, 20, 0)
        # exact McNemar, b=20, c=0: tail P(X = 0 | n=20, 1/2) = 2^-20, two-sided p = 2^-19
        assert ov.p_value == pytest.approx(2.0**-19, rel=1e-12)
        assert ov.significant
        assert cmp.flipped_to_wrong == tuple(range(20)) and cmp.flipped_to_right == ()
        assert ov.delta_points == pytest.approx(-100 * 20 / 60)
        cmp2 = compare_runs(db, "r-c", "r-b")
        assert cmp2.flipped_to_right == tuple(range(20, 25))
        assert cmp2.flipped_to_wrong == tuple(range(10))
        assert cmp2.overall.a_only == 10 and cmp2.overall.b_only == 5
        # per node counts add up across a dimension
        for dim in ("task", "department", "granularity", "modality", "label"):
            nodes = [n for n in cmp2.nodes if n.dimension == dim]
            assert sum(n.a_only for n in nodes) == 10 and sum(n.b_only for n in nodes) == 5
            assert sum(n.n for n in nodes) == 60
        # identical runs: nothing significant
        same = compare_runs(db, "r-a", "r-a")
        assert not any(n.significant for n in same.nodes) and same.overall.p_value == 1.0


def test_compare_pairs_only_common_questions(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        qs = make_questions(10, seed=1)
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, labels=[q.answer]) for q in qs[:8]], run_id="r-a")
        insert_run(db, bid, [A(q.idx, labels=[q.answer]) for q in qs[3:]], run_id="r-b")
        cmp = compare_runs(db, "r-a", "r-b")
        assert cmp.overall.n == 5 and cmp.only_a == 3 and cmp.only_b == 2


def test_compare_different_digests(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        qs = make_questions(4)
        b1 = insert_benchmark(db, qs, name="one", digest="sha256:01")
        b2 = insert_benchmark(db, qs, name="two", digest="sha256:02")
        insert_run(db, b1, [A(0, labels=["A"])], run_id="r-a", digest="sha256:01")
        insert_run(db, b2, [A(0, labels=["A"])], run_id="r-b", digest="sha256:02")
        with pytest.raises(FailedPrecondition, match="different benchmarks"):
            compare_runs(db, "r-a", "r-b")
        with pytest.raises(NotFound):
            compare_runs(db, "r-a", "r-zzz")
        with pytest.raises(InvalidArgument):
            compare_runs(db, "r-a", "r-a", alpha=0)


def test_gate_rules(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        _setup(db)
        cmp = compare_runs(db, "r-a", "r-b")
    assert apply_gate(cmp, GatePolicy()) == []
    assert apply_gate(cmp, GatePolicy(min_overall_accuracy=0.6)) == []
    fails = apply_gate(cmp, GatePolicy(min_overall_accuracy=0.7))
    assert len(fails) == 1 and "below min_overall_accuracy" in fails[0]
    fails = apply_gate(cmp, GatePolicy(max_significant_drop=5.0))
    assert any(f.startswith("overall Overall: accuracy dropped 33.33 points") for f in fails)
    # a drop below the threshold passes; small nodes are not gated
    assert apply_gate(cmp, GatePolicy(max_significant_drop=40.0, dimensions=("overall",))) == []
    big = apply_gate(cmp, GatePolicy(max_significant_drop=40.0))
    assert big and all("dropped" in f and "n=" in f for f in big)
    only_overall = apply_gate(cmp, GatePolicy(max_significant_drop=5.0, min_n=61))
    assert only_overall == []
    dims = apply_gate(cmp, GatePolicy(max_significant_drop=5.0, dimensions=("task",)))
    assert dims and all(f.startswith("task ") for f in dims)


def test_load_policy(tmp_path: Path) -> None:
    j = tmp_path / "p.json"
    j.write_text(json.dumps({"min_overall_accuracy": 0.4, "max_significant_drop": 2, "min_n": 30}))
    assert load_policy(j) == GatePolicy(0.4, 2.0, 30, None)
    t = tmp_path / "p.toml"
    t.write_text('min_overall_accuracy = 0.4\nmax_significant_drop = 2.5\nmin_n = 30\nalpha = 0.01\n'
                 'dimensions = ["overall", "task"]\n')
    assert load_policy(t) == GatePolicy(0.4, 2.5, 30, 0.01, ("overall", "task"))
    for bad, msg in [
        ({"min_overall_accuracy": 40}, "min_overall_accuracy must be a number in"),
        ({"max_drop": 1}, "unknown key"),
        ({"min_n": 2.5}, "min_n must be an integer"),
        ({"dimensions": ["tasks"]}, "dimensions must be"),
    ]:
        j.write_text(json.dumps(bad))
        with pytest.raises(InvalidArgument, match=msg):
            load_policy(j)
    j.write_text("{not json")
    with pytest.raises(InvalidArgument, match="cannot read gate policy"):
        load_policy(j)


def test_example_policy_in_docs_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    policy = load_policy(root / "docs" / "gate-policy.example.toml")
    assert policy.min_overall_accuracy is not None and policy.max_significant_drop is not None
