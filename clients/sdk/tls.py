"""Server credentials for TLS and mutual TLS, read from PEM files by the shared loader."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from gmai_eval import tls as loader
from gmai_eval.tls import TlsFileError

__all__ = ["TlsFileError", "TlsFiles", "server_credentials"]


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for serving over TLS; a client CA turns on mutual TLS."""

    cert_file: Path
    """The server certificate chain (PEM)."""
    key_file: Path
    """The server private key (PEM)."""
    client_ca_file: Path | None = None
    """CA bundle that client certificates must chain to; when set, clients must present one."""


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Build gRPC server credentials from PEM files.

    Args:
        tls: The certificate, key and optional client CA.

    Returns:
        Credentials for ``server.add_secure_port``.

    Raises:
        TlsFileError: a file is missing, unreadable or not PEM of the right kind, or the
            certificate and key do not match; the message names the file.
    """
    return loader.server_credentials(tls.cert_file, tls.key_file, tls.client_ca_file)
