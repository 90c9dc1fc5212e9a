"""Circular evaluation: the rotations of a question's options, and how their answers score.

A question with k non-empty options is asked k times. Rotation ``r`` (0 <= r < k) keeps
the question's labels, in order, and moves the option texts up by ``r`` places: the label
at position ``j`` shows the text that position ``(j + r) mod k`` shows in the original.
Rotation 0 is the original order, so its answer is the vanilla answer. Labels that the
original leaves empty stay out of every rotation (VLMEvalKit skips empty options).

An answer to rotation ``r`` is extracted against the rotated options, exactly like a
vanilla answer (same era, same rules), and the extracted label is mapped back to the
original option it showed; it is correct when that is the question's key. A question is
circular-correct only when every rotation is correct (:func:`circular_verdict`).

Pure: no I/O. docs/scoring.md ("Circular evaluation") states the formulas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from gmai_eval.server.records import Grade, Recorded, Verdict
from gmai_eval.server.scoring.verdicts import grade_answer

Options = Sequence[tuple[str, str]]
"""(label, text) pairs in label order."""


def present(options: Options) -> tuple[tuple[str, str], ...]:
    """The non-empty options, in label order."""
    return tuple((lab, text) for lab, text in options if text not in (None, ""))


def rotation_count(options: Options) -> int:
    """How many rotations a question has: its number of non-empty options (k)."""
    return len(present(options))


def rotate(options: Options, rotation: int) -> tuple[tuple[str, str], ...]:
    """The non-empty options of rotation ``rotation``: labels stay, texts move up.

    Raises:
        ValueError: ``rotation`` is not in ``[0, k)``.
    """
    opts = present(options)
    k = len(opts)
    _check(rotation, k)
    return tuple((opts[j][0], opts[(j + rotation) % k][1]) for j in range(k))


def to_original(label: str, options: Options, rotation: int) -> str:
    """The original label of the option shown under ``label`` in rotation ``rotation``.

    ``Z``, ``""`` and labels that are not options pass through unchanged; several labels
    joined by ``,`` are mapped one by one.
    """
    if "," in label:
        return ",".join(to_original(part, options, rotation) for part in label.split(","))
    labels = [lab for lab, _ in present(options)]
    if label not in labels:
        return label
    k = len(labels)
    _check(rotation, k)
    return labels[(labels.index(label) + rotation) % k]


def to_rotated(label: str, options: Options, rotation: int) -> str:
    """The label under which rotation ``rotation`` shows the original option ``label``.

    The inverse of :func:`to_original`; ``Z``, ``""`` and unknown labels pass through.
    """
    labels = [lab for lab, _ in present(options)]
    if label not in labels:
        return label
    k = len(labels)
    _check(rotation, k)
    return labels[(labels.index(label) - rotation) % k]


def grade_rotation(
    recorded: Recorded, options: Options, answer: str | None, era: str, rotation: int
) -> Grade:
    """Grade the answer to one rotation, with ``extracted`` mapped back to original labels.

    The answer is extracted against the rotated options (what the model saw) and checked
    against the key's rotated label; rotation 0 grades exactly like a vanilla answer.
    """
    rotated = rotate(options, rotation)
    key = None if answer is None else to_rotated(answer, options, rotation)
    g = grade_answer(recorded, dict(rotated), key, era)
    return replace(g, extracted=to_original(g.extracted, options, rotation))


def circular_verdict(verdicts: Sequence[str]) -> Verdict:
    """One question's circular verdict from its rotations' verdicts, in rotation order.

    ``unscored`` if any rotation is (no key); ``correct`` only if every rotation is;
    otherwise the verdict of the first rotation that is not correct.

    Raises:
        ValueError: no verdict.
    """
    if not verdicts:
        raise ValueError("a question has at least one rotation")
    vs = [Verdict(v) for v in verdicts]
    if Verdict.UNSCORED in vs:
        return Verdict.UNSCORED
    return next((v for v in vs if v != Verdict.CORRECT), Verdict.CORRECT)


@dataclass(frozen=True)
class Following:
    """What circular answers follow: the option text, or a position.

    Counted over the questions with k >= 2 whose every rotation was answered with a single
    option letter (``eligible``). Such a question *follows a position* when the same
    letter was chosen in every rotation (so a different text each time), and *follows the
    text* when the same original option was chosen in every rotation (so a different
    letter each time); for k >= 2 the two cannot both hold, and a question may do neither.
    """

    eligible: int
    """Questions counted."""
    position: int
    """Of those, questions answered with the same letter in every rotation."""
    text: int
    """Of those, questions answered with the same original option in every rotation."""

    @property
    def position_share(self) -> float:
        """position / eligible (0 when nothing is eligible)."""
        return self.position / self.eligible if self.eligible else 0.0

    @property
    def text_share(self) -> float:
        """text / eligible (0 when nothing is eligible)."""
        return self.text / self.eligible if self.eligible else 0.0


def following(questions: Sequence[tuple[Sequence[str], Sequence[str]]]) -> Following:
    """Count what the answers follow.

    Args:
        questions: per question, the labels of its non-empty options and the letters
            chosen in rotations 0..k-1 **as the model wrote them** (rotated labels);
            ``""`` or ``Z`` for no option.
    """
    eligible = position = text = 0
    for labels, chosen in questions:
        k = len(labels)
        if k < 2 or len(chosen) != k or any(c not in labels for c in chosen):
            continue
        eligible += 1
        if len(set(chosen)) == 1:
            position += 1
        if len({labels[(labels.index(c) + r) % k] for r, c in enumerate(chosen)}) == 1:
            text += 1
    return Following(eligible, position, text)


def expected_random_accuracy(option_counts: Sequence[int]) -> float:
    """Circular accuracy expected of a model that picks a letter uniformly at random.

    Each of the k rotations is correct with probability 1/k, independently, so a question
    is circular-correct with probability (1/k)^k; the expectation is the mean over
    questions.
    """
    if not option_counts:
        return 0.0
    return sum((1 / k) ** k for k in option_counts) / len(option_counts)


def _check(rotation: int, k: int) -> None:
    if not 0 <= rotation < max(k, 1):
        raise ValueError(f"rotation {rotation} of a question with {k} options")
