"""Extraction rules per era: the reference test vectors, edge cases, and a parity check
against an independent literal transcription of VLMEvalKit's steps."""

from __future__ import annotations

import random

import pytest
from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.scoring.extraction import ERAS, can_infer, tokens
from gmai_eval.server.scoring.verdicts import Recorded, grade_answer
from hypothesis import given, settings
from hypothesis import strategies as st

from tests._scoring_reference import reference_can_infer

CXR = {"A": "pulmonary calcification", "B": "cardiomegaly", "C": "pleural effusion", "D": "atelectasis"}
ABD = {"A": "liver", "B": "kidney", "C": "spleen", "D": "pancreas", "E": "gallbladder"}
LONG_D = (
    "The correct answer to the question is D. atelectasis. The box-marked region shows a collapsed "
    "segment of the lung with volume loss and shift of the fissure toward the opacity."
)
LONG_OPTION_D = (
    "Option D is correct because the marked area shows loss of lung volume, crowding of vessels and "
    "displacement of the interlobar fissure, which are typical signs on a chest radiograph."
)
MIXED = "The image shows a chest X-ray. A mass is seen. The answer is D"

# prediction -> (2024, 2025-08, 2026-06); "" = no match
VECTORS: list[tuple[str, tuple[str, str, str]]] = [
    ("D", ("D", "D", "D")),
    ("D.", ("D", "D", "D")),
    ("(D)", ("D", "D", "D")),
    ("Answer: D", ("D", "D", "D")),
    ("The correct answer is **D**.", ("D", "D", "D")),
    ("D. atelectasis", ("D", "D", "D")),
    ("atelectasis", ("D", "D", "D")),
    (LONG_D, ("D", "", "")),
    (LONG_OPTION_D, ("D", "", "")),
    (MIXED, ("", "", "D")),
    ("A or D", ("", "", "")),
    ("d", ("", "", "")),
    ("I think it is atelectasis, not cardiomegaly", ("", "", "")),
    ("E", ("", "", "")),
    ("Cannot determine the answer", ("Z", "Z", "Z")),
    ("Z", ("Z", "Z", "Z")),
]


@pytest.mark.parametrize("era_i,era", list(enumerate(ERAS)))
@pytest.mark.parametrize("prediction,expected", VECTORS)
def test_reference_vectors(prediction: str, expected: tuple[str, str, str], era_i: int, era: str) -> None:
    assert can_infer(prediction, CXR, era).letter == expected[era_i]
    assert reference_can_infer(prediction, CXR, era) == expected[era_i]


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("prediction", ["E", "The answer is E", "gallbladder"])
def test_five_options(prediction: str, era: str) -> None:
    assert can_infer(prediction, ABD, era).letter == "E"


@pytest.mark.parametrize("era", ERAS)
def test_punctuation_is_a_separator(era: str) -> None:
    for wrapped in ["[B]", "{B}", "B,", "B:", "B;", "B!", "*B*", "#B", "B)", "(B"]:
        assert can_infer(wrapped, CXR, era).letter == "B", wrapped
    # characters outside the list are not separators
    assert not can_infer("B-", CXR, era).matched
    assert not can_infer("<B>", CXR, era).matched
    assert tokens("a.b(c)[d]e,f:g;h!i*j#k{l}m") == list("abcdefghijklm")


@pytest.mark.parametrize("era", ERAS)
def test_api_failure_is_never_matched_but_text_rule_still_runs(era: str) -> None:
    found = can_infer("Failed to obtain answer via API. D", CXR, era)
    assert not found.matched and found.method == "api_failure"
    # the text rule is tried after the option rule gives nothing
    assert can_infer("Failed to obtain answer via API: atelectasis", CXR, era).letter == "D"


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(
    "refusal",
    [
        "Sorry, I can't help with images of people yet.",
        "I can't process this file.",
        "I'm sorry, but without the image provided I cannot say. D",
        "Cannot determine the answer: A",
    ],
)
def test_refusals_win_over_letters(refusal: str, era: str) -> None:
    found = can_infer(refusal, CXR, era)
    assert (found.letter, found.method) == ("Z", "refusal")


