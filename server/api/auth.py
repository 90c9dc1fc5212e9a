"""Bearer-token authorisation of the evaluator's API.

Two tokens can be configured: an admin token that may call every EvaluatorService RPC,
and a read-only token that may call only the RPCs in :data:`READ_ONLY_METHODS` (Get*,
List*, Watch*, GetRunScores, CompareRuns, GetRunCalibration, ExportRun). Calls carry
``authorization: Bearer <token>`` metadata. When no token is configured, authorisation is
off (the server then listens on loopback only unless told otherwise; see ``app.py``).
Health checking and reflection are always open, so probes and grpcurl work without
secrets.

Tokens are compared with :func:`hmac.compare_digest`. Denials raise
:class:`~gmai_eval.server.errors.Unauthenticated` or
:class:`~gmai_eval.server.errors.PermissionDenied` inside the call, so the status codes
come from the one mapping in ``service_errors.py``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import grpc
from gmai_eval.server.api.error_mapping import (
    EVALUATOR_PREFIX,
    ServerInterceptor,
    replace_behaviour,
)
from gmai_eval.server.errors import InvalidArgument, PermissionDenied, Unauthenticated

log = logging.getLogger(__name__)

READ_ONLY_METHODS: frozenset[str] = frozenset(
    {
        "ListBenchmarks",
        "GetBenchmark",
        "ListModels",
        "GetRun",
        "GetRunReport",
        "ListRuns",
        "WatchRun",
        "GetRunScores",
        "CompareRuns",
        "GetRunCalibration",
        "ExportRun",
        "GetRunProvenance",
        "GetRunGallery",
        "GetModelHistory",
        "GetLeaderboard",
    }
)
"""EvaluatorService RPCs a read-only token may call; every other one needs the admin token."""

MIN_TOKEN_LENGTH = 16
"""Shortest token accepted from configuration (guards against empty or toy secrets)."""


class Role(Enum):
    """What a token allows."""

    READ = "read"
    ADMIN = "admin"


@dataclass(frozen=True)
class TokenConfig:
    """The configured tokens; both empty means authorisation is off."""

    admin_token: str = ""
    """Token allowed to call everything."""
    read_token: str = ""
    """Token allowed to call the read-only RPCs."""

    @property
    def enabled(self) -> bool:
        """True when at least one token is configured."""
        return bool(self.admin_token or self.read_token)

    def role_of(self, token: str) -> Role | None:
        """The role of a presented token, or None when it matches no configured token."""
        presented = token.encode()
        # Compare against both without short-circuiting, so timing says nothing about which.
        is_admin = bool(self.admin_token) and hmac.compare_digest(presented, self.admin_token.encode())
        is_read = bool(self.read_token) and hmac.compare_digest(presented, self.read_token.encode())
        if is_admin:
            return Role.ADMIN
        if is_read:
            return Role.READ
        return None


def load_token(path: str | None, env_value: str | None, what: str) -> str:
    """Read a token from a file (preferred) or an environment value.

    Args:
        path: file holding the token (surrounding whitespace ignored), or None.
        env_value: the value of the environment variable, or None.
        what: ``"admin"`` or ``"read"``, for messages.

    Returns:
        The token, or ``""`` when neither is given.

    Raises:
        InvalidArgument: unreadable file, or a token shorter than :data:`MIN_TOKEN_LENGTH`
            or containing whitespace.
    """
    if path:
        try:
            token = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise InvalidArgument(f"cannot read {what} token file {path}: {exc.strerror}") from exc
        source = f"{what} token file {path}"
    elif env_value:
        token = env_value.strip()
        source = f"{what} token from the environment"
    else:
        return ""
    if len(token) < MIN_TOKEN_LENGTH:
        raise InvalidArgument(f"{source}: the token must be at least {MIN_TOKEN_LENGTH} characters")
    if any(ch.isspace() for ch in token):
        raise InvalidArgument(f"{source}: the token must not contain whitespace")
    return token


def bearer_token(metadata: Any) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header, or None if absent/malformed."""
    for key, value in metadata or ():
        if key.lower() != "authorization":
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        scheme, _, token = text.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    return None


def check(tokens: TokenConfig, method: str, metadata: Any) -> Role | None:
    """Decide whether a call may proceed.

    Args:
        tokens: the configured tokens.
        method: full method name, ``/package.Service/Method``.
        metadata: the call's invocation metadata.

    Returns:
        The caller's role, or None when authorisation does not apply (off, or an open
        service such as health and reflection).

    Raises:
        Unauthenticated: no token, or one that matches no configured token.
        PermissionDenied: a read-only token on a mutating RPC.
    """
    if not tokens.enabled or not method.startswith(EVALUATOR_PREFIX):
        return None
    token = bearer_token(metadata)
    if token is None:
        raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
    role = tokens.role_of(token)
    if role is None:
        raise Unauthenticated("unknown token")
    name = method[len(EVALUATOR_PREFIX):]
    if role is Role.READ and name not in READ_ONLY_METHODS:
        raise PermissionDenied(f"the read-only token may not call {name}; use the admin token")
    return role


def _denying_handler(handler: grpc.RpcMethodHandler[Any, Any], exc: Exception) -> grpc.RpcMethodHandler[Any, Any]:
    """A handler of the same kind as ``handler`` that raises ``exc`` when called."""

    async def deny_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise exc

    async def deny_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        raise exc
        yield  # pragma: no cover - makes this an async generator

    return replace_behaviour(handler, lambda _: deny_unary, lambda _: deny_stream)


class AuthInterceptor(ServerInterceptor):
    """Rejects EvaluatorService calls without an acceptable bearer token.

    Install it after :class:`~gmai_eval.server.api.error_mapping.ErrorMappingInterceptor`
    so that its denials are mapped to status codes there.
    """

    def __init__(self, tokens: TokenConfig) -> None:
        self.tokens = tokens

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        try:
            check(self.tokens, handler_call_details.method, handler_call_details.invocation_metadata)
        except (Unauthenticated, PermissionDenied) as exc:
            log.info("denied %s: %s", handler_call_details.method, exc)
            return _denying_handler(handler, exc)
        return handler
