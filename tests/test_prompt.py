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
