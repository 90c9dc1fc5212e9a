"""TLS credentials for the evaluator's port and for channels to it, from PEM files.

The server side: a certificate chain and key, plus optionally a client CA bundle; with
the CA, every client must present a certificate signed by it (mutual TLS). The client
side: the CA that signed the server's certificate, plus optionally a client certificate
and key for mutual TLS.

Unreadable or malformed files raise :class:`~gmai_eval.server.errors.InvalidArgument`
naming the file, before any socket is opened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc
from gmai_eval.server.errors import InvalidArgument


def read_pem(path: str, what: str) -> bytes:
    """Read a PEM file.

    Args:
        path: the file.
        what: what it should hold ("server certificate", "client CA"...), for messages.

    Returns:
        The file's bytes.

    Raises:
        InvalidArgument: the file cannot be read or holds no PEM block.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} file {path}: {exc.strerror}") from exc
    if b"-----BEGIN " not in data:
        raise InvalidArgument(f"{what} file {path} holds no PEM block")
    return data


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
        InvalidArgument: a file is missing or malformed.
    """
    cert = read_pem(settings.cert_file, "server certificate")
    key = read_pem(settings.key_file, "server key")
    if b"PRIVATE KEY" not in key:
        raise InvalidArgument(f"server key file {settings.key_file} holds no private key")
    if settings.client_ca_file:
        ca = read_pem(settings.client_ca_file, "client CA")
        return grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=True
        )
    return grpc.ssl_server_credentials([(key, cert)])


def channel_credentials(
    ca_file: str = "", cert_file: str = "", key_file: str = ""
) -> grpc.ChannelCredentials:
    """Channel credentials for reaching a TLS server.

    Args:
        ca_file: PEM CA that signed the server's certificate; empty uses the system roots.
        cert_file: PEM client certificate, for mutual TLS (needs ``key_file``).
        key_file: PEM client key.

    Returns:
        Credentials for ``grpc.secure_channel`` / ``grpc.aio.secure_channel``.

    Raises:
        InvalidArgument: a file is missing or malformed, or only one of cert/key is given.
    """
    if bool(cert_file) != bool(key_file):
        raise InvalidArgument("a client certificate needs both --cert and --key")
    ca = read_pem(ca_file, "CA") if ca_file else None
    cert = read_pem(cert_file, "client certificate") if cert_file else None
    key = read_pem(key_file, "client key") if key_file else None
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
