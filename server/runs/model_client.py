"""The evaluator's client of a model service (gmai_eval.model.v1.ModelService).

One :class:`GrpcModelClient` per run talks to every replica of a registered model:

* ``HOST:PORT`` replicas get one ``grpc.aio`` channel each and are balanced round-robin
  here, so every call knows its endpoint (recorded with each attempt) and a replica that
  just answered UNAVAILABLE is skipped for a short while when others are available;
* a ``dns:///`` target is passed to gRPC as is with the ``round_robin`` policy, which
  spreads calls over every address the name resolves to (Kubernetes headless services).

Channels set their limits on purpose: requests up to 64 MiB (images), responses up to
:data:`MAX_RESPONSE_BYTES` (an answer is a few labels and some text: a model that sends
more is refused by gRPC before the message is read whole, so memory stays bounded, and
the attempt is recorded as ``RESPONSE_TOO_LARGE`` with the size), keepalive pings every
60 s while calls are active (hospital firewalls drop idle flows), and no transparent
retries (``grpc.enable_retries=0``): every attempt is the scheduler's, so it is counted
and recorded. ``grpc.aio.AioRpcError`` is translated into the error tree in exactly one
place, :func:`map_rpc_error`.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
import grpc.aio
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from gmai_eval.server.errors import (
    InvalidArgument,
    ModelCallError,
    ModelInputRejected,
    ModelOverloaded,
    ModelProtocolError,
    ModelTimeout,
    ModelUnavailable,
)
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import ModelSpec, TlsSettings
from gmai_eval.server.tls import channel_credentials
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVICE_NAME = "gmai_eval.model.v1.ModelService"
"""Health-check key of a model service."""

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Send limit of the evaluator's channels to models (requests carry images)."""

MAX_RESPONSE_BYTES = 1024 * 1024
"""Receive limit of the evaluator's channels to models: the largest response accepted."""

MAX_RETRY_DELAY_S = 60.0
"""The longest wait a model's RetryInfo can ask for (model.proto says so)."""

_TOO_LARGE = re.compile(r"larger than max \((\d+) vs\. (\d+)\)")
"""gRPC's own RESOURCE_EXHAUSTED details for a received message over the limit."""

KEEPALIVE_MS = 60_000
"""Client keepalive ping interval while calls are active."""

RECONNECT_MIN_MS = 100
"""First delay before reconnecting to a replica that went away."""

RECONNECT_MAX_MS = 2_000
"""Longest delay between reconnection attempts."""

SKIP_UNAVAILABLE_S = 1.0
"""How long a replica that answered UNAVAILABLE is skipped when others are available."""

_CODE_ERRORS: dict[grpc.StatusCode, type[ModelCallError]] = {
    grpc.StatusCode.UNAVAILABLE: ModelUnavailable,
    # The evaluator never cancels a call it still waits for, so a CANCELLED status comes
    # from the server side (a replica stopping with calls in flight): transient.
    grpc.StatusCode.CANCELLED: ModelUnavailable,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ModelOverloaded,
    grpc.StatusCode.DEADLINE_EXCEEDED: ModelTimeout,
    grpc.StatusCode.INVALID_ARGUMENT: ModelInputRejected,
}


@dataclass(frozen=True)
class EndpointHealth:
    """What one endpoint's health check found."""

    endpoint: str
    """The target checked."""
    serving: bool
    """True when it reported SERVING."""
    status: str
    """``SERVING``, ``NOT_SERVING``, ``connection refused``, ``name not resolved``, or the
    gRPC code and details of another failure."""


def connection_problem(err: grpc.aio.AioRpcError) -> str:
    """A failed call's cause in words: ``connection refused`` and ``name not resolved`` by
    name (gRPC reports both as UNAVAILABLE), else the code and its details."""
    details = err.details() or ""
    lowered = details.lower()
    if "connection refused" in lowered:
        return "connection refused"
    if "dns resolution failed" in lowered or "name or service not known" in lowered:
        return "name not resolved"
    return f"{err.code().name}: {details}" if details else err.code().name


class ModelClient(Protocol):
    """What the scheduler and the run manager need from a model service."""

    async def answer(
        self, req: model_pb2.AnswerVQARequest, *, deadline_s: float
    ) -> model_pb2.AnswerVQAResponse:
        """Ask one question; raise a :class:`ModelCallError` subclass on failure."""
        ...

    async def answer_from(
        self, req: model_pb2.AnswerVQARequest, *, deadline_s: float, payload: bytes | None = None
    ) -> tuple[model_pb2.AnswerVQAResponse, str]:
        """Like :meth:`answer`, also returning the endpoint that answered (recorded).

        ``payload``, when given, is ``req`` serialized: it is sent as it is.
        """
        ...

    async def info(self, *, deadline_s: float = 10) -> model_pb2.GetModelInfoResponse:
        """Return the model's GetModelInfo answer."""
        ...

    async def health(self) -> bool:
        """True if at least one replica reports SERVING."""
        ...

    async def check_health(self) -> list[EndpointHealth]:
        """Every replica's health check, in endpoint order."""
        ...

    async def close(self) -> None:
        """Close every channel."""
        ...


