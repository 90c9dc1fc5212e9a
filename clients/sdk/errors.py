"""Errors a model author may raise, and the gRPC status code each one becomes.

The SDK is self-contained (model teams install it without the evaluator), so it has its
own small tree. The servicer maps each class to the status code the model contract
(``gmai_eval/model/v1/model.proto``) documents; any other exception raised by a model
becomes ``INTERNAL`` with its message.

::

    ModelError                       INTERNAL
    ├── InvalidQuestion              INVALID_ARGUMENT  (no options, undecodable image)
    ├── Overloaded                   RESOURCE_EXHAUSTED (queue full; retried)
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
    """The request queue is full; the evaluator backs off and retries."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


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
