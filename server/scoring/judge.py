"""Optional LLM judge for free-text answers that the rules cannot read.

VLMEvalKit sends such answers to a chat model with a generic "match the answer to the
options" prompt and runs its rules on the reply, up to three times. Here the judge is any
registered model reached through the same ``AnswerVQA`` contract, text only (no image):
the matching prompt travels in ``AnswerVQARequest.prompt``.

After three failed tries VLMEvalKit picks a random letter, so a question can be scored
correct by chance; we keep the answer ``unparsed`` (wrong) instead. See docs/scoring.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, Protocol

JUDGE_TRIES = 3
"""Calls per unparsed answer before giving up."""

_EXAMPLES = (
    "Example 1:\n"
    "Question: What is the main object in the image?\n"
    "Options:\nA. teddy bear\nB. rabbit\nC. cat\nD. dog\n"
    "Answer: a cute teddy bear\n"
    "Your output: A\n"
    "Example 2:\n"
    "Question: What is the main object in the image?\n"
    "Options:\nA. teddy bear\nB. rabbit\nC. cat\nD. dog\n"
    "Answer: Spider\n"
    "Your output: Z\n"
)


class JudgeClient(Protocol):
    """A model that maps a free-text answer to an option letter."""

    name: str
    """Registered model name; recorded with every grade and judge call."""

    async def ask(self, prompt: str, options: list[tuple[str, str]]) -> str:
        """Send the matching prompt; return the model's reply text."""
        ...


def matching_prompt(question: str, options: Sequence[tuple[str, str]], prediction: str) -> str:
    """The matching prompt for one answer (our wording of VLMEvalKit's generic prompt).

    Args:
        question: the question text.
        options: (label, text) pairs.
        prediction: the model's free-text answer.

    Returns:
        Instructions, two worked examples, then the question, its options and the answer.
    """
    block = "".join(f"{label}. {text}\n" for label, text in options)
    return (
        "Your job is to match an answer to the options of a single-choice question. "
        "Choose the option whose meaning is closest to the answer. "
        "If the answer is clearly different from every option, output Z. "
        "Reply with a single uppercase letter and nothing else.\n"
        f"{_EXAMPLES}"
        "Now your turn:\n"
        f"Question: {question}\n"
        f"There are several options:\n{block}"
        f"Answer: {prediction}\n"
        "Your output: "
    )


class AnswerClient(Protocol):
    """The part of the model client the judge adapter uses."""

    async def answer(self, req: Any, *, deadline_s: float) -> Any:
        """Call ``AnswerVQA`` once."""
        ...


class ModelJudge:
    """A :class:`JudgeClient` over a registered model's ``AnswerVQA``.

    Args:
        client: a model client (``GrpcModelClient``) with ``answer(req, deadline_s=...)``.
        name: the registered model name.
        deadline_s: deadline of each judge call.
    """

    def __init__(self, client: AnswerClient, name: str, deadline_s: float = 60.0) -> None:
        self._client = client
        self.name = name
        self._deadline_s = deadline_s

    async def ask(self, prompt: str, options: list[tuple[str, str]]) -> str:
        """Send ``prompt`` text-only; return the reply text (or the chosen label)."""
        from gmai_eval.model.v1 import model_pb2 as mpb

        req = mpb.AnswerVQARequest(
            question_id=f"judge-{uuid.uuid4().hex[:12]}",
            question=prompt,
            options=[mpb.Option(label=label, text=text) for label, text in options],
            prompt=prompt,
            answer_format=mpb.ANSWER_FORMAT_SINGLE_CHOICE,
            request_id=uuid.uuid4().hex,
        )
        resp = await self._client.answer(req, deadline_s=self._deadline_s)
        text = str(getattr(resp, "text", "") or "")
        if text:
            return text
        labels = list(getattr(resp, "selected_labels", ()) or ())
        return ",".join(str(x) for x in labels)
