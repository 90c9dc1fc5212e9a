"""Bounded outages: a run waits for its model (sub-state, metric, logs) and fails after max_outage.

The :class:`Outage` bookkeeping runs on an injected clock; the end-to-end tests drive a real
``gmai-eval serve`` process against a model in its own process, killed with SIGKILL.
"""

from __future__ import annotations

import logging
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.runs.outage import Outage

from tests._model_process import start_model_process
from tests._run_checks import wait_run
from tests._service_helpers import ServeProcess, running_server, write_benchmark_tsv


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _outage(clock: FakeClock, events: list[tuple[str, str]]) -> Outage:
    return Outage(
        run_id="r-1", model="m", endpoints=("h1:1", "h2:2"), max_outage_s=300, clock=clock,
        wall=lambda: 1_700_000_000.0, log_every_s=60, on_event=lambda k, m: events.append((k, m)),
    )


def test_outage_starts_lasts_and_ends_on_the_clock(caplog: pytest.LogCaptureFixture) -> None:
    clock, events = FakeClock(), []  # type: ignore[var-annotated]
    out = _outage(clock, events)
    caplog.set_level(logging.WARNING, "gmai_eval.server.runs.outage")
    assert not out.waiting and out.elapsed() == 0
    assert out.unreachable("UNAVAILABLE from h1:1: connection refused") is True
    assert out.unreachable("UNAVAILABLE from h2:2: connection refused") is False  # same outage
    assert out.waiting and [k for k, _ in events] == ["outage_started"]
    clock.now += 59
    out.tick()
    assert len(caplog.records) == 1  # only the start so far
    clock.now += 1
    out.tick()
    assert len(caplog.records) == 2 and "still unreachable after 60 s" in caplog.records[1].getMessage()
    assert "fails in 240 s" in caplog.records[1].getMessage()
    clock.now += 30
    out.tick()  # under a minute since the last line
    assert len(caplog.records) == 2
    out.answered()
    assert not out.waiting and [k for k, _ in events] == ["outage_started", "outage_ended"]
    assert "after 90.0 s" in events[1][1] and "answers again" in caplog.records[2].getMessage()
    out.answered()  # no outage: nothing logged
    assert len(caplog.records) == 3


def test_outage_expires_with_a_reason_naming_endpoints_error_and_time() -> None:
    clock, events = FakeClock(), []  # type: ignore[var-annotated]
    out = _outage(clock, events)
    out.unreachable("UNAVAILABLE from h1:1: first")
    clock.now += 299.9
    assert not out.expired()
    out.unreachable("UNAVAILABLE from h2:2: connection refused")
    clock.now += 0.1
    assert out.expired()
    reason = out.reason()
    # 1_700_000_000 is 2023-11-14T22:13:20Z
    assert "since 2023-11-14T22:13:20+00:00" in reason
    assert "h1:1, h2:2" in reason and "last error: UNAVAILABLE from h2:2: connection refused" in reason
    assert "unreachable for 300 s" in reason and "max_outage 300 s" in reason


# --- a real evaluator against a model process -------------------------------------------


N = 400


@pytest.fixture
def evaluator(tmp_path: Path) -> Iterator[ServeProcess]:
    with running_server(tmp_path / "e.db") as server:
        yield server


def _stub(server: ServeProcess, endpoint: str, tmp_path: Path) -> pb_grpc.EvaluatorServiceStub:
    stub = pb_grpc.EvaluatorServiceStub(grpc.insecure_channel(server.target))
    tsv = write_benchmark_tsv(tmp_path / "b.tsv", N)

    def upload() -> Iterator[pb.ImportBenchmarkRequest]:
        yield pb.ImportBenchmarkRequest(header=pb.ImportHeader(name="bench", file_names=[tsv.name]))
        yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name=tsv.name, data=tsv.read_bytes()))

    stub.ImportBenchmark(upload(), timeout=60)
    stub.RegisterModel(pb.RegisterModelRequest(model=pb.Model(name="det", endpoints=[endpoint])), timeout=10)
    return stub


