"""The HTML report: its numbers, its charts' data, the gallery, the gate, and that it is self-contained.

Expected numbers come from the answers the helper wrote (counted by hand), from
statsmodels' Wilson interval and scipy's binomial test, never from the code under test.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import statistics
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from gmai_eval.server.records import Benchmark, SourceFile
from gmai_eval.server.reports.content import build_report, paired_delta_ci, reliability_bins
from gmai_eval.server.reports.html import render_html
from gmai_eval.server.reports.paper import official_split, paper_tables
from gmai_eval.server.scoring.calibration import Scored, expected_calibration_error
from gmai_eval.server.scoring.compare import GatePolicy
from gmai_eval.server.store import Database
from PIL import Image

from tests._report_helpers import ReleaseDb, build_release_db, correct_count

NOW = "2026-03-02T00:00:00+00:00"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


class _Elements(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))


def _tags(page: str) -> list[tuple[str, dict[str, str]]]:
    p = _Elements()
    p.feed(page)
    return p.tags


@pytest.fixture(scope="module")
def rel(tmp_path_factory: pytest.TempPathFactory) -> ReleaseDb:
    return build_release_db(tmp_path_factory.mktemp("rep") / "e.db")


def _page(rel: ReleaseDb, run: str = "r-v2", **kw: object) -> str:
    with Database(rel.path) as db:
        return render_html(build_report(db, run, now=NOW, **kw))  # type: ignore[arg-type]


def test_overall_accuracy_and_interval_are_the_runs(rel: ReleaseDb) -> None:
    from statsmodels.stats.proportion import proportion_confint

    page = _page(rel)
    correct, n = correct_count(rel, "r-v2")
    lo, hi = proportion_confint(correct, n, method="wilson")
    big = next(a for t, a in _tags(page) if "data-accuracy" in a and a.get("class") == "big")
    assert float(big["data-accuracy"]) == pytest.approx(correct / n, abs=1e-6)
    assert float(big["data-ci-low"]) == pytest.approx(lo, abs=1e-6)
    assert float(big["data-ci-high"]) == pytest.approx(hi, abs=1e-6)
    assert re.search(rf'data-key="n"><b>{n}</b>', page)
    assert re.search(rf'data-key="correct"><b>{correct}</b>', page)


def test_header_has_the_provenance(rel: ReleaseDb) -> None:
    page = _page(rel)
    for key, value in (("run", "r-v2"), ("model", "m"), ("model-version", "v2"), ("weights-digest", "sha256:v2weights"),
                       ("benchmark", "bench"), ("benchmark-digest", "sha256:00"), ("era", "2024")):
        assert f'data-key="{key}">{value}</dd>' in page, key
    assert "whole benchmark (no filter, no limit)" in page
    sub = _page(rel, "r-sub")
    assert "subset: filter (none), limit 20, seed 1" in sub


def test_forest_plots_hold_every_node_with_its_n_and_accuracy(rel: ReleaseDb) -> None:
    tags = _tags(_page(rel))
    plots = [a["data-dimension"] for t, a in tags if t == "svg" and "forest" in a.get("class", "")]
    assert plots == ["task", "department", "granularity", "modality"]
    task_nodes = []
    in_task = False
    for t, a in tags:
        if t == "svg":
            in_task = a.get("data-dimension") == "task"
        elif t == "g" and in_task and a.get("class") == "node":
            task_nodes.append(a)
    tasks = {q.task for q in rel.questions}
    assert {a["data-node"] for a in task_nodes} == tasks
    for a in task_nodes:
        correct, n = correct_count(rel, "r-v2", a["data-node"])
        assert int(a["data-n"]) == n
        assert float(a["data-accuracy"]) == pytest.approx(correct / n, abs=1e-6)
    accs = [float(a["data-accuracy"]) for a in task_nodes]
    assert accs == sorted(accs, reverse=True)


def test_gallery_shows_failed_questions_with_downscaled_images(rel: ReleaseDb) -> None:
    page = _page(rel)
    assert 'id="images-banner"' in page
    items = [a for t, a in _tags(page) if t == "div" and a.get("class") == "item"]
    assert items
    by_idx = {q.idx: q for q in rel.questions}
    for a in items:
        idx = int(a["data-idx"])
        assert rel.answers["r-v2"][idx] != by_idx[idx].answer  # only failures
        assert a["data-verdict"] == "incorrect"
    srcs = [a["src"] for t, a in _tags(page) if t == "img"]
    assert srcs and all(s.startswith("data:image/jpeg;base64,") for s in srcs)
    with Image.open(io.BytesIO(base64.b64decode(srcs[0].split(",", 1)[1]))) as img:
        assert max(img.size) <= 160


def test_no_images_leaves_every_image_and_the_banner_out(rel: ReleaseDb) -> None:
    page = _page(rel, images=False)
    assert "data:image" not in page and "<img" not in page
    assert 'id="images-banner"' not in page
    assert "image left out (--no-images)" in page


def test_the_file_references_nothing_outside_itself(rel: ReleaseDb) -> None:
    page = _page(rel, baseline="r-v1")
    for _, attrs in _tags(page):
        for name in ("src", "href", "xlink:href", "action"):
            if name in attrs:
                assert attrs[name].startswith(("data:", "#")), attrs
    assert not re.search(r"url\(\s*['\"]?(?!data:|#)", page)
    assert "@import" not in page
    assert "Content-Security-Policy" in page


def test_comparison_puts_significant_regressions_first_with_mcnemar_p(rel: ReleaseDb) -> None:
    from scipy.stats import binomtest

    page = _page(rel, baseline="r-v1")
    rows = [a for t, a in _tags(page) if t == "tr" and "data-significant" in a]
    a_run, b_run = rel.answers["r-v1"], rel.answers["r-v2"]
    keys = {q.idx: q.answer for q in rel.questions}
    to_wrong = sum(a_run[i] == keys[i] and b_run[i] != keys[i] for i in keys)
    to_right = sum(a_run[i] != keys[i] and b_run[i] == keys[i] for i in keys)
    overall = next(r for r in rows if r["data-dimension"] == "overall")
    expected_p = binomtest(min(to_wrong, to_right), to_wrong + to_right, 0.5).pvalue
    assert float(overall["data-p"]) == pytest.approx(expected_p, rel=1e-4)
    assert f'data-to-wrong="{to_wrong}" data-to-right="{to_right}"' in page
    sig = [r["data-significant"] == "1" and float(r["data-delta"]) < 0 for r in rows]
    assert sig[0] and sig == sorted(sig, reverse=True)  # regressions first, then the rest


def test_paired_delta_interval_matches_the_variance_of_the_paired_differences() -> None:
    n, a_only, b_only = 100, 10, 22
    diffs = [1] * b_only + [-1] * a_only + [0] * (n - a_only - b_only)
    half = 1.959963984540054 * math.sqrt(statistics.pvariance(diffs) / n)
    lo, hi = paired_delta_ci(n, a_only, b_only)
    assert lo == pytest.approx(100 * (statistics.fmean(diffs) - half))
    assert hi == pytest.approx(100 * (statistics.fmean(diffs) + half))
    assert paired_delta_ci(0, 0, 0) == (0.0, 0.0)


def test_reliability_bins_add_up_to_the_ece() -> None:
    items = [Scored(i, ("A", "B"), (p, 1 - p), "A" if i % 3 else "B") for i, p in
             enumerate([0.55, 0.62, 0.7, 0.81, 0.95, 1.0, 0.5, 0.66, 0.9, 0.73])]
    bins = reliability_bins(items)
    assert sum(b.count for b in bins) == len(items)
    ece = sum(b.count * abs(b.accuracy - b.confidence) for b in bins) / len(items)
    assert ece == pytest.approx(expected_calibration_error([it.confidence for it in items],
                                                           [it.correct for it in items]))


def test_calibration_section_only_with_probabilities(rel: ReleaseDb) -> None:
    with_probs = _page(rel, "r-v1")
    assert 'class="reliability"' in with_probs and 'data-key="ece"' in with_probs
    # every v1 answer put 0.7 on its choice: confidence 0.7 in one bin, accuracy = the run's accuracy
    correct, n = correct_count(rel, "r-v1")
    m = re.search(r'data-key="ece" data-value="([0-9.]+)"', with_probs)
    assert m and float(m.group(1)) == pytest.approx(abs(correct / n - 0.7), abs=1e-6)
    assert "returned no option probabilities" in _page(rel, "r-v2")


def test_gate_verdict_in_the_header(rel: ReleaseDb) -> None:
    failed = _page(rel, baseline="r-v1", policy=GatePolicy(max_significant_drop=1.0))
    assert 'data-passed="0"' in failed and "FAILED" in failed
    passed = _page(rel, policy=GatePolicy(min_overall_accuracy=0.1, max_significant_drop=1.0))
    assert 'data-passed="1"' in passed
    assert "max_significant_drop not checked: it needs a baseline run" in passed


def test_history_section_shows_both_releases(rel: ReleaseDb) -> None:
    page = _page(rel)
    assert 'class="trend"' in page
    releases = [a["data-run"] for t, a in _tags(page) if t == "g" and a.get("class") == "release"]
    assert releases == ["r-v1", "r-v2"]  # the subset run is listed, not plotted
    assert 'data-run="r-sub"' in page


def _official(name: str, layout: str, count: int, files: list[str]) -> Benchmark:
    return Benchmark(1, name, "sha256:x", layout, count, 0, "", tuple(SourceFile(f, "s", 1, 1) for f in files))


def test_official_split_needs_the_official_files_and_row_counts() -> None:
    assert official_split(_official("v", "VAL", 4550, ["GMAI-MMBench_VAL.tsv"])) == "VAL"
    assert official_split(_official("v", "VAL", 4550, ["/data/GMAI_mm_bench_VAL.tsv"])) == "VAL"
    parts = [f"GMAI_mm_bench_TEST_part_{k}.tsv" for k in range(1, 12)]
    assert official_split(_official("t", "TEST", 21281, parts)) == "TEST"
    assert official_split(_official("t", "TEST", 21281, parts[:10])) is None
    assert official_split(_official("v", "VAL", 4549, ["GMAI-MMBench_VAL.tsv"])) is None
    assert official_split(_official("v", "VAL", 4550, ["synthetic.tsv"])) is None


def test_a_whole_official_split_marks_the_published_rows(tmp_path: Path) -> None:
    from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions

    qs = make_questions(4550, seed=2)
    path = tmp_path / "val.db"
    with Database(path) as db:
        bid = insert_benchmark(db, qs, name="GMAI-MMBench_VAL")
        db.write(lambda s: s.execute(
            "INSERT INTO source_files (benchmark_id, position, name, sha256, rows, size_bytes)"
            " VALUES (?, 0, 'GMAI-MMBench_VAL.tsv', 'x', 4550, 1)", (bid,)))
        insert_run(db, bid, [A(q.idx, labels=["A"]) for q in qs], run_id="r-val")
        page = render_html(build_report(db, "r-val", now=NOW))
    assert 'data-key="split">VAL' in page
    gpt = [a for t, a in _tags(page) if t == "path" and a.get("data-model") == "GPT-4o"]
    # Disease Diagnosis, Table 10: GPT-4o 61.45
    assert "61.45" in {a["data-value"] for a in gpt}
    assert "published, not measured here: paper Table 10" in page


def test_the_shipped_paper_tables_are_the_reference_csvs() -> None:
    if not REFERENCE.is_dir():
        pytest.skip(f"no reference folder at {REFERENCE} (an installed copy)")
    import csv

    for dim, fname in (("task", "clinical-tasks"), ("department", "departments"),
                       ("granularity", "perceptual-granularities")):
        table = paper_tables()[dim]
        with (REFERENCE / f"gmai-mmbench-paper-{fname}.csv").open() as f:
            rows = list(csv.DictReader(f))
        assert [r["Model name"] for r in rows] == [p.model for p in table.rows]
        for r, p in zip(rows, table.rows, strict=True):
            assert float(r["Overall (val)"]) == p.overall_val
            assert float(r["Overall (test)"]) == p.overall_test
            src_cols = json.loads((Path(__file__).parents[1] / "server/reports/paper_results.json").read_text())
            cols = next(t for t in src_cols["tables"] if t["dimension"] == dim)["source_columns"]
            assert [float(r[c]) for c in cols] == list(p.nodes.values())


def test_report_cli_writes_the_file_and_says_its_size(rel: ReleaseDb, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "r.html"
    res = subprocess.run([sys.executable, "-m", "gmai_eval.clients.cli", "report", "--db", str(rel.path), "r-v2",
                          "--baseline", "r-v1", "--no-images", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert out.is_file() and f"wrote {out}" in res.stdout and "MB" in res.stdout
    bad = subprocess.run([sys.executable, "-m", "gmai_eval.clients.cli", "report", "--db", str(rel.path), "r-nope",
                          "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "r-nope" in bad.stderr


def test_position_bias_of_a_model_that_always_answers_the_key_is_zero(rel: ReleaseDb) -> None:
    page = _page(rel, "r-sub")  # r-sub answered its 20 questions with the key
    rows = [a for t, a in _tags(page) if t == "tr" and "data-options" in a]
    per_k: dict[int, int] = {}
    for q in rel.questions[:20]:
        per_k[len(q.options)] = per_k.get(len(q.options), 0) + 1
    assert {int(a["data-options"]): int(a["data-n"]) for a in rows} == per_k
    assert all(float(a["data-effect"]) == 0 and float(a["data-chi-square"]) == 0 for a in rows)
    assert all(a["data-flagged"] == "0" for a in rows)
    assert '<span class="verdict pass" data-flagged="0">not flagged</span>' in page
    letters = [a for t, a in _tags(page) if t == "span" and a.get("class") == "letter"]
    assert all(a["data-chosen"] == a["data-key"] for a in letters) and letters
