"""The seeded random baseline: uniform over each question's options.

The choice is a function of the seed and the question's content (text, options, image
digest), never of the run-specific question id, so the same question gets the same
answer in every run. On GMAI-MMBench it lands near the paper's Random row (~25 %).

A multi-answer question gets a non-empty subset of its options, uniform over the
``2**k - 1`` of them (k options), drawn from the same hash; no probabilities are sent.
"""

from __future__ import annotations

import hashlib

from gmai_eval.clients.sdk import Answer, AnswerFormat, Model, Question


class RandomModel(Model):
    """Answers a uniformly random option, deterministic per (seed, question content).

    Args:
        seed: Different seeds give different (equally random) answers.
    """

    name = "random-baseline"
    version = "1.0"
    vendor = "gmai-eval"
    capabilities = ("option_scores",)
    cheap = True  # a hash per question: served in batches of 64, 128 in flight

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed

    def _draw(self, question: Question) -> int:
        h = hashlib.sha256(f"{self.seed}\0{question.question}".encode())
        for option in question.options:
            h.update(f"\0{option.label}\0{option.text}".encode())
        for image in question.images:
            h.update(b"\0" + image.digest().encode())
        return int.from_bytes(h.digest()[:8], "big")

    def choose(self, question: Question) -> int:
        """Index of the chosen option."""
        return self._draw(question) % len(question.options)

    def choose_subset(self, question: Question) -> tuple[int, ...]:
        """Indexes of a non-empty subset of the options, uniform over all such subsets."""
        k = len(question.options)
        mask = self._draw(question) % (2**k - 1) + 1  # 1 .. 2**k - 1: never empty
        return tuple(i for i in range(k) if mask >> i & 1)

    def predict(self, question: Question) -> Answer:
        """Pick an option (or, for a multi-answer question, a non-empty subset).

        Single answers report uniform probabilities.
        """
        if question.answer_format is AnswerFormat.MULTI_CHOICE:
            return Answer(labels=tuple(question.options[i].label for i in self.choose_subset(question)))
        n = len(question.options)
        return Answer(
            label=question.options[self.choose(question)].label,
            probabilities={label: 1.0 / n for label in question.labels},
        )
