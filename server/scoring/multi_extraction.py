"""Free-text answers to multi-answer questions, read as sets of option letters (pure).

The paper scores its multi-label questions (§1.3 of the reference) but no released tool
does, so these rules are ours; docs/scoring.md ("Multi-answer questions") states them and
tests/test_multi_extraction.py pins them. They extend VLMEvalKit's 2024 rules to sets and
do not depend on the extraction era. Tried in order:

1. A missing answer is the string ``nan``; text containing VLMEvalKit's API-failure
   marker gives nothing (``api_failure``); a VLMEvalKit refusal string gives ``Z``
   (``refusal``).
2. **Letters** (``option``): punctuation ``. ( ) [ ] , : ; ! * # { } / & + " '`` becomes
   spaces and the text is split on whitespace. Every token that is one of the question's
   option labels (upper case, exact) is chosen, except a token ``A`` followed by a word
   that starts with a lower-case letter other than a connective (``and``, ``or``, ``is``,
   ``are``, ``plus``): that ``A`` is the article ("A mass is seen"). Tokens naming no
   option (``E`` when only A-D exist) are ignored. With no chosen letter, a ``Z`` token
   gives ``Z``.
3. **Texts** (``text``): every option whose text (lower-cased) occurs in the lower-cased
   answer is chosen, except an option whose every occurrence lies inside an occurrence of
   a longer chosen option's text ("effusion" inside "pleural effusion").
4. Otherwise nothing (``none``): the answer is unparsed.

Negation is not understood ("not B" chooses B), as VLMEvalKit does not understand it
for single answers either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from gmai_eval.server.scoring.extraction import API_FAILURE, REFUSALS

SEPARATOR = ","
"""How a set of letters is written in grades, keys and exports: ``A,C``."""

CONNECTIVES: frozenset[str] = frozenset({"and", "or", "is", "are", "plus"})
"""Lower-case words after which a token ``A`` is still a letter, not the article."""

_PUNCTUATION = ".()[],:;!*#{}/&+\"'"
"""Characters replaced by a space before tokenising (VLMEvalKit's set plus ``/ & + " '``)."""

_TRANSLATE = str.maketrans(dict.fromkeys(_PUNCTUATION, " "))


@dataclass(frozen=True)
class LetterSet:
    """What the rules found in a free-text answer to a multi-answer question."""

    letters: tuple[str, ...]
    """The chosen option letters in label order, ``("Z",)`` for a refusal, or ``()``."""
    method: str
    """``option``, ``text``, ``refusal``, ``api_failure`` or ``none``."""

    @property
    def joined(self) -> str:
        """The letters joined by :data:`SEPARATOR` (``""`` when nothing matched)."""
        return SEPARATOR.join(self.letters)


def canonical(letters: Iterable[str]) -> str:
    """A set of letters as stored: unique, sorted, joined by ``,`` (``["C", "A", "C"]`` -> ``A,C``)."""
    return SEPARATOR.join(sorted(set(letters)))


def letter_set(joined: str | None) -> frozenset[str]:
    """The letters of a stored set (``A,C`` -> {A, C}; ``""`` or None -> empty)."""
    if not joined:
        return frozenset()
    return frozenset(part.strip() for part in joined.split(SEPARATOR) if part.strip())


def tokens(answer: str) -> list[str]:
    """Split an answer into tokens: :data:`_PUNCTUATION` to spaces, then whitespace."""
    return answer.translate(_TRANSLATE).split()


def _by_letters(toks: list[str], choices: Mapping[str, str]) -> set[str]:
    chosen: set[str] = set()
    for i, tok in enumerate(toks):
        if tok not in choices:
            continue
        if tok == "A" and i + 1 < len(toks):
            nxt = toks[i + 1]
            if nxt[:1].islower() and nxt not in CONNECTIVES:
                continue  # the article: "A mass is seen"
        chosen.add(tok)
    return chosen


def _by_texts(answer: str, choices: Mapping[str, str]) -> set[str]:
    low = answer.lower()
    spans: dict[str, list[tuple[int, int]]] = {}
    for label, text in choices.items():
        needle = text.lower()
        if not needle:
            continue
        found = [(m.start(), m.start() + len(needle)) for m in re.finditer(re.escape(needle), low)]
        if found:
            spans[label] = found
    chosen: set[str] = set()
    for label, own in spans.items():
        longer = [
            span for other, theirs in spans.items()
            if other != label and len(choices[other]) > len(choices[label]) for span in theirs
        ]
        if any(not any(a <= s and e <= b for a, b in longer) for s, e in own):
            chosen.add(label)
    return chosen


def infer_letters(answer: object, choices: Mapping[str, str]) -> LetterSet:
    """Read a free-text answer to a multi-answer question as a set of option letters.

    Args:
        answer: the prediction; cast to ``str`` (``None`` becomes ``"nan"``).
        choices: label -> option text of the question's non-empty options, in label order.

    Returns:
        The letters (in label order), ``Z`` for a refusal, or nothing.
    """
    text = "nan" if answer is None else str(answer)
    if API_FAILURE in text:
        return LetterSet((), "api_failure")
    if any(refusal in text for refusal in REFUSALS):
        return LetterSet(("Z",), "refusal")
    toks = tokens(text)
    chosen = _by_letters(toks, choices)
    if chosen:
        return LetterSet(tuple(lab for lab in choices if lab in chosen), "option")
    if "Z" in toks:
        return LetterSet(("Z",), "option")
    chosen = _by_texts(text, choices)
    if chosen:
        return LetterSet(tuple(lab for lab in choices if lab in chosen), "text")
    return LetterSet((), "none")
