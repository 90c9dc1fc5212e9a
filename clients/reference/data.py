"""Reading GMAI-MMBench-layout TSV rows for training and offline evaluation.

A small, standalone reader (the model side never imports the evaluator): the csv module
with tab delimiters, base64-decoded images, options from the ``A``..``E`` columns. Rows
without an ``answer`` (TEST layout) are rejected for training with a clear error.
"""

from __future__ import annotations

import base64
import binascii
import csv
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OPTION_COLUMNS = ("A", "B", "C", "D", "E")
"""The option columns, in label order."""


class TsvError(ValueError):
    """A TSV row cannot be used; the message names file, row and column."""


@dataclass(frozen=True)
class Row:
    """One benchmark row as the reference model needs it."""

    index: str
    """The ``index`` column."""
    question: str
    """The question text."""
    options: tuple[tuple[str, str], ...]
    """``(label, text)`` for each non-empty option column, in order."""
    answer: str
    """The correct label (empty in the TEST layout); on a multi-answer row the correct
    labels joined by ``,`` (``A,C``)."""
    image: bytes
    """The decoded image bytes."""

    @property
    def labels(self) -> tuple[str, ...]:
        """The option labels."""
        return tuple(label for label, _ in self.options)

    @property
    def answers(self) -> tuple[str, ...]:
        """The correct labels: one, or several on a multi-answer row."""
        return tuple(part.strip() for part in self.answer.split(",") if part.strip())

    @property
    def option_texts(self) -> tuple[str, ...]:
        """The option texts."""
        return tuple(text for _, text in self.options)


def read_rows(
    path: Path | str, *, require_answer: bool = True, limit: int | None = None
) -> Iterator[Row]:
    """Stream rows from a GMAI-MMBench-layout TSV.

    Args:
        path: The TSV file.
        require_answer: Fail on rows without a valid ``answer`` (training needs it).
        limit: Stop after this many rows.

    Yields:
        Rows in file order.

    Raises:
        TsvError: a missing column, a row without options or image, an undecodable image,
            an answer that is not one of the row's labels (or, multi-answer, labels joined
            by ``,``); names file, row and column.
    """
    csv.field_size_limit(sys.maxsize)
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t")
        columns = set(reader.fieldnames or ())
        needed = {"index", "question", "image", "A", "B"} | (
            {"answer"} if require_answer else set()
        )
        missing = sorted(needed - columns)
        if missing:
            raise TsvError(f"{path}: missing column(s) {missing}")
        for n, rec in enumerate(reader, start=1):
            if limit is not None and n > limit:
                return
            where = f"{path}, row {n}"
            options = tuple(
                (c, (rec.get(c) or "").strip())
                for c in OPTION_COLUMNS
                if (rec.get(c) or "").strip()
            )
            if len(options) < 2:
                raise TsvError(f"{where}: fewer than two options in columns A-E")
            try:
                image = base64.b64decode(rec["image"] or "", validate=True)
            except (binascii.Error, ValueError) as exc:
                raise TsvError(f"{where}, column 'image': not base64 ({exc})") from None
            if not image:
                raise TsvError(f"{where}, column 'image': empty")
            answer = (rec.get("answer") or "").strip()
            keys = [part.strip() for part in answer.split(",")]
            if require_answer and not (keys and set(keys) <= {label for label, _ in options}):
                raise TsvError(
                    f"{where}, column 'answer': {answer!r} is not one of the row's labels"
                )
            yield Row(
                index=rec["index"],
                question=rec["question"],
                options=options,
                answer=answer,
                image=image,
            )
