"""Reads never write: the read-only token's RPCs, a Prometheus scrape and the read CLI
commands leave the database file byte for byte as they found it.

The database holds two finished runs: one graded when it ended (as the run manager does)
and one left ungraded, as a database of an older release has them; the evaluator grades
that one at start-up, before it serves. The WAL is checkpointed, then the ``.db`` file and
the ``-wal`` file are fingerprinted before and after the reads. A write RPC afterwards
changes the fingerprint, so the check can fail.
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pbg
from gmai_eval.server.api.auth import READ_ONLY_METHODS
from gmai_eval.server.records import ModelSpec
from gmai_eval.server.store import Database
from gmai_eval.server.store.models import register_model

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions
from tests._service_helpers import (
    ADMIN_TOKEN,
    READ_TOKEN,
    bearer,
    running_server,
    wait_channel_ready,
)

LONG = "I think it is option {} since the image shows it clearly"


def _build(path: Path) -> Path:
    qs = make_questions(40, seed=31, unanswered=[39])
    with Database(path) as db:
        bid = insert_benchmark(db, qs)
        register_model(db, ModelSpec(name="m", endpoints=("127.0.0.1:1",)))
        insert_run(db, bid, [A(q.idx, text=LONG.format(q.answer or "A"), option_scores={"A": 0.6, "B": 0.4})
                             for q in qs], run_id="r-a", finished_at="2026-01-01T00:00:00+00:00")
        insert_run(db, bid, [A(q.idx, labels=["B"]) for q in qs], run_id="r-b", graded=False,
                   finished_at="2026-01-02T00:00:00+00:00")
    return path


def _checkpoint(path: Path) -> None:
    conn = sqlite3.connect(path, timeout=30)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        conn.close()
    assert busy == 0


def _fingerprint(path: Path) -> tuple[str, bytes]:
    """sha256 of the .db file, and the -wal file's bytes (absent = empty)."""
    wal = path.with_name(path.name + "-wal")
    return hashlib.sha256(path.read_bytes()).hexdigest(), wal.read_bytes() if wal.exists() else b""


def _read_rpcs(stub: pbg.EvaluatorServiceStub) -> set[str]:
    """Call every read RPC with the read-only token; return the names called."""
    md = bearer(READ_TOKEN)
    assert stub.ListBenchmarks(pb.ListBenchmarksRequest(), timeout=30, metadata=md).benchmarks
    stub.GetBenchmark(pb.GetBenchmarkRequest(name="bench", filter="task=DD"), timeout=30, metadata=md)
    assert stub.ListModels(pb.ListModelsRequest(), timeout=30, metadata=md).models
    assert len(stub.ListRuns(pb.ListRunsRequest(), timeout=30, metadata=md).runs) == 2
    for run_id in ("r-a", "r-b"):
        assert stub.GetRun(pb.GetRunRequest(id=run_id), timeout=30, metadata=md).run.id == run_id
        assert stub.GetRunReport(pb.GetRunReportRequest(id=run_id), timeout=30, metadata=md).run.id == run_id
        assert list(stub.WatchRun(pb.WatchRunRequest(id=run_id), timeout=30, metadata=md))
        own = stub.GetRunScores(pb.GetRunScoresRequest(id=run_id), timeout=30, metadata=md)
        assert own.nodes[0].n == 39  # every answer graded (one question has no key)
        other = stub.GetRunScores(pb.GetRunScoresRequest(id=run_id, extraction_era="2025-08"), timeout=30, metadata=md)
        assert other.extraction_era == "2025-08"
    assert stub.CompareRuns(pb.CompareRunsRequest(run_a="r-a", run_b="r-b"), timeout=30, metadata=md).nodes
    for run_id in ("r-a", "r-b"):
        cal = stub.GetRunCalibration(pb.GetRunCalibrationRequest(id=run_id), timeout=30, metadata=md)
        assert cal.run.id == run_id
        chunks = list(stub.ExportRun(pb.ExportRunRequest(id=run_id, format="xlsx"), timeout=60, metadata=md))
        assert chunks[0].chunk.file_name == f"{run_id}.xlsx" and chunks[0].rows > 0
    prov = stub.GetRunProvenance(pb.GetRunProvenanceRequest(id="r-a"), timeout=30, metadata=md).provenance
    assert prov.run_id == "r-a"
    stub.GetRunGallery(pb.GetRunGalleryRequest(id="r-a"), timeout=30, metadata=md)
    assert stub.GetModelHistory(pb.GetModelHistoryRequest(model=prov.model), timeout=30, metadata=md).runs
    stub.GetLeaderboard(pb.GetLeaderboardRequest(benchmark="bench", with_paper=True), timeout=30, metadata=md)
    return {"ListBenchmarks", "GetBenchmark", "ListModels", "ListRuns", "GetRun", "GetRunReport", "WatchRun",
            "GetRunScores", "CompareRuns", "GetRunCalibration", "ExportRun",
            "GetRunProvenance", "GetRunGallery", "GetModelHistory", "GetLeaderboard"}


