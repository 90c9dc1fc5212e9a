"""Where a run's numbers come from: model, weights, benchmark, subset, era, evaluator, dates.

Also the one rule of which runs stand for a release: a run is *whole* when it asked every
question of its benchmark (no filter, no limit). History, the leaderboard and the
dashboards' accuracy series use whole runs; a subset run is shown, but marked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gmai_eval.server.records import RunParams
from gmai_eval.server.store import Database
from gmai_eval.server.store.grades import run_info
from gmai_eval.server.store.report_reads import is_whole
from gmai_eval.server.store.runs import RunRow, get_run

__all__ = ["Provenance", "from_row", "is_whole", "provenance", "version_of"]


@dataclass(frozen=True)
class Provenance:
    """A run's header, as the report prints it."""

    run_id: str
    """Run id."""
    model: str
    """Registered model name."""
    model_version: str
    """Version the model reported (GetModelInfo), else the registered one, else ''."""
    weights_digest: str
    """Weights digest the model reported, else ''."""
    benchmark: str
    """Benchmark name."""
    benchmark_digest: str
    """Benchmark digest at the run's creation."""
    filter: str
    """Subset filter, '' for the whole benchmark."""
    limit: int
    """Sampled question limit, 0 for none."""
    seed: int
    """Sampling seed (meaningful with a limit)."""
    era: str
    """Extraction era."""
    evaluator_version: str
    """gmai-eval version that ran it."""
    state: str
    """Run state."""
    total: int
    """Questions in the run."""
    created_at: str
    """ISO-8601 UTC."""
    started_at: str
    """ISO-8601 UTC of the last (re)start, or ''."""
    finished_at: str
    """ISO-8601 UTC, or ''."""

    @property
    def whole(self) -> bool:
        """True when the run asked every question of its benchmark (no filter, no limit)."""
        return is_whole(self.filter, self.limit)


def version_of(run: RunRow, answered_version: str = "") -> tuple[str, str]:
    """(model version, weights digest) of a run.

    The version is the one GetModelInfo reported at the pre-flight, else the one most of
    the run's answers carried (``answered_version``), else the registered one.
    """
    info = run.model_info
    version = str(info.get("version") or answered_version or run.model_spec.version or "")
    return version, str(info.get("weights_digest") or "")


def from_row(run: RunRow, answered_version: str = "") -> Provenance:
    """A :class:`Provenance` from a decoded ``runs`` row (``answered_version``: see :func:`version_of`)."""
    params: RunParams = run.params
    version, digest = version_of(run, answered_version)
    return Provenance(
        run_id=run.id, model=run.model, model_version=version, weights_digest=digest, benchmark=run.benchmark,
        benchmark_digest=run.benchmark_digest, filter=params.filter, limit=int(params.limit),
        seed=int(params.seed), era=str(params.extraction_era), evaluator_version=run.evaluator_version,
        state=str(run.state), total=run.total, created_at=run.created_at, started_at=run.started_at,
        finished_at=run.finished_at,
    )


def provenance(db: Database, run_id: str) -> Provenance:
    """The provenance of run ``run_id``.

    Raises:
        NotFound: no such run.
    """
    row = get_run(db, run_id)
    info = db.read(lambda s: run_info(s, run_id))
    # A circular run's row counts its asks (one per rotation); the provenance counts questions.
    return replace(from_row(row, info.model_version), total=info.total)
