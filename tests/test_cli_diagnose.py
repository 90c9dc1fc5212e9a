"""Runs that fail loudly, as a user types it: the real CLI against a real evaluator and models.

``run --wait`` with questions in error prints them grouped by reason; ``--max-error-fraction
0`` is zero tolerance and leaving it out is the evaluator's default; ``--max-outage`` is
stored; ``runs show``, ``models check`` and ``models remove``; the "waiting for model"
sub-state in ``runs`` and in ``watch``'s progress while a model process is down.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.clients.connection import Connection
from gmai_eval.clients.evaluator_client import EvaluatorClient
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.model.v1 import model_pb2

from tests._data_helpers import make_row, write_tsv
from tests._model_process import start_model_process
from tests._service_helpers import (
    DeterministicModel,
    ServeProcess,
    model_service,
    running_server,
    write_benchmark_tsv,
)
from tests._service_helpers import (
    run_cli as gmai_eval,
)

QUESTIONS = 24
UNREADABLE = (3, 8, 15)
"""Rows the model refuses with one message..."""
TOO_SMALL = (20,)
"""...and the row it refuses with another."""


class Picky(DeterministicModel):
    """Refuses some rows (told apart by their question text) with INVALID_ARGUMENT, never retried."""

    def AnswerVQA(self, request: model_pb2.AnswerVQARequest, context: grpc.ServicerContext) -> model_pb2.AnswerVQAResponse:
        row = int(re.match(r"Question (\d+):", request.question).group(1))  # type: ignore[union-attr]
        if row in UNREADABLE:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot read this image")
        if row in TOO_SMALL:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "image too small")
        return super().AnswerVQA(request, context)


MODEL: list[str] = []
"""The Picky model's endpoint, once started."""


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("diagnose")
    rows = [make_row(i, question=f"Question {i}: which organ is marked?") for i in range(QUESTIONS)]
    tsv = write_tsv(root / "GMAI_mm_bench_VAL.tsv", rows)
    with model_service(workers=8, servicer=Picky()) as (target, _), running_server(root / "eval.db") as proc:
        with EvaluatorClient(Connection(target=proc.target)) as c:
            c.upload("bench", [tsv])
            c.register_model(pb.Model(name="picky", endpoints=[target]))
        MODEL[:] = [target]
        yield proc


def run_args(server: ServeProcess, *extra: str) -> list[str]:
    return ["run", "--server", server.target, "--model", "picky", "--benchmark", "bench", "--wait", "--no-progress", *extra]


def get_run(server: ServeProcess, run_id: str) -> pb.Run:
    with EvaluatorClient(Connection(target=server.target)) as c:
        return c.get_run(run_id)


def reason_lines() -> list[str]:
    """What the model said, as the evaluator records it: the code, the endpoint, the message."""
    return [
        f"    3  INVALID_ARGUMENT from {MODEL[0]}: cannot read this image (rows 3, 8, 15)",
        f"    1  INVALID_ARGUMENT from {MODEL[0]}: image too small (row 20)",
    ]


def reason_block(stderr: str) -> list[str]:
    lines = stderr.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("  errors by reason"))
    return lines[start: start + 3]


def test_some_errors_exit_4_and_print_the_grouped_reasons(evaluator: ServeProcess) -> None:
    result = gmai_eval(*run_args(evaluator, "--max-error-fraction", "0.5"))
    assert result.returncode == 4, result.stderr
    run = get_run(evaluator, result.stdout.strip())
    assert run.state == pb.RUN_STATE_SUCCEEDED and run.progress.errors == 4
    assert reason_block(result.stderr) == ["  errors by reason (4 questions):", *reason_lines()]


