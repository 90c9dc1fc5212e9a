"""A model's release history: every succeeded run, version by version (read-only).

For each run: its date, the model version and weights digest it reported, the overall
accuracy with its Wilson interval, and, for a whole run, the change against the previous
version's latest whole run on the same benchmark. When both runs asked the same questions
the change comes with its exact McNemar p-value (``compare.compare_runs``); otherwise the
difference is shown unpaired, without a p-value. Subset runs (a filter or a limit) are
listed, marked, and never stand for a release.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

from gmai_eval.server.errors import FailedPrecondition
from gmai_eval.server.reports.provenance import Provenance, from_row
from gmai_eval.server.reports.text import render
from gmai_eval.server.scoring.compare import compare_runs
from gmai_eval.server.scoring.grading import compute_scores
from gmai_eval.server.store import Database
from gmai_eval.server.store import report_reads as reads
from gmai_eval.server.store.benchmarks import get_benchmark
from gmai_eval.server.store.grades import run_info
from gmai_eval.server.store.models import get_model
from gmai_eval.server.store.runs import list_runs

ALL_RUNS = 1_000_000
"""Page size that lists every run of a model."""


@dataclass(frozen=True)
class Change:
    """The change of a whole run against the previous version's latest whole run."""

    previous_run: str
    """The run compared with."""
    previous_version: str
    """Its model version."""
    delta_points: float
    """Accuracy difference, this minus previous, in points (paired questions when ``paired``)."""
    paired: bool
    """Both runs asked the same questions (the delta and p are then paired)."""
    p_value: float | None
    """Exact McNemar p-value when paired, else None."""


@dataclass(frozen=True)
class HistoryEntry:
    """One run in a model's history."""

    run: Provenance
    """The run."""
    n: int
    """Questions scored."""
    correct: int
    """Questions correct."""
    accuracy: float
    """Overall accuracy."""
    ci: tuple[float, float]
    """Wilson 95 % interval."""
    change: Change | None
    """Against the previous version (whole runs only); None for the first version or a subset run."""

    @property
    def date(self) -> str:
        """Finish date (creation when not finished), ``YYYY-MM-DD``."""
        return (self.run.finished_at or self.run.created_at)[:10]


def _change(db: Database, prev: HistoryEntry, cur: HistoryEntry, same_questions: bool) -> Change:
    if same_questions:
        try:
            cmp = compare_runs(db, prev.run.run_id, cur.run.run_id, 0.05, cur.run.era)
        except FailedPrecondition:
            pass
        else:
            o = cmp.overall
            return Change(prev.run.run_id, prev.run.model_version, o.delta_points, True, o.p_value)
    return Change(prev.run.run_id, prev.run.model_version, 100 * (cur.accuracy - prev.accuracy), False, None)


def model_history(db: Database, model: str, benchmark: str | None = None) -> list[HistoryEntry]:
    """Every succeeded run of ``model`` (on ``benchmark``, or on all), oldest first.

    Args:
        db: the database.
        model: model name.
        benchmark: one benchmark name, or None for all of them.
    """
    rows = [r for r in list_runs(db, model=model, benchmark=benchmark or "", limit=ALL_RUNS)
            if str(r.state) == "succeeded"]
    if not rows:  # say why: an unknown benchmark, or a model never registered and never run
        if benchmark:
            get_benchmark(db, benchmark)
        if not list_runs(db, model=model, limit=1):
            get_model(db, model)
    rows.sort(key=lambda r: (r.finished_at or r.created_at, r.id))
    sets = db.read(lambda s: reads.run_question_sets(s, [r.id for r in rows]))
    out: list[HistoryEntry] = []
    # per (benchmark digest): the latest whole entry of each version, in order of appearance
    latest: dict[str, dict[str, HistoryEntry]] = {}
    for row in rows:
        run = from_row(row, db.read(functools.partial(run_info, run_id=row.id)).model_version)
        overall = compute_scores(db, run.run_id).overall
        entry = HistoryEntry(run, overall.n, overall.correct, overall.accuracy, overall.ci, None)
        if run.whole:
            versions = latest.setdefault(run.benchmark_digest, {})
            prev = _previous_version(versions, run.model_version)
            if prev is not None:
                same = sets[prev.run.run_id] == sets[run.run_id]
                entry = HistoryEntry(run, overall.n, overall.correct, overall.accuracy, overall.ci,
                                     _change(db, prev, entry, same))
            versions.pop(run.model_version, None)
            versions[run.model_version] = entry
        out.append(entry)
    return out


def _previous_version(versions: dict[str, HistoryEntry], version: str) -> HistoryEntry | None:
    """The latest whole entry of another version than ``version`` (dicts keep insertion order)."""
    for v in reversed(list(versions)):
        if v != version:
            return versions[v]
    return None


def trend(entries: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """The whole runs of a history: the points of a release-trend chart."""
    return [e for e in entries if e.run.whole]


def _change_text(ch: Change | None) -> str:
    if ch is None:
        return ""
    tail = f"p={ch.p_value:.3g}" if ch.p_value is not None else "unpaired"
    return f"{ch.delta_points:+.2f} vs {ch.previous_version or ch.previous_run} ({tail})"


def render_history(entries: Sequence[HistoryEntry], model: str, fmt: str = "table") -> str:
    """Render a history as a table, JSON, CSV or Markdown (accuracies as fractions in JSON/CSV)."""
    headers = ["date", "version", "weights", "benchmark", "run", "scope", "n", "acc %", "95% CI", "change (pts)"]
    rows = [
        [e.date, e.run.model_version or "-", e.run.weights_digest[:19] or "-", e.run.benchmark, e.run.run_id,
         "whole" if e.run.whole else "subset", str(e.n), f"{100 * e.accuracy:.2f}",
         f"{100 * e.ci[0]:.2f}-{100 * e.ci[1]:.2f}", _change_text(e.change)]
        for e in entries
    ]
    doc = {"model": model, "runs": [
        {"run_id": e.run.run_id, "date": e.run.finished_at or e.run.created_at, "model_version": e.run.model_version,
         "weights_digest": e.run.weights_digest, "benchmark": e.run.benchmark,
         "benchmark_digest": e.run.benchmark_digest, "whole": e.run.whole, "n": e.n, "correct": e.correct,
         "accuracy": e.accuracy, "ci_low": e.ci[0], "ci_high": e.ci[1],
         "change": None if e.change is None else {
             "previous_run": e.change.previous_run, "previous_version": e.change.previous_version,
             "delta_points": e.change.delta_points, "paired": e.change.paired, "p_value": e.change.p_value}}
        for e in entries]}
    csv_headers = ["run_id", "date", "model_version", "weights_digest", "benchmark", "whole", "n", "correct",
                   "accuracy", "ci_low", "ci_high", "previous_run", "delta_points", "p_value"]
    csv_rows = [
        [e.run.run_id, e.run.finished_at or e.run.created_at, e.run.model_version, e.run.weights_digest,
         e.run.benchmark, int(e.run.whole), e.n, e.correct, repr(e.accuracy), repr(e.ci[0]), repr(e.ci[1]),
         e.change.previous_run if e.change else "", repr(e.change.delta_points) if e.change else "",
         repr(e.change.p_value) if e.change and e.change.p_value is not None else ""]
        for e in entries
    ]
    notes = ["change: against the previous version's latest whole run on the same benchmark; p is the exact "
             "McNemar p-value when both runs asked the same questions"]
    if not entries:
        notes = [f"no succeeded run of {model}"]
    return render(fmt, f"history of {model}", headers, rows, doc, csv_headers, csv_rows, notes)
