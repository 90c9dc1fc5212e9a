"""Per-node scores: hand-checked counts, roll-up invariants (Hypothesis), store round trip."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from gmai_eval.server.errors import InvalidArgument, NotFound
from gmai_eval.server.scoring.aggregate import Item, aggregate
from gmai_eval.server.scoring.grading import compute_scores, latest_completed_scores
from gmai_eval.server.store import Database
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._scoring_helpers import (
    DEPARTMENTS,
    GRANULARITIES,
    MODALITIES,
    TASKS,
    A,
    insert_benchmark,
    insert_run,
    make_questions,
)

VERDICTS = ["correct", "incorrect", "unparsed", "refused", "error", "unscored"]

items_st = st.lists(
    st.builds(
        Item,
        st.sampled_from(VERDICTS),
        st.sampled_from(TASKS),
        st.sampled_from(DEPARTMENTS),
        st.sampled_from(GRANULARITIES),
        st.sampled_from(MODALITIES),
        st.sampled_from(["liver", "kidney", "spleen"]),
    ),
    max_size=60,
)


def test_hand_counts() -> None:
    items = [
        Item("correct", "Counting", "Urology", "Image level", "CT", "liver"),
        Item("incorrect", "Counting", "", "Image level", "CT", "kidney"),
        Item("unparsed", "Disease Diagnosis", "Urology", "Mask level", "MRI", "liver"),
        Item("refused", "Disease Diagnosis", "Urology", "Mask level", "MRI", "liver"),
        Item("error", "Counting", "Urology", "Box level", "CT", "liver"),
        Item("unscored", "Counting", "Urology", "Box level", "CT", "liver"),
    ]
    nodes, macro, unscored = aggregate(items)
    assert unscored == 1
    overall = nodes[0]
    assert overall.dimension == "overall" and overall.path == ()
    assert (overall.n, overall.correct, overall.unparsed, overall.refused, overall.errors) == (5, 1, 1, 1, 1)
    assert overall.incorrect == 1
    assert overall.accuracy == pytest.approx(0.2)
    lo, hi = overall.ci
    assert 0 < lo < 0.2 < hi < 1
    by = {(n.dimension, n.path): n for n in nodes}
    c = by[("task", ("Counting",))]
    assert (c.n, c.correct, c.abbreviation) == (3, 1, "C")
    assert by[("task", ("Disease Diagnosis",))].abbreviation == "DD"
    assert by[("department", ("N/A",))].n == 1
    assert by[("department", ("N/A",))].abbreviation == "N/A"
    assert by[("department", ("Urology",))].abbreviation == "U"
    assert by[("granularity", ("Mask level",))].accuracy == 0
    assert by[("label", ("liver",))].n == 4
    assert by[("tree", ("task", "Counting", "CT", "liver"))].n == 2
    assert by[("tree", ("granularity", "Box level", "CT"))].n == 1
    # paper order: tasks in TASKS order (Counting before Disease Diagnosis), N/A department last
    tasks = [n.path[0] for n in nodes if n.dimension == "task"]
    assert tasks == ["Counting", "Disease Diagnosis"]
    depts = [n.path[0] for n in nodes if n.dimension == "department"]
    assert depts == ["Urology", "N/A"]
    grans = [n.path[0] for n in nodes if n.dimension == "granularity"]
    assert grans == ["Mask level", "Image level", "Box level"]
    # macro: mean of node accuracies; N/A excluded from departments
    assert macro["task"] == pytest.approx((1 / 3 + 0) / 2)
    assert macro["department"] == pytest.approx(by[("department", ("Urology",))].accuracy)


def test_empty() -> None:
    nodes, macro, unscored = aggregate([])
    assert len(nodes) == 1 and nodes[0].n == 0 and nodes[0].accuracy == 0
    assert macro == {} and unscored == 0


def test_unknown_verdict() -> None:
    with pytest.raises(InvalidArgument):
        aggregate([Item("maybe", "Counting", "", "Image level", "CT", "x")])


@settings(max_examples=150, deadline=None)
@given(items_st, st.randoms(use_true_random=False))
def test_invariants(items: list[Item], rnd: random.Random) -> None:
    nodes, macro, unscored = aggregate(items)
    assert unscored == sum(1 for i in items if i.verdict == "unscored")
    scored = len(items) - unscored
    by = {(n.dimension, n.path): n for n in nodes}
    assert nodes[0].n == scored
    for n in nodes:
        assert 0.0 <= n.accuracy <= 1.0
        assert n.incorrect >= 0
        lo, hi = n.ci
        assert 0.0 <= lo <= n.accuracy <= hi <= 1.0
    for dim in ("task", "department", "granularity", "modality", "label"):
        assert sum(n.n for n in nodes if n.dimension == dim) == scored
        assert sum(n.correct for n in nodes if n.dimension == dim) == nodes[0].correct
    # tree: each parent's n is the sum of its children's
    for (dim, path), n in by.items():
        if dim != "tree":
            continue
        children = [c for (d, p), c in by.items() if d == "tree" and len(p) == len(path) + 1 and p[: len(path)] == path]
        if children:
            assert n.n == sum(c.n for c in children)
            assert n.correct == sum(c.correct for c in children)
        if len(path) == 2:
            flat = by[(path[0], (path[1] or "N/A",))] if path[0] != "department" else by[("department", (path[1],))]
            assert flat.n == n.n
    for v in macro.values():
        assert 0.0 <= v <= 1.0
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert aggregate(shuffled) == (nodes, macro, unscored)


def test_compute_scores_from_store(tmp_path: Path) -> None:
    qs = make_questions(40, seed=3, unanswered=[5])
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        attempts = []
        for q in qs:
            if q.idx % 4 == 0:
                attempts.append(A(q.idx, labels=[q.answer or "A"]))
            elif q.idx % 4 == 1:
                attempts.append(A(q.idx, text=q.category))  # option text -> correct
            elif q.idx % 4 == 2:
                attempts.append(A(q.idx, text="no idea"))
            else:
                attempts.append(A(q.idx, outcome="error"))
        insert_run(db, bid, attempts, extra_questions=[])
        scores = compute_scores(db, "r-000000000001")
        assert scores.era == "2024" and scores.judge == ""
        assert scores.unscored == 1
        assert scores.ungraded == 0
        ov = scores.overall
        assert ov.n == 39
        # idx 5 (unscored) is idx % 4 == 1; the text rule may be ambiguous for some options
        expect_correct = sum(1 for q in qs if q.idx != 5 and q.idx % 4 == 0)
        assert ov.correct >= expect_correct
        assert ov.errors == 10
        assert ov.unparsed >= 10
        assert scores.node("task", "Counting").abbreviation == "C"
        with pytest.raises(NotFound):
            scores.node("task", "Nope")
        # any era can be asked for; grades are computed on demand
        again = compute_scores(db, "r-000000000001", era="2025-08")
        assert again.overall.n == 39
        with pytest.raises(InvalidArgument):
            compute_scores(db, "r-000000000001", era="1999")
        with pytest.raises(NotFound):
            compute_scores(db, "r-nope")
        with pytest.raises(NotFound, match="rescore"):
            compute_scores(db, "r-000000000001", judge="judgy")


def test_latest_completed(tmp_path: Path) -> None:
    qs = make_questions(6)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, labels=["A"]) for q in qs], run_id="r-old", finished_at="2026-01-01T00:00:00")
        insert_run(db, bid, [A(q.idx, labels=[q.answer or "A"]) for q in qs], run_id="r-new", finished_at="2026-02-01T00:00:00")
        insert_run(db, bid, [A(q.idx, labels=["B"]) for q in qs], run_id="r-run", state="running", finished_at="2026-03-01T00:00:00")
        insert_run(db, bid, [A(q.idx, labels=["B"]) for q in qs], run_id="r-other", model="m2")
        got = latest_completed_scores(db)
        assert [(i.id, i.model, i.model_version, i.benchmark) for i, _ in got] == [
            ("r-new", "m", "v1", "bench"), ("r-other", "m2", "v1", "bench"),
        ]
        assert got[0][1].overall.accuracy == 1.0


def test_store_order_changes_nothing(tmp_path: Path) -> None:
    qs = make_questions(60, seed=30, unanswered=[7])
    rng = random.Random(4)
    attempts = [
        A(q.idx, text=rng.choice([q.category, "no idea", "Z", q.answer or "A", "B"]),
          outcome=rng.choice(["answered"] * 5 + ["error"]))
        for q in qs
    ]
    results = []
    for k in range(3):
        shuffled = list(attempts)
        random.Random(k).shuffle(shuffled)
        qshuf = list(qs)
        random.Random(k + 10).shuffle(qshuf)
        with Database(tmp_path / f"e{k}.db") as db:
            bid = insert_benchmark(db, qshuf)
            insert_run(db, bid, shuffled)
            results.append(compute_scores(db, "r-000000000001"))
    assert results[0] == results[1] == results[2]
