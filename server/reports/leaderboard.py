"""The leaderboard of a benchmark, laid out as the paper's tables (read-only).

Each model with a succeeded whole run on the benchmark (no filter, no limit) is ranked by
the overall accuracy of its latest one, with its Wilson interval, ``n`` and one column per
node of each asked dimension, in the paper's order and abbreviations (Table 10 tasks,
Table 11 departments without N/A, Table 12 granularities). A model whose run asked the
same questions as the leader's is compared with it by the exact McNemar test; when
``p >= alpha`` it cannot be told apart from the leader and is marked so. With the paper's
rows, every published model is interleaved by its published overall accuracy (VAL or TEST
as the benchmark's layout), labelled as published, not measured here.

Accuracy is vanilla (a circular run's rotation 0) unless ``circular`` is asked for: then
only circular runs are ranked, by circular accuracy, compared with the leader on circular
verdicts, and the paper's rows (vanilla numbers) are left out.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field

from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.reports.paper import DIMENSION_TABLES, paper_tables
from gmai_eval.server.reports.provenance import from_row
from gmai_eval.server.reports.text import render
from gmai_eval.server.scoring.compare import compare_runs
from gmai_eval.server.scoring.grading import compute_circular_scores, compute_scores
from gmai_eval.server.store import Database
from gmai_eval.server.store import report_reads as reads
from gmai_eval.server.store.benchmarks import get_benchmark
from gmai_eval.server.store.grades import run_info
from gmai_eval.server.store.runs import list_runs
from gmai_eval.server.taxonomy import DEPARTMENTS, GRANULARITIES, TASKS

BY_CHOICES: tuple[str, ...] = ("task", "department", "granularity")
"""Dimensions with paper columns."""

ALPHA = 0.05
"""Significance level of the comparison with the leader."""

_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "task": TASKS,
    "department": tuple(d for d in DEPARTMENTS if d[0]),
    "granularity": tuple((name, name) for name, _ in GRANULARITIES),
}


@dataclass(frozen=True)
class Column:
    """A per-node column: dimension, node name, header."""

    dimension: str
    """Dimension."""
    node: str
    """Node name as stored (granularity: the TSV string)."""
    header: str
    """Header: the paper's abbreviation (granularity: its short name)."""


@dataclass(frozen=True)
class LeaderRow:
    """One row of the leaderboard."""

    model: str
    """Model name."""
    published: str
    """``""`` for a run measured here, else the paper table it comes from (``Table 10``...)."""
    accuracy: float
    """Overall accuracy, fraction."""
    values: dict[str, float | None] = field(default_factory=dict)
    """Column header -> accuracy fraction (None: no question / not published)."""
    rank: int = 0
    """Rank among the measured rows (1 = leader); 0 for a published row."""
    run_id: str = ""
    """Run behind a measured row."""
    version: str = ""
    """Model version of that run."""
    n: int = 0
    """Questions scored."""
    ci: tuple[float, float] = (0.0, 0.0)
    """Wilson 95 % interval."""
    vs_leader: str = ""
    """``leader``, ``tied (p=...)``, ``below (p=...)``, or ``unpaired`` (questions differ)."""
    p_value: float | None = None
    """McNemar p against the leader, when paired."""


def columns(by: Sequence[str]) -> list[Column]:
    """The per-node columns of ``by``, in the paper's order."""
    out = []
    for dim in by:
        if dim not in _COLUMNS:
            raise InvalidArgument(f"--by {dim!r}: expected one of {', '.join(BY_CHOICES)}")
        out += [Column(dim, name, short if dim != "granularity" else name.split()[0]) for name, short in _COLUMNS[dim]]
    return out


def _latest_whole_runs(db: Database, benchmark: str, circular: bool = False) -> list[str]:
    runs = [r for r in list_runs(db, benchmark=benchmark, limit=1_000_000)
            if str(r.state) == "succeeded" and from_row(r).whole and (r.params.circular or not circular)]
    latest: dict[str, tuple[str, str]] = {}
    for r in runs:
        key = (r.finished_at or r.created_at, r.id)
        if r.model not in latest or key > latest[r.model]:
            latest[r.model] = key
    return [rid for _, rid in latest.values()]


def leaderboard(
    db: Database, benchmark: str, by: Sequence[str] = ("task",), with_paper: bool = False, circular: bool = False
) -> list[LeaderRow]:
    """Rank the models on ``benchmark`` (see the module docstring).

    Raises:
        NotFound: unknown benchmark.
        InvalidArgument: unknown dimension in ``by``.
    """
    bench = get_benchmark(db, benchmark)
    cols = columns(by)
    measured: list[LeaderRow] = []
    for run_id in _latest_whole_runs(db, benchmark, circular):
        scores = compute_circular_scores(db, run_id) if circular else compute_scores(db, run_id)
        info = db.read(functools.partial(run_info, run_id=run_id))
        nodes = {(n.dimension, n.name): n for n in scores.nodes}
        values = {c.header: (nodes[(c.dimension, c.node)].accuracy if (c.dimension, c.node) in nodes else None)
                  for c in cols}
        o = scores.overall
        measured.append(LeaderRow(info.model, "", o.accuracy, values, run_id=run_id, version=info.model_version,
                                  n=o.n, ci=o.ci))
    measured.sort(key=lambda r: (-r.accuracy, r.model))
    ranked = _against_leader(db, measured, circular)
    if not with_paper or circular:
        return ranked
    split = "TEST" if bench.layout.upper() == "TEST" else "VAL"
    published = _published_rows(cols, by, split)
    return sorted([*ranked, *published], key=lambda r: (-r.accuracy, r.published != "", r.model))


