"""TLS files for every gmai-eval process: one loader, one error, one message per problem.

The evaluator's port, the model SDK's port, the ``gmai-eval`` CLI's channel, the evaluator's
channels to models and the health-check script all read their PEM files here. Each file is
checked before gRPC sees it, so a bad file fails at start-up with one line that names the
file and the problem, never later as "cannot listen" or a failed handshake:

- the file is missing, unreadable, a directory or empty;
- it holds no PEM block of the expected kind ("not a PEM certificate", "holds a private
  key, not a PEM certificate"...), or a damaged one (bad base64, BEGIN without END, a
  certificate OpenSSL cannot parse);
- the private key is encrypted (gRPC cannot prompt for a passphrase);
- the certificate and the key do not belong together.

Every problem raises :class:`TlsFileError`. The module uses only the standard library's
``ssl`` module (OpenSSL) for the checks, and grpc for the credentials, so both the evaluator
and the model side can use it: it sits in the contract package they share.
"""

from __future__ import annotations

import binascii
import os
import re
import ssl
from base64 import b64decode
from dataclasses import dataclass
from pathlib import Path
from typing import TypeGuard

import grpc

__all__ = [
    "ClientPem",
    "ServerPem",
    "TlsFileError",
    "channel_credentials",
    "load_client_files",
    "load_server_files",
    "read_certificates",
    "read_private_key",
    "server_credentials",
]

PathLike = str | os.PathLike[str]
"""A file name as a string or a path."""

_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
_KEY_LABELS = frozenset({b"PRIVATE KEY", b"RSA PRIVATE KEY", b"EC PRIVATE KEY"})
"""Labels of unencrypted private keys (PKCS#8, and the PKCS#1 and SEC1 forms)."""


class TlsFileError(ValueError):
    """A TLS file cannot be used.

    The message is one line, ``"<role> <path>: <reason>"``, for example
    ``"server key /etc/tls/server.key: certificate and key do not match (certificate
    /etc/tls/server.pem)"``.

    Attributes:
        path: the file, as given.
        reason: what is wrong with it.
        role: what the file is for ("server certificate", "client CA"...).
    """

    def __init__(self, path: PathLike, reason: str, role: str = "TLS file") -> None:
        self.path = os.fspath(path)
        self.reason = reason
        self.role = role
        super().__init__(f"{role} {self.path}: {reason}")


@dataclass(frozen=True)
class ServerPem:
    """The checked PEM bytes of a server port."""

    cert_chain: bytes
    """The certificate chain, leaf first (certificate blocks only)."""
    key: bytes
    """The unencrypted private key (the key block only)."""
    client_ca: bytes | None = None
    """CA certificates that client certificates must chain to; None: no client certificates."""


@dataclass(frozen=True)
class ClientPem:
    """The checked PEM bytes of a channel to a TLS server."""

    ca: bytes | None = None
    """CA certificates of the server; None trusts the system roots."""
    cert_chain: bytes | None = None
    """Client certificate chain for mutual TLS."""
    key: bytes | None = None
    """Client private key for mutual TLS."""


def _read(path: PathLike, role: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise TlsFileError(path, "file not found", role) from None
    except PermissionError:
        raise TlsFileError(path, "permission denied", role) from None
    except IsADirectoryError:
        raise TlsFileError(path, "is a directory, not a file", role) from None
    except OSError as exc:
        raise TlsFileError(path, (exc.strerror or str(exc)).lower(), role) from None
    if not data.strip():
        raise TlsFileError(path, "empty file", role)
    return data


def _blocks(data: bytes, path: PathLike, role: str) -> list[tuple[bytes, bytes]]:
    """The PEM blocks of a file as (label, whole block text); damaged blocks raise."""
    found: list[tuple[bytes, bytes]] = []
    for match in _BLOCK.finditer(data):
        label, body = match.group(1), match.group(2)
        name = label.decode("ascii")
        if b"Proc-Type:" in body and b"ENCRYPTED" in body:
            raise TlsFileError(path, "encrypted private key; gRPC needs it unencrypted", role)
        try:
            der = b64decode(b"".join(body.split()), validate=True)
        except (binascii.Error, ValueError):
            raise TlsFileError(path, f"damaged PEM block (bad base64 in {name})", role) from None
        if (label == b"CERTIFICATE" or label.endswith(b"PRIVATE KEY")) and der[:1] != b"\x30":
            raise TlsFileError(path, f"damaged PEM block ({name} is not DER)", role)
        found.append((label, match.group(0) + b"\n"))
    if data.count(b"-----BEGIN ") > len(found):
        raise TlsFileError(path, "damaged PEM block (BEGIN without a matching END)", role)
    return found


def read_certificates(path: PathLike, role: str = "certificate") -> bytes:
    """Read a PEM file of one or more certificates (a chain or a CA bundle).

    Args:
        path: the file.
        role: what it is for, used in messages.

    Returns:
        The certificate blocks, in file order (other blocks are dropped).

    Raises:
        TlsFileError: missing, unreadable, no certificate, or a damaged one.
    """
    blocks = _blocks(_read(path, role), path, role)
    certs = [text for label, text in blocks if label == b"CERTIFICATE"]
    if not certs:
        if any(label.endswith(b"PRIVATE KEY") for label, _ in blocks):
            raise TlsFileError(path, "holds a private key, not a PEM certificate", role)
        raise TlsFileError(path, "not a PEM certificate", role)
    pem = b"".join(certs)
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cadata=pem.decode("ascii"))
    except ssl.SSLError as exc:
        raise TlsFileError(path, f"damaged certificate ({exc.reason or exc})", role) from None
    return pem


