"""The runs-area CLI end to end: a real evaluator subprocess, a real model service, the CLI."""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from gmai_eval.clients.cli.main import cli
from gmai_eval.clients.cli.options import EXIT_NOT_SUCCEEDED as EXIT_RUN_NOT_SUCCEEDED
from gmai_eval.clients.connection import Connection
from gmai_eval.clients.evaluator_client import EvaluatorClient
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from tests._data_helpers import read_tsv
from tests._service_helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    DeterministicModel,
    Pki,
    ServeProcess,
    make_pki,
    model_service,
    running_server,
    write_benchmark_tsv,
)

RUN_ID = re.compile(r"^r-[0-9a-f]{12}$", re.M)
OUR_COMMANDS = (
    "serve", "models", "models add", "models list", "models check", "models remove", "run", "runs", "runs show",
    "runs delete", "benchmarks remove", "watch", "cancel", "resume", "upload",
)


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.mark.parametrize("command", OUR_COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = invoke(*command.split(), "--help")
    assert result.exit_code == 0
    assert "Usage:" in result.output
    group: click.Command | None = cli
    for part in command.split():
        assert isinstance(group, click.Group)
        group = group.get_command(click.Context(group), part)
    assert isinstance(group, click.Command) and (group.help or "").strip()
    if command not in ("serve", "models"):
        assert "--server" in result.output and "--token" in result.output


@pytest.fixture(scope="module")
def model() -> Iterator[tuple[str, DeterministicModel]]:
    with model_service(delay_s=0.0) as pair:
        yield pair


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    with running_server(tmp_path_factory.mktemp("cli") / "eval.db") as proc:
        yield proc


@pytest.fixture(scope="module")
def prepared(evaluator: ServeProcess, model: tuple[str, DeterministicModel], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Upload a 24-question benchmark and register the model through the CLI."""
    tsv = write_benchmark_tsv(tmp_path_factory.mktemp("tsv") / "GMAI_mm_bench_VAL.tsv", n=24)
    up = invoke("upload", "--server", evaluator.target, "--name", "cli-bench", str(tsv))
    assert up.exit_code == 0, up.output
    assert "imported 24 rows, skipped 0" in up.stdout
    again = invoke("upload", "--server", evaluator.target, "--name", "cli-bench", str(tsv))
    assert "already imported" in again.stdout
    add = invoke("models", "add", "det", "--server", evaluator.target, "--endpoint", model[0], "--version", "det-1")
    assert add.exit_code == 0, add.output
    assert f"registered det: {model[0]}" in add.stdout
    return evaluator.target


def test_run_wait_end_to_end(prepared: str) -> None:
    listed = invoke("models", "list", "--server", prepared, "--format", "csv")
    assert listed.exit_code == 0 and listed.stdout.splitlines()[1].startswith("det,")

    result = invoke("run", "--server", prepared, "--model", "det", "--benchmark", "cli-bench", "--concurrency", "4", "--wait")
    assert result.exit_code == 0, result.output
    run_id = result.stdout.strip()
    assert RUN_ID.match(run_id)
    assert "24/24" in result.stderr and "succeeded" in result.stderr and "\r" not in result.stderr

    runs = invoke("runs", env={"GMAI_EVAL_SERVER": prepared})
    assert runs.stdout.splitlines()[0].split() == ["RUN", "STATE", "MODEL", "BENCHMARK", "DONE", "ERRORS", "CREATED"]
    line = next(ln for ln in runs.stdout.splitlines() if ln.startswith(run_id))
    assert line.split()[1:6] == ["succeeded", "det", "cli-bench", "24/24", "0"]

    watched = invoke("watch", run_id, "--server", prepared)
    assert watched.exit_code == 0 and "24/24" in watched.stderr


def test_subset_run_with_filter_limit_and_seed(prepared: str) -> None:
    result = invoke(
        "run", "--server", prepared, "--model", "det", "--benchmark", "cli-bench",
        "--where", "department=Ophthalmology", "--limit", "5", "--seed", "7", "--era", "2025-08", "--wait",
    )
    assert result.exit_code == 0, result.output
    assert "5/5" in result.stderr


def test_model_params_travel_typed(prepared: str) -> None:
    result = invoke(
        "run", "--server", prepared, "--model", "det", "--benchmark", "cli-bench", "--limit", "2",
        "--model-params", '{"temperature": 0.5, "max_tokens": 16}', "--wait",
    )
    assert result.exit_code == 0, result.output
    with EvaluatorClient(Connection(target=prepared)) as c:
        run = c.get_run(result.stdout.strip())
    assert dict(run.parameters.model_parameters) == {"temperature": 0.5, "max_tokens": 16.0}
    assert run.model_info["name"] and run.model_info_json


def test_cancel_then_resume(prepared: str, model: tuple[str, DeterministicModel]) -> None:
    model[1].delay_s = 0.2
    try:
        started = invoke("run", "--server", prepared, "--model", "det", "--benchmark", "cli-bench", "--concurrency", "1")
        assert started.exit_code == 0, started.output
        run_id = started.stdout.strip()
        time.sleep(0.5)
        cancelled = invoke("cancel", run_id, "--server", prepared)
        assert cancelled.exit_code == 0, cancelled.output
        assert cancelled.stdout.strip() == f"{run_id} cancelled"
        watched = invoke("watch", run_id, "--server", prepared)
        assert watched.exit_code == EXIT_RUN_NOT_SUCCEEDED
        assert f"run {run_id} cancelled" in watched.stderr
        model[1].delay_s = 0.0
        resumed = invoke("resume", run_id, "--server", prepared, "--wait")
        assert resumed.exit_code == 0, resumed.output
        assert "24/24" in resumed.stderr
    finally:
        model[1].delay_s = 0.0


def test_run_wait_exits_non_zero_when_the_run_fails(prepared: str, model: tuple[str, DeterministicModel]) -> None:
    model[1].reject_after = model[1].calls + 1  # the pre-flight's smoke question passes
    try:
        result = invoke("run", "--server", prepared, "--model", "det", "--benchmark", "cli-bench", "--concurrency", "1", "--wait")
    finally:
        model[1].reject_after = None
    assert result.exit_code == EXIT_RUN_NOT_SUCCEEDED, result.output
    run_id = result.stdout.strip()
    assert f"run {run_id} failed" in result.stderr and "  reason: " in result.stderr
    assert "Traceback" not in result.output


def test_errors_are_one_clean_line(prepared: str, tmp_path: Path) -> None:
    missing = invoke("watch", "r-000000000000", "--server", prepared)
    assert missing.exit_code == 1
    assert missing.output.startswith("Error: NOT_FOUND:") and "Traceback" not in missing.output

    finished = invoke("runs", "--server", prepared, "--limit", "1", "--format", "csv").stdout.splitlines()[1].split(",")[0]
    again = invoke("cancel", finished, "--server", prepared)
    assert again.exit_code == 1 and again.output.startswith("Error: FAILED_PRECONDITION:")

    no_model = invoke("run", "--server", prepared, "--model", "nope", "--benchmark", "cli-bench")
    assert no_model.exit_code == 1 and no_model.output.startswith("Error: NOT_FOUND:")

    bad = invoke("models", "add", "x", "--server", prepared, "--endpoint", " , ")
    assert bad.exit_code == 1 and bad.output.startswith("Error: INVALID_ARGUMENT:")

    for bad_params in ("[1, 2]", "{"):
        wrong = invoke("run", "--server", prepared, "--model", "det", "--benchmark", "cli-bench", "--model-params", bad_params)
        assert wrong.exit_code == 2 and "--model-params" in wrong.output and "Traceback" not in wrong.output

    down = invoke("runs", "--server", "127.0.0.1:1")
    assert down.exit_code == 1 and down.output.startswith("Error: UNAVAILABLE:")
    assert len(down.output.strip().splitlines()) == 1


# --- the CLI over mTLS with tokens ----------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[ServeProcess]:
    args = ("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key), "--tls-client-ca", str(pki.ca))
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN_TOKEN, "GMAI_EVAL_READ_TOKEN": READ_TOKEN}
    with running_server(tmp_path_factory.mktemp("secure") / "eval.db", *args, env=env) as proc:
        yield proc


def test_cli_over_mtls_with_tokens(secure: ServeProcess, pki: Pki) -> None:
    tls = ["--server", f"localhost:{secure.port}", "--ca", str(pki.ca), "--cert", str(pki.client_cert), "--key", str(pki.client_key)]
    ok = invoke("runs", *tls, env={"GMAI_EVAL_TOKEN": READ_TOKEN})
    assert ok.exit_code == 0, ok.output
    denied = invoke("models", "add", "m", "--endpoint", "127.0.0.1:1", *tls, "--token", READ_TOKEN)
    assert denied.exit_code == 1 and denied.output.startswith("Error: PERMISSION_DENIED:")
    anonymous = invoke("runs", *tls)
    assert anonymous.exit_code == 1 and anonymous.output.startswith("Error: UNAUTHENTICATED:")
    admin = invoke("models", "add", "m", "--endpoint", "127.0.0.1:1", *tls, "--token", ADMIN_TOKEN)
    assert admin.exit_code == 0, admin.output
    by_ip = ["--server", f"127.0.0.1:{secure.port}", "--server-name", "localhost", *tls[2:]]
    assert invoke("runs", *by_ip, "--token", ADMIN_TOKEN).exit_code == 0
    wrong_name = invoke("runs", *by_ip[:3], "wrong.example", *tls[2:], "--token", ADMIN_TOKEN)
    assert wrong_name.exit_code == 1 and wrong_name.output.startswith("Error: UNAVAILABLE:")
    no_cert = invoke("runs", "--server", f"localhost:{secure.port}", "--ca", str(pki.ca), "--token", ADMIN_TOKEN)
    assert no_cert.exit_code == 1 and no_cert.output.startswith("Error: UNAVAILABLE:")


def _expected_correct(tsv_rows: list[dict[str, str]]) -> int:
    """Questions the deterministic model gets right, computed from the TSV alone."""
    right = 0
    for row in tsv_rows:
        labels = [lab for lab in "ABCDE" if row.get(lab)]
        digest = hashlib.sha256(base64.b64decode(row["image"])).digest()
        right += labels[digest[0] % len(labels)] == row["answer"]
    return right


def test_scores_and_comparison_through_the_api(prepared: str, tmp_path: Path) -> None:
    rows = read_tsv(write_benchmark_tsv(tmp_path / "same.tsv", n=24))
    expected = _expected_correct(rows)
    assert 0 < expected < 24  # the check below can fail both ways
    with EvaluatorClient(Connection(target=prepared)) as c:
        full = [r for r in c.list_runs(benchmark="cli-bench") if r.progress.total == 24 and r.state == pb.RUN_STATE_SUCCEEDED]
        assert len(full) >= 2
        scores = c.get_run_scores(full[0].id, dimensions=["overall"])
        overall = [n for n in scores.nodes if n.dimension == "overall"]
        assert len(overall) == 1
        assert (overall[0].n, overall[0].correct) == (24, expected)
        assert full[0].progress.correct == expected
        comparison = c.compare_runs(full[1].id, full[0].id)
        assert list(comparison.flipped_to_right) == [] and list(comparison.flipped_to_wrong) == []
        assert all(n.a_only == 0 and n.b_only == 0 for n in comparison.nodes)
