"""GrpcModelClient against real servers: error mapping, health, info, balancing, TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import grpc.aio
import pytest
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from gmai_eval.server.errors import (
    InvalidArgument,
    ModelCallError,
    ModelInputRejected,
    ModelOverloaded,
    ModelTimeout,
    ModelUnavailable,
)
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import ModelSpec, TlsSettings
from gmai_eval.server.runs.model_client import GrpcModelClient, channel_options
from gmai_eval.server.tls import ServerTls, server_credentials
from prometheus_client import CollectorRegistry

from tests._runs_helpers import ScriptedModel, spec_for, start_model_server
from tests._service_helpers import make_pki


class CodeModel(model_pb2_grpc.ModelServiceServicer):
    """Aborts with the status code named by the question text ("SLOW" sleeps)."""

    async def AnswerVQA(
        self, request: model_pb2.AnswerVQARequest, context: grpc.aio.ServicerContext
    ) -> model_pb2.AnswerVQAResponse:
        if request.question == "SLOW":
            await asyncio.sleep(5)
        await context.abort(grpc.StatusCode[request.question], f"told to fail with {request.question}")
        raise AssertionError("unreachable")


def request(question: str = "q") -> model_pb2.AnswerVQARequest:
    return model_pb2.AnswerVQARequest(
        question_id="q-1", question=question, options=[model_pb2.Option(label="A", text="a")]
    )


@pytest.fixture
async def code_server():
    server = grpc.aio.server()
    model_pb2_grpc.add_ModelServiceServicer_to_server(CodeModel(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("UNAVAILABLE", ModelUnavailable),
        ("CANCELLED", ModelUnavailable),
        ("RESOURCE_EXHAUSTED", ModelOverloaded),
        ("INVALID_ARGUMENT", ModelInputRejected),
        ("INTERNAL", ModelCallError),
        ("FAILED_PRECONDITION", ModelCallError),
        ("PERMISSION_DENIED", ModelCallError),
    ],
)
async def test_error_mapping(code_server: str, code: str, cls: type[ModelCallError]) -> None:
    metrics = EvaluatorMetrics(CollectorRegistry())
    client = GrpcModelClient(ModelSpec("m", (code_server,)), metrics)
    try:
        with pytest.raises(ModelCallError) as info:
            await client.answer(request(code), deadline_s=5)
    finally:
        await client.close()
    err = info.value
    assert type(err) is cls
    assert err.code == code and err.endpoint == code_server
    assert f"told to fail with {code}" in str(err) and code_server in str(err)
    assert err.retryable == (code in ("UNAVAILABLE", "CANCELLED", "RESOURCE_EXHAUSTED"))
    assert metrics.registry.get_sample_value(
        "gmai_eval_answer_requests_total", {"model": "m", "code": code}
    ) == 1


async def test_deadline_maps_to_timeout(code_server: str) -> None:
    client = GrpcModelClient(ModelSpec("m", (code_server,)))
    try:
        with pytest.raises(ModelTimeout) as info:
            await client.answer(request("SLOW"), deadline_s=0.2)
    finally:
        await client.close()
    assert info.value.code == "DEADLINE_EXCEEDED" and info.value.retryable


async def test_unreachable_is_unavailable() -> None:
    srv = await start_model_server()
    await srv.stop()
    client = GrpcModelClient(spec_for("m", srv))
    try:
        with pytest.raises(ModelUnavailable):
            await client.answer(request(), deadline_s=2)
        assert await client.health() is False
    finally:
        await client.close()


async def test_health_info_and_answer() -> None:
    metrics = EvaluatorMetrics(CollectorRegistry())
    srv = await start_model_server(ScriptedModel(name="scripted"))
    client = GrpcModelClient(spec_for("m", srv), metrics)
    try:
        assert await client.health() is True
        info = await client.info()
        resp = await client.answer(request("Which?"), deadline_s=5)
    finally:
        await client.close()
        await srv.stop()
    assert info.name == "scripted" and info.protocol_version == "gmai_eval.model.v1"
    assert resp.question_id == "q-1" and list(resp.selected_labels) == ["A"]
    assert metrics.registry.get_sample_value("gmai_eval_model_up", {"model": "m"}) == 1
    assert metrics.registry.get_sample_value(
        "gmai_eval_answer_request_size_bytes_count", {"model": "m"}
    ) == 1


async def test_not_serving_health() -> None:
    srv = await start_model_server(serving=False)
    client = GrpcModelClient(spec_for("m", srv))
    try:
        assert await client.health() is False
    finally:
        await client.close()
        await srv.stop()


async def test_round_robin_over_replicas_and_skip_dead_one() -> None:
    servers = [await start_model_server() for _ in range(3)]
    client = GrpcModelClient(spec_for("m", *servers))
    try:
        for _ in range(30):
            await client.answer(request(), deadline_s=5)
        assert [s.model.calls for s in servers] == [10, 10, 10]
        await servers[1].stop(0)
        failures = 0
        for _ in range(30):
            try:
                await client.answer(request(), deadline_s=5)
            except ModelUnavailable:
                failures += 1
        # The dead replica fails once, then is skipped for a while.
        assert failures <= 2
        assert servers[0].model.calls + servers[2].model.calls + failures == 50
    finally:
        await client.close()
        for s in servers:
            await s.stop(0)


def test_channel_options_are_deliberate() -> None:
    opts = dict(channel_options(tls=TlsSettings(), balanced=False))
    assert opts["grpc.max_send_message_length"] == 64 * 1024 * 1024
    assert opts["grpc.max_receive_message_length"] == 1024 * 1024  # responses: labels and 64 KiB of text
    assert opts["grpc.enable_retries"] == 0
    assert opts["grpc.keepalive_time_ms"] == 60_000
    balanced = dict(channel_options(tls=TlsSettings(ca_file="x", server_name="h"), balanced=True))
    assert "round_robin" in str(balanced["grpc.service_config"])
    assert balanced["grpc.ssl_target_name_override"] == "h"


async def test_dns_target_with_round_robin() -> None:
    srv = await start_model_server()
    client = GrpcModelClient(ModelSpec("m", (f"dns:///localhost:{srv.port}",)))
    try:
        # localhost may resolve to ::1 first; the round_robin policy tries every address.
        resp = await client.answer(request(), deadline_s=5)
    finally:
        await client.close()
        await srv.stop()
    assert resp.question_id == "q-1"


async def test_large_request_within_limits() -> None:
    srv = await start_model_server()
    client = GrpcModelClient(spec_for("m", srv))
    req = request()
    req.images.append(model_pb2.Image(data=b"x" * (20 * 1024 * 1024), media_type="image/png"))
    try:
        resp = await client.answer(req, deadline_s=20)
    finally:
        await client.close()
        await srv.stop()
    assert resp.question_id == "q-1"


async def test_mutual_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    creds = server_credentials(
        ServerTls(str(pki.server_cert), str(pki.server_key), client_ca_file=str(pki.ca))
    )
    srv = await start_model_server(credentials=creds)
    good = TlsSettings(str(pki.ca), str(pki.client_cert), str(pki.client_key))
    renamed = TlsSettings(str(pki.ca), str(pki.client_cert), str(pki.client_key), "localhost")
    wrong_name = TlsSettings(str(pki.ca), str(pki.client_cert), str(pki.client_key), "evil.example")
    no_client_cert = TlsSettings(ca_file=str(pki.ca))
    try:
        for tls, ok in ((good, True), (renamed, True), (wrong_name, False), (no_client_cert, False)):
            client = GrpcModelClient(ModelSpec("m", (srv.endpoint,), tls=tls))
            try:
                if ok:
                    assert (await client.answer(request(), deadline_s=5)).question_id == "q-1"
                else:
                    with pytest.raises(ModelUnavailable):
                        await client.answer(request(), deadline_s=5)
            finally:
                await client.close()
    finally:
        await srv.stop()


def test_tls_file_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"missing\.pem"):
        GrpcModelClient(ModelSpec("m", ("127.0.0.1:1",), tls=TlsSettings(ca_file=str(tmp_path / "missing.pem"))))
    with pytest.raises(InvalidArgument, match="no endpoint"):
        GrpcModelClient(ModelSpec("m", ()))
