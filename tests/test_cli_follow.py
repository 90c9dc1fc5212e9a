"""Following a run as a user types it: in a pipe, under a pseudo-terminal, Ctrl-C, restarts.

Real ``gmai-eval`` subprocesses, a real ``gmai-eval serve`` subprocess and a real model
service. Exit codes: 0 succeeded, 4 succeeded with questions in error, 3 not succeeded,
130 Ctrl-C (the run goes on).
"""

from __future__ import annotations

import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from gmai_eval.clients.connection import Connection
from gmai_eval.clients.evaluator_client import EvaluatorClient
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.model.v1 import model_pb2

from tests._service_helpers import (
    DeterministicModel,
    ServeProcess,
    model_service,
    running_server,
    start_server,
    write_benchmark_tsv,
)

RUN_ID = re.compile(r"^r-[0-9a-f]{12}$")
PROGRESS = re.compile(r"^r-[0-9a-f]{12} (queued|running|succeeded) \d+/24 ")
QUESTIONS = 24


class SomeErrors(DeterministicModel):
    """While ``failing`` is set, rejects its 3rd and 8th questions with INVALID_ARGUMENT (not retried)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        super().__init__(delay_s)
        self.failing = False
        self._seen = 0

    def AnswerVQA(self, request: model_pb2.AnswerVQARequest, context: grpc.ServicerContext) -> model_pb2.AnswerVQAResponse:
        if self.failing:
            with self._lock:
                self._seen += 1
                seen = self._seen
            if seen in (3, 8):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scripted rejection")
        return super().AnswerVQA(request, context)


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[str, SomeErrors]]:
    servicer = SomeErrors()
    with model_service(workers=8, servicer=servicer) as (target, _):
        yield target, servicer


def prepare(target: str, model_target: str, tsv: Path) -> None:
    with EvaluatorClient(Connection(target=target)) as c:
        c.upload("bench", [tsv])
        c.register_model(pb.Model(name="det", endpoints=[model_target]))


@pytest.fixture(scope="module")
def evaluator(model: tuple[str, SomeErrors], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("follow")
    with running_server(root / "eval.db") as proc:
        prepare(proc.target, model[0], write_benchmark_tsv(root / "GMAI_mm_bench_VAL.tsv", n=QUESTIONS))
        yield proc


@pytest.fixture
def slow(model: tuple[str, SomeErrors]) -> Iterator[SomeErrors]:
    model[1].delay_s = 0.08
    try:
        yield model[1]
    finally:
        model[1].delay_s = 0.0
        model[1].failing = False


def gmai_eval_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gmai_eval.clients.cli", *args]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMAI_EVAL_")}
    return {**env, **extra}


def run_args(target: str, *extra: str) -> list[str]:
    return ["run", "--server", target, "--model", "det", "--benchmark", "bench", "--concurrency", "1", "--wait", *extra]


def test_in_a_pipe_plain_lines_run_id_on_stdout_and_a_summary(evaluator: ServeProcess, slow: SomeErrors) -> None:
    result = subprocess.run(
        gmai_eval_argv(*run_args(evaluator.target, "--progress-interval", "0.2")),
        capture_output=True, text=True, timeout=120, env=clean_env(TERM="xterm-256color"),
    )
    assert result.returncode == 0, result.stderr
    assert RUN_ID.match(result.stdout.strip()) and result.stdout.count("\n") == 1
    run_id = result.stdout.strip()
    assert "\r" not in result.stderr and "\x1b" not in result.stderr
    lines = result.stderr.splitlines()
    progress = [ln for ln in lines if PROGRESS.match(ln)]
    assert len(progress) >= 3, result.stderr  # ~2 s of run at one line per 0.2 s
    assert progress[-1].startswith(f"{run_id} succeeded 24/24 (100%)")
    summary = lines[len(progress):]
    assert summary[0].startswith(f"run {run_id} succeeded in ")
    assert summary[1] == "  det on bench: 24/24 questions, 0 in error, 0 retries"
    assert re.match(r"  accuracy \d+\.\d\d% \(95% CI \d+\.\d\d-\d+\.\d\d%, \d+/24 correct\)$", summary[2])
    assert summary[3].startswith(f"  next: gmai-eval scores {run_id} --server {evaluator.target}")


def test_no_progress_prints_only_the_summary(evaluator: ServeProcess) -> None:
    result = subprocess.run(
        gmai_eval_argv(*run_args(evaluator.target, "--no-progress")),
        capture_output=True, text=True, timeout=120, env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert not any(PROGRESS.match(ln) for ln in result.stderr.splitlines())
    assert result.stderr.startswith(f"run {result.stdout.strip()} succeeded")


def read_pty(master: int, sink: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return
        if not chunk:
            return
        sink.append(chunk)


def run_under_pty(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal, stdout on a pipe; returns (rc, stdout, terminal)."""
    master, slave = pty.openpty()
    got: list[bytes] = []
    reader = threading.Thread(target=read_pty, args=(master, got), daemon=True)
    reader.start()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=slave, stdin=slave, env=env, text=True)
    os.close(slave)
    out, _ = proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, out, b"".join(got).decode(errors="replace")