def test_zero_tolerance_fails_the_run_exit_3_with_the_reasons(evaluator: ServeProcess) -> None:
    result = gmai_eval(*run_args(evaluator, "--max-error-fraction", "0", "--concurrency", "1"))
    assert result.returncode == 3, result.stderr
    run = get_run(evaluator, result.stdout.strip())
    assert run.state == pb.RUN_STATE_FAILED
    assert run.parameters.HasField("error_tolerance") and run.parameters.error_tolerance == 0
    assert run.parameters.max_error_fraction == 0
    # with one question in flight the first refused row (3) already exceeds zero tolerance
    assert "errors by reason (1 question):" in result.stderr
    assert f"    1  INVALID_ARGUMENT from {MODEL[0]}: cannot read this image (row 3)" in result.stderr


def test_options_left_out_mean_the_evaluators_defaults(evaluator: ServeProcess) -> None:
    result = gmai_eval(*run_args(evaluator, "--limit", "2", "--seed", "1"))
    run = get_run(evaluator, result.stdout.strip())
    assert run.parameters.max_error_fraction == 0.1  # the documented default
    assert run.parameters.max_outage_seconds == 300
    outage = gmai_eval(*run_args(evaluator, "--limit", "2", "--max-outage", "42"))
    assert get_run(evaluator, outage.stdout.strip()).parameters.max_outage_seconds == 42
    bad = gmai_eval(*run_args(evaluator, "--max-outage", "0"))
    assert bad.returncode == 2 and "--max-outage" in bad.stderr


def test_runs_show_tells_provenance_history_and_grouped_errors(evaluator: ServeProcess) -> None:
    run_id = gmai_eval(*run_args(evaluator, "--max-error-fraction", "0.5")).stdout.strip()
    shown = gmai_eval("runs", "show", run_id, "--server", evaluator.target)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    run = get_run(evaluator, run_id)
    assert lines[0] == f"run {run_id} succeeded"
    assert lines[1] == "  model       picky (deterministic det-1, no weights digest)"
    assert lines[2] == f"  benchmark   bench (digest {run.benchmark_digest})"
    assert "max_error_fraction 0.5" in lines[3] and "max_outage 300 s" in lines[3]
    assert lines[4] == f"  evaluator   {run.evaluator_version}" and run.evaluator_version
    assert lines[5] == "  progress    24/24 questions, 4 in error, 0 retries"
    history = lines[lines.index("history:") + 1: lines.index("errors (4 questions):")]
    assert [re.match(r"  \S+Z  (\w+)", h).group(1) for h in history] == ["created", "preflight_passed", "succeeded"]  # type: ignore[union-attr]
    errors = lines[lines.index("errors (4 questions):") + 1:]
    assert errors == [ln[2:] for ln in reason_lines()] + ["retries: none"]

    as_json = gmai_eval("runs", "show", run_id, "--server", evaluator.target, "--format", "json")
    report = json.loads(as_json.stdout)
    assert report["run"]["id"] == run_id
    assert [(g["message"], g["count"], g["example_indexes"]) for g in report["errors"]] == [
        (f"INVALID_ARGUMENT from {MODEL[0]}: cannot read this image", "3", ["3", "8", "15"]),
        (f"INVALID_ARGUMENT from {MODEL[0]}: image too small", "1", ["20"]),
    ]  # proto3 JSON writes 64-bit integers as strings


