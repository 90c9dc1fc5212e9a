"""The text prompt sent with each question, as VLMEvalKit renders it.

VLMEvalKit's default ``ImageMCQDataset.build_prompt`` puts the image first, then one text
block: the question, the non-empty options one per line, and a fixed instruction sentence
that ends with a space and a newline. GMAI-MMBench has no ``hint`` column, so no ``Hint:``
line is ever rendered. The bytes matter: chat models see exactly this string.
"""

from __future__ import annotations

from collections.abc import Sequence

INSTRUCTION = "Please select the correct answer from the options above. \n"
"""The closing sentence, with its trailing space, exactly as VLMEvalKit writes it."""


def render_prompt(question: str, options: Sequence[tuple[str, str]]) -> str:
    """Render the multiple-choice prompt of one question.

    Args:
        question: the question text, verbatim.
        options: (label, text) pairs in label order; empty texts are skipped, as VLMEvalKit
            skips NaN option cells.

    Returns:
        ``"Question: <q>\\nOptions:\\nA. <text>\\n...Please select ... above. \\n"``.
    """
    lines = [f"{label}. {text}\n" for label, text in options if text != ""]
    if not lines:  # VLMEvalKit drops the options block and the instruction entirely
        return f"Question: {question}\n"
    return "".join([f"Question: {question}\n", "Options:\n", *lines, INSTRUCTION])