def read_private_key(path: PathLike, role: str = "key") -> bytes:
    """Read a PEM file holding one unencrypted private key.

    Args:
        path: the file.
        role: what it is for, used in messages.

    Returns:
        The key block.

    Raises:
        TlsFileError: missing, unreadable, encrypted, or no private key.
    """
    blocks = _blocks(_read(path, role), path, role)
    keys = [text for label, text in blocks if label in _KEY_LABELS]
    if keys:
        return keys[0]
    labels = {label for label, _ in blocks}
    if b"ENCRYPTED PRIVATE KEY" in labels:
        raise TlsFileError(path, "encrypted private key; gRPC needs it unencrypted", role)
    if b"CERTIFICATE" in labels:
        raise TlsFileError(path, "holds a certificate, not a PEM private key", role)
    raise TlsFileError(path, "not a PEM private key", role)


def _check_pair(cert_file: PathLike, key_file: PathLike, key_role: str) -> None:
    """Raise unless the key belongs to the first certificate of the chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file, password=b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            reason = f"certificate and key do not match (certificate {os.fspath(cert_file)})"
        elif exc.reason == "NO_CERTIFICATE_ASSIGNED":  # OpenSSL files the key under its type
            reason = (
                f"certificate and key do not match (certificate {os.fspath(cert_file)}"
                " holds another type of key)"
            )
        else:
            reason = f"cannot be used with certificate {os.fspath(cert_file)} ({exc.reason or exc})"
        raise TlsFileError(key_file, reason, key_role) from None
    except OSError as exc:  # the file changed between the two reads
        raise TlsFileError(key_file, (exc.strerror or str(exc)).lower(), key_role) from None


def _given(path: PathLike | None) -> TypeGuard[PathLike]:
    return path is not None and os.fspath(path) != ""


def load_server_files(
    cert_file: PathLike, key_file: PathLike, client_ca_file: PathLike | None = None
) -> ServerPem:
    """Read and check the PEM files of a TLS server port.

    Args:
        cert_file: the server's certificate chain, leaf first.
        key_file: the server's private key.
        client_ca_file: CA bundle for mutual TLS; None or "" for server-only TLS.

    Returns:
        The checked bytes.

    Raises:
        TlsFileError: a file is missing or malformed, or the key does not match.
    """
    chain = read_certificates(cert_file, "server certificate")
    key = read_private_key(key_file, "server key")
    _check_pair(cert_file, key_file, "server key")
    ca = read_certificates(client_ca_file, "client CA") if _given(client_ca_file) else None
    return ServerPem(cert_chain=chain, key=key, client_ca=ca)


def load_client_files(
    ca_file: PathLike | None = None,
    cert_file: PathLike | None = None,
    key_file: PathLike | None = None,
) -> ClientPem:
    """Read and check the PEM files of a channel to a TLS server.

    Args:
        ca_file: CA of the server's certificate; None or "" trusts the system roots.
        cert_file: client certificate chain, for mutual TLS (needs ``key_file``).
        key_file: client private key (needs ``cert_file``).

    Returns:
        The checked bytes.

    Raises:
        TlsFileError: a file is missing or malformed, the key does not match, or only
            one of ``cert_file`` and ``key_file`` is given.
    """
    ca = read_certificates(ca_file, "CA") if _given(ca_file) else None
    if _given(cert_file) and _given(key_file):
        chain = read_certificates(cert_file, "client certificate")
        key = read_private_key(key_file, "client key")
        _check_pair(cert_file, key_file, "client key")
        return ClientPem(ca=ca, cert_chain=chain, key=key)
    if _given(cert_file):
        raise TlsFileError(cert_file, "a client certificate needs its key; give both", "client certificate")
    if _given(key_file):
        raise TlsFileError(key_file, "a client key needs its certificate; give both", "client key")
    return ClientPem(ca=ca)


def server_credentials(
    cert_file: PathLike, key_file: PathLike, client_ca_file: PathLike | None = None
) -> grpc.ServerCredentials:
    """Credentials for ``server.add_secure_port``, from checked PEM files.

    Args:
        cert_file: the server's certificate chain.
        key_file: the server's private key.
        client_ca_file: CA bundle; when given, every client must present a certificate it
            signed (mutual TLS).

    Returns:
        The server credentials.

    Raises:
        TlsFileError: see :func:`load_server_files`.
    """
    pem = load_server_files(cert_file, key_file, client_ca_file)
    if pem.client_ca is None:
        return grpc.ssl_server_credentials([(pem.key, pem.cert_chain)])
    return grpc.ssl_server_credentials(
        [(pem.key, pem.cert_chain)], root_certificates=pem.client_ca, require_client_auth=True
    )


def channel_credentials(
    ca_file: PathLike | None = None,
    cert_file: PathLike | None = None,
    key_file: PathLike | None = None,
) -> grpc.ChannelCredentials:
    """Credentials for ``grpc.secure_channel`` / ``grpc.aio.secure_channel``.

    Args:
        ca_file: CA of the server's certificate; None or "" trusts the system roots.
        cert_file: client certificate chain, for mutual TLS.
        key_file: client private key.

    Returns:
        The channel credentials.

    Raises:
        TlsFileError: see :func:`load_client_files`.
    """
    pem = load_client_files(ca_file, cert_file, key_file)
    return grpc.ssl_channel_credentials(
        root_certificates=pem.ca, private_key=pem.key, certificate_chain=pem.cert_chain
    )
