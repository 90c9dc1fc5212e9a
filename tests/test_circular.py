"""Circular evaluation, pure parts: rotations, the label mapping, grading a rotation, the
circular verdict, what answers follow, and the random model's expectation, each checked
against examples worked by hand."""

from __future__ import annotations

from fractions import Fraction

import pytest
from gmai_eval.server.records import AttemptOutcome, Recorded, Verdict
from gmai_eval.server.scoring.circular import (
    circular_verdict,
    expected_random_accuracy,
    following,
    grade_rotation,
    rotate,
    rotation_count,
    to_original,
    to_rotated,
)
from gmai_eval.server.scoring.prompt import render_prompt

OPTS = (("A", "liver"), ("B", "spleen"), ("C", "kidney"))
GAPPY = (("A", "liver"), ("B", ""), ("C", "kidney"), ("D", "lung"), ("E", ""))


def _said(text: str = "", labels: tuple[str, ...] = ()) -> Recorded:
    return Recorded(idx=7, outcome=AttemptOutcome.ANSWERED, labels=labels, text=text, attempt=1)


def test_rotations_by_hand() -> None:
    assert rotation_count(OPTS) == 3
    assert rotate(OPTS, 0) == OPTS
    # Rotation 1: A shows what B showed, B what C showed, C what A showed.
    assert rotate(OPTS, 1) == (("A", "spleen"), ("B", "kidney"), ("C", "liver"))
    assert rotate(OPTS, 2) == (("A", "kidney"), ("B", "liver"), ("C", "spleen"))
    with pytest.raises(ValueError, match="rotation 3"):
        rotate(OPTS, 3)


def test_empty_options_stay_out_and_labels_are_kept() -> None:
    assert rotation_count(GAPPY) == 3
    assert rotate(GAPPY, 1) == (("A", "kidney"), ("C", "lung"), ("D", "liver"))
    assert to_original("D", GAPPY, 1) == "A"
    assert to_rotated("A", GAPPY, 1) == "D"
    assert to_original("B", GAPPY, 1) == "B"  # not an option: passes through


def test_label_mapping_by_hand_both_ways() -> None:
    # In rotation 1 "liver" (original A) is shown under C, "spleen" (B) under A.
    assert to_original("C", OPTS, 1) == "A"
    assert to_original("A", OPTS, 1) == "B"
    assert to_rotated("A", OPTS, 1) == "C"
    assert to_rotated("A", OPTS, 2) == "B"
    for r in range(3):
        for lab in "ABC":
            assert to_original(to_rotated(lab, OPTS, r), OPTS, r) == lab
    assert to_original("Z", OPTS, 2) == "Z"
    assert to_original("", OPTS, 2) == ""
    assert to_original("A,C", OPTS, 1) == "B,A"


def test_prompt_of_a_rotation_is_built_from_the_rotated_options() -> None:
    assert render_prompt("Which organ?", rotate(OPTS, 2)) == (
        "Question: Which organ?\nOptions:\nA. kidney\nB. liver\nC. spleen\n"
        "Please select the correct answer from the options above. \n"
    )


def test_grading_a_rotation_maps_the_letter_back() -> None:
    # Key A = liver. Rotation 1 shows liver under C.
    g = grade_rotation(_said("C"), OPTS, "A", "2024", 1)
    assert (g.extracted, g.verdict) == ("A", Verdict.CORRECT)
    g = grade_rotation(_said("A"), OPTS, "A", "2024", 1)  # A shows spleen in rotation 1
    assert (g.extracted, g.verdict) == ("B", Verdict.INCORRECT)
    # Matching by option text uses the rotated options too.
    g = grade_rotation(_said("kidney"), OPTS, "A", "2024", 2)
    assert (g.extracted, g.verdict) == ("C", Verdict.INCORRECT)
    g = grade_rotation(_said(labels=("B",)), OPTS, "A", "2024", 2)
    assert (g.extracted, g.verdict) == ("A", Verdict.CORRECT)
    g = grade_rotation(_said("no idea"), OPTS, "A", "2024", 1)
    assert g.verdict == Verdict.UNPARSED
    assert grade_rotation(_said("C"), OPTS, None, "2024", 1).verdict == Verdict.UNSCORED


def test_rotation_zero_grades_like_a_vanilla_answer() -> None:
    from gmai_eval.server.scoring.verdicts import grade_answer

    for text in ("A", "B. spleen", "kidney", "A or B", "Z", ""):
        assert grade_rotation(_said(text), OPTS, "B", "2024", 0) == grade_answer(_said(text), dict(OPTS), "B", "2024")


def test_circular_verdict() -> None:
    assert circular_verdict(["correct", "correct", "correct"]) == Verdict.CORRECT
    assert circular_verdict(["correct", "incorrect", "error"]) == Verdict.INCORRECT
    assert circular_verdict(["correct", "correct", "refused"]) == Verdict.REFUSED
    assert circular_verdict(["correct", "unscored"]) == Verdict.UNSCORED
    with pytest.raises(ValueError):
        circular_verdict([])


def test_following_by_hand() -> None:
    abc = ["A", "B", "C"]
    f = following([
        (abc, ["A", "A", "A"]),  # same letter each time: follows a position
        (abc, ["A", "C", "B"]),  # liver every time (A; C in r1; B in r2): follows the text
        (abc, ["A", "B", "B"]),  # neither
        (abc, ["A", "", "A"]),  # one rotation without a letter: not counted
        (["A", "B"], ["B", "A"]),  # y, then A shows y in rotation 1: follows the text
        (["A"], ["A"]),  # k = 1: not counted
        # GAPPY's labels A, C, D: liver is under A, then D (rotation 1), then C (rotation 2).
        (["A", "C", "D"], ["A", "D", "C"]),
    ])
    assert (f.eligible, f.position, f.text) == (5, 1, 3)
    assert f.position_share == 0.2
    assert f.text_share == 0.6


def test_expected_random_accuracy_by_hand() -> None:
    # k = 2: (1/2)^2 = 1/4; k = 3: 1/27; k = 5: 1/3125.
    want = (Fraction(1, 4) + Fraction(1, 27) + Fraction(1, 3125)) / 3
    assert expected_random_accuracy([2, 3, 5]) == pytest.approx(float(want), rel=1e-12)
    assert expected_random_accuracy([]) == 0.0


def test_plan_asks_by_hand() -> None:
    from gmai_eval.server.runs.creation import plan_asks
    from gmai_eval.server.runs.opaque_ids import opaque_question_id

    salt = "0f" * 16
    plain = plan_asks([3, 10, 12], salt)
    # Not circular: as before, index order, rotation 0, the usual ids.
    assert plain == [(i, opaque_question_id(salt, i), 0) for i in (3, 10, 12)]
    asks = plan_asks([3, 10, 12], salt, {3: 2, 10: 3, 12: 0})
    assert sorted((i, r) for i, _, r in asks) == [(3, 0), (3, 1), (10, 0), (10, 1), (10, 2), (12, 0)]
    ids = {(i, r): q for i, q, r in asks}
    assert ids[(3, 0)] == opaque_question_id(salt, 3)  # rotation 0 keeps the usual id
    assert ids[(10, 2)] == opaque_question_id(salt, "10/2")
    assert len(set(ids.values())) == len(asks)
    assert [q for _, q, _ in asks] == sorted(ids.values())  # asked in the order of the ids
