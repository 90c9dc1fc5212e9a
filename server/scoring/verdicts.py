"""From a recorded answer to a verdict (pure).

The verdicts are a closed set. Only ``correct`` counts as a hit; every other verdict is
wrong in accuracy, exactly like VLMEvalKit's ``hit = 0``, but is counted apart so that a
report can tell a wrong answer from a refusal, an unreadable answer or a failed call:

``correct`` / ``incorrect``
    An option was chosen (typed label, extracted letter or judge) and compared with the key.
``unparsed``
    Free text from which no option could be extracted (VLMEvalKit: ``Z`` under exact
    matching).
``refused``
    The model refused, abstained or could not take the input, or the text is a refusal
    (VLMEvalKit's ``Z``).
``error``
    The question's final attempt is an error.
``unscored``
    The question has no answer key (flagged TEST rows); excluded from every aggregate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from gmai_eval.server.records import AnswerStatus, AttemptOutcome, Grade, Recorded, Verdict
from gmai_eval.server.scoring.extraction import DEFAULT_ERA, Extraction, can_infer

VERDICTS: tuple[Verdict, ...] = tuple(Verdict)
"""Every verdict; ``unscored`` rows are excluded from accuracy."""

NON_ANSWER_STATUSES: frozenset[AnswerStatus] = frozenset(
    {AnswerStatus.ABSTAINED, AnswerStatus.REFUSED, AnswerStatus.INPUT_UNSUPPORTED}
)
"""Answer statuses that are scored as refusals."""


def verdict_of_letter(letter: str, answer: str | None) -> Verdict:
    """Verdict for an extracted letter: ``Z`` is a refusal, else compare with the key."""
    if answer is None:
        return Verdict.UNSCORED
    if letter == "Z":
        return Verdict.REFUSED
    if not letter:
        return Verdict.UNPARSED
    return Verdict.CORRECT if letter == answer else Verdict.INCORRECT


def grade_answer(
    rec: Recorded,
    choices: Mapping[str, str],
    answer: str | None,
    era: str = DEFAULT_ERA,
) -> Grade:
    """Grade one recorded answer without a judge.

    Args:
        rec: the final attempt.
        choices: label -> option text of the question.
        answer: the correct label, None when the question cannot be scored.
        era: extraction era for free text.

    Returns:
        The grade; free text that matches nothing is ``unparsed`` (a judge may revisit it).
    """
    if rec.outcome != AttemptOutcome.ANSWERED:
        verdict = Verdict.UNSCORED if answer is None else Verdict.ERROR
        return Grade(rec.idx, "", "error", verdict, attempt=rec.attempt)
    if rec.status in NON_ANSWER_STATUSES:
        verdict = Verdict.UNSCORED if answer is None else Verdict.REFUSED
        return Grade(rec.idx, "", "status", verdict, rec.status, rec.attempt)
    if rec.labels:
        return _grade_labels(rec.idx, rec.labels, answer, rec.attempt)
    found: Extraction = can_infer(rec.text, choices, era)
    return Grade(rec.idx, found.letter, found.method, verdict_of_letter(found.letter, answer), attempt=rec.attempt)


def _grade_labels(idx: int, labels: Sequence[str], answer: str | None, attempt: int) -> Grade:
    joined = ",".join(labels)
    if answer is None:
        return Grade(idx, joined, "label", Verdict.UNSCORED, attempt=attempt)
    hit = len(labels) == 1 and labels[0] == answer
    return Grade(idx, joined, "label", Verdict.CORRECT if hit else Verdict.INCORRECT, attempt=attempt)
