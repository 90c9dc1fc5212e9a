"""The shared TLS loader (gmai_eval.tls): real PEM files, real handshakes, real CLIs.

Each bad file gives one line naming the file and the problem, from the loader itself and
through every command that takes TLS files (``gmai-eval serve``, ``gmai-model serve``,
the ``gmai-eval`` client commands and the health-check script), with no traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gmai_eval.tls import (
    TlsFileError,
    channel_credentials,
    load_client_files,
    load_server_files,
    read_private_key,
    server_credentials,
)
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer

from tests._service_helpers import Pki, make_pki, serve_command

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _error(call: Callable[[], object]) -> TlsFileError:
    with pytest.raises(TlsFileError) as caught:
        call()
    exc = caught.value
    assert isinstance(exc, ValueError)
    assert "\n" not in str(exc)
    assert str(exc) == f"{exc.role} {exc.path}: {exc.reason}"
    return exc


def _write(path: Path, data: bytes | str) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- the loader, file by file -----------------------------------------------------------


def test_a_matching_pair_loads_and_keeps_only_the_pem_blocks(pki: Pki, tmp_path: Path) -> None:
    combined = _write(tmp_path / "both.pem", b"comment line\n" + pki.server_key.read_bytes() + pki.server_cert.read_bytes())
    pem = load_server_files(combined, combined, pki.ca)
    assert pem.cert_chain.strip() == pki.server_cert.read_bytes().strip()
    assert pem.key.strip() == pki.server_key.read_bytes().strip()
    assert pem.client_ca is not None and pem.client_ca.strip() == pki.ca.read_bytes().strip()
    assert load_client_files(pki.ca).cert_chain is None


def test_mismatched_certificate_and_key(pki: Pki) -> None:
    exc = _error(lambda: load_server_files(pki.server_cert, pki.client_key))
    assert exc.path == str(pki.client_key)
    assert exc.reason == f"certificate and key do not match (certificate {pki.server_cert})"
    assert exc.role == "server key"
    exc = _error(lambda: channel_credentials(pki.ca, pki.client_cert, pki.rogue_key))
    assert (exc.path, exc.role) == (str(pki.rogue_key), "client key")
    assert exc.reason.startswith("certificate and key do not match")


def test_an_rsa_key_in_the_traditional_format_is_read_and_matched(tmp_path: Path, pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    traditional = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    path = _write(tmp_path / "rsa.key", traditional)
    assert read_private_key(path).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    exc = _error(lambda: load_server_files(pki.server_cert, path))
    assert exc.reason.startswith("certificate and key do not match")


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("hello, I am not a certificate\n", "not a PEM certificate"),
        ("", "empty file"),
        ("-----BEGIN CERTIFICATE-----\nMIIB\n", "damaged PEM block (BEGIN without a matching END)"),
        ("-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
         "damaged PEM block (bad base64 in CERTIFICATE)"),
        ("-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n",
         "damaged PEM block (CERTIFICATE is not DER)"),
        ("-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n", "damaged certificate"),
    ],
)
def test_a_bad_certificate_file_says_what_is_wrong(tmp_path: Path, pki: Pki, content: str, reason: str) -> None:
    bad = _write(tmp_path / "bad.pem", content)
    exc = _error(lambda: load_server_files(bad, pki.server_key))
    assert (exc.path, exc.role) == (str(bad), "server certificate")
    assert exc.reason.startswith(reason)


def test_a_key_where_a_certificate_belongs_and_back(pki: Pki) -> None:
    exc = _error(lambda: load_server_files(pki.server_key, pki.server_key))
    assert (exc.path, exc.reason) == (str(pki.server_key), "holds a private key, not a PEM certificate")
    exc = _error(lambda: load_server_files(pki.server_cert, pki.server_cert))
    assert (exc.path, exc.role) == (str(pki.server_cert), "server key")
    assert exc.reason == "holds a certificate, not a PEM private key"
    exc = _error(lambda: load_client_files(pki.client_key))
    assert (exc.role, exc.reason) == ("CA", "holds a private key, not a PEM certificate")


def test_garbage_where_a_key_belongs(tmp_path: Path, pki: Pki) -> None:
    bad = _write(tmp_path / "bad.key", "not a key")
    exc = _error(lambda: load_server_files(pki.server_cert, bad))
    assert (exc.path, exc.reason) == (str(bad), "not a PEM private key")


def test_an_encrypted_key_is_refused_without_a_prompt(tmp_path: Path, pki: Pki) -> None:
    key = serialization.load_pem_private_key(pki.server_key.read_bytes(), None)
    pkcs8 = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
    )
    path = _write(tmp_path / "encrypted.key", pkcs8)
    assert _error(lambda: read_private_key(path)).reason == "encrypted private key; gRPC needs it unencrypted"
    legacy = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert b"Proc-Type: 4,ENCRYPTED" in legacy
    path = _write(tmp_path / "legacy-encrypted.key", legacy)
    assert _error(lambda: read_private_key(path)).reason == "encrypted private key; gRPC needs it unencrypted"


def test_missing_file_and_directory(tmp_path: Path, pki: Pki) -> None:
    missing = tmp_path / "nope.pem"
    exc = _error(lambda: server_credentials(missing, pki.server_key))
    assert (exc.path, exc.reason) == (str(missing), "file not found")
    exc = _error(lambda: server_credentials(pki.server_cert, pki.server_key, tmp_path))
    assert (exc.path, exc.role, exc.reason) == (str(tmp_path), "client CA", "is a directory, not a file")


@pytest.fixture
def unreadable() -> Iterator[Path]:
    """A PEM file with mode 000 in a directory anyone may enter."""
    with tempfile.TemporaryDirectory() as directory:
        os.chmod(directory, 0o755)
        path = Path(directory) / "secret.key"
        path.write_text("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n")
        path.chmod(0)
        yield path


def _reason_as_nobody(path: Path) -> str:
    """Read ``path`` in a child process that dropped root (root reads mode 000 files)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                read_private_key(path)
                message = "read"
            except TlsFileError as exc:
                message = exc.reason
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message