def _waiting_gauge(server: ServeProcess) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    m = re.search(r'^gmai_eval_run_waiting_for_model\{model="det"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def _gauge_settles(server: ServeProcess, value: float, timeout: float = 10) -> None:
    """Poll the waiting gauge until it reads ``value`` (the session ends just after its state)."""
    deadline = time.monotonic() + timeout
    while _waiting_gauge(server) != value:
        assert time.monotonic() < deadline, f"gmai_eval_run_waiting_for_model never read {value}"
        time.sleep(0.02)


def _start(stub: pb_grpc.EvaluatorServiceStub, max_outage: float) -> str:
    params = pb.RunParameters(concurrency=2, deadline_seconds=10, max_outage_seconds=max_outage)
    req = pb.CreateRunRequest(model="det", benchmark="bench", parameters=params)
    return stub.CreateRun(req, timeout=60).run.id


def test_a_model_killed_for_good_fails_the_run_within_max_outage(
    evaluator: ServeProcess, tmp_path: Path
) -> None:
    model = start_model_process(delay_s=0.02)
    try:
        stub = _stub(evaluator, model.endpoint, tmp_path)
        run_id = _start(stub, max_outage=3)
        wait_run(stub, run_id, lambda r: r.progress.done >= 5)
        model.kill()
        killed = time.monotonic()
        waiting = wait_run(stub, run_id, lambda r: r.sub_state == "waiting_for_model", timeout=10)
        assert waiting.state == pb.RUN_STATE_RUNNING and waiting.HasField("waiting_since")
        # the first reason is the failed call's; the health probes then find the port closed
        probed = wait_run(stub, run_id, lambda r: "connection refused" in r.waiting_reason, timeout=3)
        assert probed.waiting_reason == f"{model.endpoint}: connection refused"
        assert waiting.progress.eta_seconds == 0  # no ETA while nothing moves
        assert _waiting_gauge(evaluator) == 1
        final = wait_run(stub, run_id, lambda r: r.state != pb.RUN_STATE_RUNNING, timeout=30)
        took = time.monotonic() - killed
    finally:
        model.kill()
    assert final.state == pb.RUN_STATE_FAILED
    assert 3 <= took < 3 + 3, f"failed {took:.1f} s after the kill; max_outage is 3 s"
    assert final.progress.done < N and final.sub_state == ""
    msg = final.error_message
    assert f"endpoints {model.endpoint}" in msg and "max_outage 3 s" in msg and "since 20" in msg
    assert msg.endswith(f"last error: {model.endpoint}: connection refused")
    _gauge_settles(evaluator, 0)
    log = evaluator.log_text()
    assert re.search(rf"WARNING .*run {run_id}: model det unreachable \({re.escape(model.endpoint)}\)", log)
    assert f"run {run_id} failed: model det unreachable" in log


def test_a_model_stopped_then_restarted_the_run_waits_and_completes(
    evaluator: ServeProcess, tmp_path: Path
) -> None:
    model = start_model_process(delay_s=0.005)
    port = model.port
    try:
        stub = _stub(evaluator, model.endpoint, tmp_path)
        run_id = _start(stub, max_outage=120)
        wait_run(stub, run_id, lambda r: r.progress.done >= 5)
        model.kill()
        waiting = wait_run(stub, run_id, lambda r: r.sub_state == "waiting_for_model", timeout=10)
        assert waiting.state == pb.RUN_STATE_RUNNING and waiting.progress.done < N
        assert _waiting_gauge(evaluator) == 1
        model = start_model_process(port=port, delay_s=0.005)
        final = wait_run(stub, run_id, lambda r: r.state != pb.RUN_STATE_RUNNING, timeout=120)
    finally:
        model.kill()
    assert final.state == pb.RUN_STATE_SUCCEEDED, final.error_message
    assert final.progress.done == N and final.progress.errors == 0 and final.sub_state == ""
    _gauge_settles(evaluator, 0)
    log = evaluator.log_text()
    assert f"run {run_id}: model det unreachable" in log and f"run {run_id}: model det answers again" in log


