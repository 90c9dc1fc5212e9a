"""The GMAI-MMBench paper's published accuracies, shipped as package data (pure).

``paper_results.json`` holds the paper's supplement Tables 10 (clinical tasks), 11
(departments) and 12 (perceptual granularities) for all 50 models and the random baseline,
copied from the project's reference CSVs (``../shared/reference``, parsed from the project
website's ``index.html``); each table entry names its source. Installed copies have no
``../shared``, so the numbers travel with the package. They are published numbers, never
measured here: every place that shows them says so.

A run can stand next to them only when it covers a whole official split
(:func:`official_split`): no filter, no limit, and a benchmark imported from the official
VAL file (4,550 rows) or the eleven TEST parts (21,281 rows).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from gmai_eval.server.records import Benchmark

OFFICIAL_ROWS: dict[str, int] = {"VAL": 4550, "TEST": 21281}
"""Rows of the official splits (paper §3.2)."""

_OFFICIAL_FILES: dict[str, re.Pattern[str]] = {
    "VAL": re.compile(r"^(GMAI-MMBench_VAL|GMAI_mm_bench_VAL)(_local)?\.tsv$"),
    "TEST": re.compile(r"^GMAI_mm_bench_TEST_part_([1-9]|1[01])(_local)?\.tsv$"),
}

REFERENCE_MODELS: tuple[str, ...] = ("GPT-4o", "MedDr", "DeepSeek-VL-7B", "LLaVA-Med", "Random")
"""The published rows a report marks beside a run's nodes: the best proprietary, medical and
open-source models of the paper, a weak medical one, and the random baseline."""

DIMENSION_TABLES: dict[str, str] = {"task": "Table 10", "department": "Table 11", "granularity": "Table 12"}
"""Which paper table holds each dimension (the paper has no modality table)."""

GRANULARITY_COLUMNS: dict[str, str] = {
    "Contour": "Contour level", "Mask": "Mask level", "Image": "Image level", "Box": "Box level",
}
"""Table 12's columns (Seg C, Seg M, 2D Cls update, 2D Det), as node names."""


@dataclass(frozen=True)
class PaperRow:
    """One model's row of one paper table (accuracies in percent)."""

    table: str
    """``Table 10``, ``Table 11`` or ``Table 12``."""
    dimension: str
    """``task``, ``department`` or ``granularity``."""
    group: str
    """The paper's model group (Baseline, Medical Special Model, Open-Source LVLMs, ...)."""
    model: str
    """Model name as printed."""
    overall_val: float
    """Overall accuracy on VAL, percent."""
    overall_test: float
    """Overall accuracy on TEST, percent (Table 12 prints slightly different ones)."""
    nodes: Mapping[str, float | None]
    """Column abbreviation (task, department) or node name (granularity) -> percent."""

    def overall(self, split: str) -> float:
        """The overall accuracy of ``split`` (``VAL`` or ``TEST``)."""
        return self.overall_test if split == "TEST" else self.overall_val


@dataclass(frozen=True)
class PaperTable:
    """One table of the paper."""

    table: str
    """``Table 10`` ..."""
    dimension: str
    """Dimension of its columns."""
    source: str
    """Where the numbers come from."""
    note: str
    """Caveats (the split of the per-node columns is not stated in the paper)."""
    columns: tuple[str, ...]
    """Column keys, in the paper's order."""
    rows: tuple[PaperRow, ...]
    """Every model, in the paper's order."""


@functools.cache
def paper_tables() -> dict[str, PaperTable]:
    """The shipped tables by dimension (read once)."""
    raw = json.loads(resources.files(__package__).joinpath("paper_results.json").read_text("utf-8"))
    out: dict[str, PaperTable] = {}
    for t in raw["tables"]:
        dim = str(t["dimension"])
        cols = tuple(str(c) for c in t["columns"])
        if dim == "granularity":
            cols = tuple(GRANULARITY_COLUMNS[c] for c in cols)
        rows = tuple(
            PaperRow(
                table=str(t["table"]), dimension=dim, group=str(r["group"]), model=str(r["model"]),
                overall_val=float(r["overall_val"]), overall_test=float(r["overall_test"]),
                nodes={(GRANULARITY_COLUMNS[k] if dim == "granularity" else k): v for k, v in r["nodes"].items()},
            )
            for r in t["rows"]
        )
        out[dim] = PaperTable(str(t["table"]), dim, str(t["source"]), str(t["note"]), cols, rows)
    return out


def published_rows(dimension: str, models: Sequence[str] | None = None) -> list[PaperRow]:
    """The paper's rows for ``dimension`` (all models, or ``models`` in that order)."""
    table = paper_tables().get(dimension)
    if table is None:
        return []
    if models is None:
        return list(table.rows)
    by_name = {r.model: r for r in table.rows}
    return [by_name[m] for m in models if m in by_name]


def official_split(benchmark: Benchmark) -> str | None:
    """``VAL`` or ``TEST`` when ``benchmark`` is a whole official split as imported, else None.

    The layout, the row count and the source file names must all be the official ones
    (VAL: ``GMAI-MMBench_VAL.tsv`` or its older name; TEST: the eleven parts).
    """
    split = benchmark.layout.upper()
    if split not in OFFICIAL_ROWS or benchmark.question_count != OFFICIAL_ROWS[split]:
        return None
    names = [f.name.rsplit("/", 1)[-1] for f in benchmark.source_files]
    if not names or not all(_OFFICIAL_FILES[split].match(n) for n in names):
        return None
    if split == "TEST" and len(names) != 11:
        return None
    return split


def node_key(dimension: str, name: str, abbreviation: str) -> str:
    """The key of a node in a paper table's ``nodes``: the abbreviation, or the granularity name."""
    return name if dimension == "granularity" else abbreviation
