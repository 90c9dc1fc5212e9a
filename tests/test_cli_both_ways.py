"""Read commands give the same output from the file (--db) and from the evaluator (--server).

A real ``gmai-eval serve`` owns the file; the real CLI reads it both ways, in a pipe.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests._service_helpers import ServeProcess, running_server, write_benchmark_tsv
from tests._service_helpers import run_cli as gmai_eval


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServeProcess, Path]]:
    root = tmp_path_factory.mktemp("both")
    db = root / "eval.db"
    with running_server(db) as proc:
        tsv = write_benchmark_tsv(root / "GMAI_mm_bench_VAL.tsv", n=12)
        assert gmai_eval("upload", "--server", proc.target, "--name", "synthetic-val", str(tsv)).returncode == 0
        yield proc, db


def both(served: tuple[ServeProcess, Path], *args: str) -> tuple[str, str]:
    proc, db = served
    local = gmai_eval(*args, "--db", str(db))
    remote = gmai_eval(*args, "--server", proc.target)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    return local.stdout, remote.stdout


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_benchmarks(served: tuple[ServeProcess, Path], fmt: str) -> None:
    local, remote = both(served, "benchmarks", "--format", fmt)
    assert local == remote
    if fmt == "json":
        (doc,) = json.loads(local)
        assert doc["name"] == "synthetic-val" and doc["questions"] == 12 and doc["layout"] == "VAL"
    if fmt == "table":
        assert local.splitlines()[0].split() == ["NAME", "LAYOUT", "QUESTIONS", "FLAGGED", "CREATED", "DIGEST"]


@pytest.mark.parametrize("args", [[], ["--where", "department=Ophthalmology"], ["--format", "json"]])
def test_taxonomy(served: tuple[ServeProcess, Path], args: list[str]) -> None:
    local, remote = both(served, "taxonomy", "synthetic-val", *args)
    assert local == remote
    if not args:
        assert local.startswith("synthetic-val: 12 questions\n")


def test_db_and_server_flags_exclude_each_other(served: tuple[ServeProcess, Path]) -> None:
    proc, db = served
    result = gmai_eval("benchmarks", "--db", str(db), "--server", proc.target)
    assert result.returncode == 2
    assert "--db and --server exclude each other" in result.stderr


def test_both_variables_set_is_a_usage_error_and_a_flag_decides(served: tuple[ServeProcess, Path]) -> None:
    proc, db = served
    env = {"GMAI_EVAL_DB": str(db), "GMAI_EVAL_SERVER": proc.target}
    result = gmai_eval("benchmarks", env=env)
    assert result.returncode == 2
    assert "both GMAI_EVAL_DB and GMAI_EVAL_SERVER are set" in result.stderr
    # A flag beats the other variable: --server wins over GMAI_EVAL_DB naming a missing file.
    by_server = gmai_eval("benchmarks", "--server", proc.target, env={"GMAI_EVAL_DB": str(db) + ".absent"})
    assert by_server.returncode == 0 and "synthetic-val" in by_server.stdout
    by_db = gmai_eval("benchmarks", "--db", str(db), env={"GMAI_EVAL_SERVER": "127.0.0.1:1"})
    assert by_db.returncode == 0 and "synthetic-val" in by_db.stdout


def test_deprecated_json_flag_still_works_with_a_warning(served: tuple[ServeProcess, Path]) -> None:
    _, db = served
    result = gmai_eval("benchmarks", "--db", str(db), "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout)[0]["name"] == "synthetic-val"
    assert result.stderr.strip() == "warning: --json is deprecated; use --format json (it will be removed in the next release)"
