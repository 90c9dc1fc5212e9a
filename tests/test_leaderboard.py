"""``gmai-eval leaderboard``: each model's latest whole run ranked, ties with the leader by a
paired test, the paper's columns and (with --with-paper) its published rows.

Expected values come from the answers the helper wrote and from scipy's exact binomial
test; the published numbers from the paper's Table 10 as printed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from gmai_eval.server.reports.leaderboard import leaderboard
from gmai_eval.server.store import Database

from tests._report_helpers import ReleaseDb, build_release_db, correct_count


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> ReleaseDb:
    return build_release_db(tmp_path_factory.mktemp("lb") / "e.db")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gmai_eval.clients.cli", *args], capture_output=True, text=True,
                          timeout=120)


def test_models_are_ranked_by_their_latest_whole_run(rel: ReleaseDb) -> None:
    from scipy.stats import binomtest

    with Database(rel.path) as db:
        rows = leaderboard(db, "bench", ("task",))
    # m's latest run is the subset r-sub: its latest *whole* run, r-v2, stands for it
    acc = {run: correct_count(rel, run) for run in ("r-v2", "r-other")}
    expected = sorted([("m", "r-v2"), ("other", "r-other")], key=lambda mr: -acc[mr[1]][0])
    assert [(r.model, r.run_id) for r in rows] == expected
    assert [r.rank for r in rows] == [1, 2]
    for r in rows:
        correct, n = acc[r.run_id]
        assert (r.n, r.accuracy) == (n, pytest.approx(correct / n))
        task = "Disease Diagnosis"
        tc, tn = correct_count(rel, r.run_id, task)
        assert r.values["DD"] == pytest.approx(tc / tn)
        assert r.values["AR"] is None  # no Attribute Recognition question in this benchmark
    leader, second = rows
    keys = {q.idx: q.answer for q in rel.questions}
    a, b = rel.answers[leader.run_id], rel.answers[second.run_id]
    only_a = sum(a[i] == k and b[i] != k for i, k in keys.items())
    only_b = sum(a[i] != k and b[i] == k for i, k in keys.items())
    p = binomtest(min(only_a, only_b), only_a + only_b, 0.5).pvalue
    assert leader.vs_leader == "leader"
    assert second.p_value == pytest.approx(p, rel=1e-6)
    assert second.vs_leader.startswith("tied" if p >= 0.05 else "below")


def test_with_paper_interleaves_the_published_rows_labelled(rel: ReleaseDb) -> None:
    res = _cli("leaderboard", "--db", str(rel.path), "--benchmark", "bench", "--with-paper", "--format", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)["rows"]
    assert len([r for r in rows if r["published"]]) == 51  # 50 models and Random
    gpt = next(r for r in rows if r["model"] == "GPT-4o")
    assert gpt["published"] == "paper Table 10, VAL" and gpt["rank"] is None and gpt["run_id"] is None
    assert gpt["accuracy"] == pytest.approx(0.5353)  # Overall (val)
    assert gpt["columns"]["DD"] == pytest.approx(0.6145)
    accs = [r["accuracy"] for r in rows]
    assert accs == sorted(accs, reverse=True)
    table = _cli("leaderboard", "--db", str(rel.path), "--benchmark", "bench", "--with-paper").stdout
    assert "PUBLISHED (paper Table 10, VAL)" in table and "not measured here" in table


def test_columns_follow_the_papers_order(rel: ReleaseDb) -> None:
    out = _cli("leaderboard", "--db", str(rel.path), "--benchmark", "bench", "--by", "granularity", "--by",
               "department", "--format", "csv").stdout
    header = out.splitlines()[0].split(",")
    cols = header[header.index("p_value") + 1:]
    assert cols[:4] == ["Contour", "Mask", "Image", "Box"]
    assert cols[4:] == ["CS", "D", "E", "GH", "GS", "H", "ID", "LMP", "NH", "N", "OG", "OM", "O", "OS", "ENT/HNS",
                        "PM", "SM", "U"]


def test_unknown_benchmark_is_one_line(rel: ReleaseDb) -> None:
    bad = _cli("leaderboard", "--db", str(rel.path), "--benchmark", "nope")
    assert bad.returncode == 1 and "nope" in bad.stderr and "Traceback" not in bad.stderr
