"""``runs`` and ``runs show`` give the same output with --db and --server, in every format.

A real ``gmai-eval serve`` owns a database file holding finished runs (one with errors,
retries and a history); the real CLI reads it in a pipe, once from the file and once
through the evaluator with the read-only token. CSV output parses with the csv module;
Markdown has a header and a separator line.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gmai_eval.server.store import Database

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions
from tests._service_helpers import run_cli as gmai_eval
from tests._service_helpers import running_server

ADMIN = "admin-token-0123456789"
READ = "read-token-0123456789ab"
EVENTS = [("2026-01-01T00:00:00+00:00", "created", "m on bench"), ("2026-01-01T00:01:00+00:00", "succeeded", "")]


@dataclass(frozen=True)
class Served:
    target: str
    db: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("runs-both") / "eval.db"
    qs = make_questions(10, seed=5)
    with Database(db) as d:
        bid = insert_benchmark(d, qs)
        insert_run(d, bid, [A(q.idx, labels=["A"]) for q in qs], run_id="r-aaaaaaaaaaa1")
        errs = [A(q.idx, outcome="error") if q.idx < 3 else A(q.idx, labels=["B"]) for q in qs]
        insert_run(d, bid, errs, run_id="r-aaaaaaaaaaa2", model="other", state="failed")
        d.write(lambda s: s.executemany(
            "INSERT INTO run_events (run_id, at, kind, message) VALUES ('r-aaaaaaaaaaa2', ?, ?, ?)", EVENTS))
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN, "GMAI_EVAL_READ_TOKEN": READ}
    with running_server(db, env=env) as proc:
        yield Served(proc.target, db)


def both(s: Served, *args: str) -> str:
    local = gmai_eval(*args, "--db", str(s.db))
    remote = gmai_eval(*args, "--server", s.target, "--token", READ)
    assert local.returncode == 0, local.stderr
    assert remote.returncode == 0, remote.stderr
    assert local.stdout == remote.stdout
    return local.stdout


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_runs_list_is_the_same_both_ways(served: Served, fmt: str) -> None:
    out = both(served, "runs", "--format", fmt)
    if fmt == "table":
        head, *rows = out.splitlines()
        assert head.split() == ["RUN", "STATE", "MODEL", "BENCHMARK", "DONE", "ERRORS", "CREATED"]
        assert [r.split()[:6] for r in rows] == [
            ["r-aaaaaaaaaaa2", "failed", "other", "bench", "10/10", "3"],
            ["r-aaaaaaaaaaa1", "succeeded", "m", "bench", "10/10", "0"],
        ]
    elif fmt == "json":
        doc = json.loads(out)
        assert [(r["id"], r["state"], r["progress"]["errors"]) for r in doc] == [
            ("r-aaaaaaaaaaa2", "RUN_STATE_FAILED", "3"), ("r-aaaaaaaaaaa1", "RUN_STATE_SUCCEEDED", "0"),
        ]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [(r["id"], r["state"], r["done"], r["total"], r["errors"]) for r in rows] == [
            ("r-aaaaaaaaaaa2", "failed", "10", "10", "3"), ("r-aaaaaaaaaaa1", "succeeded", "10", "10", "0"),
        ]
    else:
        lines = out.splitlines()
        assert lines[0] == "| RUN | STATE | MODEL | BENCHMARK | DONE | ERRORS | CREATED |"
        assert lines[1] == "|---|---|---|---|---|---|---|"
        assert len(lines) == 4


def test_runs_filters_and_limit_both_ways(served: Served) -> None:
    assert both(served, "runs", "--model", "m", "--format", "csv").count("r-aaaaaaaaaa") == 1
    assert both(served, "runs", "--limit", "1", "--format", "csv").splitlines()[1].startswith("r-aaaaaaaaaaa2,")
    assert both(served, "runs", "--benchmark", "nope") == "no runs\n"


@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_runs_show_is_the_same_both_ways(served: Served, fmt: str) -> None:
    out = both(served, "runs", "show", "r-aaaaaaaaaaa2", "--format", fmt)
    if fmt == "table":
        assert out.startswith("run r-aaaaaaaaaaa2 failed\n")
        assert "  2026-01-01T00:00:00Z  created: m on bench\n" in out
        assert "errors (3 questions):" in out and "retries (3 attempts):" in out
    elif fmt == "json":
        doc = json.loads(out)
        assert doc["run"]["id"] == "r-aaaaaaaaaaa2"
        assert [e["kind"] for e in doc["events"]] == ["created", "succeeded"]
        assert [g["count"] for g in doc["retries"]] == ["3"]
    elif fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert list(rows[0]) == ["section", "key", "value", "count", "examples"]
        assert {r["section"] for r in rows} == {"run", "history", "retries", "errors"}
        assert (rows[0]["section"], rows[0]["key"], rows[0]["value"]) == ("run", "id", "r-aaaaaaaaaaa2")
        (retry,) = [r for r in rows if r["section"] == "retries"]
        assert (retry["key"], retry["count"], retry["examples"]) == ("UNAVAILABLE", "3", "0 1 2")
        history = [(r["key"], r["value"]) for r in rows if r["section"] == "history"]
        assert history == [("2026-01-01T00:00:00Z", "created: m on bench"), ("2026-01-01T00:01:00Z", "succeeded")]
    else:
        lines = out.splitlines()
        for title, header in [("## run r-aaaaaaaaaaa2", "| field | value |"), ("## history", "| time | event |"),
                              ("## retries", "| count | code | message | examples |")]:
            at = lines.index(title)
            assert lines[at + 1] == header and set(lines[at + 2]) <= {"|", "-"}, (title, lines[at:at + 3])


def test_unknown_run_names_the_closest_ids_both_ways(served: Served) -> None:
    for args in (["runs", "show", "r-aaaaaaaaaa1"], ["scores", "r-aaaaaaaaaa1"]):
        local = gmai_eval(*args, "--db", str(served.db))
        remote = gmai_eval(*args, "--server", served.target, "--token", READ)
        assert local.returncode == remote.returncode == 1
        for result in (local, remote):
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert "closest: r-aaaaaaaaaaa1" in result.stderr or "known runs: r-aaaaaaaaaaa" in result.stderr


def test_a_missing_file_is_refused_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    for args in (["runs"], ["runs", "show", "r-1"], ["runs", "delete", "r-1", "--yes"],
                 ["benchmarks", "remove", "bench", "--yes"]):
        result = gmai_eval(*args, "--db", str(missing))
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.strip() == (
            f"Error: --db {missing}: no such database file (only `gmai-eval import` creates one; check the path)"
        )
    assert list(tmp_path.iterdir()) == []
    result = gmai_eval("runs", env={"GMAI_EVAL_DB": str(missing)})
    assert result.returncode == 1 and "no such database file" in result.stderr
    assert not missing.exists()


def test_db_before_the_subcommand_is_a_usage_error(tmp_path: Path) -> None:
    result = gmai_eval("runs", "--db", str(tmp_path / "eval.db"), "show", "r-1")
    assert result.returncode == 2
    assert "--db goes after the subcommand: gmai-eval runs show ... --db ..." in result.stderr
    assert list(tmp_path.iterdir()) == []