def test_an_unreadable_file_is_permission_denied(unreadable: Path) -> None:
    if os.geteuid() == 0:
        assert _reason_as_nobody(unreadable) == "permission denied"
    else:
        assert _error(lambda: read_private_key(unreadable)).reason == "permission denied"


def test_a_client_certificate_needs_its_key(pki: Pki) -> None:
    exc = _error(lambda: channel_credentials(pki.ca, pki.client_cert, ""))
    assert (exc.path, exc.role) == (str(pki.client_cert), "client certificate")
    exc = _error(lambda: channel_credentials(pki.ca, None, pki.client_key))
    assert (exc.path, exc.role) == (str(pki.client_key), "client key")


# --- the credentials in a real handshake -----------------------------------------------


def test_loaded_credentials_complete_a_mutual_tls_handshake(pki: Pki, tmp_path: Path) -> None:
    combined = _write(tmp_path / "server-both.pem", pki.server_cert.read_bytes() + pki.server_key.read_bytes())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_secure_port("127.0.0.1:0", server_credentials(combined, combined, pki.ca))
    server.start()
    try:
        good = channel_credentials(pki.ca, pki.client_cert, pki.client_key)
        with grpc.secure_channel(f"127.0.0.1:{port}", good) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        no_client_cert = channel_credentials(pki.ca)
        with grpc.secure_channel(f"127.0.0.1:{port}", no_client_cert) as channel, pytest.raises(grpc.RpcError):
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    finally:
        server.stop(None)


# --- every command that takes TLS files -------------------------------------------------


def _one_line_failure(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=cwd)
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_gmai_eval_serve_with_a_mismatched_pair(pki: Pki, tmp_path: Path) -> None:
    line = _one_line_failure(
        serve_command(tmp_path / "eval.db", "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)),
        tmp_path,
    )
    assert line == (
        f"Error: server key {pki.client_key}: certificate and key do not match (certificate {pki.server_cert})"
    )
    assert "cannot listen" not in line


def test_gmai_eval_serve_with_a_missing_client_ca(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.pem"
    line = _one_line_failure(
        serve_command(
            tmp_path / "eval.db", "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
            "--tls-client-ca", str(missing),
        ),
        tmp_path,
    )
    assert line == f"Error: client CA {missing}: file not found"


def _gmai_model(*args: str) -> list[str]:
    code = "from gmai_eval.clients.reference.cli import main; main()"
    return [sys.executable, "-c", code, "serve", "random", "--host", "127.0.0.1", "--port", "0", *args]


def test_gmai_model_serve_with_a_mismatched_pair(pki: Pki, tmp_path: Path) -> None:
    line = _one_line_failure(_gmai_model("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)), tmp_path)
    assert line == (
        f"Error: server key {pki.client_key}: certificate and key do not match (certificate {pki.server_cert})"
    )


def test_gmai_model_serve_with_garbage_and_missing_files(pki: Pki, tmp_path: Path) -> None:
    garbage = _write(tmp_path / "garbage.pem", "garbage")
    line = _one_line_failure(_gmai_model("--tls-cert", str(garbage), "--tls-key", str(pki.server_key)), tmp_path)
    assert line == f"Error: server certificate {garbage}: not a PEM certificate"
    missing = tmp_path / "missing.key"
    line = _one_line_failure(_gmai_model("--tls-cert", str(pki.server_cert), "--tls-key", str(missing)), tmp_path)
    assert line == f"Error: server key {missing}: file not found"


def test_gmai_eval_client_commands_with_a_mismatched_client_pair(pki: Pki, tmp_path: Path) -> None:
    argv = [
        sys.executable, "-m", "gmai_eval.clients.cli", "runs", "--server", "127.0.0.1:1",
        "--ca", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.server_key),
    ]
    line = _one_line_failure(argv, tmp_path)
    assert line == (
        f"Error: client key {pki.server_key}: certificate and key do not match (certificate {pki.client_cert})"
    )


def test_health_check_script_with_a_bad_ca(tmp_path: Path) -> None:
    garbage = _write(tmp_path / "ca.pem", "garbage")
    argv = [sys.executable, "-m", "gmai_eval.clients.ops.health_check", "--ca", str(garbage), "127.0.0.1:1"]
    line = _one_line_failure(argv, tmp_path)
    assert line == f"gmai-health-check: CA {garbage}: not a PEM certificate"
