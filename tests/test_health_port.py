"""The plaintext health-only port (``gmai-eval serve --health-port``) of a real evaluator
subprocess whose main port requires mutual TLS: the port Kubernetes' native ``grpc:``
probe calls, since that probe cannot speak TLS."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from click.testing import CliRunner
from gmai_eval.clients.cli.main import cli
from gmai_eval.clients.processes import READY_EVALUATOR
from gmai_eval.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from gmai_eval.server.app import SERVICE_NAME
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests._service_helpers import ADMIN_TOKEN, SERVING_RE, Pki, bearer, make_pki, serve_command

HEALTH_RE = re.compile(r" health (\S+):(\d+)$")
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass
class Evaluator:
    """A ``gmai-eval serve`` subprocess and the ready line it printed."""

    proc: subprocess.Popen[str]
    line: str
    log: Path

    @property
    def target(self) -> str:
        m = SERVING_RE.search(self.line)
        assert m, self.line
        return f"{m.group(1)}:{m.group(2)}"

    @property
    def health_target(self) -> str:
        m = HEALTH_RE.search(self.line)
        assert m, self.line
        return f"{m.group(1)}:{m.group(2)}"


def launch(db: Path, *args: str) -> Evaluator:
    """Start ``gmai-eval serve`` and read its ready line (the first line on stdout)."""
    log = db.with_name(db.name + ".log")
    env = {k: v for k, v in os.environ.items() if k not in ("GMAI_EVAL_ADMIN_TOKEN", "GMAI_EVAL_READ_TOKEN")}
    with open(log, "w") as err:
        proc = subprocess.Popen(serve_command(db, *args), stdout=subprocess.PIPE, stderr=err, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().rstrip("\n")
    if not line.startswith("gmai-eval serving on "):
        proc.kill()
        proc.wait(timeout=10)
        proc.stdout.close()
        raise RuntimeError(f"serve did not start (rc={proc.returncode}): {line!r}\n{log.read_text()}")
    return Evaluator(proc, line, log)


def end(evaluator: Evaluator) -> None:
    """SIGTERM the process if it still runs (kill it after 20 s), and close its pipe."""
    if evaluator.proc.poll() is None:
        evaluator.proc.send_signal(signal.SIGTERM)
        try:
            evaluator.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            evaluator.proc.kill()
            evaluator.proc.wait(timeout=10)
    if evaluator.proc.stdout is not None:
        evaluator.proc.stdout.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_evaluator(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Evaluator]:
    root = tmp_path_factory.mktemp("health-port")
    token_file = root / "admin.token"
    token_file.write_text(ADMIN_TOKEN)
    evaluator = launch(
        root / "eval.db",
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca),
        "--admin-token-file", str(token_file), "--health-port", "0",
    )
    try:
        yield evaluator
    finally:
        end(evaluator)


def mtls_channel(target: str, pki: Pki) -> grpc.Channel:
    creds = grpc.ssl_channel_credentials(
        pki.ca.read_bytes(), pki.client_key.read_bytes(), pki.client_cert.read_bytes()
    )
    return grpc.secure_channel(target, creds)


def test_ready_line_names_the_health_port_and_still_parses(mtls_evaluator: Evaluator) -> None:
    host, port = mtls_evaluator.health_target.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    main = SERVING_RE.search(mtls_evaluator.line)
    demo = READY_EVALUATOR.search(mtls_evaluator.line)
    assert main and demo
    assert main.groups() == demo.groups()
    assert int(main.group(2)) != int(port) and int(main.group(4)) > 0


@pytest.mark.parametrize("service", ["", SERVICE_NAME])
def test_plaintext_check_on_the_health_port_is_serving(mtls_evaluator: Evaluator, service: str) -> None:
    with grpc.insecure_channel(mtls_evaluator.health_target) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
    assert reply.status == SERVING


def test_plaintext_call_to_the_main_port_fails(mtls_evaluator: Evaluator) -> None:
    with grpc.insecure_channel(mtls_evaluator.target) as ch, pytest.raises(grpc.RpcError) as info:
        health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_main_port_under_mtls_shares_the_health_status(mtls_evaluator: Evaluator, pki: Pki) -> None:
    with mtls_channel(mtls_evaluator.target, pki) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10)
        assert reply.status == SERVING
        models = evaluator_pb2_grpc.EvaluatorServiceStub(ch).ListModels(
            evaluator_pb2.ListModelsRequest(), metadata=bearer(ADMIN_TOKEN), timeout=10
        )
    assert list(models.models) == []


def test_health_port_exposes_nothing_but_health(mtls_evaluator: Evaluator) -> None:
    with grpc.insecure_channel(mtls_evaluator.health_target) as ch:
        with pytest.raises(grpc.RpcError) as info:
            evaluator_pb2_grpc.EvaluatorServiceStub(ch).ListModels(
                evaluator_pb2.ListModelsRequest(), metadata=bearer(ADMIN_TOKEN), timeout=10
            )
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as info:
            list(reflection_pb2_grpc.ServerReflectionStub(ch).ServerReflectionInfo(iter([request]), timeout=10))
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_sigterm_turns_the_health_port_not_serving_then_exits_0(tmp_path: Path, pki: Pki) -> None:
    evaluator = launch(
        tmp_path / "eval.db",
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca),
        "--health-port", "0",
    )
    try:
        with grpc.insecure_channel(evaluator.health_target) as ch:
            stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=60)
            assert next(stream).status == SERVING
            evaluator.proc.send_signal(signal.SIGTERM)
            statuses = []
            with pytest.raises(grpc.RpcError):  # the stream ends when the health port closes
                for reply in stream:
                    statuses.append(reply.status)
            assert statuses and statuses[0] == NOT_SERVING, statuses
        assert evaluator.proc.wait(timeout=30) == 0, evaluator.log.read_text()
        with grpc.insecure_channel(evaluator.health_target) as ch, pytest.raises(grpc.RpcError) as info:
            health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=2)
        assert info.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        end(evaluator)


def test_without_the_flag_the_ready_line_keeps_its_format(tmp_path: Path) -> None:
    evaluator = launch(tmp_path / "eval.db", "--log-level", "WARNING")
    try:
        assert re.fullmatch(r"gmai-eval serving on 127\.0\.0\.1:\d+ metrics 127\.0\.0\.1:\d+", evaluator.line)
        assert not HEALTH_RE.search(evaluator.line)
    finally:
        end(evaluator)
    assert evaluator.proc.returncode == 0


def test_health_port_off_loopback_is_logged_as_plaintext(tmp_path: Path) -> None:
    evaluator = launch(tmp_path / "eval.db", "--health-port", "0", "--health-host", "0.0.0.0")
    try:
        assert evaluator.health_target.startswith("0.0.0.0:")
        port = evaluator.health_target.rsplit(":", 1)[1]
        with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == SERVING
    finally:
        end(evaluator)
    assert "health-only port on 0.0.0.0 is plaintext" in evaluator.log.read_text()


def test_health_port_out_of_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["serve", "--health-port", "-2"])
    assert result.exit_code == 2
    assert "--health-port" in result.output
