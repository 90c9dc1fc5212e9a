"""Crash and shutdown of a real evaluator mid-run: resume with exact counts, graceful drain."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.attempts import list_attempts
from gmai_eval.server.store.database import Database
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests._run_checks import final_by_rotation, wait_run
from tests._service_helpers import (
    DeterministicModel,
    ServeProcess,
    model_service,
    running_server,
    start_server,
    write_benchmark_tsv,
)

N = 40
SERVICE = "gmai_eval.evaluator.v1.EvaluatorService"


@pytest.fixture
def model() -> Iterator[tuple[str, DeterministicModel]]:
    with model_service(delay_s=0.0) as pair:
        yield pair


def _prepare(server: ServeProcess, endpoint: str, tsv: Path) -> pb_grpc.EvaluatorServiceStub:
    channel = grpc.insecure_channel(server.target)
    stub = pb_grpc.EvaluatorServiceStub(channel)

    def upload() -> Iterator[pb.ImportBenchmarkRequest]:
        yield pb.ImportBenchmarkRequest(header=pb.ImportHeader(name="crash-bench", file_names=[tsv.name]))
        yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name=tsv.name, data=tsv.read_bytes()))

    stub.ImportBenchmark(upload(), timeout=60)
    stub.RegisterModel(pb.RegisterModelRequest(model=pb.Model(name="det", endpoints=[endpoint])), timeout=10)
    return stub


def _final_labels(db_path: Path, run_id: str) -> dict[int, tuple[str, ...]]:
    """Labels of each question's final attempt; asserts exactly one final attempt each."""
    with Database(db_path) as db:
        attempts = list_attempts(db, run_id)
    finals: dict[int, tuple[str, ...]] = {}
    for a in attempts:
        if a.final:
            assert a.idx not in finals, f"question {a.idx} has two final attempts"
            finals[a.idx] = a.labels
    return finals


def _run(stub: pb_grpc.EvaluatorServiceStub, concurrency: int, circular: bool = False) -> str:
    params = pb.RunParameters(concurrency=concurrency, deadline_seconds=10, circular=circular)
    return stub.CreateRun(pb.CreateRunRequest(model="det", benchmark="crash-bench", parameters=params), timeout=60).run.id


def test_sigkill_mid_run_resumes_with_exact_counts_and_same_labels(
    tmp_path: Path, model: tuple[str, DeterministicModel]
) -> None:
    endpoint, servicer = model
    db_path = tmp_path / "eval.db"
    tsv = write_benchmark_tsv(tmp_path / "crash.tsv", n=N)

    first = start_server(db_path)
    try:
        stub = _prepare(first, endpoint, tsv)
        servicer.delay_s = 0.05
        run_id = _run(stub, concurrency=2)
        partial = wait_run(stub, run_id, lambda r: r.progress.done >= 8)
        assert partial.progress.done < N, "the run finished before the kill; slow the model down"
        first.stop(signal.SIGKILL)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    assert first.proc.returncode == -signal.SIGKILL

    servicer.delay_s = 0.0
    with running_server(db_path) as second:
        with grpc.insecure_channel(second.target) as channel:
            stub = pb_grpc.EvaluatorServiceStub(channel)
            done = wait_run(stub, run_id, lambda r: r.state == pb.RUN_STATE_SUCCEEDED)
            assert (done.progress.total, done.progress.done, done.progress.errors) == (N, N, 0)
            # An uninterrupted run of the same deterministic model, for comparison.
            reference_id = _run(stub, concurrency=4)
            reference = wait_run(stub, reference_id, lambda r: r.state == pb.RUN_STATE_SUCCEEDED)
            assert reference.progress.done == N
        assert second.stop() == 0

    resumed = _final_labels(db_path, run_id)
    uninterrupted = _final_labels(db_path, reference_id)
    assert len(resumed) == N
    assert resumed == uninterrupted
    assert f"run {run_id} resumed: at start-up, from running" in second.log_text()


