"""Operational Prometheus metrics of the evaluator (the model-call and run paths).

Names follow docs/metrics.md: one ``gmai_eval_`` prefix, base units, ``_total`` on
counters. Labels come from small closed sets (registered model name, gRPC code, reason,
state, outcome); never run or question ids. Accuracy per taxonomy node is not here: it is
computed from SQLite at scrape time by ``metrics_collector``.

Every object takes ``registry=`` so tests use a fresh ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
"""Seconds; VLM answers can take minutes."""

SIZE_BUCKETS = (1e3, 1e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2e6, 4e6, 8e6, 16e6, 32e6, 64e6)
"""Bytes; around the 4 MiB gRPC default limit."""

RUN_DURATION_BUCKETS = (60, 300, 600, 1800, 3600, 7200, 14400, 28800, 86400)
"""Seconds; runs last minutes to hours."""


class EvaluatorMetrics:
    """The evaluator's operational metrics, registered in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.answer_requests = Counter(
            "gmai_eval_answer_requests",
            "AnswerVQA attempts sent to model services, by final gRPC code.",
            ["model", "code"],
            registry=registry,
        )
        self.answer_duration = Histogram(
            "gmai_eval_answer_request_duration_seconds",
            "Latency of AnswerVQA attempts as seen by the evaluator.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.answer_size = Histogram(
            "gmai_eval_answer_request_size_bytes",
            "Serialized size of AnswerVQA requests.",
            ["model"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "gmai_eval_answer_retries",
            "AnswerVQA attempts that were retried, by reason.",
            ["model", "reason"],
            registry=registry,
        )
        self.inflight = Gauge(
            "gmai_eval_inflight_requests",
            "AnswerVQA calls in flight.",
            ["model"],
            registry=registry,
        )
        self.concurrency_limit = Gauge(
            "gmai_eval_concurrency_limit",
            "Current adaptive concurrency limit towards a model.",
            ["model"],
            registry=registry,
        )
        self.model_up = Gauge(
            "gmai_eval_model_up",
            "1 if the model's last health check or call succeeded, else 0.",
            ["model"],
            registry=registry,
        )
        self.health_checks = Counter(
            "gmai_eval_model_health_checks",
            "Health checks of model services, by result.",
            ["model", "status"],
            registry=registry,
        )
        self.items_scored = Counter(
            "gmai_eval_items_scored",
            "Questions graded, by outcome (correct, incorrect, unparsed, refused, error).",
            ["model", "benchmark", "outcome"],
            registry=registry,
        )
        self.runs = Counter(
            "gmai_eval_runs",
            "Runs that entered a state (started, succeeded, failed, cancelled, interrupted).",
            ["state"],
            registry=registry,
        )
        self.active_runs = Gauge(
            "gmai_eval_active_runs",
            "Runs currently running.",
            registry=registry,
        )
        self.run_progress = Gauge(
            "gmai_eval_run_progress_ratio",
            "Done over total for the active run of a model and benchmark.",
            ["model", "benchmark"],
            registry=registry,
        )
        self.waiting_for_model = Gauge(
            "gmai_eval_run_waiting_for_model",
            "Runs waiting for their model to answer again (an outage is going on), by model.",
            ["model"],
            registry=registry,
        )
        self.run_failures = Counter(
            "gmai_eval_run_failures",
            "Runs that ended failed, by cause (model_outage, errors, internal).",
            ["cause"],
            registry=registry,
        )
        self.run_duration = Histogram(
            "gmai_eval_run_duration_seconds",
            "Wall time of finished runs.",
            ["benchmark"],
            buckets=RUN_DURATION_BUCKETS,
            registry=registry,
        )
