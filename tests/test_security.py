"""TLS, mutual TLS and bearer tokens on a real ``gmai-eval serve`` subprocess."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.api.auth import (
    READ_ONLY_METHODS,
    Role,
    TokenConfig,
    bearer_token,
    check,
    load_token,
)
from gmai_eval.server.errors import InvalidArgument, PermissionDenied, Unauthenticated
from gmai_eval.server.tls import ServerTls, channel_credentials, server_credentials
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests._service_helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    Pki,
    ServeProcess,
    bearer,
    make_pki,
    running_server,
    serve_command,
)

PREFIX = "/gmai_eval.evaluator.v1.EvaluatorService/"

# --- pure checks ----------------------------------------------------------------------


def test_token_roles_and_rules() -> None:
    tokens = TokenConfig(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN)
    assert tokens.role_of(ADMIN_TOKEN) is Role.ADMIN
    assert tokens.role_of(READ_TOKEN) is Role.READ
    assert tokens.role_of(ADMIN_TOKEN[:-1]) is None
    assert check(tokens, PREFIX + "CreateRun", bearer(ADMIN_TOKEN)) is Role.ADMIN
    assert check(tokens, PREFIX + "ListRuns", bearer(READ_TOKEN)) is Role.READ
    with pytest.raises(PermissionDenied, match="CreateRun"):
        check(tokens, PREFIX + "CreateRun", bearer(READ_TOKEN))
    with pytest.raises(Unauthenticated):
        check(tokens, PREFIX + "ListRuns", ())
    with pytest.raises(Unauthenticated):
        check(tokens, PREFIX + "ListRuns", (("authorization", f"Basic {ADMIN_TOKEN}"),))
    # Health and reflection stay open; no tokens configured means no checks.
    assert check(tokens, "/grpc.health.v1.Health/Check", ()) is None
    assert check(TokenConfig(), PREFIX + "CreateRun", ()) is None
    assert bearer_token((("Authorization", "bearer  abc "),)) == "abc"


def test_read_only_set_matches_the_proto() -> None:
    methods = set(pb.DESCRIPTOR.services_by_name["EvaluatorService"].methods_by_name)
    assert methods >= READ_ONLY_METHODS
    readable = {m for m in methods if m.startswith(("Get", "List", "Watch", "Compare"))} | {"ExportRun"}
    assert readable == READ_ONLY_METHODS
    assert {"CreateRun", "CancelRun", "ResumeRun", "RescoreRun", "RegisterModel", "ImportBenchmark", "DeleteRun",
            "RemoveBenchmark"} <= (
        methods - READ_ONLY_METHODS
    )


def test_token_loading(tmp_path: Path) -> None:
    f = tmp_path / "admin.token"
    f.write_text(ADMIN_TOKEN + "\n")
    assert load_token(str(f), "ignored-because-the-file-wins", "admin") == ADMIN_TOKEN
    assert load_token(None, READ_TOKEN, "read") == READ_TOKEN
    assert load_token(None, None, "read") == ""
    with pytest.raises(InvalidArgument, match="at least 16"):
        load_token(None, "short", "admin")
    with pytest.raises(InvalidArgument, match=str(tmp_path / "missing")):
        load_token(str(tmp_path / "missing"), None, "admin")


def test_tls_files_are_checked(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    assert server_credentials(ServerTls(str(pki.server_cert), str(pki.server_key), str(pki.ca))) is not None
    with pytest.raises(InvalidArgument, match="holds a certificate, not a PEM private key"):
        server_credentials(ServerTls(str(pki.server_cert), str(pki.server_cert)))
    with pytest.raises(InvalidArgument, match=r"server certificate .*nope\.pem: file not found"):
        server_credentials(ServerTls(str(tmp_path / "nope.pem"), str(pki.server_key)))
    with pytest.raises(InvalidArgument, match="certificate and key do not match"):
        server_credentials(ServerTls(str(pki.server_cert), str(pki.client_key)))
    with pytest.raises(InvalidArgument, match="give both"):
        channel_credentials(str(pki.ca), cert_file=str(pki.client_cert))


# --- a real server with mTLS and tokens -----------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def mtls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("mtls")
    token_file = root / "admin.token"
    token_file.write_text(ADMIN_TOKEN)
    args = (
        "--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key),
        "--tls-client-ca", str(pki.ca), "--admin-token-file", str(token_file),
    )
    with running_server(root / "eval.db", *args, env={"GMAI_EVAL_READ_TOKEN": READ_TOKEN}) as proc:
        yield proc


def _channel(server: ServeProcess, ca: Path, cert: Path | None = None, key: Path | None = None) -> grpc.Channel:
    creds = channel_credentials(str(ca), str(cert or ""), str(key or ""))
    return grpc.secure_channel(f"localhost:{server.port}", creds)


def _err(fn, request, **kw) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as err:
        fn(request, timeout=10, **kw)
    return err.value


def test_mtls_with_the_right_ca_and_client_certificate_works(mtls_server: ServeProcess, pki: Pki) -> None:
    with _channel(mtls_server, pki.ca, pki.client_cert, pki.client_key) as ch:
        stub = pb_grpc.EvaluatorServiceStub(ch)
        assert list(stub.ListRuns(pb.ListRunsRequest(), timeout=10, metadata=bearer(ADMIN_TOKEN)).runs) == []


def test_client_without_a_certificate_is_refused(mtls_server: ServeProcess, pki: Pki) -> None:
    with _channel(mtls_server, pki.ca) as ch:
        err = _err(pb_grpc.EvaluatorServiceStub(ch).ListRuns, pb.ListRunsRequest(), metadata=bearer(ADMIN_TOKEN))
    assert err.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_client_certificate_from_another_ca_is_refused(mtls_server: ServeProcess, pki: Pki) -> None:
    with _channel(mtls_server, pki.ca, pki.rogue_cert, pki.rogue_key) as ch:
        err = _err(pb_grpc.EvaluatorServiceStub(ch).ListRuns, pb.ListRunsRequest(), metadata=bearer(ADMIN_TOKEN))
    assert err.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_client_trusting_another_ca_does_not_connect(mtls_server: ServeProcess, pki: Pki) -> None:
    with _channel(mtls_server, pki.other_ca, pki.client_cert, pki.client_key) as ch:
        err = _err(pb_grpc.EvaluatorServiceStub(ch).ListRuns, pb.ListRunsRequest(), metadata=bearer(ADMIN_TOKEN))
    assert err.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_plaintext_client_cannot_talk_to_the_tls_port(mtls_server: ServeProcess) -> None:
    with grpc.insecure_channel(mtls_server.target) as ch:
        err = _err(pb_grpc.EvaluatorServiceStub(ch).ListRuns, pb.ListRunsRequest(), metadata=bearer(ADMIN_TOKEN))
    assert err.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_tokens_over_mtls(mtls_server: ServeProcess, pki: Pki) -> None:
    with _channel(mtls_server, pki.ca, pki.client_cert, pki.client_key) as ch:
        stub = pb_grpc.EvaluatorServiceStub(ch)
        assert _err(stub.ListRuns, pb.ListRunsRequest()).code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        wrong = _err(stub.ListRuns, pb.ListRunsRequest(), metadata=bearer("x" * 30))
        assert wrong.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        # The read-only token reads ...
        assert stub.ListRuns(pb.ListRunsRequest(), timeout=10, metadata=bearer(READ_TOKEN)) is not None
        assert stub.ListModels(pb.ListModelsRequest(), timeout=10, metadata=bearer(READ_TOKEN)) is not None
        # ... but may not mutate.
        create = pb.CreateRunRequest(model="m", benchmark="b")
        denied = _err(stub.CreateRun, create, metadata=bearer(READ_TOKEN))
        assert denied.code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        register = pb.RegisterModelRequest(model=pb.Model(name="m", endpoints=["127.0.0.1:1"]))
        assert _err(stub.RegisterModel, register, metadata=bearer(READ_TOKEN)).code() is grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
        # Streams are guarded too.
        with pytest.raises(grpc.RpcError) as watch:
            list(stub.WatchRun(pb.WatchRunRequest(id="r-1"), timeout=10))
        assert watch.value.code() is grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
        # The admin token passes authorisation and reaches the service (unknown model).
        passed = _err(stub.CreateRun, create, metadata=bearer(ADMIN_TOKEN))
        assert passed.code() is grpc.StatusCode.NOT_FOUND  # type: ignore[attr-defined]
        # Health stays open.
        health = health_pb2_grpc.HealthStub(ch)
        status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("tls")
    args = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key))
    with running_server(root / "eval.db", *args) as proc:
        yield proc


def test_server_only_tls_needs_just_the_ca(tls_server: ServeProcess, pki: Pki) -> None:
    with _channel(tls_server, pki.ca) as ch:
        assert list(pb_grpc.EvaluatorServiceStub(ch).ListModels(pb.ListModelsRequest(), timeout=10).models) == []
    with _channel(tls_server, pki.other_ca) as ch:
        err = _err(pb_grpc.EvaluatorServiceStub(ch).ListModels, pb.ListModelsRequest())
    assert err.code() is grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]


def test_plaintext_on_a_non_loopback_address_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        serve_command(tmp_path / "eval.db", "--host", "0.0.0.0"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "refusing to serve plaintext on 0.0.0.0" in result.stderr
    assert "Traceback" not in result.stderr


def test_client_ca_without_certificate_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        serve_command(tmp_path / "eval.db", "--tls-client-ca", "ca.pem"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "--tls-client-ca needs --tls-cert" in result.stderr


def test_insecure_flag_allows_plaintext_off_loopback_with_a_warning(tmp_path: Path) -> None:
    with running_server(tmp_path / "eval.db", "--host", "0.0.0.0", "--insecure") as server:
        assert server.host == "0.0.0.0"
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            assert list(pb_grpc.EvaluatorServiceStub(ch).ListRuns(pb.ListRunsRequest(), timeout=10).runs) == []
        assert server.stop() == 0
    log = server.log_text()
    assert "serving plaintext on 0.0.0.0" in log and "no tokens configured" in log
