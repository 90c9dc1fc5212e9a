"""Accuracy metrics computed from SQLite at scrape time (a prometheus_client Collector).

For every (model, benchmark) the collector exports the latest succeeded whole run (no
filter, no limit) of the two most recent model versions: ``release="latest"`` and
``release="previous"``. A subset run never stands for a release, so a 20-question
``--limit`` run leaves both series as they were. Older
versions simply stop being exported, so series do not pile up; the history stays in
SQLite and in Prometheus' own storage. Per run it exports accuracy with its 95 % Wilson
interval and ``n`` for every top-level taxonomy node (``dimension`` = overall, task,
department, granularity or modality), refusal / unparsed / error ratios, and the expected
calibration error when the model returned option scores.

A scrape never computes a run's scores: grading stores each run's summary when the run
ends (``grading.finish_grading``, from the same scores and calibration as
``gmai-eval scores`` and ``gmai-eval calibration``, so Grafana and the reports agree), and
the collector reads it back with a key lookup per exported run. A scrape costs four small
queries whatever the run sizes. Reads go through one dedicated thread so the HTTP server's
thread-per-request does not open a SQLite connection per scrape. See docs/metrics.md for
names, labels and the cardinality bound.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from gmai_eval import __version__
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import RUN_STATES
from gmai_eval.server.scoring.stats import wilson_interval
from gmai_eval.server.scoring.summary import (
    EXPORTED_DIMENSIONS,
    NodeCount,
    RunSummary,
    from_json,
    top_level_nodes,
)
from gmai_eval.server.store import Database
from gmai_eval.server.store import metrics_reads as reads
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

T = TypeVar("T")

log = logging.getLogger(__name__)

RELEASES_KEPT = 2
"""Model versions exported per (model, benchmark): the latest and the previous release."""

DIMENSIONS = EXPORTED_DIMENSIONS
"""Values of the ``dimension`` label."""

_RUN_LABELS = ["model", "model_version", "benchmark", "release"]
_NODE_LABELS = [*_RUN_LABELS, "dimension", "node"]

__all__ = [
    "DIMENSIONS", "RELEASES_KEPT", "AccuracyCollector", "NodeCount", "build_registry",
    "kept_runs", "top_level_nodes",
]


def _timestamp(iso: str) -> float:
    parsed = dt.datetime.fromisoformat(iso)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def kept_runs(runs: Iterable[reads.FinishedRun], releases: int = RELEASES_KEPT) -> list[tuple[reads.FinishedRun, str]]:
    """Pick the runs to export, newest first: per (model, benchmark) the latest whole run of
    each of the ``releases`` most recent model versions, tagged ``latest`` or ``previous``.
    Subset runs (a filter or a limit) are skipped.

    Args:
        runs: succeeded runs, newest completion first.
        releases: how many versions to keep per (model, benchmark).
    """
    seen: dict[tuple[str, str], list[str]] = defaultdict(list)
    out: list[tuple[reads.FinishedRun, str]] = []
    for run in runs:
        if not run.whole:
            continue
        versions = seen[(run.model, run.benchmark)]
        if run.model_version in versions or len(versions) >= releases:
            continue
        versions.append(run.model_version)
        out.append((run, "latest" if len(versions) == 1 else "previous"))
    return out


class AccuracyCollector(Collector):
    """Exports accuracy and run metadata read from the database at each scrape.

    Args:
        db: the evaluator's database.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gmai-scrape")

    def _read(self, fn: Callable[[Any], T]) -> T:
        return self._executor.submit(self._db.read, fn).result()

    def _summaries(self, runs: list[reads.FinishedRun]) -> dict[str, RunSummary]:
        """The stored summaries of ``runs``; a run without a usable one is skipped, logged."""
        ids = [run.run_id for run in runs]
        stored = self._read(lambda s: reads.summaries(s, ids))
        out: dict[str, RunSummary] = {}
        for run in runs:
            text = stored.get(run.run_id)
            if text is None:  # a run whose final grading has not run (yet)
                log.warning("metrics: skipping run %s of %s: no summary stored yet", run.run_id, run.model)
                continue
            try:
                out[run.run_id] = from_json(text)
            except ValueError as exc:  # one bad row must not take the whole scrape down
                log.warning("metrics: skipping run %s of %s: %s", run.run_id, run.model, exc)
        return out

    def close(self) -> None:
        """Stop the read thread."""
        self._executor.shutdown(wait=True)

    def describe(self) -> Iterator[Metric]:
        """The metric families, without samples (so registering does not query the database)."""
        yield from self._families().values()

    def _families(self) -> dict[str, Metric]:
        fams: list[Metric] = [
            GaugeMetricFamily("gmai_eval_accuracy_ratio", "Accuracy of the latest succeeded run per top-level taxonomy node.", labels=_NODE_LABELS),
            GaugeMetricFamily("gmai_eval_accuracy_ci_lower_ratio", "Lower bound of the 95% Wilson interval of gmai_eval_accuracy_ratio.", labels=_NODE_LABELS),
            GaugeMetricFamily("gmai_eval_accuracy_ci_upper_ratio", "Upper bound of the 95% Wilson interval of gmai_eval_accuracy_ratio.", labels=_NODE_LABELS),
            GaugeMetricFamily("gmai_eval_node_questions", "Questions behind gmai_eval_accuracy_ratio.", labels=_NODE_LABELS),
            GaugeMetricFamily("gmai_eval_circular_accuracy_ratio", "Circular accuracy (every rotation right) of the latest succeeded run, circular runs only.", labels=_NODE_LABELS),
            GaugeMetricFamily("gmai_eval_refusal_ratio", "Share of the run's questions the model refused.", labels=_RUN_LABELS),
            GaugeMetricFamily("gmai_eval_unparsed_ratio", "Share of the run's answers no option could be extracted from.", labels=_RUN_LABELS),
            GaugeMetricFamily("gmai_eval_error_answer_ratio", "Share of the run's questions whose final attempt failed.", labels=_RUN_LABELS),
            GaugeMetricFamily("gmai_eval_calibration_error_ratio", "Expected calibration error (10 bins) of returned option scores.", labels=_RUN_LABELS),
            GaugeMetricFamily("gmai_eval_last_run_completion_timestamp_seconds", "Completion time of the latest succeeded run.", labels=["model", "benchmark"]),
            GaugeMetricFamily("gmai_eval_runs_by_state", "Runs in the database by state.", labels=["state"]),
            InfoMetricFamily("gmai_eval_build", "Evaluator build.", labels=["version"]),
            InfoMetricFamily("gmai_eval_model", "Models of the exported runs.", labels=["model", "model_version", "weights_digest"]),
            InfoMetricFamily("gmai_eval_benchmark", "Imported benchmarks.", labels=["benchmark", "digest"]),
        ]
        return {f.name + ('_info' if f.type == 'info' else ''): f for f in fams}

    def collect(self) -> Iterator[Metric]:
        """Read the database and yield every family with its current samples."""
        with self._lock:
            fams = self._families()
            runs = self._read(reads.succeeded_runs)
            kept = kept_runs(runs)
            summaries = self._summaries([run for run, _ in kept])
            last_done: dict[tuple[str, str], float] = {}
            models_seen: set[tuple[str, str, str]] = set()
            for run in runs:
                last_done.setdefault((run.model, run.benchmark), _timestamp(run.finished_at))
            for run, release in kept:
                scores = summaries.get(run.run_id)
                if scores is None:
                    continue
                base = [run.model, run.model_version, run.benchmark, release]
                for node in scores.nodes:
                    labels = [*base, node.dimension, node.node]
                    lo, hi = wilson_interval(node.correct, node.n)
                    acc = node.correct / node.n if node.n else 0.0
                    _gauge(fams["gmai_eval_accuracy_ratio"]).add_metric(labels, acc)
                    _gauge(fams["gmai_eval_accuracy_ci_lower_ratio"]).add_metric(labels, lo)
                    _gauge(fams["gmai_eval_accuracy_ci_upper_ratio"]).add_metric(labels, hi)
                    _gauge(fams["gmai_eval_node_questions"]).add_metric(labels, node.n)
                for node in scores.circular_nodes:
                    acc = node.correct / node.n if node.n else 0.0
                    _gauge(fams["gmai_eval_circular_accuracy_ratio"]).add_metric([*base, node.dimension, node.node], acc)
                if scores.n:
                    _gauge(fams["gmai_eval_refusal_ratio"]).add_metric(base, scores.refused / scores.n)
                    _gauge(fams["gmai_eval_unparsed_ratio"]).add_metric(base, scores.unparsed / scores.n)
                    _gauge(fams["gmai_eval_error_answer_ratio"]).add_metric(base, scores.error / scores.n)
                if scores.ece is not None:
                    _gauge(fams["gmai_eval_calibration_error_ratio"]).add_metric(base, scores.ece)
                model_key = (run.model, run.model_version, run.weights_digest)
                if model_key not in models_seen:
                    models_seen.add(model_key)
                    _info(fams["gmai_eval_model_info"]).add_metric([], dict(zip(["model", "model_version", "weights_digest"], model_key, strict=True)))
            for (model, benchmark), ts in sorted(last_done.items()):
                _gauge(fams["gmai_eval_last_run_completion_timestamp_seconds"]).add_metric([model, benchmark], ts)
            states = self._read(reads.run_state_counts)
            for state in sorted(set(RUN_STATES) | set(states)):
                _gauge(fams["gmai_eval_runs_by_state"]).add_metric([state], states.get(state, 0))
            _info(fams["gmai_eval_build_info"]).add_metric([], {"version": __version__})
            for name, digest in self._read(reads.benchmark_digests):
                _info(fams["gmai_eval_benchmark_info"]).add_metric([], {"benchmark": name, "digest": digest})
        yield from fams.values()


def _gauge(metric: Metric) -> GaugeMetricFamily:
    assert isinstance(metric, GaugeMetricFamily)
    return metric


def _info(metric: Metric) -> InfoMetricFamily:
    assert isinstance(metric, InfoMetricFamily)
    return metric


def build_registry(db: Database) -> tuple[CollectorRegistry, EvaluatorMetrics]:
    """A fresh registry holding the operational metrics and the accuracy collector.

    Args:
        db: the evaluator's database, read at every scrape.

    Returns:
        The registry to serve (``prometheus_client.start_http_server(port, registry=...)``)
        and the operational metrics to record into.
    """
    registry = CollectorRegistry()
    metrics = EvaluatorMetrics(registry)
    registry.register(AccuracyCollector(db))
    return registry, metrics
