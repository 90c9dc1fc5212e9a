"""Rows to text: an aligned table, JSON, CSV or Markdown (pure).

The history and the leaderboard build a header and string rows (percentages with two
decimals, as the paper prints them) plus a JSON document with fractions; this module lays
either out in the asked format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from gmai_eval.server.errors import InvalidArgument

FORMATS: tuple[str, ...] = ("table", "json", "csv", "markdown")
"""Output formats."""


def check_format(fmt: str) -> str:
    """``fmt`` if it is one of :data:`FORMATS`.

    Raises:
        InvalidArgument: another format.
    """
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return fmt


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    """An aligned text table: the first ``left`` columns left-aligned, the others right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
           "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.rjust(w) if i >= left else c.ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    return "\n".join(out) + "\n"


def markdown(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (pipes in cells escaped)."""
    out = ["|" + "|".join(headers) + "|", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["|" + "|".join(c.replace("|", "\\|") for c in r) + "|" for r in rows]
    return "\n".join(out) + "\n"


def csv_text(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """CSV with a header line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    w.writerows(rows)
    return buf.getvalue()


def render(
    fmt: str,
    head: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    doc: object,
    csv_headers: Sequence[str],
    csv_rows: Sequence[Sequence[object]],
    notes: Sequence[str] = (),
    left: int = 1,
) -> str:
    """Lay out one result in ``fmt``.

    Args:
        fmt: one of :data:`FORMATS`.
        head: first line of ``table`` and ``markdown``.
        headers: columns of ``table`` and ``markdown``.
        rows: their cells, already formatted.
        doc: the JSON document.
        csv_headers: columns of ``csv`` (raw values: fractions, full ids).
        csv_rows: their values.
        notes: lines after ``table`` and ``markdown``.
        left: columns of ``table`` aligned left.
    """
    check_format(fmt)
    if fmt == "json":
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        return csv_text(csv_headers, csv_rows)
    body = markdown(headers, rows) if fmt == "markdown" else table(headers, rows, left)
    tail = ("\n" + "\n".join(notes) + "\n") if notes else ""
    return f"{head}\n\n{body}{tail}"