def test_under_a_terminal_a_live_bar(evaluator: ServeProcess, slow: SomeErrors) -> None:
    rc, out, term = run_under_pty(gmai_eval_argv(*run_args(evaluator.target)), clean_env(TERM="xterm-256color"))
    assert rc == 0, term
    run_id = out.strip()
    assert RUN_ID.match(run_id)
    assert "\x1b[" in term  # rich redraws the bar in place
    assert re.search(rf"{run_id}.*24/24.*ETA .*errors 0.*succeeded", term)
    assert f"run {run_id} succeeded in " in term


def test_a_dumb_terminal_gets_plain_lines(evaluator: ServeProcess, slow: SomeErrors) -> None:
    rc, out, term = run_under_pty(
        gmai_eval_argv(*run_args(evaluator.target, "--progress-interval", "0.2")), clean_env(TERM="dumb")
    )
    assert rc == 0, term
    assert "\x1b" not in term
    assert "\r" not in term.replace("\r\n", "\n")  # the terminal's own line ends aside
    assert f"{out.strip()} succeeded 24/24 (100%)" in term


def test_some_questions_in_error_exit_4_with_the_summary(evaluator: ServeProcess, slow: SomeErrors) -> None:
    slow.delay_s = 0.0
    slow.failing = True  # the smoke question of the pre-flight is the 1st
    result = subprocess.run(
        gmai_eval_argv(*run_args(evaluator.target)), capture_output=True, text=True, timeout=120, env=clean_env()
    )
    assert result.returncode == 4, result.stderr
    run_id = result.stdout.strip()
    with EvaluatorClient(Connection(target=evaluator.target)) as c:
        errors = c.get_run(run_id).progress.errors
    assert errors == 2
    assert f"  det on bench: 24/24 questions, {errors} in error, " in result.stderr
    assert f"run {run_id} succeeded" in result.stderr


# As at a terminal: a test run started in the background (`make test &`) ignores SIGINT,
# children inherit that, and Python then installs no KeyboardInterrupt. This trampoline
# restores the default and execs the command line (same process, so the signal reaches it).
# Not ``preexec_fn``: that makes subprocess fork() where it would vfork(), and gRPC's fork
# handlers in the forked test worker then wrote an epoll error to the child's stderr.
_AT_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.executable, [sys.executable, '-m', 'gmai_eval.clients.cli', *sys.argv[1:]])"
)


def test_ctrl_c_exits_130_and_the_run_goes_on(evaluator: ServeProcess, slow: SomeErrors) -> None:
    slow.delay_s = 0.3
    proc = subprocess.Popen(
        [sys.executable, "-c", _AT_A_TERMINAL, *run_args(evaluator.target, "--progress-interval", "0.2")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
    )
    assert proc.stdout is not None and proc.stderr is not None
    run_id = proc.stdout.readline().strip()
    first = proc.stderr.readline()
    assert PROGRESS.match(first), first
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 130
    assert "Traceback" not in rest and "Aborted" not in rest
    assert rest.strip().splitlines()[-1] == (
        f"interrupted: run {run_id} goes on at the evaluator; follow it with "
        f"`gmai-eval watch {run_id} --server {evaluator.target}`, "
        f"stop it with `gmai-eval cancel {run_id} --server {evaluator.target}`"
    )
    with EvaluatorClient(Connection(target=evaluator.target)) as c:
        assert c.get_run(run_id).state == pb.RUN_STATE_RUNNING
        c.cancel_run(run_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_watch_reconnects_when_the_evaluator_restarts(model: tuple[str, SomeErrors], slow: SomeErrors, tmp_path: Path) -> None:
    slow.delay_s = 0.15
    port = free_port()
    db = tmp_path / "eval.db"
    first = start_server(db, "--port", str(port))
    try:
        prepare(first.target, model[0], write_benchmark_tsv(tmp_path / "GMAI_mm_bench_VAL.tsv", n=QUESTIONS))
        proc = subprocess.Popen(
            gmai_eval_argv(*run_args(first.target, "--progress-interval", "0.2")),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env(),
        )
        assert proc.stdout is not None and proc.stderr is not None
        run_id = proc.stdout.readline().strip()
        assert PROGRESS.match(proc.stderr.readline())
        assert first.stop() == 0
    finally:
        if first.proc.poll() is None:
            first.proc.kill()
    second = start_server(db, "--port", str(port))
    try:
        rest = proc.stderr.read()
        assert proc.wait(timeout=120) == 0, rest
    finally:
        second.stop()
    assert f"lost the evaluator at 127.0.0.1:{port}" in rest
    assert f"reconnected to the evaluator at 127.0.0.1:{port}" in rest
    assert f"run {run_id} succeeded" in rest
    assert "Traceback" not in rest
