"""The header of a GMAI-MMBench TSV file: its columns, their defects, and the layout they imply.

A header is read by name (case-insensitive, surrounding spaces and a BOM ignored). What is
wrong with it is said once, in the user's terms:

- a file that is not tab-separated (a CSV, say) is one defect naming the delimiter it seems
  to use, not one "missing column" per official column;
- a missing column whose near-spelling is in the header names it (``'answr'``: did you mean
  ``'answer'``?);
- a column that is not an official one is a defect that skips no row: it is kept in the
  question's ``extra``, listed, and refused by a strict import.

:func:`layout_reason` says in one sentence why a benchmark is VAL or TEST.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass

from gmai_eval.server.errors import Defect

REQUIRED_COLUMNS: tuple[str, ...] = (
    "index",
    "question",
    "A",
    "B",
    "category",
    "clinical VQA task",
    "department",
    "perceptual granularity",
    "modality",
    "image",
)
"""Columns every file must have."""

OPTIONAL_COLUMNS: tuple[str, ...] = ("C", "D", "E", "answer", "original task", "image_path")
"""Official columns that may be absent (``answer`` is absent in the TEST layout)."""

_KNOWN = {c.lower(): c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}

_DELIMITERS: tuple[tuple[str, str], ...] = (
    (",", "comma"),
    (";", "semicolon"),
    ("|", "pipe"),
)
"""Delimiters a header may be written with by mistake, with their names."""

_CLOSE = 0.75
"""Least :class:`difflib.SequenceMatcher` ratio for a header name to count as a misspelling."""


@dataclass(frozen=True)
class Header:
    """What a file's header says."""

    cols: dict[str, int]
    """Official column name -> position."""
    extra: dict[str, int]
    """Other column name (as written) -> position; kept in each question's ``extra``."""
    fatal: tuple[Defect, ...]
    """Defects that skip every row of the file (missing or duplicate column, wrong delimiter)."""
    notes: tuple[Defect, ...]
    """Defects that skip nothing (unknown columns)."""


def _title(raw: str) -> str:
    return raw.lstrip("\ufeff").strip()


def _closest(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate spelled most like ``name`` (case-insensitive), if close enough."""
    by_lower = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=_CLOSE)
    return by_lower[found[0]] if found else None


def _wrong_delimiter(fields: Sequence[str]) -> tuple[str, str] | None:
    """The delimiter (and its name) that splits the header into official names, if tabs do not."""
    if sum(_title(f).lower() in _KNOWN for f in fields) >= len(REQUIRED_COLUMNS) // 2:
        return None
    line = "\t".join(fields)
    best: tuple[int, str, str] | None = None
    for delim, label in _DELIMITERS:
        hits = sum(_title(p).strip('"').lower() in _KNOWN for p in line.split(delim))
        if hits >= 3 and (best is None or hits > best[0]):
            best = (hits, delim, label)
    return None if best is None else (best[1], best[2])


def read_header(fields: Sequence[str], name: str) -> Header:
    """Map the header ``fields`` of file ``name`` to official and extra columns, with defects."""
    wrong = _wrong_delimiter(fields)
    if wrong is not None:
        delim, label = wrong
        message = (
            f"this is not tab-separated: the header looks {label}-separated ({delim!r} between the "
            "column names); save the file with tabs between columns"
        )
        return Header({}, {}, (Defect(name, 0, "", message),), ())
    cols: dict[str, int] = {}
    extra: dict[str, int] = {}
    fatal: list[Defect] = []
    for pos, raw in enumerate(fields):
        title = _title(raw)
        canon = _KNOWN.get(title.lower())
        target, key = (cols, canon) if canon else (extra, title)
        if key in target:
            fatal.append(Defect(name, 0, key, f"duplicate column {key!r} in the header"))
        target[key] = pos
    absent = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c not in cols]
    typo_of = {e: _closest(e, absent) for e in extra}
    for col in REQUIRED_COLUMNS:
        if col in cols:
            continue
        near = [e for e, want in typo_of.items() if want == col]
        hint = f"; the header has {near[0]!r}: did you mean {col!r}?" if near else ""
        fatal.append(Defect(name, 0, col, f"missing column {col!r}{hint} (header has: {', '.join(fields)})"))
    notes: list[Defect] = []
    for e, want in typo_of.items():
        if want in REQUIRED_COLUMNS:
            continue  # said with the missing column
        if want is not None:
            why = f"did you mean {want!r}?"
            if want == "answer":
                why += " Without an 'answer' column the file is read as the TEST layout."
        else:
            why = "not a GMAI-MMBench column."
        notes.append(Defect(name, 0, e, f"unknown column {e!r}: {why} Its values are kept in the question's extra"))
    return Header(cols, extra, tuple(fatal), tuple(notes))


def layout_reason(files_with_answer: Sequence[tuple[str, bool]]) -> str:
    """Why the files ``(name, has an answer column)`` make a VAL or a TEST benchmark."""
    without = [n for n, has in files_with_answer if not has]
    if not without:
        which = "an `answer` column" if len(files_with_answer) == 1 else "every file has an `answer` column"
        return f"{which}: VAL layout, answers read from `answer`"
    if len(without) == len(files_with_answer):
        return "no `answer` column: TEST layout, answers derived from `category`"
    more = f" and {len(without) - 1} more" if len(without) > 1 else ""
    return (
        f"no `answer` column in {without[0]}{more}: TEST layout, answers derived from `category` "
        "in the files without one"
    )