def map_rpc_error(err: grpc.aio.AioRpcError, endpoint: str) -> ModelCallError:
    """Translate a failed gRPC call into the evaluator's error tree.

    Args:
        err: the error raised by a ``grpc.aio`` call.
        endpoint: the target that was called.

    Returns:
        ModelUnavailable (UNAVAILABLE, and CANCELLED, which only a stopping server sends),
        ModelOverloaded, ModelTimeout or ModelInputRejected for the codes the protocol
        names, a plain ModelCallError otherwise; ``code`` is the status name. A response
        over :data:`MAX_RESPONSE_BYTES` (gRPC's own RESOURCE_EXHAUSTED) is a
        ModelProtocolError ``RESPONSE_TOO_LARGE`` naming its size.
    """
    code = err.code()
    details = err.details() or ""
    too_large = _TOO_LARGE.search(details) if code == grpc.StatusCode.RESOURCE_EXHAUSTED else None
    if too_large is not None:
        # Raised by this evaluator's channel, not by the model: not an overload, not retried.
        size, limit = too_large.groups()
        return ModelProtocolError(
            f"response from {endpoint} is {size} bytes, over the evaluator's {limit}-byte"
            " limit; not stored",
            code="RESPONSE_TOO_LARGE",
            endpoint=endpoint,
        )
    cls = _CODE_ERRORS.get(code, ModelCallError)
    message = f"{code.name} from {endpoint}" + (f": {details}" if details else "")
    return cls(message, code=code.name, endpoint=endpoint, retry_after_s=retry_delay_s(err))


def retry_delay_s(err: grpc.aio.AioRpcError) -> float:
    """The ``google.rpc.RetryInfo`` delay a model attached to its status, capped at
    :data:`MAX_RETRY_DELAY_S`; 0 when there is none (or the trailer does not parse)."""
    trailer: Any = err.trailing_metadata() or ()  # grpc.aio.Metadata: (key, value) pairs
    for key, value in trailer:
        if key != "grpc-status-details-bin" or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except DecodeError:
            return 0.0
        for detail in status.details:
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                delay = float(info.retry_delay.seconds) + float(info.retry_delay.nanos) / 1e9
                return min(max(delay, 0.0), MAX_RETRY_DELAY_S)
    return 0.0


def channel_options(*, tls: TlsSettings, balanced: bool) -> list[tuple[str, object]]:
    """Channel arguments of every evaluator-to-model channel.

    Args:
        tls: the model's TLS settings (for the server-name override).
        balanced: add the round_robin service config (for ``dns:///`` targets).
    """
    opts: list[tuple[str, object]] = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_RESPONSE_BYTES),
        ("grpc.keepalive_time_ms", KEEPALIVE_MS),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.enable_retries", 0),
        # Notice a restarted model within seconds (the gRPC default backs off up to 120 s).
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_MIN_MS),
        ("grpc.min_reconnect_backoff_ms", RECONNECT_MIN_MS),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
    ]
    if balanced:
        config: dict[str, object] = {"loadBalancingConfig": [{"round_robin": {}}]}
        opts.append(("grpc.service_config", json.dumps(config)))
    if tls.enabled and tls.server_name:
        opts.append(("grpc.ssl_target_name_override", tls.server_name))
    return opts


class _Replica:
    """One channel with its stubs."""

    def __init__(self, target: str, spec: ModelSpec) -> None:
        self.target = target
        opts = channel_options(tls=spec.tls, balanced=target.startswith("dns:"))
        if spec.tls.enabled:
            creds = channel_credentials(spec.tls.ca_file, spec.tls.cert_file, spec.tls.key_file)
            self.channel = grpc.aio.secure_channel(target, creds, options=opts)
        else:
            self.channel = grpc.aio.insecure_channel(target, options=opts)
        self.model = model_pb2_grpc.ModelServiceStub(self.channel)
        # AnswerVQA with the request already serialized by the caller: the scheduler needs
        # its size anyway, so the message is serialized once, not measured and serialized.
        self.answer_bytes = self.channel.unary_unary(
            f"/{SERVICE_NAME}/AnswerVQA",
            request_serializer=None,
            response_deserializer=model_pb2.AnswerVQAResponse.FromString,
        )
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.down_until = 0.0


