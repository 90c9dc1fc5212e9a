"""``gmai-eval history``: every release of a model with its accuracy, CI and the paired change.

Expected numbers come from the answers the helper wrote, statsmodels' Wilson interval and
scipy's exact binomial test (McNemar on the discordant pairs).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from gmai_eval.server.reports.history import model_history
from gmai_eval.server.store import Database

from tests._report_helpers import ReleaseDb, build_release_db, correct_count


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> ReleaseDb:
    return build_release_db(tmp_path_factory.mktemp("hist") / "e.db")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmai_eval.clients.cli", *args], capture_output=True, text=True,
                          timeout=120)


def _mcnemar_p(rel: ReleaseDb, a: str, b: str) -> float:
    from scipy.stats import binomtest

    keys = {q.idx: q.answer for q in rel.questions}
    to_wrong = sum(rel.answers[a][i] == k and rel.answers[b][i] != k for i, k in keys.items())
    to_right = sum(rel.answers[a][i] != k and rel.answers[b][i] == k for i, k in keys.items())
    return float(binomtest(min(to_wrong, to_right), to_wrong + to_right, 0.5).pvalue)


def test_history_lists_every_run_with_the_change_between_versions(rel: ReleaseDb) -> None:
    from statsmodels.stats.proportion import proportion_confint

    with Database(rel.path) as db:
        entries = model_history(db, "m")
    assert [e.run.run_id for e in entries] == ["r-v1", "r-v2", "r-sub"]
    assert [e.run.model_version for e in entries] == ["v1", "v2", "v3"]
    assert [e.run.whole for e in entries] == [True, True, False]
    for e in entries:
        correct, n = correct_count(rel, e.run.run_id)
        assert (e.correct, e.n) == (correct, n)
        assert e.ci == pytest.approx(proportion_confint(correct, n, method="wilson"), abs=1e-9)
    first, second, subset = entries
    assert first.change is None and subset.change is None  # first release; a subset never stands for one
    assert second.change is not None and second.change.paired
    assert second.change.previous_run == "r-v1"
    assert second.change.p_value == pytest.approx(_mcnemar_p(rel, "r-v1", "r-v2"), rel=1e-6)
    assert second.change.delta_points == pytest.approx(100 * (second.accuracy - first.accuracy))


def test_history_json_and_table_formats(rel: ReleaseDb) -> None:
    res = _cli("history", "--db", str(rel.path), "--model", "m", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    v2 = next(r for r in doc["runs"] if r["run_id"] == "r-v2")
    assert v2["model_version"] == "v2" and v2["weights_digest"] == "sha256:v2weights"
    assert v2["change"]["p_value"] == pytest.approx(_mcnemar_p(rel, "r-v1", "r-v2"), rel=1e-6)
    table = _cli("history", "--db", str(rel.path), "--model", "m").stdout
    line = next(ln for ln in table.splitlines() if " r-v2 " in ln)
    correct, n = correct_count(rel, "r-v2")
    assert f"{100 * correct / n:.2f}" in line and "vs v1 (p=" in line
    assert "subset" in next(ln for ln in table.splitlines() if " r-sub " in ln)
    csv_out = _cli("history", "--db", str(rel.path), "--model", "m", "--format", "csv").stdout
    assert csv_out.splitlines()[0].startswith("run_id,date,model_version")


def test_history_of_one_benchmark_and_of_an_unknown_model(rel: ReleaseDb, tmp_path: Path) -> None:
    none = _cli("history", "--db", str(rel.path), "--model", "m", "--benchmark", "bench", "--format", "json")
    assert len(json.loads(none.stdout)["runs"]) == 3
    other = _cli("history", "--db", str(rel.path), "--model", "m", "--benchmark", "no-such", "--format", "json")
    assert other.returncode == 1 and "no-such" in other.stderr and "Traceback" not in other.stderr
    empty = _cli("history", "--db", str(rel.path), "--model", "other", "--format", "json")
    assert [r["run_id"] for r in json.loads(empty.stdout)["runs"]] == ["r-other"]
    bad = _cli("history", "--db", str(rel.path), "--model", "nobody")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "nobody" in bad.stderr