def test_sigkill_mid_circular_run_resumes_every_rotation_exactly(
    tmp_path: Path, model: tuple[str, DeterministicModel]
) -> None:
    endpoint, servicer = model
    db_path = tmp_path / "eval.db"
    tsv = write_benchmark_tsv(tmp_path / "crash.tsv", n=N)

    first = start_server(db_path)
    try:
        stub = _prepare(first, endpoint, tsv)
        servicer.delay_s = 0.05
        run_id = _run(stub, concurrency=2, circular=True)
        partial = wait_run(stub, run_id, lambda r: r.progress.done >= 8)
        asks = partial.progress.total
        assert partial.progress.done < asks, "the run finished before the kill; slow the model down"
        first.stop(signal.SIGKILL)
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    assert first.proc.returncode == -signal.SIGKILL
    before = final_by_rotation(db_path, run_id)

    servicer.delay_s = 0.0
    with running_server(db_path) as second:
        with grpc.insecure_channel(second.target) as channel:
            stub = pb_grpc.EvaluatorServiceStub(channel)
            done = wait_run(stub, run_id, lambda r: r.state == pb.RUN_STATE_SUCCEEDED)
            assert (done.progress.total, done.progress.done, done.progress.errors) == (asks, asks, 0)
            assert done.parameters.circular  # a resume keeps the mode
            reference_id = _run(stub, concurrency=4, circular=True)
            wait_run(stub, reference_id, lambda r: r.state == pb.RUN_STATE_SUCCEEDED)
        assert second.stop() == 0

    resumed = final_by_rotation(db_path, run_id)
    uninterrupted = final_by_rotation(db_path, reference_id)
    # Every rotation of every question, each answered exactly once, as in a run never killed.
    assert len(resumed) == asks > N
    assert resumed == uninterrupted
    assert all(resumed[key] == labels for key, labels in before.items())
    assert len({idx for idx, _ in resumed}) == N


def test_sigterm_drains_marks_interrupted_and_exits_zero(
    tmp_path: Path, model: tuple[str, DeterministicModel]
) -> None:
    endpoint, servicer = model
    db_path = tmp_path / "eval.db"
    tsv = write_benchmark_tsv(tmp_path / "drain.tsv", n=N)
    server = start_server(db_path)
    statuses: list[int] = []
    try:
        stub = _prepare(server, endpoint, tsv)
        servicer.delay_s = 0.1
        run_id = _run(stub, concurrency=1)
        wait_run(stub, run_id, lambda r: r.progress.done >= 2)

        health_channel = grpc.insecure_channel(server.target)
        watch = health_pb2_grpc.HealthStub(health_channel).Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        first_status = threading.Event()

        def collect() -> None:
            try:
                for resp in watch:
                    statuses.append(resp.status)
                    first_status.set()
            except grpc.RpcError:
                pass

        collector = threading.Thread(target=collect, daemon=True)
        collector.start()
        assert first_status.wait(10)

        watch_end: list[tuple[grpc.StatusCode, str]] = []
        watching = threading.Event()

        def follow_run() -> None:
            try:
                for _ in stub.WatchRun(pb.WatchRunRequest(id=run_id)):
                    watching.set()
                watch_end.append((grpc.StatusCode.OK, ""))
            except grpc.RpcError as exc:
                watch_end.append((exc.code(), exc.details()))  # type: ignore[attr-defined]

        follower = threading.Thread(target=follow_run, daemon=True)
        follower.start()
        assert watching.wait(10)
        assert server.stop(signal.SIGTERM, timeout=60) == 0
        collector.join(10)
        follower.join(10)
        assert len(watch_end) == 1 and watch_end[0][0] is grpc.StatusCode.UNAVAILABLE
        assert "interrupted by an evaluator shutdown" in watch_end[0][1]
        health_channel.close()
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
    assert statuses[0] == health_pb2.HealthCheckResponse.SERVING
    assert health_pb2.HealthCheckResponse.NOT_SERVING in statuses

    with Database(db_path) as db:
        row = run_store.get_run(db, run_id)
    assert row.state == "interrupted"
    interrupted = _final_labels(db_path, run_id)
    assert 2 <= len(interrupted) < N

    servicer.delay_s = 0.0
    with running_server(db_path) as again, grpc.insecure_channel(again.target) as channel:
        stub = pb_grpc.EvaluatorServiceStub(channel)
        done = wait_run(stub, run_id, lambda r: r.state == pb.RUN_STATE_SUCCEEDED)
        assert (done.progress.total, done.progress.done) == (N, N)
    final = _final_labels(db_path, run_id)
    assert len(final) == N
    assert all(final[i] == labels for i, labels in interrupted.items())
