"""Prometheus metrics of the model side, all prefixed ``gmai_model_``.

Labels come from closed sets (the gRPC method and status code); nothing per request.
Every constructor takes ``registry=`` so tests use a fresh ``CollectorRegistry``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
"""Request latency buckets (seconds), up to several minutes for large VLMs."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
"""Batch size buckets."""


class ModelMetrics:
    """The model service's metrics; implements the batcher's ``BatchObserver``.

    Args:
        registry: Where to register (a fresh one per server in tests).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "gmai_model_requests",
            "AnswerVQA/GetModelInfo calls by method and gRPC status code.",
            ["method", "code"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "gmai_model_request_duration_seconds",
            "AnswerVQA latency inside the model service, queue and inference included.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queue_duration = Histogram(
            "gmai_model_queue_duration_seconds",
            "Time an AnswerVQA request waited for its batch to start.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inference_duration = Histogram(
            "gmai_model_inference_duration_seconds",
            "Time the model took per batch.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "gmai_model_batch_size",
            "Questions per batch the model answered.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.inflight = Gauge(
            "gmai_model_inflight_requests",
            "AnswerVQA requests being served (queued or in a running batch).",
            registry=registry,
        )
        self.queued = Gauge(
            "gmai_model_queued_requests",
            "AnswerVQA requests waiting for a batch.",
            registry=registry,
        )
        self.ready = Gauge(
            "gmai_model_ready",
            "1 when the model is loaded and serving, 0 while loading or draining.",
            registry=registry,
        )
        self.info = Info("gmai_model", "Identity of the served model.", registry=registry)

    def batch_done(self, size: int, compute_seconds: float) -> None:
        """Record one batch."""
        self.batch_size.observe(size)
        self.inference_duration.observe(compute_seconds)

    def queue_depth(self, depth: int) -> None:
        """Record the number of queued requests."""
        self.queued.set(depth)
