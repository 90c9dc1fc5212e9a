"""Where a model service listens, and the rule that keeps plaintext off the network.

A model service receives patient images, so its defaults are the evaluator's:

* it binds ``127.0.0.1`` unless told otherwise;
* a non-loopback address without TLS is refused with :class:`InsecureBindError` unless
  the caller opts in (``allow_insecure=True``, ``gmai-model serve --insecure``), and then
  a one-line warning goes to stderr;
* the ready line names the address actually bound, so ``0.0.0.0`` is printed as
  ``0.0.0.0``, never as the ``127.0.0.1`` a local client would dial.
"""

from __future__ import annotations

import ipaddress
import sys

DEFAULT_HOST = "127.0.0.1"
"""The address a model service binds when none is given."""


class InsecureBindError(ValueError):
    """Plaintext was asked for on a non-loopback address without ``allow_insecure``.

    Args:
        host: The address that was refused.
    """

    def __init__(self, host: str) -> None:
        super().__init__(
            f"refusing to serve plaintext on {host}: pass tls=TlsFiles(cert, key) "
            "or allow_insecure=True to accept an unencrypted port"
        )
        self.host = host
        """The address that was refused."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def check_bind(host: str, *, tls: bool, allow_insecure: bool) -> None:
    """Refuse plaintext off loopback unless allowed; warn on stderr when it is allowed.

    Args:
        host: The address to bind.
        tls: Whether the port serves TLS.
        allow_insecure: The caller accepts plaintext on a non-loopback address.

    Raises:
        InsecureBindError: plaintext on a non-loopback address without ``allow_insecure``.
    """
    if tls or is_loopback(host):
        return
    if not allow_insecure:
        raise InsecureBindError(host)
    print(
        f"gmai-model: warning: serving plaintext on {host} (insecure): "
        "questions, images and answers travel unencrypted",
        file=sys.stderr,
        flush=True,
    )


def format_address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 host in brackets (``[::1]:50051``)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def dial_host(host: str) -> str:
    """The host a client on this machine dials to reach a service bound to ``host``."""
    return DEFAULT_HOST if host in ("", "0.0.0.0", "::", "[::]") else host
