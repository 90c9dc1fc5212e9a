"""Scrape-time reads for the accuracy collector (read-only; nothing here writes).

The collector in ``server/metrics/collector.py`` calls these through
:meth:`Database.read`. Each function is one small query. Scores per node are the run
summaries grading stored when each run ended (``grading.finish_grading``, from the same
scores as ``gmai-eval scores``); a scrape never computes them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gmai_eval.server.store.report_reads import is_whole


@dataclass(frozen=True)
class FinishedRun:
    """A succeeded run, with what the metrics labels need."""

    run_id: str
    """Run id (never a label; only a cache key)."""
    model: str
    """Registered model name."""
    model_version: str
    """``version`` from the run's GetModelInfo, else the registered version, else ''."""
    weights_digest: str
    """``weights_digest`` from the run's GetModelInfo ('' when absent)."""
    benchmark: str
    """Benchmark name."""
    era: str
    """Extraction era the run was graded with (its parameters' ``extraction_era``)."""
    finished_at: str
    """ISO-8601 UTC completion time."""
    whole: bool = True
    """The run asked every question of its benchmark (no filter, no limit): only such a run
    stands for a release in the accuracy series."""


def _json_obj(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def succeeded_runs(db: sqlite3.Connection) -> list[FinishedRun]:
    """Every succeeded run, newest completion first."""
    rows = db.execute(
        """
        SELECT r.id, r.model, b.name, r.params, r.model_info, r.model_spec, r.finished_at
        FROM runs r JOIN benchmarks b ON b.id = r.benchmark_id
        WHERE r.state = 'succeeded' AND r.finished_at IS NOT NULL
        ORDER BY r.finished_at DESC, r.id DESC
        """
    ).fetchall()
    out: list[FinishedRun] = []
    for run_id, model, benchmark, params, model_info, model_spec, finished_at in rows:
        info = _json_obj(model_info)
        spec = _json_obj(model_spec)
        p = _json_obj(params)
        era = str(p.get("extraction_era") or "2024")
        whole = is_whole(str(p.get("filter") or ""), int(p.get("limit") or 0))
        version = str(info.get("version") or spec.get("version") or "")
        out.append(
            FinishedRun(
                run_id=run_id,
                model=model,
                model_version=version,
                weights_digest=str(info.get("weights_digest") or ""),
                benchmark=benchmark,
                era=era,
                finished_at=finished_at,
                whole=whole,
            )
        )
    return out


def run_state_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Number of runs in each state."""
    return {state: n for state, n in db.execute("SELECT state, COUNT(*) FROM runs GROUP BY state")}


def benchmark_digests(db: sqlite3.Connection) -> list[tuple[str, str]]:
    """(name, digest) of every imported benchmark that is ready."""
    return [
        (name, digest)
        for name, digest in db.execute(
            "SELECT name, digest FROM benchmarks WHERE state = 'ready' ORDER BY name"
        )
    ]


def summaries(db: sqlite3.Connection, run_ids: Sequence[str]) -> dict[str, str]:
    """run id -> stored JSON summary, for those of ``run_ids`` that have one (a key lookup each)."""
    out: dict[str, str] = {}
    for run_id in run_ids:
        row = db.execute("SELECT summary FROM run_summaries WHERE run_id = ?", [run_id]).fetchone()
        if row is not None:
            out[run_id] = str(row[0])
    return out