def _against_leader(db: Database, rows: list[LeaderRow], circular: bool = False) -> list[LeaderRow]:
    if not rows:
        return []
    sets = db.read(lambda s: reads.run_question_sets(s, [r.run_id for r in rows]))
    leader = rows[0]
    out = [_with(leader, 1, "leader", None)]
    for rank, row in enumerate(rows[1:], start=2):
        if sets[row.run_id] != sets[leader.run_id]:
            out.append(_with(row, rank, "unpaired", None))
            continue
        p = compare_runs(db, leader.run_id, row.run_id, ALPHA, circular=circular).overall.p_value
        out.append(_with(row, rank, f"{'tied' if p >= ALPHA else 'below'} (p={p:.3g})", p))
    return out


def _with(row: LeaderRow, rank: int, vs: str, p: float | None) -> LeaderRow:
    return LeaderRow(row.model, "", row.accuracy, row.values, rank, row.run_id, row.version, row.n, row.ci, vs, p)


def _published_rows(cols: Sequence[Column], by: Sequence[str], split: str) -> list[LeaderRow]:
    tables = paper_tables()
    first = by[0] if by else "task"
    out = []
    for prow in tables[first].rows:
        values: dict[str, float | None] = {}
        for c in cols:
            match = next((r for r in tables[c.dimension].rows if r.model == prow.model), None)
            key = c.node if c.dimension == "granularity" else c.header
            v = match.nodes.get(key) if match else None
            values[c.header] = None if v is None else v / 100
        source = "+".join(DIMENSION_TABLES[d] for d in (by or [first]))
        out.append(LeaderRow(prow.model, f"paper {source}, {split}", prow.overall(split) / 100, values))
    return out


def render_leaderboard(
    rows: Sequence[LeaderRow], benchmark: str, by: Sequence[str], fmt: str = "table", circular: bool = False
) -> str:
    """Render the leaderboard (percentages in table/markdown, fractions in json/csv)."""
    cols = columns(by)
    headers = ["rank", "model", "source", "version", "n", "acc %", "95% CI", "vs leader", *(c.header for c in cols)]

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.2f}"

    rows_txt = [
        [str(r.rank) if r.rank else "", r.model, "measured" if not r.published else f"PUBLISHED ({r.published})",
         r.version or "-", str(r.n) if r.n else "-", pct(r.accuracy),
         f"{100 * r.ci[0]:.2f}-{100 * r.ci[1]:.2f}" if not r.published else "-", r.vs_leader or "-",
         *(pct(r.values.get(c.header)) for c in cols)]
        for r in rows
    ]
    doc = {"benchmark": benchmark, "by": list(by), "alpha": ALPHA,
           "accuracy": "circular" if circular else "vanilla", "rows": [
        {"rank": r.rank or None, "model": r.model, "published": r.published or None, "run_id": r.run_id or None,
         "model_version": r.version, "n": r.n, "accuracy": r.accuracy,
         "ci_low": r.ci[0] if not r.published else None, "ci_high": r.ci[1] if not r.published else None,
         "vs_leader": r.vs_leader or None, "p_value": r.p_value, "columns": r.values} for r in rows]}
    csv_headers = ["rank", "model", "published", "run_id", "model_version", "n", "accuracy", "ci_low", "ci_high",
                   "vs_leader", "p_value", *(c.header for c in cols)]
    csv_rows = [
        [r.rank or "", r.model, r.published, r.run_id, r.version, r.n, repr(r.accuracy),
         repr(r.ci[0]) if not r.published else "", repr(r.ci[1]) if not r.published else "", r.vs_leader,
         "" if r.p_value is None else repr(r.p_value), *("" if r.values.get(c.header) is None
                                                          else repr(r.values[c.header]) for c in cols)]
        for r in rows
    ]
    notes = [f"vs leader: exact McNemar test on the same questions, alpha {ALPHA:g}; tied = cannot be told apart "
             "from the leader; unpaired = the runs asked different questions (no paired test)"]
    if any(r.published for r in rows):
        notes.append("PUBLISHED rows are the GMAI-MMBench paper's numbers (supplement Tables 10-12), not measured "
                     "here; the paper gives no split for its per-node columns (probably TEST)")
    if circular:
        notes.append("circular accuracy: a question counts only if every rotation of its options was answered "
                     "correctly; only circular runs are ranked, and the paper's rows are left out (vanilla numbers)")
    if not any(r.rank for r in rows):
        notes.append(f"no model has a succeeded whole {'circular ' if circular else ''}run (no filter, no limit)"
                     f" on {benchmark}")
    title = f"{'circular ' if circular else ''}leaderboard of {benchmark}"
    return render(fmt, title, headers, rows_txt, doc, csv_headers, csv_rows, notes, left=3)
