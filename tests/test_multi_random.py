"""The random baseline on multi-answer questions: a seeded, non-empty, uniform subset; its
single-answer choice is unchanged."""

from __future__ import annotations

import hashlib
from collections import Counter

from gmai_eval.clients.reference.random import RandomModel
from gmai_eval.clients.sdk import AnswerFormat, Image, Option, Question


def _question(i: int, k: int, fmt: AnswerFormat) -> Question:
    return Question(
        question_id=f"q{i}",
        question=f"question {i}",
        options=tuple(Option(lab, f"text {lab}") for lab in "ABCDE"[:k]),
        images=(Image(data=bytes([i % 256, i // 256]), media_type="image/png"),),
        answer_format=fmt,
    )


def test_multi_answers_are_uniform_non_empty_subsets() -> None:
    model = RandomModel(seed=0)
    counts: Counter[tuple[str, ...]] = Counter()
    n = 3100
    for i in range(n):
        answer = model.predict(_question(i, 3, AnswerFormat.MULTI_CHOICE))
        assert answer.labels and set(answer.labels) <= {"A", "B", "C"}
        assert list(answer.labels) == sorted(set(answer.labels)) and not answer.probabilities
        counts[answer.labels] += 1
    assert len(counts) == 7  # 2**3 - 1 subsets, the empty one never
    expected = n / 7
    chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
    assert chi2 < 22.46  # chi-square 0.999 quantile at df 6 (scipy.stats.chi2.ppf(0.999, 6))


def test_multi_answers_are_seeded_by_content() -> None:
    q = _question(7, 5, AnswerFormat.MULTI_CHOICE)
    assert RandomModel(seed=1).predict(q) == RandomModel(seed=1).predict(q)
    assert RandomModel(seed=1).predict(q).labels == RandomModel(seed=1).predict(
        Question(**{**q.__dict__, "question_id": "another run"})
    ).labels
    draws = {RandomModel(seed=s).predict(q).labels for s in range(20)}
    assert len(draws) > 5


def test_single_answers_are_unchanged() -> None:
    # the choice of the release before multi-answer support, written out independently
    for i in range(50):
        q = _question(i, 4, AnswerFormat.SINGLE_CHOICE)
        h = hashlib.sha256(f"0\0{q.question}".encode())
        for o in q.options:
            h.update(f"\0{o.label}\0{o.text}".encode())
        h.update(b"\0" + q.images[0].digest().encode())
        want = "ABCD"[int.from_bytes(h.digest()[:8], "big") % 4]
        answer = RandomModel(seed=0).predict(q)
        assert answer.labels == (want,)
        assert answer.probabilities == {lab: 0.25 for lab in "ABCD"}
