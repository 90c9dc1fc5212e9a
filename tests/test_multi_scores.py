"""Multi-answer grades and the paper's ACC_mcls / Recall_mcls, checked against values
computed by hand (and, for the intervals, against the statistics module)."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from gmai_eval.server.records import AnswerStatus, AttemptOutcome, Recorded, Verdict
from gmai_eval.server.scoring.aggregate import Item
from gmai_eval.server.scoring.multi_scores import (
    MclsScore,
    grade_multi,
    mcls_of_rows,
    question_mcls,
    rollup,
)
from hypothesis import given, settings
from hypothesis import strategies as st

CXR = {"A": "atelectasis", "B": "cardiomegaly", "C": "effusion", "D": "pleural effusion"}


def rec(
    text: str = "",
    labels: tuple[str, ...] = (),
    status: AnswerStatus = AnswerStatus.ANSWERED,
    outcome: AttemptOutcome = AttemptOutcome.ANSWERED,
) -> Recorded:
    return Recorded(idx=1, outcome=outcome, status=status, labels=labels, text=text, attempt=1)


@pytest.mark.parametrize(
    "recorded,key,expected",
    [
        (rec("A,C"), "A,C", ("A,C", "option", Verdict.CORRECT)),
        (rec("C, A"), "A,C", ("A,C", "option", Verdict.CORRECT)),
        (rec("A"), "A,C", ("A", "option", Verdict.INCORRECT)),
        (rec("A,B,C"), "A,C", ("A,B,C", "option", Verdict.INCORRECT)),
        (rec("atelectasis and effusion"), "A,C", ("A,C", "text", Verdict.CORRECT)),
        (rec("no idea"), "A,C", ("", "none", Verdict.UNPARSED)),
        (rec("Cannot determine the answer"), "A,C", ("Z", "refusal", Verdict.REFUSED)),
        (rec(labels=("C", "A")), "A,C", ("A,C", "label", Verdict.CORRECT)),
        (rec("B", labels=("C", "A", "C")), "A,C", ("A,C", "label", Verdict.CORRECT)),
        (rec(labels=("B",)), "B", ("B", "label", Verdict.CORRECT)),
        (rec(labels=("B",)), "A,B", ("B", "label", Verdict.INCORRECT)),
        (rec("A,C", status=AnswerStatus.REFUSED), "A,C", ("", "status", Verdict.REFUSED)),
        (rec(outcome=AttemptOutcome.ERROR), "A,C", ("", "error", Verdict.ERROR)),
        (rec("A,C"), None, ("A,C", "option", Verdict.UNSCORED)),
        (rec(outcome=AttemptOutcome.ERROR), None, ("", "error", Verdict.UNSCORED)),
    ],
)
def test_grade_multi(recorded: Recorded, key: str | None, expected: tuple[str, str, Verdict]) -> None:
    g = grade_multi(recorded, CXR, key)
    assert (g.extracted, g.method, g.verdict) == expected
    assert g.attempt == recorded.attempt


@pytest.mark.parametrize(
    "extracted,verdict,key,expected",
    [
        ("A,C", "correct", "A,C", (1.0, 1.0)),
        ("A", "incorrect", "A,C", (1.0, 0.5)),
        ("B,C,D", "incorrect", "B", (1 / 3, 1.0)),
        ("A,B", "incorrect", "C,D", (0.0, 0.0)),
        ("A,B,C", "incorrect", "B,C,D", (2 / 3, 2 / 3)),
        ("", "unparsed", "A,C", (0.0, 0.0)),
        ("Z", "refused", "A,C", (0.0, 0.0)),
        ("", "error", "A", (0.0, 0.0)),
        ("A", "unscored", None, (0.0, 0.0)),
    ],
)
def test_question_mcls_by_hand(extracted: str, verdict: str, key: str | None, expected: tuple[float, float]) -> None:
    acc, recall = question_mcls(extracted, verdict, key)
    assert acc == pytest.approx(expected[0])
    assert recall == pytest.approx(expected[1])


def _item(verdict: str, task: str) -> Item:
    return Item(verdict, task, "Pulmonary Medicine", "Image level", "X-ray", "x")


def test_rollup_small_example_by_hand() -> None:
    # (key, prediction as graded, verdict, task)
    rows = [
        ("A,C", "A,C", "correct", "Disease Diagnosis"),  # acc 1, recall 1
        ("A,C", "A", "incorrect", "Disease Diagnosis"),  # acc 1, recall 1/2
        ("B", "B,C,D", "incorrect", "Disease Diagnosis"),  # acc 1/3, recall 1
        ("A,B,C", "", "unparsed", "Attribute Recognition"),  # 0, 0
        ("D", "", "refused", "Attribute Recognition"),  # 0, 0
        (None, "A", "unscored", "Attribute Recognition"),  # left out
    ]
    nodes = mcls_of_rows((_item(v, t), pred, key) for key, pred, v, t in rows)
    overall = nodes[("overall", ())]
    assert overall.n == 5
    assert overall.acc_mcls == pytest.approx((1 + 1 + 1 / 3) / 5)  # 7/15
    assert overall.recall_mcls == pytest.approx((1 + 0.5 + 1) / 5)  # 1/2
    dd = nodes[("task", ("Disease Diagnosis",))]
    assert (dd.n, dd.acc_mcls, dd.recall_mcls) == (3, pytest.approx(7 / 9), pytest.approx(5 / 6))
    ar = nodes[("task", ("Attribute Recognition",))]
    assert (ar.n, ar.acc_mcls, ar.recall_mcls) == (2, 0.0, 0.0)
    # the interval: mean +- 1.96 * stdev / sqrt(n), from the statistics module
    values = [1, 1, 1 / 3, 0, 0]
    half = 1.959963984540054 * statistics.stdev(values) / math.sqrt(5)
    lo, hi = overall.acc_ci
    assert lo == pytest.approx(statistics.mean(values) - half)
    assert hi == pytest.approx(statistics.mean(values) + half)
    assert hi == pytest.approx(0.9098, abs=1e-4)  # worked by hand in docs/scoring.md


def test_rollup_counts_every_node_and_keeps_overall() -> None:
    assert rollup([], []) == {("overall", ()): MclsScore(0, 0.0, 0.0, 0.0, 0.0)}
    nodes = rollup([_item("correct", "Disease Diagnosis")], [(1.0, 1.0)])
    assert nodes[("tree", ("task", "Disease Diagnosis", "X-ray", "x"))].n == 1
    assert nodes[("department", ("Pulmonary Medicine",))].recall_mcls == 1.0


def test_intervals_are_clamped_and_open_below_two() -> None:
    assert MclsScore(1, 1.0, 1.0, 1.0, 1.0).acc_ci == (0.0, 1.0)
    s = MclsScore(4, 4.0, 4.0, 2.0, 2.0)  # acc all 1 (no spread); recall 1,1,0,0
    assert s.acc_ci == (1.0, 1.0)
    lo, hi = s.recall_ci
    assert 0.0 <= lo < 0.5 < hi <= 1.0
    assert MclsScore(0, 0, 0, 0, 0).acc_mcls == 0.0


_SETS = st.sets(st.sampled_from("ABCDE"), min_size=1).map(lambda s: ",".join(sorted(s)))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_SETS, _SETS), min_size=1, max_size=30), st.randoms())
def test_mcls_invariants(pairs: list[tuple[str, str]], rnd: random.Random) -> None:
    """Each metric lies in [0, 1]; an exact set scores 1 on both; order does not matter."""
    rows = []
    for key, pred in pairs:
        verdict = "correct" if key == pred else "incorrect"
        acc, recall = question_mcls(pred, verdict, key)
        assert 0.0 <= acc <= 1.0 and 0.0 <= recall <= 1.0
        if key == pred:
            assert (acc, recall) == (1.0, 1.0)
        assert (acc == 1.0) == set(pred.split(",")).issubset(key.split(","))
        assert (recall == 1.0) == set(key.split(",")).issubset(pred.split(","))
        rows.append((_item(verdict, "Disease Diagnosis"), pred, key))
    overall = mcls_of_rows(rows)[("overall", ())]
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    again = mcls_of_rows(shuffled)[("overall", ())]
    assert overall.n == again.n == len(rows)
    assert overall.acc_mcls == pytest.approx(again.acc_mcls)
    assert overall.recall_mcls == pytest.approx(again.recall_mcls)
    exact = sum(k == p for k, p in pairs) / len(pairs)
    assert exact <= min(overall.acc_mcls, overall.recall_mcls) + 1e-12
