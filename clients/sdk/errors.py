"""Errors a model author may raise, and the gRPC status code each one becomes.

The SDK is self-contained (model teams install it without the evaluator), so it has its
own small tree. The servicer maps each class to the status code the model contract
(``gmai_eval/model/v1/model.proto``) documents; any other exception raised by a model
becomes ``INTERNAL`` with its message.

An :class:`Overloaded` with a ``retry_after_s`` also sends a ``google.rpc.Status`` holding a
``google.rpc.RetryInfo`` in the standard ``grpc-status-details-bin`` trailer
(:func:`rich_trailers`), which the contract says the evaluator honours.

::

    ModelError                       INTERNAL
    ├── InvalidQuestion              INVALID_ARGUMENT  (no options, undecodable image)
    ├── Overloaded                   RESOURCE_EXHAUSTED (queue full; retried; RetryInfo)
    ├── NotReady                     UNAVAILABLE        (loading or draining; retried)
    ├── NotLoaded                    FAILED_PRECONDITION (load() failed; not retried)
    ├── UpstreamUnavailable          UNAVAILABLE        (an adapter's backend is down)
    ├── UpstreamTimeout              DEADLINE_EXCEEDED  (an adapter's backend timed out)
    └── InvalidAnswer                INTERNAL           (the model broke the answer rules)
"""

from __future__ import annotations

import grpc


class ModelError(Exception):
    """Root of the SDK's errors; maps to ``INTERNAL`` unless a subclass says otherwise."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL


class InvalidQuestion(ModelError):
    """The request itself is malformed; the evaluator records it and does not retry."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class Overloaded(ModelError):
    """The request queue is full; the evaluator backs off and retries.

    Args:
        message: What is overloaded.
        retry_after_s: When to retry, sent as a ``google.rpc.RetryInfo``; None sends none.
    """

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        """Seconds the caller should wait before retrying (None: no advice)."""


class NotReady(ModelError):
    """The model is still loading or is draining; the evaluator retries."""

    code = grpc.StatusCode.UNAVAILABLE


class NotLoaded(ModelError):
    """``load()`` failed; the service cannot answer and the evaluator does not retry."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class UpstreamUnavailable(ModelError):
    """A backend the model calls (an HTTP endpoint) is down or overloaded."""

    code = grpc.StatusCode.UNAVAILABLE


class UpstreamTimeout(ModelError):
    """A backend the model calls did not answer in time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class InvalidAnswer(ModelError):
    """The model returned an answer that breaks the contract (unknown label, bad score)."""

    code = grpc.StatusCode.INTERNAL


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """Return the status code and message a model exception becomes on the wire.

    Args:
        exc: An exception raised while answering.

    Returns:
        ``(code, details)``; unknown exceptions become ``INTERNAL`` with their type and message.
    """
    if isinstance(exc, ModelError):
        return exc.code, str(exc) or type(exc).__name__
    return grpc.StatusCode.INTERNAL, f"model raised {type(exc).__name__}: {exc}"


STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""The trailer gRPC's rich error model puts a serialized ``google.rpc.Status`` in."""


def rich_trailers(
    exc: BaseException, code: grpc.StatusCode, details: str
) -> tuple[tuple[str, bytes], ...]:
    """Trailing metadata with the structured details of an error, if it has any.

    An :class:`Overloaded` with ``retry_after_s`` becomes a ``google.rpc.Status`` (the
    same code and message as the call's status) holding a ``google.rpc.RetryInfo`` whose
    ``retry_delay`` is ``retry_after_s`` to the millisecond.

    Args:
        exc: The exception the call ends with.
        code: Its status code (from :func:`status_for`).
        details: Its status message (from :func:`status_for`).

    Returns:
        ``((STATUS_DETAILS_KEY, bytes),)``, or ``()`` when there is nothing to add or the
        google.rpc messages (googleapis-common-protos) are not installed.
    """
    delay = exc.retry_after_s if isinstance(exc, Overloaded) else None
    if delay is None:
        return ()
    try:
        from google.rpc import error_details_pb2, status_pb2
    except ImportError:  # googleapis-common-protos is absent: the code alone still says retry
        return ()
    info = error_details_pb2.RetryInfo()
    info.retry_delay.FromMilliseconds(round(delay * 1000))
    status = status_pb2.Status(code=code.value[0], message=details)
    status.details.add().Pack(info)
    return ((STATUS_DETAILS_KEY, status.SerializeToString()),)
