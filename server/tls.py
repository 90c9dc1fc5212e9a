"""The evaluator's side of TLS: its port's settings, and the loader's errors in its tree.

The PEM files are read and checked by the loader every gmai-eval process shares,
:mod:`gmai_eval.tls`. This module only names the evaluator's port settings and turns the
loader's :class:`~gmai_eval.tls.TlsFileError` into
:class:`~gmai_eval.server.errors.InvalidArgument` (same message, naming the file and the
problem), so the CLI and the run loop handle it like any other bad input, before any
socket is opened.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from gmai_eval import tls as loader
from gmai_eval.server.errors import InvalidArgument


@dataclass(frozen=True)
class ServerTls:
    """TLS settings of the evaluator's gRPC port."""

    cert_file: str
    """PEM certificate chain of the server."""
    key_file: str
    """PEM private key of the server."""
    client_ca_file: str = ""
    """PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."""

    @property
    def mutual(self) -> bool:
        """True when client certificates are required."""
        return bool(self.client_ca_file)


def server_credentials(settings: ServerTls) -> grpc.ServerCredentials:
    """Server credentials for ``server.add_secure_port``.

    Args:
        settings: the PEM files.

    Returns:
        Credentials that require a client certificate when ``client_ca_file`` is set.

    Raises:
        InvalidArgument: a file is missing or malformed, or the key does not match.
    """
    try:
        return loader.server_credentials(settings.cert_file, settings.key_file, settings.client_ca_file)
    except loader.TlsFileError as exc:
        raise InvalidArgument(str(exc)) from exc


def channel_credentials(
    ca_file: str = "", cert_file: str = "", key_file: str = ""
) -> grpc.ChannelCredentials:
    """Channel credentials for reaching a TLS model service.

    Args:
        ca_file: PEM CA that signed the server's certificate; empty uses the system roots.
        cert_file: PEM client certificate, for mutual TLS (needs ``key_file``).
        key_file: PEM client key.

    Returns:
        Credentials for ``grpc.aio.secure_channel``.

    Raises:
        InvalidArgument: a file is missing or malformed, the key does not match, or only
            one of cert/key is given.
    """
    try:
        return loader.channel_credentials(ca_file, cert_file, key_file)
    except loader.TlsFileError as exc:
        raise InvalidArgument(str(exc)) from exc
