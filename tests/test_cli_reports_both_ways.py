"""report, history and leaderboard give the same output with --db and --server.

A real ``gmai-eval serve`` with an admin and a read-only token owns the two-release
database of ``_report_helpers`` (real PNG images, option probabilities, a subset run,
another model). The real CLI reads it once from the file and once through the evaluator
with the read-only token: ``--format json`` must be the same document, and the HTML
report the same bytes (its generation time pinned by SOURCE_DATE_EPOCH), thumbnails
included, which the evaluator makes from the images it holds.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from gmai_eval.server.store import Database

from tests._report_helpers import ReleaseDb, build_release_db, correct_count
from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions
from tests._service_helpers import run_cli as gmai_eval
from tests._service_helpers import running_server

ADMIN = "admin-token-0123456789"
READ = "read-token-0123456789ab"
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z
PINNED = {"SOURCE_DATE_EPOCH": EPOCH}


@dataclass(frozen=True)
class Served:
    target: str
    rel: ReleaseDb
    root: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("reports-both")
    rel = build_release_db(root / "eval.db")
    _add_official_val(rel.path)
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN, "GMAI_EVAL_READ_TOKEN": READ}
    with running_server(rel.path, env=env) as proc:
        yield Served(proc.target, rel, root)


def _add_official_val(path: Path) -> None:
    """A whole run of model ``val-model`` on a benchmark imported from the official VAL file."""
    qs = make_questions(4550, seed=2)
    with Database(path) as db:
        bid = insert_benchmark(db, qs, name="GMAI-MMBench_VAL", digest="sha256:val")
        db.write(lambda s: s.execute(
            "INSERT INTO source_files (benchmark_id, position, name, sha256, rows, size_bytes)"
            " VALUES (?, 0, 'GMAI-MMBench_VAL.tsv', 'x', 4550, 1)", (bid,)))
        insert_run(db, bid, [A(q.idx, labels=["A"]) for q in qs], run_id="r-val", model="val-model",
                   digest="sha256:val", finished_at="2026-01-05T10:00:00+00:00")


def _ways(s: Served) -> list[tuple[str, list[str]]]:
    return [("db", ["--db", str(s.rel.path)]), ("server", ["--server", s.target, "--token", READ])]


_BOTH: dict[tuple[str, ...], tuple[str, str]] = {}
"""Outputs of :func:`both` by server and arguments: the evaluator's file is only read here, so
a command several tests check runs once each way."""


def both(s: Served, *args: str, code: int = 0) -> tuple[str, str]:
    key = (s.target, str(code), *args)
    if key not in _BOTH:
        _BOTH[key] = _both(s, *args, code=code)
    return _BOTH[key]


def _both(s: Served, *args: str, code: int = 0) -> tuple[str, str]:
    out = []
    for _, where in _ways(s):
        result = gmai_eval(*args, *where)
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr
        out.append(result.stdout)
    return out[0], out[1]


@pytest.mark.parametrize(
    "args",
    [
        ["history", "--model", "m"],
        ["history", "--model", "m", "--format", "json"],
        ["history", "--model", "m", "--benchmark", "bench", "--format", "csv"],
        ["history", "--model", "other", "--format", "markdown"],
        ["leaderboard", "--benchmark", "bench"],
        ["leaderboard", "--benchmark", "bench", "--format", "json"],
        ["leaderboard", "--benchmark", "bench", "--by", "department", "--by", "granularity", "--format", "csv"],
        ["leaderboard", "--benchmark", "bench", "--with-paper", "--format", "json"],
        ["leaderboard", "--benchmark", "bench", "--with-paper", "--format", "markdown"],
        ["leaderboard", "--benchmark", "GMAI-MMBench_VAL", "--with-paper", "--by", "granularity"],
    ],
)
def test_history_and_leaderboard_match(served: Served, args: list[str]) -> None:
    local, remote = both(served, *args)
    assert local == remote
    assert local.strip()


def test_the_json_documents_hold_the_runs_numbers(served: Served) -> None:
    rel = served.rel
    _, remote = both(served, "history", "--model", "m", "--format", "json")
    runs = {r["run_id"]: r for r in json.loads(remote)["runs"]}
    assert list(runs) == ["r-v1", "r-v2", "r-sub"]
    n = len(rel.questions)
    for run_id in ("r-v1", "r-v2"):
        assert (runs[run_id]["correct"], runs[run_id]["n"]) == correct_count(rel, run_id)
    assert runs["r-sub"]["whole"] is False and runs["r-sub"]["change"] is None
    change = runs["r-v2"]["change"]
    assert change["previous_run"] == "r-v1" and change["paired"] is True
    expected = 100 * (correct_count(rel, "r-v2")[0] - correct_count(rel, "r-v1")[0]) / n
    assert change["delta_points"] == pytest.approx(expected)
    _, board = both(served, "leaderboard", "--benchmark", "bench", "--format", "json")
    rows = json.loads(board)["rows"]
    by_model = {r["model"]: r for r in rows}
    assert set(by_model) == {"m", "other"}  # r-v2 is m's latest whole run; r-sub is a subset
    assert by_model["m"]["run_id"] == "r-v2"
    assert by_model["m"]["accuracy"] == pytest.approx(correct_count(rel, "r-v2")[0] / n)


@pytest.mark.parametrize(
    "args",
    [
        ["r-v2", "--baseline", "r-v1"],
        ["r-v1"],
        ["r-v2", "--baseline", "r-v1", "--no-images"],
        ["r-sub"],
        ["r-val", "--no-images"],
    ],
)
def test_the_html_report_is_the_same_file(served: Served, args: list[str]) -> None:
    pages = {}
    for way, where in _ways(served):
        out = served.root / f"{way}-{'-'.join(args)}.html"
        result = gmai_eval("report", *args, "--out", str(out), *where, env=PINNED)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"wrote {out} (")
        pages[way] = out.read_text("utf-8")
    assert pages["db"] == pages["server"]
    page = pages["server"]
    stamp = dt.datetime.fromtimestamp(int(EPOCH), dt.UTC).isoformat()
    assert f"generated {stamp}" in page and f"at {stamp}." in page
    thumbs = page.count('src="data:image/jpeg;base64,')
    if args[0] == "r-val":  # a whole official split: the paper's rows, told by GetRunProvenance
        assert 'data-key="split">VAL' in page and "published, not measured here" in page
    if "--no-images" in args or args[0] == "r-sub":  # r-sub answered every question right: no gallery
        assert thumbs == 0 and 'id="images-banner"' not in page
    else:
        assert thumbs > 0 and 'id="images-banner"' in page
    if args[0] == "r-v1":
        assert 'data-key="ece"' in page  # r-v1 carries option probabilities: the bins came over the API
    if "--baseline" in args:
        assert 'id="comparison"' in page


def test_the_gate_verdict_is_the_same_both_ways(served: Served) -> None:
    policy = served.root / "gate.toml"
    policy.write_text("min_overall_accuracy = 0.9\nmax_significant_drop = 1.0\n")
    pages = []
    for way, where in _ways(served):
        out = served.root / f"gate-{way}.html"
        result = gmai_eval("report", "r-v2", "--baseline", "r-v1", "--policy", str(policy), "--out", str(out),
                           *where, env=PINNED)
        assert result.returncode == 0, result.stderr
        assert result.stdout.rstrip().endswith(", gate FAILED")
        pages.append(out.read_text("utf-8"))
    assert pages[0] == pages[1] and 'data-passed="0"' in pages[0]


def test_errors_are_one_line_both_ways(served: Served) -> None:
    for _, where in _ways(served):
        for args in (["report", "r-nope", "--out", str(served.root / "x.html")],
                     ["report", "r-v2", "--baseline", "r-nope", "--out", str(served.root / "x.html")],
                     ["history", "--model", "nobody"],
                     ["leaderboard", "--benchmark", "nothing"]):
            result = gmai_eval(*args, *where)
            assert result.returncode == 1, (args, result.stderr)
            assert "Traceback" not in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
            assert "nope" in result.stderr or "nobody" in result.stderr or "nothing" in result.stderr
    assert not (served.root / "x.html").exists()


def test_a_bad_token_is_refused_and_a_bad_epoch_is_one_line(served: Served) -> None:
    result = gmai_eval("history", "--model", "m", "--server", served.target, "--token", "wrong-token-0123456789")
    assert result.returncode == 1 and "UNAUTHENTICATED" in result.stderr
    bad = gmai_eval("report", "r-v1", "--out", str(served.root / "y.html"), "--db", str(served.rel.path),
                    env={"SOURCE_DATE_EPOCH": "yesterday"})
    assert bad.returncode == 1 and "SOURCE_DATE_EPOCH" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
