"""Server credentials for TLS and mutual TLS, read from PEM files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc


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
        FileNotFoundError: naming the missing file.
        ValueError: naming a file that does not look like PEM.
    """

    def read(path: Path, what: str) -> bytes:
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"TLS {what} file not found: {path}") from None
        if b"-----BEGIN" not in data:
            raise ValueError(f"TLS {what} file {path} is not PEM (no -----BEGIN line)")
        return data

    chain = read(tls.cert_file, "certificate")
    key = read(tls.key_file, "key")
    if tls.client_ca_file is None:
        return grpc.ssl_server_credentials([(key, chain)])
    ca = read(tls.client_ca_file, "client CA")
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=True
    )