class GrpcModelClient:
    """A :class:`ModelClient` over ``grpc.aio`` channels to every replica of a model.

    Create it inside a running event loop; call :meth:`close` when done.

    Args:
        spec: the registered model (endpoints and TLS).
        metrics: where to count requests, latency, sizes, in-flight calls and model_up.
    """

    def __init__(self, spec: ModelSpec, metrics: EvaluatorMetrics | None = None) -> None:
        if not spec.endpoints:
            raise InvalidArgument(f"model {spec.name!r} has no endpoint")
        self.spec = spec
        self._metrics = metrics
        self._replicas = [_Replica(t, spec) for t in spec.endpoints]
        self._next = 0
        if metrics is not None:
            name = spec.name
            self._m_inflight = metrics.inflight.labels(name)
            self._m_latency = metrics.answer_duration.labels(name)
            self._m_size = metrics.answer_size.labels(name)
            self._m_up = metrics.model_up.labels(name)
            self._m_codes: dict[str, object] = {}

    def _pick(self) -> _Replica:
        replicas = self._replicas
        n = len(replicas)
        if n == 1:
            return replicas[0]
        now = time.monotonic()
        for _ in range(n):
            rep = replicas[self._next % n]
            self._next += 1
            if rep.down_until <= now:
                return rep
        rep = replicas[self._next % n]
        self._next += 1
        return rep

    def _count(self, code: str) -> None:
        if self._metrics is None:
            return
        counter = self._m_codes.get(code)
        if counter is None:
            counter = self._m_codes[code] = self._metrics.answer_requests.labels(
                self.spec.name, code
            )
        counter.inc()  # type: ignore[attr-defined]

    async def answer(
        self, req: model_pb2.AnswerVQARequest, *, deadline_s: float
    ) -> model_pb2.AnswerVQAResponse:
        """Send one AnswerVQA call to the next replica.

        Raises:
            ModelCallError: the call failed (the subclass says how); ``endpoint`` names the
                replica.
        """
        resp, _ = await self.answer_from(req, deadline_s=deadline_s)
        return resp

    async def answer_from(
        self, req: model_pb2.AnswerVQARequest, *, deadline_s: float, payload: bytes | None = None
    ) -> tuple[model_pb2.AnswerVQAResponse, str]:
        """Like :meth:`answer`, also returning the endpoint that answered.

        ``payload``, when given, must be ``req.SerializeToString()``; it is sent as it is
        (the scheduler serializes each request once, for its size check and for sending).
        """
        rep = self._pick()
        metrics = self._metrics
        if payload is None:
            payload = req.SerializeToString()
        if metrics is not None:
            self._m_inflight.inc()
            self._m_size.observe(len(payload))
            start = time.perf_counter()
        try:
            resp: model_pb2.AnswerVQAResponse = await rep.answer_bytes(payload, timeout=deadline_s)
        except grpc.aio.AioRpcError as exc:
            err = map_rpc_error(exc, rep.target)
            if isinstance(err, ModelUnavailable):
                rep.down_until = time.monotonic() + SKIP_UNAVAILABLE_S
                if metrics is not None:
                    self._m_up.set(0)
            self._count(err.code)
            raise err from exc
        finally:
            if metrics is not None:
                self._m_inflight.dec()
                self._m_latency.observe(time.perf_counter() - start)
        self._count("OK")
        if metrics is not None:
            self._m_up.set(1)
        return resp, rep.target

    async def info(self, *, deadline_s: float = 10) -> model_pb2.GetModelInfoResponse:
        """Call GetModelInfo on the first replica that answers.

        Raises:
            ModelCallError: no replica answered.
        """
        last: ModelCallError | None = None
        for rep in self._replicas:
            try:
                info: model_pb2.GetModelInfoResponse = await rep.model.GetModelInfo(
                    model_pb2.GetModelInfoRequest(), timeout=deadline_s
                )
                return info
            except grpc.aio.AioRpcError as exc:
                last = map_rpc_error(exc, rep.target)
        assert last is not None
        raise last

    async def health(self, *, deadline_s: float = 5) -> bool:
        """Check every replica; True if at least one reports SERVING."""
        return any(h.serving for h in await self.check_health(deadline_s=deadline_s))

    async def check_health(self, *, deadline_s: float = 5) -> list[EndpointHealth]:
        """Check every replica; what each one's health check found, in endpoint order."""
        found: list[EndpointHealth] = []
        for rep in self._replicas:
            try:
                resp = await rep.health.Check(
                    health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=deadline_s
                )
                name = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
                serving = resp.status == health_pb2.HealthCheckResponse.SERVING
                found.append(EndpointHealth(rep.target, serving, name))
                label = name.lower()
            except grpc.aio.AioRpcError as exc:
                found.append(EndpointHealth(rep.target, False, connection_problem(exc)))
                label = exc.code().name.lower()
            if self._metrics is not None:
                self._metrics.health_checks.labels(self.spec.name, label).inc()
        if self._metrics is not None:
            self._m_up.set(1 if any(h.serving for h in found) else 0)
        return found

    async def close(self) -> None:
        """Close every channel (in-flight calls are cancelled)."""
        for rep in self._replicas:
            await rep.channel.close(None)
