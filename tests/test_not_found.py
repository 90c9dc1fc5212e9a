"""NOT_FOUND names the known names, or the closest ones; the CLI shows it in one line."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from gmai_eval.server.store.suggest import hint

from tests._service_helpers import (
    ServeProcess,
    model_service,
    run_cli,
    running_server,
    write_benchmark_tsv,
)

MANY = [f"bench-{i:02d}" for i in range(20)] + ["GMAI-MMBench_VAL_v2", "synthetic-val"]


def test_few_names_are_all_listed() -> None:
    assert hint("model", "my-modle", ["a", "my-model"]) == "known models: a, my-model"
    assert hint("benchmark", "x", []) == "no benchmark exists yet"


def test_many_names_give_the_closest_and_the_listing_command() -> None:
    closest, listing = hint("benchmark", "bnech-07", MANY).split("; ")
    assert closest.startswith("closest: bench-07, ") and len(closest.split(", ")) == 3
    assert listing == "`gmai-eval benchmarks` lists all 22"
    # Case and separators differ: still found.
    assert hint("benchmark", "gmai_mmbench-val-v2", MANY).startswith("closest: GMAI-MMBench_VAL_v2;")
    assert hint("run", "zzzz", [f"r-{i:012x}" for i in range(30)]) == "`gmai-eval runs` lists all 30"


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, str]]:
    root = tmp_path_factory.mktemp("nf")
    with model_service() as (target, _model), running_server(root / "eval.db") as proc:
        tsv = write_benchmark_tsv(root / "GMAI_mm_bench_VAL.tsv", n=6)
        for args in (
            ["upload", "--name", "synthetic-val", str(tsv)],
            ["models", "add", "my-model", "--endpoint", target],
        ):
            assert cli(*args, server=proc.target).returncode == 0
        yield proc, target


def cli(*args: str, server: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, "--server", server)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--model", "my-model", "--benchmark", "GMAI-MMBench_VAL"],
         "Error: NOT_FOUND: no benchmark named 'GMAI-MMBench_VAL'; known benchmarks: synthetic-val"),
        (["run", "--model", "my-modle", "--benchmark", "synthetic-val"],
         "Error: NOT_FOUND: model 'my-modle' is not registered; known models: my-model"),
        (["watch", "r-000000000000"], "Error: NOT_FOUND: no run 'r-000000000000'; no run exists yet"),
        (["taxonomy", "synthetic_val"],
         "Error: NOT_FOUND: no benchmark named 'synthetic_val'; known benchmarks: synthetic-val"),
    ],
    ids=["benchmark", "model", "run", "taxonomy"],
)
def test_the_cli_prints_one_line_with_the_names(
    evaluator: tuple[ServeProcess, str], args: list[str], expected: str
) -> None:
    result = cli(*args, server=evaluator[0].target)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [expected]
