"""How to serve a model: the settings of :func:`~gmai_eval.clients.sdk.serve.serve`.

:class:`ServeOptions` gathers the port, the batcher's sizes, the advertised limits, TLS and
the metrics endpoint; :func:`derived_max_concurrency` is the rule that turns batch size and
workers into the number of requests a model advertises (and so the evaluator sends), with
a floor for models that declare themselves cheap. The measurements behind the defaults are
in docs/sdk.md and docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .binding import DEFAULT_HOST
from .tls import TlsFiles

DEFAULT_MAX_REQUEST_BYTES = 64 * 1024 * 1024
"""The server's receive limit (the contract asks for at least 32 MiB)."""
CHEAP_BATCH_SIZE = 64
"""Default ``max_batch_size`` of a model that declares itself cheap (``Model.cheap``)."""
CHEAP_MIN_CONCURRENCY = 64
"""The least ``max_concurrency`` a cheap model advertises (bench/user_path.py measures it)."""


def derived_max_concurrency(
    max_batch_size: int, concurrency: int, max_queue_size: int, *, cheap: bool
) -> int:
    """The ``max_concurrency`` advertised when ``ServeOptions.max_concurrency`` is None.

    ``max_batch_size * (concurrency + 1)``: a batch running in each worker and one batch
    filling, so the batcher never waits for the evaluator. A cheap model gets at least
    ``CHEAP_MIN_CONCURRENCY``. Never more than the SDK takes at once without refusing
    (``max_queue_size`` waiting plus the batches running).

    Args:
        max_batch_size: Largest batch formed.
        concurrency: Batches running at once.
        max_queue_size: Requests allowed to wait.
        cheap: Whether the model declares itself cheap.

    Returns:
        Requests in flight to advertise.
    """
    wanted = max_batch_size * (concurrency + 1)
    if cheap:
        wanted = max(wanted, CHEAP_MIN_CONCURRENCY)
    return min(wanted, max_queue_size + max_batch_size * concurrency)


@dataclass(frozen=True)
class ServeOptions:
    """How to serve a model."""

    host: str = DEFAULT_HOST
    """Address to bind; a non-loopback one needs ``tls`` or ``allow_insecure``."""
    port: int = 50051
    """Port to bind; 0 picks a free one (read it from ``ModelServer.port``)."""
    max_batch_size: int | None = None
    """Largest batch the dynamic batcher forms (1 = no batching); None = 1, or
    ``CHEAP_BATCH_SIZE`` for a model that declares itself cheap."""
    max_queue_delay_ms: float = 0.0
    """Longest the oldest request waits for a batch to fill."""
    max_queue_size: int = 256
    """Requests allowed to wait; one more is refused with RESOURCE_EXHAUSTED."""
    concurrency: int = 1
    """Worker threads, i.e. batches running at once (1 for a local model)."""
    max_concurrency: int | None = None
    """Requests in flight advertised in GetModelInfo; the evaluator never sends more.
    None derives it (:func:`derived_max_concurrency`): ``max_batch_size * (concurrency +
    1)``, at least ``CHEAP_MIN_CONCURRENCY`` for a cheap model."""
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    """gRPC receive limit, advertised in GetModelInfo."""
    max_image_bytes: int = 0
    """Largest image accepted (0 = only the request limit)."""
    max_connection_age_ms: int | None = None
    """Close connections after this age so clients re-resolve DNS and find new replicas."""
    max_connection_age_grace_ms: int = 30_000
    """Time in-flight calls get after a connection reaches its maximum age."""
    drain_grace_s: float = 30.0
    """Time in-flight calls get to finish on shutdown."""
    tls: TlsFiles | None = None
    """Serve TLS (mutual TLS with a client CA) instead of plaintext."""
    allow_insecure: bool = False
    """Accept plaintext on a non-loopback ``host`` (a warning goes to stderr)."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on this port (0 picks one); None = no endpoint."""
    metrics_host: str | None = None
    """Address of the metrics endpoint; None = the same as ``host``."""

    def grpc_options(self) -> list[tuple[str, Any]]:
        """The gRPC server channel options these settings imply."""
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", self.max_request_bytes),
            ("grpc.max_send_message_length", self.max_request_bytes),
        ]
        if self.max_connection_age_ms:
            options += [
                ("grpc.max_connection_age_ms", self.max_connection_age_ms),
                ("grpc.max_connection_age_grace_ms", self.max_connection_age_grace_ms),
            ]
        return options

    def resolved(self, *, cheap: bool) -> ServeOptions:
        """These options with ``max_batch_size`` and ``max_concurrency`` filled in.

        Args:
            cheap: Whether the model declares itself cheap (``Model.cheap``).
        """
        batch = self.max_batch_size
        if batch is None:
            batch = CHEAP_BATCH_SIZE if cheap else 1
        limit = self.max_concurrency
        if limit is None:
            limit = derived_max_concurrency(
                batch, self.concurrency, self.max_queue_size, cheap=cheap
            )
        return replace(self, max_batch_size=batch, max_concurrency=limit)
