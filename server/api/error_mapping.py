"""The one place where evaluator exceptions become gRPC status codes.

:class:`ErrorMappingInterceptor` wraps every EvaluatorService handler. An
:class:`~gmai_eval.server.errors.EvalError` raised by the servicer (or by anything it
delegates to) ends the call with the code from :func:`status_for`; any other exception
ends it with INTERNAL and its traceback is logged. Health and reflection are left alone.

=========================================  =====================
exception                                  status code
=========================================  =====================
InvalidArgument, ImportDefects             INVALID_ARGUMENT
NotFound                                   NOT_FOUND
AlreadyExists                              ALREADY_EXISTS
FailedPrecondition, RunStateError,         FAILED_PRECONDITION
PreflightFailed
Unauthenticated                            UNAUTHENTICATED
PermissionDenied                           PERMISSION_DENIED
StoreCorrupted                             DATA_LOSS
StoreError (StoreFull, ...), ShuttingDown  UNAVAILABLE
other EvalError (ModelCallError, ...)      INTERNAL
anything else                              INTERNAL (traceback logged)
=========================================  =====================

Import defects also travel as structured details: a ``google.rpc.Status`` in the
``grpc-status-details-bin`` trailer holding a ``google.rpc.BadRequest`` whose field
violations name ``FILE:ROW:COLUMN`` and say what is wrong, so a program can list them
without parsing the message (``grpc_status.rpc_status.from_call``). Like the message, the
details are capped to fit the default 8 KiB metadata limit.

StoreError maps to UNAVAILABLE because, seen from a client, the database being locked,
closed during shutdown or briefly unusable is a condition of the server, not of the
request: the same call may succeed later (the evaluator.proto contract says UNAVAILABLE
is safe to retry). A damaged file is not a passing condition: StoreCorrupted maps to
DATA_LOSS, and its message names the file and what to do.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
from gmai_eval.server.errors import (
    AlreadyExists,
    EvalError,
    FailedPrecondition,
    ImportDefects,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ShuttingDown,
    StoreCorrupted,
    StoreError,
    Unauthenticated,
)
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    ServerInterceptor = grpc.aio.ServerInterceptor[Any, Any]
    """The base of this package's interceptors (generic for mypy only)."""
else:  # grpc's runtime classes are not generic
    ServerInterceptor = grpc.aio.ServerInterceptor

EVALUATOR_PREFIX = "/gmai_eval.evaluator.v1.EvaluatorService/"
"""Method-name prefix of the calls this interceptor wraps."""

_CODES: tuple[tuple[type[EvalError], grpc.StatusCode], ...] = (
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (StoreCorrupted, grpc.StatusCode.DATA_LOSS),
    (StoreError, grpc.StatusCode.UNAVAILABLE),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),
)

_MAX_DETAILS = 6000
"""Longest status message sent: details travel in a trailer, and clients refuse metadata
over 8 KiB by default (``grpc.max_metadata_size``), which would hide the real error."""


def status_for(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status code for an exception (INTERNAL when nothing more specific fits).

    Args:
        exc: the exception a handler raised.

    Returns:
        The status code the call ends with.
    """
    for cls, code in _CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


def _details(exc: BaseException, method: str) -> str:
    if isinstance(exc, EvalError):
        text = str(exc) or type(exc).__name__
    else:
        text = f"internal error in {method.rsplit('/', 1)[-1]}: {type(exc).__name__}: {exc}"
    if len(text) > _MAX_DETAILS:
        text = text[: _MAX_DETAILS - 20] + "\n... (truncated)"
    return text


_MAX_RICH_BYTES = 1500
"""Budget of the structured details: together with the message they stay under 8 KiB."""


def rich_details(code: grpc.StatusCode, message: str, exc: BaseException) -> tuple[tuple[str, bytes], ...]:
    """The ``grpc-status-details-bin`` trailer for an exception, or nothing.

    Args:
        code: the status code the call ends with.
        message: its message.
        exc: the exception; only :class:`ImportDefects` carries structured details.

    Returns:
        Trailing metadata holding a ``google.rpc.Status`` with a ``BadRequest`` that lists
        as many defects as fit the budget (the message says how many there are).
    """
    if not isinstance(exc, ImportDefects):
        return ()
    bad = error_details_pb2.BadRequest()
    for defect in exc.defects:
        violation = bad.field_violations.add(
            field=f"{defect.file}:{defect.row}:{defect.column}", description=defect.message[:200]
        )
        if bad.ByteSize() > _MAX_RICH_BYTES:
            bad.field_violations.remove(violation)
            break
    detail = any_pb2.Any()
    detail.Pack(bad)
    status = status_pb2.Status(code=code.value[0], message=message[:200], details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: Exception, method: str) -> None:
    code = status_for(exc)
    if not isinstance(exc, EvalError):
        log.error("unexpected error in %s", method, exc_info=exc)
    elif code is grpc.StatusCode.INTERNAL:
        log.warning("%s failed: %s: %s", method, type(exc).__name__, exc)
    message = _details(exc, method)
    await context.abort(code, message, trailing_metadata=rich_details(code, message, exc))


def _wrap_unary(method: str, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        try:
            return await fn(request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, method)

    return wrapper


def _wrap_stream(method: str, fn: Callable[..., Any]) -> Callable[..., AsyncIterator[Any]]:
    async def wrapper(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        try:
            async for item in fn(request, context):
                yield item
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, method)

    return wrapper


class ErrorMappingInterceptor(ServerInterceptor):
    """Maps exceptions raised by EvaluatorService handlers to status codes (see module doc)."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(EVALUATOR_PREFIX):
            return handler
        return wrap_handler(handler, method)


def wrap_handler(handler: grpc.RpcMethodHandler[Any, Any], method: str) -> grpc.RpcMethodHandler[Any, Any]:
    """A copy of ``handler`` whose behaviour maps exceptions to status codes.

    Args:
        handler: the method handler to wrap (any of the four kinds).
        method: the full method name, for logs and messages.

    Returns:
        A handler of the same kind and (de)serializers.
    """
    return replace_behaviour(
        handler,
        lambda fn: _wrap_unary(method, fn),
        lambda fn: _wrap_stream(method, fn),
        method,
    )


def replace_behaviour(
    handler: grpc.RpcMethodHandler[Any, Any],
    unary_response: Callable[[Callable[..., Any]], Callable[..., Any]],
    stream_response: Callable[[Callable[..., Any]], Callable[..., Any]],
    method: str = "",
) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind and (de)serializers as ``handler``, with new behaviour.

    Args:
        handler: the method handler (any of the four kinds).
        unary_response: builds the behaviour of a unary-response kind from the old one.
        stream_response: builds the behaviour of a streaming-response kind from the old one.
        method: the full method name, for the message of a handler of no known kind.

    Returns:
        The new handler.
    """
    kw = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream), **kw)
    assert handler.stream_stream is not None, f"{method}: handler of no known kind"
    return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream), **kw)