def test_read_rpcs_and_a_scrape_leave_the_database_unchanged(tmp_path: Path) -> None:
    path = _build(tmp_path / "e.db")
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN_TOKEN, "GMAI_EVAL_READ_TOKEN": READ_TOKEN}
    with running_server(path, env=env) as server, grpc.insecure_channel(server.target) as channel:
        wait_channel_ready(channel)
        stub = pbg.EvaluatorServiceStub(channel)
        _checkpoint(path)
        before = _fingerprint(path)
        assert _read_rpcs(stub) == READ_ONLY_METHODS
        url = f"http://127.0.0.1:{server.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as resp:
            text = resp.read().decode()
        assert 'gmai_eval_accuracy_ratio{benchmark="bench",dimension="overall"' in text
        assert _fingerprint(path) == before
        # the check can fail: a write changes the file
        stub.RescoreRun(pb.RescoreRunRequest(id="r-a", extraction_era="2025-08"), timeout=60,
                        metadata=bearer(ADMIN_TOKEN))
        assert _fingerprint(path) != before


def _cli(*args: str) -> str:
    res = subprocess.run([sys.executable, "-m", "gmai_eval.clients.cli", *args], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout


@pytest.fixture
def settled(tmp_path: Path) -> Path:
    """The database after the evaluator's start-up grading (every finished run graded)."""
    import asyncio

    from gmai_eval.server.scoring.grading import settle_finished_runs

    path = _build(tmp_path / "e.db")
    with Database(path) as db:
        assert asyncio.run(settle_finished_runs(db)) == ["r-b"]
    return path


def test_read_cli_commands_leave_the_database_unchanged(settled: Path, tmp_path: Path) -> None:
    db = str(settled)
    _checkpoint(settled)
    before = _fingerprint(settled)
    out = tmp_path / "out"
    assert '"ungraded": 0' in _cli("scores", "--db", db, "r-b", "--format", "json")
    _cli("scores", "--db", db, "r-a", "--era", "2026-06")
    _cli("compare", "--db", db, "r-a", "r-b")
    _cli("calibration", "--db", db, "r-a")
    _cli("export", "--db", db, "r-a", "--out", str(out / "a.tsv"))
    _cli("export", "--db", db, "r-b", "--format", "xlsx", "--out", str(out / "b.xlsx"), "--era", "2025-08")
    assert "r-a" in _cli("runs", "--db", db, "--format", "csv")
    _cli("runs", "show", "r-b", "--db", db)
    assert _fingerprint(settled) == before
    _cli("rescore", "--db", db, "r-a", "--era", "2025-08")
    assert _fingerprint(settled) != before


def test_a_read_reports_ungraded_answers_instead_of_grading_them(tmp_path: Path) -> None:
    path = _build(tmp_path / "e.db")  # r-b: finished, never graded (an older release's database)
    _checkpoint(path)
    before = _fingerprint(path)
    assert '"ungraded": 40' in _cli("scores", "--db", str(path), "r-b", "--format", "json")
    assert _fingerprint(path) == before
