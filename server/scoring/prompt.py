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

MULTI_INSTRUCTION = (
    "Please select all correct answers from the options above. "
    "Answer with the letters of every correct option, separated by commas (for example: A,C). \n"
)
"""The closing sentence of a multi-answer question: our fixed wording of the paper's Table 8
instruction (select every correct option, letters separated by commas), which the reference
only paraphrases; docs/scoring.md quotes it and a test pins it."""


def render_prompt(question: str, options: Sequence[tuple[str, str]], *, multi_choice: bool = False) -> str:
    """Render the multiple-choice prompt of one question.

    Args:
        question: the question text, verbatim.
        options: (label, text) pairs in label order; empty texts are skipped, as VLMEvalKit
            skips NaN option cells.
        multi_choice: close with :data:`MULTI_INSTRUCTION` instead of :data:`INSTRUCTION`.

    Returns:
        ``"Question: <q>\\nOptions:\\nA. <text>\\n...Please select ... above. \\n"``.
    """
    lines = [f"{label}. {text}\n" for label, text in options if text != ""]
    if not lines:  # VLMEvalKit drops the options block and the instruction entirely
        return f"Question: {question}\n"
    closing = MULTI_INSTRUCTION if multi_choice else INSTRUCTION
    return "".join([f"Question: {question}\n", "Options:\n", *lines, closing])