def test_runs_without_a_subcommand_still_lists(evaluator: ServeProcess) -> None:
    run_id = gmai_eval(*run_args(evaluator, "--limit", "1")).stdout.strip()
    listed = gmai_eval("runs", "--server", evaluator.target, "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    head, row = listed.stdout.splitlines()
    assert head.split() == ["RUN", "STATE", "MODEL", "BENCHMARK", "DONE", "ERRORS", "CREATED"]
    assert row.split()[:6] == [run_id, "succeeded", "picky", "bench", "1/1", "0"]


def test_models_check_prints_each_step(evaluator: ServeProcess) -> None:
    ok = gmai_eval("models", "check", "picky", "--server", evaluator.target)
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert [ln.split()[0:2] for ln in lines[:3]] == [["ok", "health"], ["ok", "info:"], ["ok", "smoke:"]]
    assert "SERVING" in lines[0] and "deterministic version det-1" in lines[1]
    assert lines[-1] == "model picky is ready: a run would be accepted"


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_models_check_of_a_dead_endpoint_exits_1_with_the_reason(evaluator: ServeProcess) -> None:
    endpoint = f"127.0.0.1:{closed_port()}"
    with EvaluatorClient(Connection(target=evaluator.target)) as c:
        c.register_model(pb.Model(name="gone", endpoints=[endpoint]))
    result = gmai_eval("models", "check", "gone", "--server", evaluator.target)
    assert result.returncode == 1
    assert result.stdout.startswith(f"FAILED  health {endpoint}: connection refused")
    assert result.stderr == f"Error: model gone failed the check: health {endpoint}: connection refused\n"


def test_models_remove_is_refused_while_a_run_is_live(evaluator: ServeProcess) -> None:
    # 5 s an answer: the run stays live for 2 minutes, however long the CLI takes to start
    # on a loaded machine (at 0.2 s it could finish first); the cancel ends it at once.
    model = start_model_process(delay_s=5)
    try:
        with EvaluatorClient(Connection(target=evaluator.target)) as c:
            c.register_model(pb.Model(name="slow", endpoints=[model.endpoint]))
            run = c.create_run("slow", "bench", pb.RunParameters(concurrency=1))
            refused = gmai_eval("models", "remove", "slow", "--server", evaluator.target)
            assert c.get_run(run.id).state == pb.RUN_STATE_RUNNING  # still live after the refusal
            c.cancel_run(run.id)
    finally:
        model.kill()
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: FAILED_PRECONDITION: ") and refused.stderr.count("\n") == 1
    assert run.id in refused.stderr
    removed = gmai_eval("models", "remove", "slow", "--server", evaluator.target)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"removed slow: {model.endpoint}\n"
    listed = gmai_eval("models", "list", "--server", evaluator.target, "--format", "csv")
    names = [ln.split(",")[0] for ln in listed.stdout.splitlines()]
    assert names[0] == "name" and "slow" not in names and "picky" in names


def until(fn: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def test_waiting_for_model_shows_in_runs_and_in_watch(tmp_path: Path) -> None:
    model = start_model_process(delay_s=0.01)
    port = model.port
    with running_server(tmp_path / "e.db") as server:
        try:
            with EvaluatorClient(Connection(target=server.target)) as c:
                c.upload("bench", [write_benchmark_tsv(tmp_path / "b.tsv", 300)])
                c.register_model(pb.Model(name="det", endpoints=[model.endpoint]))
                run_id = c.create_run("det", "bench", pb.RunParameters(concurrency=2, max_outage_seconds=120)).id
                until(lambda: c.get_run(run_id).progress.done >= 5, 30)
                model.kill()
                until(lambda: c.get_run(run_id).sub_state == "waiting_for_model", 15)
            listed = gmai_eval("runs", "--server", server.target)
            watch = subprocess.Popen(
                [sys.executable, "-m", "gmai_eval.clients.cli", "watch", run_id, "--server", server.target,
                 "--progress-interval", "0.2"],
                stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
            )
            assert watch.stderr is not None
            first = watch.stderr.readline()
            model = start_model_process(port=port, delay_s=0.0)
            rest = watch.stderr.read()
            assert watch.wait(timeout=120) == 0, rest
        finally:
            model.kill()
    assert re.search(rf"^{run_id}\s+running \(waiting for model \d+s: .+\)\s+det\s+bench\s", listed.stdout, re.M), listed.stdout
    assert re.match(rf"{run_id} running \d+/300 \(\d+%\) \S+/s errors 0 waiting for model \d+s: ", first), first
    assert "ETA" not in first
    assert f"run {run_id} succeeded" in rest
