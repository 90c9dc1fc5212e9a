"""The model SDK over real channels: AnswerVQA, GetModelInfo, health, reflection, errors, drain."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from gmai_eval.clients.sdk import (
    SERVICE_NAME,
    Answer,
    Model,
    Question,
    UpstreamTimeout,
    serving,
)
from gmai_eval.model.v1 import model_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests._sdk_helpers import health_status, make_request, model_stub, until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def answer_by_text(q: Question) -> Answer:
    """Picks the option whose text appears in the question; probabilities favour it."""
    chosen = next((o.label for o in q.options if o.text in q.question), q.labels[-1])
    rest = (1.0 - 0.7) / (len(q.options) - 1)
    return Answer(
        label=chosen, probabilities={o.label: 0.7 if o.label == chosen else rest for o in q.options}
    )


async def test_function_model_answers_over_a_real_channel() -> None:
    async with (
        serving(
            answer_by_text, name="text-model", version="1.2", capabilities=["option_scores"]
        ) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        stub = model_stub(channel)
        reply = await stub.AnswerVQA(
            make_request("q-7", question="Is this the spleen?", request_id="attempt-1"), timeout=10
        )
        info = await stub.GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=5)
    assert reply.question_id == "q-7"
    assert reply.request_id == "attempt-1"
    assert list(reply.selected_labels) == ["B"]
    assert reply.status == model_pb2.ANSWER_STATUS_ANSWERED
    assert {s.label: round(s.probability, 3) for s in reply.option_scores} == {
        "A": 0.15,
        "B": 0.7,
        "C": 0.15,
    }
    assert reply.model_version == "1.2"
    assert reply.usage.batch_size == 1
    assert info.name == "text-model"
    assert info.version == "1.2"
    assert info.protocol_version == "gmai_eval.model.v1"
    assert info.max_request_bytes == 64 * 1024 * 1024
    assert info.max_batch_size == 1
    assert list(info.capabilities) == ["option_scores"]


class GatedModel(Model):
    """load() blocks until the test opens the gate."""

    name = "gated"
    version = "3"
    capabilities = ("option_scores",)

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.loaded_in: str = ""

    def load(self) -> None:
        self.gate.wait(10)
        self.loaded_in = threading.current_thread().name

    def weights_digest(self) -> str:
        return "sha256:" + "ab" * 32

    def predict(self, question: Question) -> Answer:
        return Answer(label=question.labels[0], probabilities={question.labels[0]: 1.0})


async def test_health_goes_not_serving_to_serving_after_load_and_reflection_lists_service() -> None:
    model = GatedModel()
    async with (
        serving(model, wait_ready=False, max_batch_size=4, max_queue_delay_ms=1) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        assert await health_status(channel, SERVICE_NAME) == NOT_SERVING
        assert await health_status(channel, "") == NOT_SERVING
        with pytest.raises(grpc.aio.AioRpcError) as early:
            await model_stub(channel).AnswerVQA(make_request(), timeout=5)
        assert early.value.code() == grpc.StatusCode.UNAVAILABLE
        with pytest.raises(grpc.aio.AioRpcError) as early_info:
            await model_stub(channel).GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=5)
        assert early_info.value.code() == grpc.StatusCode.UNAVAILABLE

        model.gate.set()
        await server.wait_loaded()
        assert await health_status(channel, SERVICE_NAME) == SERVING
        assert await health_status(channel, "") == SERVING
        info = await model_stub(channel).GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=5)
        reply = await model_stub(channel).AnswerVQA(make_request(), timeout=5)

        refl = reflection_pb2_grpc.ServerReflectionStub(channel)
        services: list[str] = []
        async for response in refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            services = [s.name for s in response.list_services_response.service]
    assert model.loaded_in.startswith("gmai-model")  # load() ran in the worker thread
    assert info.weights_digest == "sha256:" + "ab" * 32
    assert set(info.capabilities) == {"option_scores", "dynamic_batching"}
    assert info.max_batch_size == 4
    assert list(reply.selected_labels) == ["A"]
    assert SERVICE_NAME in services
    assert "grpc.health.v1.Health" in services


def wrong_label(q: Question) -> Answer:
    return Answer(label="Z")


def crashing(q: Question) -> Answer:
    raise RuntimeError("CUDA out of memory (pretend)")


def upstream_slow(q: Question) -> Answer:
    raise UpstreamTimeout("backend took too long")


@pytest.mark.parametrize(
    ("fn", "request_", "code", "needle"),
    [
        (answer_by_text, make_request(options=()), grpc.StatusCode.INVALID_ARGUMENT, "no options"),
        (
            answer_by_text,
            make_request(image=b"not an image"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "cannot be decoded",
        ),
        (
            answer_by_text,
            make_request(image=b"GIF89a?", media_type="image/gif"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "image 0 (image/gif) cannot be decoded",
        ),
        (answer_by_text, make_request(image=b""), grpc.StatusCode.INVALID_ARGUMENT, "is empty"),
        (
            answer_by_text,
            make_request(options=(("A", "x"), ("A", "y"))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "repeats option labels",
        ),
        (
            answer_by_text,
            make_request(options=(("A", "x"), ("", "y"))),
            grpc.StatusCode.INVALID_ARGUMENT,
            "an option without a label",
        ),
        (wrong_label, make_request(), grpc.StatusCode.INTERNAL, "not among the options"),
        (crashing, make_request(), grpc.StatusCode.INTERNAL, "CUDA out of memory"),
        (upstream_slow, make_request(), grpc.StatusCode.DEADLINE_EXCEEDED, "took too long"),
    ],
)
async def test_errors_map_to_documented_status_codes(
    fn: object, request_: model_pb2.AnswerVQARequest, code: grpc.StatusCode, needle: str
) -> None:
    async with (
        serving(fn, name="m") as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):  # type: ignore[arg-type]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await model_stub(channel).AnswerVQA(request_, timeout=10)
    assert err.value.code() == code
    assert needle in (err.value.details() or "")


class BrokenModel(Model):
    name = "broken"

    def load(self) -> None:
        raise FileNotFoundError("weights.pt")


async def test_failed_load_reports_failed_precondition_and_raises() -> None:
    async with serving(BrokenModel(), wait_ready=False) as server:
        with pytest.raises(RuntimeError, match=r"weights\.pt"):
            await server.wait_loaded()
        async with grpc.aio.insecure_channel(server.address) as channel:
            assert await health_status(channel, SERVICE_NAME) == NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await model_stub(channel).AnswerVQA(make_request(), timeout=5)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_metrics_endpoint_counts_requests() -> None:
    async with serving(answer_by_text, name="m", metrics_port=0) as server:
        async with grpc.aio.insecure_channel(server.address) as channel:
            for i in range(3):
                await model_stub(channel).AnswerVQA(make_request(f"q{i}"), timeout=5)
        assert server.metrics_port
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        body = await asyncio.to_thread(
            lambda: urllib.request.urlopen(url, timeout=5).read().decode()
        )
    assert 'gmai_model_requests_total{code="OK",method="AnswerVQA"} 3.0' in body
    assert "gmai_model_batch_size_count 3.0" in body
    assert "gmai_model_ready 1.0" in body
    assert 'gmai_model_info{name="m"' in body


def test_sigterm_drains_in_flight_call_then_exits(tmp_path: Path) -> None:
    port_file = tmp_path / "port"
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests._sdk_helpers", "slow", str(port_file)],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "model service did not start"
            time.sleep(0.05)
        address = f"127.0.0.1:{port_file.read_text()}"
        with grpc.insecure_channel(address) as channel:
            stub = model_stub(channel)  # type: ignore[arg-type]
            future = stub.AnswerVQA.future(make_request("in-flight"), timeout=15)
            started = Path(f"{port_file}.started")
            while not started.exists():  # the call reaches the model, which holds it
                assert not future.done(), future.exception()
                assert time.monotonic() < deadline, "the call never reached the model"
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGTERM)
            reply = future.result()
        assert reply.question_id == "in-flight"
        assert proc.wait(timeout=20) == 0
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
        assert "gmai-model serving on 127.0.0.1:" in out
        assert "draining" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_mutual_tls_accepts_the_client_certificate_and_refuses_others(tmp_path: Path) -> None:
    from gmai_eval.clients.sdk import TlsFiles

    from tests._service_helpers import make_pki

    pki = make_pki(tmp_path / "pki")
    tls = TlsFiles(pki.server_cert, pki.server_key, client_ca_file=pki.ca)

    def creds(cert: Path, key: Path) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            pki.ca.read_bytes(), key.read_bytes(), cert.read_bytes()
        )

    options = [("grpc.ssl_target_name_override", "localhost")]
    async with serving(answer_by_text, name="m", tls=tls) as server:
        async with grpc.aio.secure_channel(
            server.address, creds(pki.client_cert, pki.client_key), options=options
        ) as channel:
            reply = await model_stub(channel).AnswerVQA(make_request("tls"), timeout=10)
        async with grpc.aio.secure_channel(
            server.address, creds(pki.rogue_cert, pki.rogue_key), options=options
        ) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await model_stub(channel).AnswerVQA(make_request(), timeout=5)
    assert reply.question_id == "tls"
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_files_errors_name_the_file(tmp_path: Path) -> None:
    from gmai_eval.clients.sdk import TlsFileError, TlsFiles
    from gmai_eval.clients.sdk.tls import server_credentials

    not_pem = tmp_path / "cert.pem"
    not_pem.write_text("hello")
    with pytest.raises(TlsFileError, match=r"cert\.pem: not a PEM certificate"):
        server_credentials(TlsFiles(not_pem, not_pem))
    with pytest.raises(TlsFileError, match=r"missing\.key: file not found"):
        server_credentials(TlsFiles(tmp_path / "missing.key", not_pem))


async def test_max_connection_age_and_receive_limit_are_server_options() -> None:
    from gmai_eval.clients.sdk import ServeOptions

    options = dict(ServeOptions(max_connection_age_ms=30_000).grpc_options())
    assert options["grpc.max_connection_age_ms"] == 30_000
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    big = make_request(
        "big", image=b"\x89PNG" + b"\0" * (40 * 1024 * 1024)
    )  # over gRPC's 4 MiB default
    async with (
        serving(answer_by_text, name="m") as server,
        grpc.aio.insecure_channel(
            server.address, options=[("grpc.max_send_message_length", -1)]
        ) as channel,
    ):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await model_stub(channel).AnswerVQA(big, timeout=20)
    # Received (40 MiB < 64 MiB), then rejected as an undecodable image, not as too large.
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_gmai_model_cli_serves_random_prints_ready_line_and_drains(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gmai_eval.clients.reference.cli",
            "serve",
            "random",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--seed",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("gmai-model serving on 127.0.0.1:"), line + (
            proc.stderr.read() if proc.stderr else ""
        )
        address = line.split()[3]
        assert " metrics 127.0.0.1:" in line
        with grpc.insecure_channel(address) as channel:
            info = model_stub(channel).GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=5)  # type: ignore[arg-type]
        assert info.name == "random-baseline"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_drain_reports_not_serving_and_finishes_in_flight_calls() -> None:
    release = threading.Event()

    def held(q: Question) -> Answer:
        release.wait(10)
        return Answer(label=q.labels[0])

    async with (
        serving(held, name="held") as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        in_flight = asyncio.ensure_future(
            model_stub(channel).AnswerVQA(make_request("kept"), timeout=10)
        )
        await until(  # the call reached the servicer
            lambda: (
                (server.metrics.registry.get_sample_value("gmai_model_inflight_requests") or 0) >= 1
            )
        )
        # Watch health on the same connection; the server stops accepting new calls.
        from grpc_health.v1 import health_pb2_grpc

        watch = health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=10
        )
        first = await watch.read()
        drain = asyncio.ensure_future(server.drain(grace_s=10))
        second = await watch.read()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await model_stub(channel).AnswerVQA(make_request("late"), timeout=5)
        release.set()
        reply = await in_flight
        await drain
    assert first.status == SERVING
    assert second.status == NOT_SERVING
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "draining" in (refused.value.details() or "")
    assert reply.question_id == "kept"
    assert server.state.value == "draining"
