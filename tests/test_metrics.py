"""The accuracy collector against a real SQLite file, and promtool on the exposition."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest
from gmai_eval import __version__
from gmai_eval.server.metrics.collector import (
    AccuracyCollector,
    build_registry,
    kept_runs,
)
from gmai_eval.server.store import Database
from gmai_eval.server.store.metrics_reads import FinishedRun
from prometheus_client import CollectorRegistry

from tests._metrics_helpers import (
    Answer,
    add_benchmark,
    add_run,
    fetch,
    promtool_check_metrics,
    serve_registry,
    synthetic_answers,
)

N = 60


@pytest.fixture
def populated(db: Database) -> dict[str, list[Answer]]:
    """Model m1 with versions 0.9, 1.0, 2.0 (newest last), m2 with one version, plus a
    failed and a running run that must not be exported."""
    questions = synthetic_answers(N)
    bid = add_benchmark(db, "gmai-val", questions)
    runs = {
        "r-old": ("m1", "0.9", synthetic_answers(N, correct_every=5), "2026-11-01T10:00:00+00:00"),
        "r-v1a": ("m1", "1.0", synthetic_answers(N, correct_every=4), "2026-11-02T10:00:00+00:00"),
        "r-v1b": ("m1", "1.0", synthetic_answers(N, correct_every=2), "2026-11-03T10:00:00+00:00"),
        "r-v2": ("m1", "2.0", synthetic_answers(N, correct_every=3), "2026-11-04T10:00:00+00:00"),
        "r-m2": ("m2", "7", synthetic_answers(N, correct_every=1), "2026-11-05T10:00:00+00:00"),
    }
    for run_id, (model, version, answers, finished) in runs.items():
        add_run(db, run_id=run_id, model=model, version=version, benchmark_id=bid,
                answers=answers, finished_at=finished)
    add_run(db, run_id="r-fail", model="m1", version="3.0", benchmark_id=bid,
            answers=synthetic_answers(N, correct_every=1), finished_at="2026-11-06T10:00:00+00:00",
            state="failed")
    add_run(db, run_id="r-live", model="m1", version="3.0", benchmark_id=bid,
            answers=synthetic_answers(N, correct_every=1), finished_at="2026-11-07T10:00:00+00:00",
            state="running")
    return {run_id: spec[2] for run_id, spec in runs.items()}


def _registry(db: Database) -> tuple[CollectorRegistry, AccuracyCollector]:
    reg = CollectorRegistry()
    collector = AccuracyCollector(db)
    reg.register(collector)
    return reg, collector


def _labels(model: str, version: str, release: str, dimension: str, node: str) -> dict[str, str]:
    return {"model": model, "model_version": version, "benchmark": "gmai-val", "release": release,
            "dimension": dimension, "node": node}


def test_overall_accuracy_and_interval_match_the_grades(db: Database, populated: dict[str, list[Answer]]) -> None:
    from statsmodels.stats.proportion import proportion_confint

    reg, _ = _registry(db)
    answers = populated["r-v2"]
    correct = sum(a.verdict == "correct" for a in answers)
    labels = _labels("m1", "2.0", "latest", "overall", "all")
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", labels) == pytest.approx(correct / N)
    lo, hi = proportion_confint(correct, N, alpha=0.05, method="wilson")  # independent oracle
    assert reg.get_sample_value("gmai_eval_accuracy_ci_lower_ratio", labels) == pytest.approx(lo)
    assert reg.get_sample_value("gmai_eval_accuracy_ci_upper_ratio", labels) == pytest.approx(hi)
    assert reg.get_sample_value("gmai_eval_node_questions", labels) == N


def test_nodes_use_paper_abbreviations_and_counts_per_dimension(db: Database, populated: dict[str, list[Answer]]) -> None:
    reg, _ = _registry(db)
    answers = populated["r-v2"]
    expected = {
        ("task", "DD"): [a for a in answers if a.task == "Disease Diagnosis"],
        ("task", "OR-A"): [a for a in answers if a.task == "Organ Recognition - Abdomen"],
        ("department", "N/A"): [a for a in answers if a.department == ""],
        ("department", "U"): [a for a in answers if a.department == "Urology"],
        ("granularity", "Box"): [a for a in answers if a.granularity == "Box level"],
        ("modality", "X-ray"): [a for a in answers if a.modality == "X-ray"],
    }
    for (dim, node), subset in expected.items():
        labels = _labels("m1", "2.0", "latest", dim, node)
        assert subset
        assert reg.get_sample_value("gmai_eval_node_questions", labels) == len(subset)
        acc = sum(a.verdict == "correct" for a in subset) / len(subset)
        assert reg.get_sample_value("gmai_eval_accuracy_ratio", labels) == pytest.approx(acc)
    # every dimension's nodes partition the run
    samples = [s for fam in reg.collect() if fam.name == "gmai_eval_node_questions" for s in fam.samples]
    per_dim = Counter()
    for s in samples:
        if s.labels["model_version"] == "2.0":
            per_dim[s.labels["dimension"]] += s.value
    assert per_dim == {"overall": N, "task": N, "department": N, "granularity": N, "modality": N}


def test_only_the_latest_run_of_the_two_newest_versions_is_exported(db: Database, populated: dict[str, list[Answer]]) -> None:
    reg, _ = _registry(db)
    fams = {f.name: f for f in reg.collect()}
    overall = {
        (s.labels["model"], s.labels["model_version"], s.labels["release"]): s.value
        for s in fams["gmai_eval_accuracy_ratio"].samples
        if s.labels["node"] == "all"
    }
    v1b = sum(a.verdict == "correct" for a in populated["r-v1b"]) / N
    assert overall == {
        ("m1", "2.0", "latest"): pytest.approx(sum(a.verdict == "correct" for a in populated["r-v2"]) / N),
        ("m1", "1.0", "previous"): pytest.approx(v1b),
        ("m2", "7", "latest"): pytest.approx(1.0),
    }


def test_run_state_timestamps_and_info_series(db: Database, populated: dict[str, list[Answer]]) -> None:
    reg, _ = _registry(db)
    assert reg.get_sample_value("gmai_eval_runs_by_state", {"state": "succeeded"}) == 5
    assert reg.get_sample_value("gmai_eval_runs_by_state", {"state": "failed"}) == 1
    assert reg.get_sample_value("gmai_eval_runs_by_state", {"state": "running"}) == 1
    assert reg.get_sample_value("gmai_eval_runs_by_state", {"state": "queued"}) == 0
    ts = dt.datetime(2026, 11, 4, 10, tzinfo=dt.UTC).timestamp()
    assert reg.get_sample_value(
        "gmai_eval_last_run_completion_timestamp_seconds", {"model": "m1", "benchmark": "gmai-val"}
    ) == ts
    assert reg.get_sample_value("gmai_eval_build_info", {"version": __version__}) == 1
    assert reg.get_sample_value(
        "gmai_eval_model_info", {"model": "m1", "model_version": "2.0", "weights_digest": "sha256:ab"}
    ) == 1
    assert reg.get_sample_value("gmai_eval_model_info", {"model": "m1", "model_version": "0.9", "weights_digest": "sha256:ab"}) is None
    digests = [s.labels for f in reg.collect() if f.name == "gmai_eval_benchmark" for s in f.samples]
    assert [d["benchmark"] for d in digests] == ["gmai-val"]


def test_refusal_and_unparsed_ratios(db: Database, populated: dict[str, list[Answer]]) -> None:
    reg, _ = _registry(db)
    answers = populated["r-v2"]
    base = {"model": "m1", "model_version": "2.0", "benchmark": "gmai-val", "release": "latest"}
    assert reg.get_sample_value("gmai_eval_refusal_ratio", base) == pytest.approx(
        sum(a.verdict == "refused" for a in answers) / N
    )
    assert reg.get_sample_value("gmai_eval_unparsed_ratio", base) == pytest.approx(
        sum(a.verdict == "unparsed" for a in answers) / N
    )
    assert reg.get_sample_value("gmai_eval_refusal_ratio", base) > 0
    # no option scores were returned: no calibration series
    assert reg.get_sample_value("gmai_eval_calibration_error_ratio", base) is None


def test_calibration_error_from_returned_option_scores(db: Database) -> None:
    answers = [
        Answer("Counting", "", "Image level", "CT", "correct", {"A": 0.9, "B": 0.1}),
        Answer("Counting", "", "Image level", "CT", "incorrect", {"A": 0.3, "B": 0.7}),
        Answer("Counting", "", "Image level", "CT", "correct", {"A": 0.6, "B": 0.4}),
    ]
    bid = add_benchmark(db, "gmai-val", answers)
    add_run(db, run_id="r-1", model="m", version="1", benchmark_id=bid, answers=answers,
            finished_at="2026-11-01T00:00:00+00:00")
    reg, _ = _registry(db)
    # bins: 0.9 -> hit, 0.7 -> miss (B predicted, answer A), 0.6 -> hit
    want = (abs(1 - 0.9) + abs(0 - 0.7) + abs(1 - 0.6)) / 3
    got = reg.get_sample_value(
        "gmai_eval_calibration_error_ratio",
        {"model": "m", "model_version": "1", "benchmark": "gmai-val", "release": "latest"},
    )
    assert got == pytest.approx(want)


def test_kept_runs_picks_two_versions_per_model_and_benchmark() -> None:
    def run(rid: str, model: str, version: str, bench: str = "b") -> FinishedRun:
        return FinishedRun(rid, model, version, "", bench, "2024", "2026-11-01T00:00:00+00:00")

    runs = [run("5", "m", "3"), run("4", "m", "3"), run("3", "m", "2"), run("2", "m", "1"),
            run("1", "m", "2", bench="c")]
    assert [(r.run_id, rel) for r, rel in kept_runs(runs)] == [
        ("5", "latest"), ("3", "previous"), ("1", "latest")
    ]


def test_a_newer_run_replaces_the_exported_ones(db: Database, populated: dict[str, list[Answer]]) -> None:
    reg, _ = _registry(db)
    list(reg.collect())
    bid = db.read(lambda d: d.execute("SELECT id FROM benchmarks").fetchone()[0])
    add_run(db, run_id="r-v3", model="m1", version="3.0", benchmark_id=bid,
            answers=synthetic_answers(N, correct_every=1), finished_at="2026-11-09T10:00:00+00:00")
    labels = _labels("m1", "3.0", "latest", "overall", "all")
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", labels) == pytest.approx(1.0)
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", _labels("m1", "2.0", "previous", "overall", "all")) is not None
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", _labels("m1", "1.0", "previous", "overall", "all")) is None


@pytest.mark.parametrize("params", [{"extraction_era": "2024", "limit": 20, "seed": 1},
                                    {"extraction_era": "2024", "filter": "task=DD"}])
def test_a_subset_run_never_stands_for_a_release(db: Database, populated: dict[str, list[Answer]],
                                                 params: dict[str, object]) -> None:
    import json

    reg, _ = _registry(db)
    latest = _labels("m1", "2.0", "latest", "overall", "all")
    before = reg.get_sample_value("gmai_eval_accuracy_ratio", latest)
    assert reg.get_sample_value("gmai_eval_node_questions", latest) == N
    bid = db.read(lambda d: d.execute("SELECT id FROM benchmarks").fetchone()[0])
    add_run(db, run_id="r-sub", model="m1", version="3.0", benchmark_id=bid,
            answers=synthetic_answers(20, correct_every=1), finished_at="2026-11-10T10:00:00+00:00")
    db.write(lambda d: d.execute("UPDATE runs SET params = ? WHERE id = 'r-sub'", [json.dumps(params)]))
    assert reg.get_sample_value("gmai_eval_node_questions", latest) == N
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", latest) == before
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", _labels("m1", "3.0", "latest", "overall", "all")) is None
    # the check can fail: the same run without its filter or limit becomes the latest release
    db.write(lambda d: d.execute("UPDATE runs SET params = ? WHERE id = 'r-sub'", ['{"extraction_era": "2024"}']))
    assert reg.get_sample_value("gmai_eval_node_questions", _labels("m1", "3.0", "latest", "overall", "all")) == 20


def test_empty_database_exports_states_and_build_info(db: Database) -> None:
    reg, _ = _registry(db)
    assert reg.get_sample_value("gmai_eval_runs_by_state", {"state": "succeeded"}) == 0
    assert reg.get_sample_value("gmai_eval_build_info", {"version": __version__}) == 1
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", _labels("m1", "2.0", "latest", "overall", "all")) is None


def test_promtool_accepts_the_served_exposition(db: Database, populated: dict[str, list[Answer]]) -> None:
    registry, metrics = build_registry(db)
    metrics.answer_requests.labels(model="m1", code="OK").inc(3)
    metrics.answer_requests.labels(model="m1", code="UNAVAILABLE").inc()
    metrics.answer_duration.labels(model="m1").observe(1.5)
    metrics.answer_size.labels(model="m1").observe(120_000)
    metrics.model_up.labels(model="m1").set(1)
    metrics.inflight.labels(model="m1").set(2)
    metrics.concurrency_limit.labels(model="m1").set(16)
    with serve_registry(registry) as url:
        text = fetch(url)
    assert 'gmai_eval_accuracy_ratio{benchmark="gmai-val",dimension="overall"' in text
    assert "gmai_eval_answer_requests_total" in text
    result = promtool_check_metrics(text)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_run_without_a_summary_is_skipped_not_fatal(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    answers = synthetic_answers(N)
    bid = add_benchmark(db, "gmai-val", answers)
    add_run(db, run_id="r-good", model="good", version="1", benchmark_id=bid, answers=answers,
            finished_at="2026-11-01T00:00:00+00:00")
    add_run(db, run_id="r-bad", model="bad", version="1", benchmark_id=bid, answers=answers,
            finished_at="2026-11-01T00:00:00+00:00", era="1999", summarise=False)
    reg, _ = _registry(db)
    good = {"model": "good", "model_version": "1", "benchmark": "gmai-val", "release": "latest",
            "dimension": "overall", "node": "all"}
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", good) == pytest.approx(
        sum(a.verdict == "correct" for a in answers) / N
    )
    assert reg.get_sample_value("gmai_eval_accuracy_ratio", {**good, "model": "bad"}) is None
    assert "skipping run r-bad" in caplog.text