@pytest.mark.parametrize("era", ERAS)
def test_z_token_only_without_option_letters(era: str) -> None:
    assert can_infer("Z.", CXR, era).letter == "Z"
    assert can_infer("A Z", CXR, era).letter == "A"
    assert not can_infer("A B Z", CXR, era).matched


def test_missing_prediction_is_nan() -> None:
    for era in ERAS:
        assert not can_infer(None, CXR, era).matched
    # "nan" would match an option text "nan"... only as a substring, exactly as pandas' cast does
    assert can_infer(None, {"A": "nan", "B": "x"}).letter == "A"


def test_last_four_tokens_rule_boundary() -> None:
    # 8 tokens; index > 8 - 5 = 3 passes, i.e. indexes 4..7
    base = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"]
    for pos in range(8):
        toks = list(base)
        toks[pos] = "C"
        text = " ".join(toks)
        assert can_infer(text, CXR, "2024").letter == "C"
        assert can_infer(text, CXR, "2025-08").letter == ("C" if pos > 3 else "")
    # the first occurrence counts: C early and late is still rejected
    assert can_infer("C w w w w w w C", CXR, "2025-08").letter == ""
    # short answers: every position is within the last four
    assert can_infer("C w w w", CXR, "2025-08").letter == "C"


def test_text_length_cap() -> None:
    total = sum(len(v) for v in CXR.values())  # 62
    exact = "atelectasis" + "x" * (2 * total - len("atelectasis"))
    assert len(exact) == 2 * total
    assert can_infer(exact, CXR, "2025-08").letter == "D"
    assert can_infer(exact + "x", CXR, "2025-08").letter == ""
    assert can_infer(exact + "x", CXR, "2024").letter == "D"


def test_answer_is_regex_2026() -> None:
    assert can_infer("A and B look similar, but the correct answer is C", CXR, "2026-06").letter == "C"
    assert can_infer("A or B? The Answer Is **B**", CXR, "2026-06").letter == "B"
    assert can_infer("A or B? answer is B", CXR, "2025-08").letter == ""
    # E is outside the A-D range of the pattern
    assert can_infer("A and B... the answer is E", ABD, "2026-06").letter == ""
    # the letter may be lower case (it is upper-cased), wrapped in any number of "*",
    # and the words may be separated by any whitespace
    assert can_infer("A and B... the answer is d", CXR, "2026-06").letter == "D"
    assert can_infer("A and B... correct\nanswer   is\t*C*", CXR, "2026-06").letter == "C"
    assert can_infer("A and B... the answer is ***B", CXR, "2026-06").letter == "B"
    # at least one whitespace before the letter
    assert can_infer("A and B... the answer is**B**", CXR, "2026-06").letter == ""
    # no word boundary: "answer is a mass" reads as A (VLMEvalKit parity)
    assert can_infer("B or C? The answer is a mass", CXR, "2026-06").letter == "A"
    # a letter the question does not have
    assert can_infer("A or B, answer is D", {"A": "x", "B": "y", "C": "z"}, "2026-06").letter == ""
    # the regex also rescues a single letter rejected by the last-four-tokens rule
    assert can_infer("The answer is B because the heart is enlarged on this film", CXR, "2026-06").letter == "B"


def test_substring_ambiguity() -> None:
    ch = {"A": "glaucoma", "B": "advanced glaucoma", "C": "cataract"}
    assert can_infer("advanced glaucoma", ch).letter == ""
    assert can_infer("glaucoma", ch).letter == "A"
    assert can_infer("CATARACT", ch).letter == "C"  # text rule is case-insensitive


def test_verbose_guard_off_by_default() -> None:
    # a lone "A" read as an article: counted as the letter unless the guard is on
    ch = {"A": "x", "B": "y"}
    assert can_infer("A small lesion here", ch).letter == "A"
    assert can_infer("A small lesion here", ch, verbose=True).letter == ""


def test_unknown_era() -> None:
    with pytest.raises(InvalidArgument, match="2025-08"):
        can_infer("A", CXR, "2023")


