"""scores, compare, calibration, export and rescore give the same output with --db and --server.

A real ``gmai-eval serve`` owns a database file holding graded runs; the real CLI reads
it in a pipe, once from the file and once through the evaluator with the read-only token
(the writing ``rescore`` with the admin token). ``--format json`` must be the same
document both ways.
"""

from __future__ import annotations

import json
import os
import subprocess
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
LONG = "Option {} is the one because " + "the marked region looks typical on this image " * 3


@dataclass(frozen=True)
class Served:
    target: str
    db: Path
    root: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("scoring-both")
    db = root / "eval.db"
    qs = make_questions(80, seed=21, unanswered=[79])
    with Database(db) as d:
        bid = insert_benchmark(d, qs)
        insert_run(d, bid, [A(q.idx, text=LONG.format(q.answer or "A")) for q in qs], run_id="r-a",
                   finished_at="2026-01-01T00:00:00")
        wrong = {"A": "B"}
        insert_run(d, bid, [A(q.idx, labels=[wrong.get(q.answer or "A", "A") if q.idx < 30 else (q.answer or "A")],
                              option_scores={"A": 0.7, "B": 0.3}) for q in qs], run_id="r-b")
        other = insert_benchmark(d, qs[:3], name="other", digest="sha256:ff")
        insert_run(d, other, [A(0, labels=["A"])], run_id="r-x", digest="sha256:ff")
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN, "GMAI_EVAL_READ_TOKEN": READ}
    with running_server(db, env=env) as proc:
        yield Served(proc.target, db, root)


_READS: dict[tuple[str, ...], tuple[str, str]] = {}
"""Outputs of :func:`both` for read commands, by server and arguments: a command several tests
check runs once each way (``rescore``, which writes, always runs)."""


def both(s: Served, *args: str, token: str = READ, code: int = 0) -> tuple[str, str]:
    if args[0] not in ("scores", "compare", "calibration"):
        return _both(s, *args, token=token, code=code)
    key = (s.target, token, str(code), *args)
    if key not in _READS:
        _READS[key] = _both(s, *args, token=token, code=code)
    return _READS[key]


def _both(s: Served, *args: str, token: str = READ, code: int = 0) -> tuple[str, str]:
    local = gmai_eval(*args, "--db", str(s.db))
    remote = gmai_eval(*args, "--server", s.target, "--token", token)
    assert local.returncode == code, local.stderr
    assert remote.returncode == code, remote.stderr
    assert "Traceback" not in local.stderr + remote.stderr
    return local.stdout, remote.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["scores", "r-a"],
        ["scores", "r-a", "--format", "json"],
        ["scores", "r-a", "--format", "csv"],
        ["scores", "r-b", "--format", "markdown", "--by", "granularity"],
        ["scores", "r-a", "--era", "2025-08", "--format", "json"],
        ["compare", "r-a", "r-b"],
        ["compare", "r-a", "r-b", "--format", "json", "--by", "task"],
        ["compare", "r-a", "r-b", "--format", "csv", "--alpha", "0.01"],
        ["calibration", "r-b"],
        ["calibration", "r-b", "--format", "json"],
        ["calibration", "r-a", "--format", "csv"],
    ],
)
def test_read_commands_match(served: Served, args: list[str]) -> None:
    local, remote = both(served, *args)
    assert local == remote
    assert local.strip()


def test_the_json_documents_hold_the_runs_numbers(served: Served) -> None:
    local, _ = both(served, "scores", "r-b", "--by", "overall", "--format", "json")
    doc = json.loads(local)
    # 79 questions have a key; r-b answers the first 30 wrong ("B" where the key is "A", or "A").
    assert doc["run_id"] == "r-b" and doc["unscored"] == 1
    (overall,) = doc["nodes"]
    assert (overall["n"], overall["correct"]) == (79, 49)
    cmp = json.loads(both(served, "compare", "r-a", "r-b", "--format", "json")[0])
    assert cmp["run_a"] == "r-a" and cmp["run_b"] == "r-b" and cmp["flipped_to_wrong"] == list(range(30))


