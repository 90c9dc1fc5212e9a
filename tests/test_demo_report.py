"""The demo's report.md: provenance first, the comparison said as such, the top level only.

The report is written by the demo's own code, which runs the real ``gmai-eval scores`` and
``compare`` on a real SQLite file holding two graded runs (one right on 60 of 80
questions, one right on 20 of them).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gmai_eval.clients.demo import Demo
from gmai_eval.server.records import OPTION_LABELS
from gmai_eval.server.store import Database

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    d = Demo(tmp_path_factory.mktemp("demo-report"), questions=80)
    qs = make_questions(80, seed=5)

    def wrong(key: str | None, n: int) -> str:
        return OPTION_LABELS[(OPTION_LABELS.index(key or "A") + 1) % n]

    with Database(d.db) as db:
        bid = insert_benchmark(db, qs, name="synthetic-val")
        insert_run(db, bid, [A(q.idx, labels=[q.answer if q.idx < 60 else wrong(q.answer, len(q.options))])
                             for q in qs], run_id="r-000000000ref", model="reference")
        insert_run(db, bid, [A(q.idx, labels=[q.answer if q.idx < 20 else wrong(q.answer, len(q.options))])
                             for q in qs], run_id="r-000000000rnd", model="random")
    return d


RESULTS = {"reference": ("r-000000000ref", 0.75), "random": ("r-000000000rnd", 0.25)}


def _write(demo: Demo, results: dict[str, tuple[str, float]]) -> list[str]:
    report = demo.write_report(results, Path("synthetic-val-80-s1.tsv"), Path("reference.pt"))
    assert report == demo.dir / "report.md"
    return report.read_text().splitlines()


@pytest.fixture(scope="module")
def written(demo: Demo) -> tuple[str, ...]:
    """report.md's lines for both runs at the top level, written once for the tests that read it
    (each write runs ``gmai-eval scores`` twice, ``compare`` and ``scores`` again)."""
    return tuple(_write(demo, RESULTS))


def test_the_report_starts_with_both_runs_provenance_and_says_it_compares(written: tuple[str, ...]) -> None:
    lines = list(written)
    assert lines[0] == "# gmai-eval demo report"
    assert lines[2].startswith("It compares two models, the reference model (B) against the random baseline (A)")
    provenance = lines[lines.index("## Provenance"):lines.index("## Overall accuracy")]
    text = "\n".join(provenance)
    for run_id, model in (("r-000000000ref", "reference"), ("r-000000000rnd", "random")):
        assert f"- run {run_id}: model {model} (" in text
    assert text.count("- benchmark synthetic-val (sha256:00), filter none (all questions)") == 2
    assert text.count("- era 2024, judge none (exact matching), evaluator 0, created ") == 2
    assert "weights" in text and "finished" in text
    # Then the comparison: the verdict, the overall delta (75% - 25% = +50 points on 80 pairs).
    cmp_at = lines.index("## Reference (B) against random (A)")
    assert lines.index("## Overall accuracy") < cmp_at
    assert lines[cmp_at + 2].startswith("verdict: B is significantly better than A overall")
    assert lines[cmp_at + 3].startswith("overall: A 25.00% -> B 75.00% (+50.00 points)")


def test_the_scores_are_the_top_level_unless_tree(demo: Demo, written: tuple[str, ...]) -> None:
    lines = list(written)
    rows = [ln for ln in lines if ln.startswith("|")]
    assert any(r.startswith("|task: Disease Diagnosis|") for r in rows)
    assert not any(r.startswith(("|tree: ", "|label: ")) for r in rows)
    # Top level: overall, 4 tasks, 4 departments, 4 granularities, 4 modalities (+2 header rows),
    # compare's block (at most 40 lines), two provenance blocks and the fixed prose: under 100.
    assert sum(r.startswith(("|Overall|", "|task: ", "|department: ", "|granularity: ", "|modality: "))
               for r in rows[rows.index("|node|abbr|n|correct|acc %|95% CI|unparsed|refused|errors|"):]) == 17
    assert len(lines) <= 100, len(lines)
    demo.tree = True
    try:
        tree = _write(demo, RESULTS)
    finally:
        demo.tree = False
    assert any(ln.startswith("|tree: ") for ln in tree) and any(ln.startswith("|label: ") for ln in tree)
    assert len(tree) > len(lines)


def test_without_the_baseline_the_report_says_there_is_no_comparison(demo: Demo) -> None:
    lines = _write(demo, {"reference": RESULTS["reference"]})
    assert lines[2].startswith("Only the reference model ran (--no-random): there is no comparison")
    assert not any(ln.startswith("verdict:") for ln in lines)
    assert "- run r-000000000ref: model reference (" in "\n".join(lines)