def test_verdicts() -> None:
    ch = CXR
    assert grade_answer(Recorded(1, "answered", labels=("D",)), ch, "D").verdict == "correct"
    assert grade_answer(Recorded(1, "answered", labels=("D",)), ch, "D").method == "label"
    assert grade_answer(Recorded(1, "answered", labels=("A", "D")), ch, "D").verdict == "incorrect"
    assert grade_answer(Recorded(1, "answered", text="B"), ch, "D").verdict == "incorrect"
    assert grade_answer(Recorded(1, "answered", text="hmm"), ch, "D").verdict == "unparsed"
    assert grade_answer(Recorded(1, "answered", text="Z"), ch, "D").verdict == "refused"
    assert grade_answer(Recorded(1, "answered", status="refused", text="D"), ch, "D").verdict == "refused"
    assert grade_answer(Recorded(1, "answered", status="abstained"), ch, "D").verdict == "refused"
    assert grade_answer(Recorded(1, "answered", status="input_unsupported"), ch, "D").verdict == "refused"
    assert grade_answer(Recorded(1, "error"), ch, "D").verdict == "error"
    assert grade_answer(Recorded(1, "answered", text="D"), ch, None).verdict == "unscored"


def _random_prediction(rng: random.Random, choices: dict[str, str]) -> str:
    letters = [*choices, "E", "Z", "a", "d"]
    texts = list(choices.values())
    filler = ["the", "image", "shows", "a", "lesion", "X-ray", "answer", "is", "correct", "option", "I", "A"]
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice(letters)
    if kind == 1:
        return f"{rng.choice(['(', '[', '**', ''])}{rng.choice(letters)}{rng.choice(['.', ')', ']', '**', ':', ''])}"
    if kind == 2:
        return rng.choice(texts)
    if kind == 3:
        return f"{rng.choice(letters)}. {rng.choice(texts)}"
    if kind == 4:
        return " ".join(rng.choice(filler) for _ in range(rng.randint(3, 30))) + f" {rng.choice(letters)}"
    if kind == 5:
        return f"The {rng.choice(['correct ', ''])}answer is {rng.choice(['**', ''])}{rng.choice(letters)}" \
            f"{rng.choice(['**', ''])} " + " ".join(rng.choice(filler) for _ in range(rng.randint(0, 12)))
    if kind == 6:
        return rng.choice(["Cannot determine the answer", "I can't process this file.", "Failed to obtain answer via API"])
    if kind == 7:
        return " ".join(rng.sample(texts, min(2, len(texts))))
    if kind == 8:
        return rng.choice(texts).upper() + " " + "x" * rng.randint(0, 200)
    if kind == 9:
        return f"{rng.choice(letters)} or {rng.choice(letters)}"
    if kind == 10:
        return "nan"
    return " ".join(rng.choice(filler + letters) for _ in range(rng.randint(1, 10)))


def test_parity_with_reference_on_generated_predictions() -> None:
    rng = random.Random(7)
    words = ["liver", "kidney", "spleen", "glaucoma", "advanced glaucoma", "normal", "tumor", "x", "answer"]
    seen_methods: set[tuple[str, str]] = set()
    for _ in range(600):
        k = rng.randint(2, 5)
        choices = dict(zip("ABCDE", rng.sample(words, k), strict=False))
        pred = _random_prediction(rng, choices)
        for era in ERAS:
            ours = can_infer(pred, choices, era)
            assert ours.letter == reference_can_infer(pred, choices, era), (pred, choices, era)
            seen_methods.add((era, ours.method))
    # every rule branch was exercised
    for era in ERAS:
        for method in ("option", "text", "refusal", "api_failure", "none"):
            assert (era, method) in seen_methods, (era, method)
    assert ("2026-06", "regex") in seen_methods


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.sampled_from(ERAS))
def test_never_raises_and_agrees_with_reference(text: str, era: str) -> None:
    found = can_infer(text, CXR, era)
    assert found.letter in ("", "Z", *CXR)
    assert found.letter == reference_can_infer(text, CXR, era)
