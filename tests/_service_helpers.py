"""Helpers for the service-area tests: a test PKI and a real ``gmai-eval serve`` subprocess."""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import HealthServicer

from tests._data_helpers import make_row, write_tsv

ADMIN_TOKEN = "admin-token-0123456789abcdef"
READ_TOKEN = "read-token-0123456789abcdef"

SERVING_RE = re.compile(r"gmai-eval serving on (\S+):(\d+) metrics (\S+):(\d+)")
UI_RE = re.compile(r" ui (\S+):(\d+)")


# --- certificates ---------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """PEM files of a test CA, a server certificate (localhost, 127.0.0.1) and a client one."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path
    """A CA that signed nothing here (a client trusting it must fail the handshake)."""
    rogue_cert: Path
    """A client certificate signed by ``other_ca`` (refused under mTLS)."""
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return path


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(
    cn: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, *, server: bool
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


def make_pki(directory: Path) -> Pki:
    """Generate a fresh test PKI under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _ca("gmai-eval test CA")
    server_key, server_cert = _leaf("localhost", ca_key, ca_cert, server=True)
    client_key, client_cert = _leaf("operator", ca_key, ca_cert, server=False)
    other_key, other_cert = _ca("some other CA")
    rogue_key, rogue_cert = _leaf("rogue", other_key, other_cert, server=False)
    return Pki(
        ca=_write_cert(directory / "ca.pem", ca_cert),
        server_cert=_write_cert(directory / "server.pem", server_cert),
        server_key=_write_key(directory / "server.key", server_key),
        client_cert=_write_cert(directory / "client.pem", client_cert),
        client_key=_write_key(directory / "client.key", client_key),
        other_ca=_write_cert(directory / "other-ca.pem", other_cert),
        rogue_cert=_write_cert(directory / "rogue.pem", rogue_cert),
        rogue_key=_write_key(directory / "rogue.key", rogue_key),
    )


# --- benchmark ------------------------------------------------------------------------


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``gmai-eval ARGS`` as a user runs it (a subprocess, output captured), in this
    environment less every ``GMAI_EVAL_*`` variable, plus ``env``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("GMAI_EVAL_")}
    return subprocess.run(
        [sys.executable, "-m", "gmai_eval.clients.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**base, **(env or {})},
    )


def write_benchmark_tsv(path: Path, n: int = 24) -> Path:
    """A small valid VAL TSV with ``n`` questions over two departments and modalities."""
    rows = []
    for i in range(n):
        if i % 2:
            rows.append(make_row(i))
        else:
            rows.append(
                make_row(
                    i,
                    A="normal",
                    B="glaucoma",
                    C="cataract",
                    answer="B",
                    category="glaucoma",
                    **{
                        "clinical VQA task": "Disease Diagnosis",
                        "department": "Ophthalmology",
                        "perceptual granularity": "Image level",
                        "modality": "Fundus Photography",
                    },
                )
            )
    return write_tsv(path, rows)


# --- the evaluator subprocess ---------------------------------------------------------


class ServeProcess:
    """A running ``gmai-eval serve`` started by :func:`start_server`."""

    def __init__(
        self, proc: subprocess.Popen[str], host: str, port: int, metrics_port: int, log: Path, ui_port: int = -1
    ) -> None:
        self.proc = proc
        self.host = host
        self.port = port
        self.metrics_port = metrics_port
        self.log = log
        self.ui_port = ui_port
        """Port of the live viewer (``--ui-port``), -1 when off."""

    @property
    def target(self) -> str:
        """HOST:PORT of the gRPC port."""
        return f"{self.host}:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def log_text(self) -> str:
        """What the server wrote to stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def serve_command(db: Path, *args: str) -> list[str]:
    """The argv of ``gmai-eval serve`` on free ports."""
    return [
        sys.executable, "-m", "gmai_eval.clients.cli", "serve",
        "--db", str(db), "--port", "0", "--metrics-port", "0", "--grace", "2", *args,
    ]


def start_server(
    db: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60, log_dir: Path | None = None
) -> ServeProcess:
    """Start ``gmai-eval serve`` and wait for its "serving" line.

    The server's stderr goes to a log file beside ``db``, or in ``log_dir``.

    Raises:
        RuntimeError: the process exited or did not announce itself in time (with its log).
    """
    log = (log_dir or db.parent) / (db.name + f".serve-{time.monotonic_ns()}.log")
    full_env = {**os.environ, **(env or {})}
    for key in ("GMAI_EVAL_ADMIN_TOKEN", "GMAI_EVAL_READ_TOKEN"):
        if env is None or key not in env:
            full_env.pop(key, None)
    with open(log, "w") as err:
        proc = subprocess.Popen(
            serve_command(db, *args), stdout=subprocess.PIPE, stderr=err, text=True, env=full_env
        )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if line is None:
            break
        m = SERVING_RE.search(line)
        if m:
            ui = UI_RE.search(line)
            return ServeProcess(proc, m.group(1), int(m.group(2)), int(m.group(4)), log, int(ui.group(2)) if ui else -1)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    raise RuntimeError(f"gmai-eval serve did not start (rc={proc.returncode}):\n{log.read_text()}")


@contextmanager
def running_server(
    db: Path, *args: str, env: dict[str, str] | None = None, log_dir: Path | None = None
) -> Iterator[ServeProcess]:
    """:func:`start_server` as a context manager that always ends the process."""
    server = start_server(db, *args, env=env, log_dir=log_dir)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait(timeout=10)


def bearer(token: str) -> Sequence[tuple[str, str]]:
    """Call metadata carrying ``token``."""
    return (("authorization", f"Bearer {token}"),)


def wait_channel_ready(channel: grpc.Channel, timeout: float = 10) -> None:
    """Block until ``channel`` connects (raises grpc.FutureTimeoutError otherwise)."""
    grpc.channel_ready_future(channel).result(timeout=timeout)


# --- a deterministic model service ----------------------------------------------------


class DeterministicModel(model_pb2_grpc.ModelServiceServicer):
    """Answers from the image bytes alone, so two runs of the same questions agree.

    The chosen label is ``options[sha256(image bytes)[0] % len(options)]``; run-specific
    fields (question ids, request ids) play no part. ``delay_s`` slows every answer.
    """

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0
        self.reject_after: int | None = None
        """When set, calls after this many (in total) are rejected with INVALID_ARGUMENT."""
        self._lock = threading.Lock()

    def AnswerVQA(self, request: model_pb2.AnswerVQARequest, context: grpc.ServicerContext) -> model_pb2.AnswerVQAResponse:
        with self._lock:
            self.calls += 1
            calls = self.calls
        if self.reject_after is not None and calls > self.reject_after:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scripted rejection")
        if self.delay_s:
            time.sleep(self.delay_s)
        digest = hashlib.sha256(b"".join(img.data for img in request.images)).digest()
        labels = [o.label for o in request.options]
        label = labels[digest[0] % len(labels)] if labels else "A"
        return model_pb2.AnswerVQAResponse(
            question_id=request.question_id,
            request_id=request.request_id,
            status=model_pb2.ANSWER_STATUS_ANSWERED,
            selected_labels=[label],
            model_version="det-1",
        )

    def GetModelInfo(self, request: model_pb2.GetModelInfoRequest, context: grpc.ServicerContext) -> model_pb2.GetModelInfoResponse:
        return model_pb2.GetModelInfoResponse(
            name="deterministic", version="det-1", protocol_version="gmai_eval.model.v1",
            supported_media_types=["image/png", "image/jpeg"],
        )


@contextmanager
def model_service(
    delay_s: float = 0.0, workers: int = 16, servicer: DeterministicModel | None = None
) -> Iterator[tuple[str, DeterministicModel]]:
    """A :class:`DeterministicModel` (or ``servicer``, a subclass) on a thread-pool gRPC
    server at 127.0.0.1:<free port>."""
    servicer = servicer or DeterministicModel(delay_s)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    model_pb2_grpc.add_ModelServiceServicer_to_server(servicer, server)
    health = HealthServicer()
    health.set("", health_pb2.HealthCheckResponse.SERVING)
    health.set("gmai_eval.model.v1.ModelService", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(0).wait(10)
