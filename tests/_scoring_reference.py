"""An independent, literal transcription of VLMEvalKit's GMAI-MMBench scoring steps.

Written straight from the reference description (docs: /work/shared/reference
gmai-mmbench.md §5.1, §5.2, §5.4), step by step, with plain loops and no pandas, so that
the production modules can be checked against it. It deliberately shares no code with
``gmai_eval.server``.
"""

from __future__ import annotations

import math
import re


def _option_rule(answer: str, choices: dict[str, str], era: str) -> str:
    # step 1
    if "Failed to obtain answer via API" in answer:
        return ""
    # step 2
    for refusal in [
        "Sorry, I can't help with images of people yet.",
        "I can't process this file.",
        "I'm sorry, but without the image provided",
        "Cannot determine the answer",
    ]:
        if refusal in answer:
            return "Z"
    # step 3
    cleaned = answer
    for ch in [".", "(", ")", "[", "]", ",", ":", ";", "!", "*", "#", "{", "}"]:
        cleaned = cleaned.replace(ch, " ")
    toks = cleaned.split()
    # step 4
    count = 0
    for letter in choices:
        if letter in toks:
            count += 1
    # step 5
    if count == 1:
        for letter in choices:
            if letter in toks:
                if era == "2024":
                    return letter
                first = toks.index(letter)
                if first > len(toks) - 5:
                    return letter
    # step 6
    elif count == 0 and "Z" in toks:
        return "Z"
    # step 7
    if era == "2026-06":
        m = re.search(r"(correct\s+)?answer\s+is\s+\**([ABCD])\**", answer, flags=re.I)
        if m and m.group(2).upper() in choices:
            return m.group(2).upper()
    # step 8
    return ""


def _text_rule(answer: str, choices: dict[str, str], era: str) -> str:
    low = answer.lower()
    if era != "2024":
        total = 0
        for text in choices.values():
            total += len(text)
        if len(low) > 2 * total:
            return ""
    found = []
    for letter, text in choices.items():
        if text.lower() in low:
            found.append(letter)
    return found[0] if len(found) == 1 else ""


def reference_can_infer(prediction: object, choices: dict[str, str], era: str) -> str:
    """Letter, ``Z`` or ``""``."""
    answer = "nan" if prediction is None else str(prediction)
    got = _option_rule(answer, choices, era)
    if got:
        return got
    return _text_rule(answer, choices, era)


def reference_hits(rows: list[dict[str, object]], era: str) -> dict[int, int]:
    """index -> hit for prediction-file rows (keys: index, A..E, answer, prediction)."""
    out = {}
    for row in sorted(rows, key=lambda r: int(str(r["index"]))):
        choices = {}
        for letter in "ABCDE":
            value = row.get(letter)
            if value is not None and not (isinstance(value, float) and math.isnan(value)) and value != "":
                choices[letter] = str(value)
        letter = reference_can_infer(row.get("prediction"), choices, era)
        if not letter:
            letter = "Z"  # exact matching: no judge
        out[int(str(row["index"]))] = 1 if letter == row["answer"] else 0
    return out


def reference_group_acc(rows: list[dict[str, object]], hits: dict[int, int], column: str) -> dict[str, float]:
    """VLMEvalKit's group accuracy: Overall plus one value per group, NaN for the None group."""
    out: dict[str, float] = {"Overall": sum(hits.values()) / len(hits)}
    groups: dict[str, list[int]] = {}
    for row in rows:
        value = row.get(column)
        name = "None" if value in (None, "") else str(value)
        groups.setdefault(name, []).append(hits[int(str(row["index"]))])
    for name in sorted(groups):
        if name == "None":
            out[name] = math.nan
        else:
            out[name] = sum(groups[name]) / len(groups[name])
    return out
