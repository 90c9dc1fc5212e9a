"""The prompt bytes match VLMEvalKit's ImageMCQDataset.build_prompt."""

from __future__ import annotations

from gmai_eval.server.scoring.prompt import render_prompt


def test_prompt_bytes_exact() -> None:
    got = render_prompt("Which organ is marked?", [("A", "liver"), ("B", "spleen"), ("C", "kidney")])
    assert got == (
        "Question: Which organ is marked?\n"
        "Options:\n"
        "A. liver\n"
        "B. spleen\n"
        "C. kidney\n"
        "Please select the correct answer from the options above. \n"
    )
    assert got.encode().endswith(b"above. \n")


def test_empty_options_are_skipped_and_labels_kept() -> None:
    got = render_prompt("Q?", [("A", "x"), ("B", ""), ("C", "z")])
    assert "B." not in got
    assert "A. x\nC. z\n" in got


def test_no_options_renders_only_the_question() -> None:
    assert render_prompt("Q?", []) == "Question: Q?\n"


def test_text_is_verbatim() -> None:
    q = "  Spaces, tabs\tand ünïcode  "
    got = render_prompt(q, [("A", " a "), ("B", "b")])
    assert got.startswith(f"Question: {q}\n")
    assert "A.  a \n" in got


def test_multi_answer_prompt_bytes_are_pinned() -> None:
    got = render_prompt("Which findings are present?", [("A", "atelectasis"), ("B", "effusion")], multi_choice=True)
    assert got == (
        "Question: Which findings are present?\n"
        "Options:\n"
        "A. atelectasis\n"
        "B. effusion\n"
        "Please select all correct answers from the options above. "
        "Answer with the letters of every correct option, separated by commas (for example: A,C). \n"
    )
    assert render_prompt("Q?", [], multi_choice=True) == "Question: Q?\n"
