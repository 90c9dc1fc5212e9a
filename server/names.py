"""What the evaluator accepts at the door: names, endpoints and the sizes of free text.

A name is shown in tables, logs, file names and metric labels, so it is kept to a small,
printable alphabet. An endpoint is checked for its shape (``host:port`` or a ``dns:///``
target) when a model is registered, so a typo is refused with its reason then rather than
reported as "not SERVING" when a run starts. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re

from gmai_eval.server.errors import InvalidArgument

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""Model and benchmark names: letters, digits, ``.``, ``_`` and ``-``, 1 to 64 characters,
not starting with a punctuation mark (so never ``.`` or ``..``)."""

NAME_RULE = "letters, digits, '.', '_' or '-', at most 64, starting with a letter or digit"
"""The rule of :data:`NAME_PATTERN` in words, for error messages and docs."""

MAX_ENDPOINTS = 64
"""Replicas one model may list."""

MAX_FILTER_BYTES = 4096
"""A subset filter, UTF-8 encoded."""

MAX_REQUEST_ID_BYTES = 256
"""A CreateRun idempotency key, UTF-8 encoded."""

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
"""DNS names and IPv4 addresses; ``_`` is allowed, as compose service names use it."""


def shown(text: str, limit: int = 80) -> str:
    """``text`` made safe to print in one line: control characters escaped, long text cut."""
    cut = text if len(text) <= limit else text[:limit] + "…"
    return repr(cut)


def check_name(name: str, what: str) -> str:
    """``name`` if it follows :data:`NAME_PATTERN`.

    Args:
        name: the name as given.
        what: what it names ("model", "benchmark"), for the message.

    Raises:
        InvalidArgument: the name is empty, too long, or has a character outside the rule.
    """
    if not name:
        raise InvalidArgument(f"{what} name is empty")
    if NAME_PATTERN.fullmatch(name) is None:
        size = f" ({len(name)} characters)" if len(name) > 64 else ""
        raise InvalidArgument(f"{what} name {shown(name)}{size} is not allowed: use {NAME_RULE}")
    return name


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is ``host:port``, ``[v6]:port`` or a ``dns:///host:port`` target.

    Raises:
        InvalidArgument: a scheme (``http://``), a missing or out-of-range port, a bad host,
            or spaces and control characters; the message says which.
    """
    target = endpoint
    if target.startswith("dns:///"):
        target = target.removeprefix("dns:///")
    elif "://" in target or target.startswith(("http:", "https:", "grpc:")):
        raise InvalidArgument(
            f"endpoint {shown(endpoint)} has a URL scheme; give host:port (or dns:///host:port)"
        )
    if not target or any(ch.isspace() or not ch.isprintable() for ch in target):
        raise InvalidArgument(f"endpoint {shown(endpoint)} is empty or has spaces or control characters")
    host, sep, port = target.rpartition(":")
    if not sep:
        raise InvalidArgument(f"endpoint {shown(endpoint)} has no port; give host:port")
    if not host:
        raise InvalidArgument(f"endpoint {shown(endpoint)} has no host; give host:port")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidArgument(f"endpoint {shown(endpoint)}: port {shown(port)} is not a number from 1 to 65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidArgument(f"endpoint {shown(endpoint)}: {shown(host)} is not an IPv6 address") from None
    elif _HOSTNAME.fullmatch(host) is None:
        raise InvalidArgument(f"endpoint {shown(endpoint)}: {shown(host)} is not a host name or address")
    return endpoint


def check_endpoints(endpoints: tuple[str, ...], model: str) -> tuple[str, ...]:
    """Every endpoint of ``model`` checked; ``dns:///`` targets stand alone.

    Raises:
        InvalidArgument: no endpoint, too many, a bad one, or a dns:/// target among others.
    """
    if not endpoints:
        raise InvalidArgument(f"model {model!r}: at least one endpoint is required")
    if len(endpoints) > MAX_ENDPOINTS:
        raise InvalidArgument(f"model {model!r}: {len(endpoints)} endpoints; at most {MAX_ENDPOINTS}")
    for e in endpoints:
        check_endpoint(e)
    if len(endpoints) > 1 and any(e.startswith("dns:///") for e in endpoints):
        raise InvalidArgument(f"model {model!r}: a dns:/// target must be the only endpoint")
    return endpoints


def check_size(text: str, limit: int, what: str) -> str:
    """``text`` if its UTF-8 encoding is at most ``limit`` bytes.

    Raises:
        InvalidArgument: naming ``what``, the size and the limit.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise InvalidArgument(f"{what} is {size} bytes encoded; at most {limit}")
    return text
