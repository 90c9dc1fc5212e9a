"""Free-text answers to multi-answer questions read as letter sets: the documented rules,
one vector per rule and per pitfall, plus invariants (never raises, only offered letters)."""

from __future__ import annotations

import pytest
from gmai_eval.server.scoring.multi_extraction import canonical, infer_letters, letter_set, tokens
from hypothesis import given, settings
from hypothesis import strategies as st

CXR = {"A": "atelectasis", "B": "cardiomegaly", "C": "effusion", "D": "pleural effusion"}
FIVE = {"A": "nuclear speckles", "B": "mitochondria", "C": "cytosol", "D": "nucleoli", "E": "plasma membrane"}

# prediction -> (letters joined by ",", method)
VECTORS: list[tuple[str, tuple[str, str]]] = [
    # the instruction's own format and its spellings
    ("A,C", ("A,C", "option")),
    ("A, C", ("A,C", "option")),
    ("C,A", ("A,C", "option")),
    ("A,C.", ("A,C", "option")),
    ("A;C", ("A,C", "option")),
    ("A/C", ("A,C", "option")),
    ("A & C", ("A,C", "option")),
    ("A+C", ("A,C", "option")),
    ("A C", ("A,C", "option")),
    ("(A) (C)", ("A,C", "option")),
    ("[A, C]", ("A,C", "option")),
    ("**A**, **C**", ("A,C", "option")),
    ('"A", "C"', ("A,C", "option")),
    ("'B','D'", ("B,D", "option")),
    ("A,A,C", ("A,C", "option")),
    ("B", ("B", "option")),
    ("Answer: B, D", ("B,D", "option")),
    ("The correct answers are A and C.", ("A,C", "option")),
    ("A and C", ("A,C", "option")),
    ("A or C", ("A,C", "option")),
    ("A is present, and so is D", ("A,D", "option")),
    ("A, B, C, D", ("A,B,C,D", "option")),
    # the article guard
    ("A mass is seen; the answer is C", ("C", "option")),
    ("A large effusion: D", ("D", "option")),
    ("A", ("A", "option")),
    ("A.", ("A", "option")),
    ("A, Cardiomegaly", ("A", "option")),
    # letters that are not options, case
    ("E", ("", "none")),
    ("A,E", ("A", "option")),
    ("a,c", ("", "none")),
    ("AC", ("", "none")),
    # option texts
    ("atelectasis and cardiomegaly", ("A,B", "text")),
    ("Cardiomegaly.", ("B", "text")),
    ("there is a pleural effusion", ("D", "text")),
    ("effusion", ("C", "text")),
    ("an effusion, and a pleural effusion on the left", ("C,D", "text")),
    ("ATELECTASIS", ("A", "text")),
    # letters win over texts
    ("B (atelectasis)", ("B", "option")),
    # refusals, Z, failures, nothing
    ("Cannot determine the answer", ("Z", "refusal")),
    ("I'm sorry, but without the image provided I cannot say", ("Z", "refusal")),
    ("Z", ("Z", "option")),
    ("Failed to obtain answer via API", ("", "api_failure")),
    ("", ("", "none")),
    ("no finding", ("", "none")),
    ("I am not sure", ("", "none")),
]


@pytest.mark.parametrize("prediction,expected", VECTORS)
def test_vectors(prediction: str, expected: tuple[str, str]) -> None:
    found = infer_letters(prediction, CXR)
    assert (found.joined, found.method) == expected


@pytest.mark.parametrize(
    "prediction,expected",
    [
        ("E", "E"),
        ("A, E", "A,E"),
        ("nucleoli and plasma membrane", "D,E"),
        ("The protein is in the cytosol and the mitochondria.", "B,C"),
    ],
)
def test_five_options(prediction: str, expected: str) -> None:
    assert infer_letters(prediction, FIVE).joined == expected


def test_none_is_nan() -> None:
    assert infer_letters(None, CXR).joined == ""
    assert infer_letters(None, {"A": "nan", "B": "x"}).joined == "A"


def test_letters_come_in_label_order() -> None:
    assert infer_letters("D, B, A", CXR).letters == ("A", "B", "D")


def test_tokens_split_extra_separators() -> None:
    assert tokens("A/B&C+D;E") == ["A", "B", "C", "D", "E"]


@pytest.mark.parametrize(
    "letters,expected", [(["C", "A"], "A,C"), (["A", "A"], "A"), ([], ""), (("E", "B", "D"), "B,D,E")]
)
def test_canonical(letters: list[str], expected: str) -> None:
    assert canonical(letters) == expected


@pytest.mark.parametrize("joined,expected", [("A,C", {"A", "C"}), ("", set()), (None, set()), ("B", {"B"})])
def test_letter_set(joined: str | None, expected: set[str]) -> None:
    assert letter_set(joined) == expected


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_never_raises_and_only_offered_letters(text: str) -> None:
    found = infer_letters(text, CXR)
    assert found.method in {"option", "text", "refusal", "api_failure", "none"}
    assert set(found.letters) <= set(CXR) | {"Z"}
    assert ("Z" in found.letters) == (found.letters == ("Z",))
    assert bool(found.letters) == (found.method in {"option", "text", "refusal"})
