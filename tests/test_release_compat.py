"""A database written by release 0.1.0 keeps working with the current code.

The oracle is ``tests/fixtures/release-0.1.0.scores.json``: what that release printed for
``gmai-eval scores --format json`` of each of the fixture's runs (see the fixtures'
README). The tests work on a copy, because opening the file migrates it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from gmai_eval.clients.cli.main import cli
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.scoring.grading import settle_finished_runs
from gmai_eval.server.scoring.summary import from_json
from gmai_eval.server.store import Database, metrics_reads
from prometheus_client import CollectorRegistry

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ORACLE: dict[str, dict[str, object]] = json.loads((FIXTURES / "release-0.1.0.scores.json").read_text())
RUNS = sorted(ORACLE)
NODE_NUMBERS = ("n", "correct", "accuracy", "ci_low", "ci_high", "incorrect", "unparsed", "refused", "errors")


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    copy = tmp_path / "release-0.1.0.db"
    shutil.copyfile(FIXTURES / "release-0.1.0.db", copy)
    return copy


def _nodes(doc: dict[str, object]) -> dict[tuple[str, tuple[str, ...]], dict[str, object]]:
    nodes = doc["nodes"]
    assert isinstance(nodes, list)
    return {(n["dimension"], tuple(n["path"])): n for n in nodes}


@pytest.mark.parametrize("run_id", RUNS)
def test_scores_match_what_release_0_1_0_printed(old_db: Path, run_id: str) -> None:
    res = CliRunner().invoke(cli, ["scores", "--db", str(old_db), run_id, "--tree", "--format", "json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    got, want = json.loads(res.output), ORACLE[run_id]
    for key in ("run_id", "era", "judge", "unscored", "ungraded"):
        assert got[key] == want[key], key
    assert got["macro_accuracy"] == pytest.approx(want["macro_accuracy"])
    got_nodes, want_nodes = _nodes(got), _nodes(want)
    assert list(got_nodes) == list(want_nodes)
    for key, node in want_nodes.items():
        for field in NODE_NUMBERS:
            assert got_nodes[key][field] == pytest.approx(node[field]), (key, field)


def test_runs_of_the_old_release_read_back(old_db: Path) -> None:
    with Database(old_db) as db:
        manager = RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()))  # what GetRun/ListRuns read
        assert sorted(r.id for r in manager.list_runs()) == RUNS
        for run_id in RUNS:
            rec = manager.get_run(run_id)
            assert rec.state == "succeeded" and rec.benchmark == "synthetic-val"
            overall = _nodes(ORACLE[run_id])[("overall", ())]
            assert (rec.progress.total, rec.progress.done, rec.progress.correct) == (
                overall["n"], overall["n"], overall["correct"]
            )


def test_start_up_stores_the_summaries_the_old_release_never_wrote(old_db: Path) -> None:
    with Database(old_db) as db:
        assert db.read(lambda s: metrics_reads.summaries(s, RUNS)) == {}
        assert sorted(asyncio.run(settle_finished_runs(db))) == RUNS
        stored = db.read(lambda s: metrics_reads.summaries(s, RUNS))
        assert asyncio.run(settle_finished_runs(db)) == []
    for run_id in RUNS:
        summary = from_json(stored[run_id])
        overall = _nodes(ORACLE[run_id])[("overall", ())]
        assert (summary.n, summary.nodes[0].n, summary.nodes[0].correct) == (
            overall["n"], overall["n"], overall["correct"]
        )
        assert (summary.refused, summary.unparsed, summary.error) == (
            overall["refused"], overall["unparsed"], overall["errors"]
        )
