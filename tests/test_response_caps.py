"""Caps on what a model sends back: 64 KiB of text, 1 MiB per response, memory bounded."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.errors import ModelProtocolError
from gmai_eval.server.runs.contract import MAX_TEXT_BYTES, validate_response
from gmai_eval.server.runs.model_client import MAX_RESPONSE_BYTES
from gmai_eval.server.store.attempts import list_attempts
from gmai_eval.server.store.database import Database

from tests._model_process import start_model_process
from tests._service_helpers import running_server, write_benchmark_tsv


def _pair(text: str) -> tuple[model_pb2.AnswerVQARequest, model_pb2.AnswerVQAResponse]:
    req = model_pb2.AnswerVQARequest(question_id="q1", options=[model_pb2.Option(label="A", text="a")])
    return req, model_pb2.AnswerVQAResponse(question_id="q1", text=text)


def test_text_up_to_64_kib_is_kept_and_longer_is_refused_with_its_size() -> None:
    assert MAX_TEXT_BYTES == 65536 and MAX_RESPONSE_BYTES == 1048576  # as docs/runs.md says
    validate_response(*_pair("x" * 65536), "h:1")
    with pytest.raises(ModelProtocolError, match="answer text is 65537 bytes, over the 65536-byte limit") as err:
        validate_response(*_pair("x" * 65536 + "y"), "h:1")
    assert err.value.code == "TEXT_TOO_LARGE"
    # bytes, not characters: 21,846 three-byte characters are 65,538 bytes
    with pytest.raises(ModelProtocolError, match="65538 bytes"):
        validate_response(*_pair("\u20ac" * 21846), "h:1")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


N = 20
TEN_MB = 10_000_000


@pytest.fixture
def big_model() -> Iterator[str]:
    model = start_model_process(text_bytes=TEN_MB)
    try:
        yield model.endpoint
    finally:
        model.kill()


def test_a_model_answering_10_mb_is_refused_with_its_size_and_rss_stays_bounded(
    tmp_path: Path, big_model: str
) -> None:
    db_path = tmp_path / "e.db"
    tsv = write_benchmark_tsv(tmp_path / "b.tsv", N)
    with running_server(db_path) as server, grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.EvaluatorServiceStub(channel)

        def upload() -> Iterator[pb.ImportBenchmarkRequest]:
            yield pb.ImportBenchmarkRequest(header=pb.ImportHeader(name="bench", file_names=[tsv.name]))
            yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name=tsv.name, data=tsv.read_bytes()))

        stub.ImportBenchmark(upload(), timeout=60)
        stub.RegisterModel(pb.RegisterModelRequest(model=pb.Model(name="big", endpoints=[big_model])), timeout=10)
        before = _rss_kib(server.proc.pid)
        params = pb.RunParameters(concurrency=4, error_tolerance=1.0)
        run_id = stub.CreateRun(
            pb.CreateRunRequest(model="big", benchmark="bench", parameters=params), timeout=60
        ).run.id
        deadline = time.monotonic() + 60
        while (run := stub.GetRun(pb.GetRunRequest(id=run_id), timeout=10).run).state == pb.RUN_STATE_RUNNING:
            assert time.monotonic() < deadline, run
            time.sleep(0.05)
        after = _rss_kib(server.proc.pid)
        report = stub.GetRunReport(pb.GetRunReportRequest(id=run_id), timeout=10)
    print(f"evaluator VmRSS before {before} KiB, after {N} answers of {TEN_MB} bytes {after} KiB")
    assert run.state == pb.RUN_STATE_SUCCEEDED and run.progress.errors == N  # tolerance 1.0: ends, all refused
    [group] = report.errors
    assert group.code == "RESPONSE_TOO_LARGE" and group.count == N
    m = re.fullmatch(
        rf"response from {re.escape(big_model)} is (\d+) bytes, over the evaluator's 1048576-byte limit;"
        " not stored",
        group.message,
    )
    assert m is not None, group.message
    assert TEN_MB < int(m.group(1)) < TEN_MB + 200  # the text plus a few small fields
    # Nothing of the 10 MB is kept, and memory did not grow with it (the old path: +500 MiB).
    with Database(db_path) as db:
        assert all(a.text == "" for a in list_attempts(db, run_id))
    assert after - before < 64 * 1024, f"RSS grew by {(after - before) // 1024} MiB"
    assert db_path.stat().st_size < 8 * 1024 * 1024