def test_the_gate_fails_the_same_both_ways(served: Served) -> None:
    policy = served.root / "strict.toml"
    policy.write_text("min_overall_accuracy = 0.9\nmax_significant_drop = 1.0\nmin_n = 10\n")
    local, remote = both(served, "compare", "r-a", "r-b", "--gate", str(policy), code=3)
    assert local == remote and local.startswith("verdict: gate FAILED (")
    bad = served.root / "bad.json"
    bad.write_text('{"oops": 1}')
    for result in (gmai_eval("compare", "r-a", "r-b", "--gate", str(bad), "--db", str(served.db)),
                   gmai_eval("compare", "r-a", "r-b", "--gate", str(bad), "--server", served.target,
                             "--token", READ)):
        assert result.returncode == 1 and "unknown key" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_errors_are_one_line_both_ways(served: Served) -> None:
    for where in (["--db", str(served.db)], ["--server", served.target, "--token", READ]):
        unknown = gmai_eval("scores", "r-nope", *where)
        assert unknown.returncode == 1 and "no run 'r-nope'" in unknown.stderr
        assert len(unknown.stderr.strip().splitlines()) == 1
        other = gmai_eval("compare", "r-a", "r-x", *where)
        assert other.returncode == 1 and "different benchmarks" in other.stderr


@pytest.mark.parametrize("fmt", ["tsv", "xlsx"])
def test_export_writes_the_same_files(served: Served, fmt: str) -> None:
    outs = {}
    for way, where in (("db", ["--db", str(served.db)]), ("server", ["--server", served.target, "--token", READ])):
        out = served.root / f"export-{way}-{fmt}" / f"m_bench.{fmt}"
        result = gmai_eval("export", "r-b", "--out", str(out), "--format", fmt, *where)
        assert result.returncode == 0, result.stderr
        assert result.stdout.replace(f"export-{way}-", "export-X-") == (
            f"wrote 80 predictions to {served.root}/export-X-{fmt}/m_bench.{fmt}\n"
            + "".join(f"wrote {served.root}/export-X-{fmt}/m_bench_{c}_acc.csv\n"
                      for c in ("clinical vqa task", "department", "perceptual granularity"))
        )
        outs[way] = out.parent
    names = sorted(p.name for p in outs["db"].iterdir())
    assert names == sorted(p.name for p in outs["server"].iterdir()) and len(names) == 4
    for name in names:
        if name.endswith(".xlsx"):
            continue  # the workbook's zip entries carry their write time
        assert (outs["db"] / name).read_bytes() == (outs["server"] / name).read_bytes(), name


def test_rescore_needs_the_admin_token_through_the_evaluator(served: Served) -> None:
    denied = gmai_eval("rescore", "r-a", "--server", served.target, "--token", READ)
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr
    local, remote = both(served, "rescore", "r-a", "--format", "json", token=ADMIN)
    assert local == remote
    head = gmai_eval("rescore", "r-a", "--server", served.target, "--token", ADMIN).stdout.splitlines()[0]
    assert head == "regraded 80 answers with era 2024; 0 verdicts changed"


@pytest.mark.parametrize(
    "args", [["scores", "r-b"], ["compare", "r-a", "r-b", "--format", "json"], ["calibration", "r-b"]]
)
def test_the_server_path_runs_on_the_base_install(served: Served, args: list[str]) -> None:
    from tests.test_packaging import _blocked

    argv = ["gmai-eval", *args, "--server", served.target, "--token", READ]
    code = _blocked("from gmai_eval.clients.cli.main import main", f"sys.argv = {argv!r}", "main()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GMAI_EVAL_")}
    blocked = subprocess.run(code, capture_output=True, text=True, timeout=120, env=env)
    assert blocked.returncode == 0, blocked.stderr
    assert blocked.stdout == both(served, *args)[0]
