"""End to end: a real ``gmai-eval serve`` subprocess, promtool on its live /metrics, and a
real Prometheus server on loopback that scrapes it, loads deploy/prometheus/alerts.yml,
answers PromQL with the accuracy computed from the database and fires the drop alert."""

from __future__ import annotations

import datetime as dt
import json
import queue
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest
from gmai_eval.server.scoring.grading import compute_scores
from gmai_eval.server.store import Database

from tests._metrics_helpers import (
    DEPLOY,
    add_benchmark,
    add_run,
    fetch,
    free_port,
    promtool_check_metrics,
    require_tool,
    synthetic_answers,
)

N = 120
DEADLINE_S = 20.0
"""Longest wait for any one condition (the serve line, a scrape, an alert)."""

T = TypeVar("T")


def _days_ago(days: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(days=days)).isoformat()


def _wait_for(what: str, probe: Callable[[], T | None], deadline_s: float = DEADLINE_S) -> T:
    """Poll ``probe`` until it returns something, or fail after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    last_error: Exception | None = None
    while time.monotonic() < end:
        try:
            value = probe()
        except OSError as exc:  # not listening yet
            last_error = exc
            value = None
        if value is not None:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {deadline_s}s waiting for {what} (last error: {last_error})")


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def db_file(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A database with model m1 at version 1.0 (good) then 2.0 (much worse)."""
    path = tmp_path_factory.mktemp("e2e") / "eval.db"
    db = Database(path)
    try:
        bid = add_benchmark(db, "gmai-val", synthetic_answers(N))
        add_run(db, run_id="r-v1", model="m1", version="1.0", benchmark_id=bid,
                answers=synthetic_answers(N, correct_every=1), finished_at=_days_ago(12))
        add_run(db, run_id="r-v2", model="m1", version="2.0", benchmark_id=bid,
                answers=synthetic_answers(N, correct_every=3), finished_at=_days_ago(10))
        latest = compute_scores(db, "r-v2").overall.accuracy
    finally:
        db.close()
    return {"path": path, "latest_accuracy": latest}


@pytest.fixture(scope="module")
def evaluator(db_file: dict[str, Any]) -> Iterator[str]:
    """``gmai-eval serve`` on loopback with free ports; yields the metrics address."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gmai_eval.clients.cli", "serve", "--db", str(db_file["path"]),
         "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0", "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or ()], daemon=True).start()
    try:
        try:
            line = lines.get(timeout=DEADLINE_S)
        except queue.Empty:
            _stop(proc)
            pytest.fail(f"gmai-eval serve printed nothing in {DEADLINE_S}s; stderr: {proc.stderr.read() if proc.stderr else ''}")
        assert line.startswith("gmai-eval serving on "), line
        yield line.split(" metrics ")[1].strip()
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def prometheus(evaluator: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prometheus on 127.0.0.1 scraping the evaluator every second; yields its URL."""
    binary = require_tool("prometheus")
    work = tmp_path_factory.mktemp("prom")
    config = work / "prometheus.yml"
    config.write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(DEPLOY / "prometheus" / "alerts.yml")],
                "scrape_configs": [{"job_name": "gmai-eval", "static_configs": [{"targets": [evaluator]}]}],
            }
        )
    )
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for("Prometheus to be ready", lambda: (proc.poll() is None and fetch(url + "/-/ready")) or None)
        if proc.poll() is not None:
            pytest.fail(f"prometheus exited: {proc.stderr.read() if proc.stderr else ''}")
        yield url
    finally:
        _stop(proc)


def _query(url: str, promql: str) -> list[dict[str, Any]]:
    body = json.loads(fetch(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_promtool_accepts_the_live_serve_endpoint(evaluator: str) -> None:
    text = fetch(f"http://{evaluator}/metrics")
    assert 'gmai_eval_accuracy_ratio{benchmark="gmai-val",dimension="overall"' in text
    result = promtool_check_metrics(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_query_returns_the_accuracy_of_the_finished_run(prometheus: str, db_file: dict[str, Any]) -> None:
    promql = 'gmai_eval_accuracy_ratio{node="all",release="latest"}'
    result = _wait_for("the first scrape", lambda: _query(prometheus, promql) or None)
    assert len(result) == 1
    assert result[0]["metric"]["model"] == "m1"
    assert result[0]["metric"]["model_version"] == "2.0"
    assert float(result[0]["value"][1]) == pytest.approx(db_file["latest_accuracy"])
    assert db_file["latest_accuracy"] < 0.5  # the synthetic v2 is one in three correct


def test_prometheus_fires_the_accuracy_drop_alert_from_real_series(prometheus: str) -> None:
    def firing() -> list[dict[str, Any]] | None:
        body = json.loads(fetch(prometheus + "/api/v1/alerts"))
        alerts = [a for a in body["data"]["alerts"] if a["labels"]["alertname"] == "GmaiEvalAccuracyDrop"
                  and a["state"] == "firing"]
        return alerts or None

    alerts = _wait_for("GmaiEvalAccuracyDrop to fire", firing)
    overall = [a for a in alerts if a["labels"]["node"] == "all"]
    assert len(overall) == 1
    assert overall[0]["labels"]["model_version"] == "2.0"
    rules = json.loads(fetch(prometheus + "/api/v1/rules"))
    names = {r["name"] for g in rules["data"]["groups"] for r in g["rules"]}
    assert {"GmaiEvalAccuracyDrop", "GmaiEvalAnswerErrorRate", "GmaiEvalNoCompletedRun",
            "GmaiEvalModelDown", "GmaiEvalEvaluatorDown"} <= names


def test_prometheus_sees_the_stale_completion_timestamp(prometheus: str) -> None:
    # the last run finished 10 days ago
    result = _wait_for(
        "the staleness expression",
        lambda: _query(prometheus, "time() - gmai_eval_last_run_completion_timestamp_seconds > 7 * 86400") or None,
    )
    assert result[0]["metric"]["model"] == "m1"


def test_scrape_target_is_up(prometheus: str, evaluator: str) -> None:
    result = _wait_for("up", lambda: _query(prometheus, 'up{job="gmai-eval"}') or None)
    assert result[0]["metric"]["instance"] == evaluator
    assert result[0]["value"][1] == "1"
