"""Rule-based answer extraction, reproducing VLMEvalKit's ``can_infer`` per era (pure).

VLMEvalKit turns a free-text prediction into an option letter with two rules, tried in
order: *option* matching (a letter standing alone as a token) and then *text* matching
(exactly one option text is a substring of the answer). The rules changed twice, so the
era is a parameter (see docs/scoring.md):

``2024``
    The rules the paper's numbers were produced with (default, paper parity).
``2025-08``
    VLMEvalKit PR #1175: a single letter only counts when it first occurs among the last
    four tokens, and text matching is skipped for answers longer than twice the total
    length of the option texts.
``2026-06``
    VLMEvalKit PR #1552: additionally, a case-insensitive ``(correct) answer is X``
    pattern (X in A-D, optionally wrapped in ``*``), tried when the token rules give nothing.

The result of :func:`can_infer` is an :class:`Extraction`: a letter, ``"Z"`` (refusal,
always wrong) or nothing. This module only implements the rules; verdicts live in
``verdicts.py``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from gmai_eval.server.errors import InvalidArgument

ERAS: tuple[str, ...] = ("2024", "2025-08", "2026-06")
"""Supported extraction eras, oldest first."""

_ERA_SET = frozenset(ERAS)

DEFAULT_ERA = "2024"
"""The era of the paper's numbers."""

API_FAILURE = "Failed to obtain answer via API"
"""VLMEvalKit's marker of a failed API call; never matched."""

REFUSALS: tuple[str, ...] = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
"""Substrings that VLMEvalKit maps to ``Z`` (scored wrong)."""

_PUNCTUATION = ".()[],:;!*#{}"
"""Characters replaced by a space before tokenising."""

_TRANSLATE = str.maketrans(dict.fromkeys(_PUNCTUATION, " "))

# "(correct) answer is X": any whitespace between the words (at least one space before X),
# any number of "*" around X, X in A-D in either case, upper-cased and then accepted only
# if it is one of the question's labels. No word boundary: "the answer is a mass" reads A.
_ANSWER_IS = re.compile(r"(?:correct\s+)?answer\s+is\s+\**([A-D])\**", re.IGNORECASE)


@dataclass(frozen=True)
class Extraction:
    """What the rules found in a free-text answer."""

    letter: str
    """The option letter, ``"Z"`` for a refusal, or ``""`` when nothing matched."""
    method: str
    """``option`` (token rule), ``regex`` (2026-06 pattern), ``text`` (option text),
    ``refusal`` (a refusal string), ``api_failure`` or ``none``."""

    @property
    def matched(self) -> bool:
        """True when a letter or ``Z`` was found."""
        return bool(self.letter)


NO_MATCH = Extraction("", "none")


def check_era(era: str) -> str:
    """Return ``era`` if it is supported.

    Raises:
        InvalidArgument: an unknown era.
    """
    if era not in ERAS:
        raise InvalidArgument(f"unknown extraction era {era!r}; expected one of {', '.join(ERAS)}")
    return era


def tokens(answer: str) -> list[str]:
    """Split an answer the way VLMEvalKit does: punctuation to spaces, then whitespace."""
    return answer.translate(_TRANSLATE).split()


def infer_option(
    answer: str, choices: Mapping[str, str], era: str = DEFAULT_ERA, *, verbose: bool = False
) -> Extraction:
    """The option rule (VLMEvalKit ``can_infer_option``).

    Args:
        answer: the prediction as a string (a missing one is ``"nan"``).
        choices: label -> option text, in label order.
        era: extraction era.
        verbose: emulate VLMEvalKit's ``VERBOSE`` environment guard (a lone ``A`` token in
            an answer of more than three tokens may be an article: no match). Off by default.

    Returns:
        The extraction; :data:`NO_MATCH` when the rule finds nothing.
    """
    if era not in _ERA_SET:
        check_era(era)
    if API_FAILURE in answer:
        return Extraction("", "api_failure")
    if any(refusal in answer for refusal in REFUSALS):
        return Extraction("Z", "refusal")
    toks = tokens(answer)
    tok_set = set(toks)
    present = [label for label in choices if label in tok_set]
    if len(present) == 1:
        if verbose and "A" in toks and len(toks) > 3:
            return NO_MATCH
        label = present[0]
        if era == "2024" or toks.index(label) > len(toks) - 5:
            return Extraction(label, "option")
    elif not present and "Z" in tok_set:
        return Extraction("Z", "option")
    if era == "2026-06":
        found = _ANSWER_IS.search(answer)
        if found is not None and found.group(1).upper() in choices:
            return Extraction(found.group(1).upper(), "regex")
    return NO_MATCH


def infer_text(answer: str, choices: Mapping[str, str], era: str = DEFAULT_ERA) -> Extraction:
    """The option-text rule (VLMEvalKit ``can_infer_text``).

    Exactly one option text (lower-cased) must be a substring of the lower-cased answer.
    Since 2025-08 answers longer than twice the total option-text length never match.
    """
    if era not in _ERA_SET:
        check_era(era)
    low = answer.lower()
    if era != "2024" and len(low) > 2 * sum(len(text) for text in choices.values()):
        return NO_MATCH
    hits = [label for label, text in choices.items() if text.lower() in low]
    if len(hits) == 1:
        return Extraction(hits[0], "text")
    return NO_MATCH


def can_infer(
    answer: object, choices: Mapping[str, str], era: str = DEFAULT_ERA, *, verbose: bool = False
) -> Extraction:
    """VLMEvalKit's ``can_infer``: the option rule, then the text rule.

    Args:
        answer: the prediction; cast to ``str`` (``None`` becomes ``"nan"``, as pandas
            casts a missing cell).
        choices: label -> option text for the question's non-empty options.
        era: extraction era (``2024``, ``2025-08``, ``2026-06``).
        verbose: the ``VERBOSE`` guard, off by default as in VLMEvalKit.

    Returns:
        The extraction (a letter, ``Z`` or nothing).
    """
    text = "nan" if answer is None else str(answer)
    found = infer_option(text, choices, era, verbose=verbose)
    if found.matched:
        return found
    by_text = infer_text(text, choices, era)
    if by_text.matched:
        return by_text
    return found
