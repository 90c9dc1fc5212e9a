"""The scoring CLI end to end on real database files (no server running)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from gmai_eval.clients.cli.main import cli
from gmai_eval.server.store import Database

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions

LONG = "Option {} is the one because " + "the marked region looks typical on this image " * 3


def _wrong(ans: str | None) -> str:
    return "B" if ans == "A" else "A"


@pytest.fixture
def dbfile(tmp_path: Path) -> Path:
    path = tmp_path / "e.db"
    qs = make_questions(80, seed=21, unanswered=[79])
    with Database(path) as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, text=LONG.format(q.answer or "A")) for q in qs], run_id="r-a",
                   finished_at="2026-01-01T00:00:00")
        insert_run(db, bid, [A(q.idx, labels=[_wrong(q.answer) if q.idx < 30 else (q.answer or "A")],
                               option_scores={"A": 0.7, "B": 0.3}) for q in qs], run_id="r-b")
        other = insert_benchmark(db, qs[:3], name="other", digest="sha256:ff")
        insert_run(db, other, [A(0, labels=["A"])], run_id="r-x", digest="sha256:ff")
    return path


def run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_help_for_every_command() -> None:
    for cmd in ("scores", "rescore", "compare", "export", "score-file", "calibration"):
        res = run(cmd, "--help")
        assert res.exit_code == 0 and "Usage" in res.output, cmd


def test_scores_formats(dbfile: Path) -> None:
    res = run("scores", "--db", str(dbfile), "r-a")
    assert res.exit_code == 0
    assert "Overall" in res.output and "task: " in res.output and "unscored (no answer key): 1" in res.output
    res = run("scores", "--db", str(dbfile), "r-a", "--by", "task", "--format", "json")
    doc = json.loads(res.output)
    assert doc["era"] == "2024" and doc["nodes"][0]["dimension"] == "overall"
    assert doc["nodes"][0]["accuracy"] == 1.0 and doc["nodes"][0]["n"] == 79
    assert {n["dimension"] for n in doc["nodes"]} == {"overall", "task"}
    later = json.loads(run("scores", "--db", str(dbfile), "r-a", "--era", "2025-08", "--format", "json").output)
    assert later["nodes"][0]["accuracy"] == 0.0 and later["nodes"][0]["unparsed"] == 79
    csv_out = run("scores", "--db", str(dbfile), "r-a", "--by", "department", "--format", "csv").output
    assert csv_out.splitlines()[0].startswith("dimension,path,abbreviation,n,correct,accuracy")
    assert "department,N/A,N/A," in csv_out
    md = run("scores", "--db", str(dbfile), "r-a", "--by", "granularity", "--format", "markdown").output
    assert "|node|abbr|n|" in md
    bad = run("scores", "--db", str(dbfile), "r-nope")
    assert bad.exit_code == 1 and "no run 'r-nope'" in bad.output
    usage = run("scores", "--db", str(dbfile), "r-a", "--era", "1999")
    assert usage.exit_code == 2


def test_rescore_needs_no_server(dbfile: Path) -> None:
    before = json.loads(run("scores", "--db", str(dbfile), "r-a", "--format", "json").output)
    res = run("rescore", "--db", str(dbfile), "r-a", "--era", "2025-08")
    assert res.exit_code == 0 and "79 verdicts changed" in res.output
    res = run("rescore", "--db", str(dbfile), "r-a")
    assert res.exit_code == 0 and "0 verdicts changed" in res.output
    after = json.loads(run("scores", "--db", str(dbfile), "r-a", "--format", "json").output)
    assert after == before
    res = run("rescore", "--db", str(dbfile), "r-a", "--judge", "unregistered")
    assert res.exit_code == 1 and "not registered" in res.output


def test_compare_exit_codes(dbfile: Path, tmp_path: Path) -> None:
    res = run("compare", "--db", str(dbfile), "r-a", "r-b")
    # B is wrong on the 30 questions with idx < 30, A on none: 79 graded, 49/79 right for B,
    # exact McNemar two-sided p = 2 * 0.5**30.
    lines = res.output.splitlines()
    assert res.exit_code == 0 and len(lines) <= 40
    assert lines[0] == f"verdict: B is significantly worse than A overall (p {2 * 0.5**30:.3g} < alpha 0.05)"
    assert lines[1] == (
        f"overall: A 100.00% -> B {100 * 49 / 79:.2f}% ({100 * 49 / 79 - 100:+.2f} points), p {2 * 0.5**30:.3g}, "
        "n 79; 30 flipped to wrong, 0 to right"
    )
    assert lines[3].startswith("nodes that changed significantly (alpha 0.05): ")
    assert "flipped to wrong (30)" not in res.output
    res = run("compare", "--db", str(dbfile), "r-a", "r-b", "--details")
    assert res.exit_code == 0 and "flipped to wrong (30): 0, 1, 2," in res.output
    doc = json.loads(run("compare", "--db", str(dbfile), "r-a", "r-b", "--format", "json").output)
    assert doc["nodes"][0]["a_only"] == 30 and doc["flipped_to_wrong"] == list(range(30))
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps({"min_overall_accuracy": 0.5}))
    res = run("compare", "--db", str(dbfile), "r-a", "r-b", "--gate", str(ok))
    assert res.exit_code == 0 and res.output.splitlines()[0] == "verdict: gate PASSED"
    strict = tmp_path / "strict.toml"
    strict.write_text("min_overall_accuracy = 0.9\nmax_significant_drop = 1.0\nmin_n = 10\n")
    res = CliRunner().invoke(cli, ["compare", "--db", str(dbfile), "r-a", "r-b", "--gate", str(strict)])
    assert res.exit_code == 3
    lines = res.output.splitlines()
    assert lines[0].startswith("verdict: gate FAILED (") and len(lines) <= 40
    assert "below min_overall_accuracy" in lines[1]
    assert "overall Overall: accuracy dropped" in lines[2]
    assert res.output.count("below min_overall_accuracy") == 1  # said once, not again on stderr
    assert any(line.startswith("overall: A 100.00% -> B ") for line in lines[3:14])
    res = run("compare", "--db", str(dbfile), "r-a", "r-x")
    assert res.exit_code == 1 and "different benchmarks" in res.output
    res = run("compare", "--db", str(dbfile), "r-a", "r-b", "--alpha", "2")
    assert res.exit_code == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"oops": 1}')
    res = run("compare", "--db", str(dbfile), "r-a", "r-b", "--gate", str(bad))
    assert res.exit_code == 1 and "unknown key" in res.output


def test_export_then_score_file(dbfile: Path, tmp_path: Path) -> None:
    out = tmp_path / "exp" / "m_GMAI.tsv"
    res = run("export", "--db", str(dbfile), "r-b", "--out", str(out))
    assert res.exit_code == 0 and "wrote 80 predictions" in res.output
    assert (tmp_path / "exp" / "m_GMAI_clinical vqa task_acc.csv").exists()
    res = run("score-file", "--db", str(dbfile), "--benchmark", "bench", str(out), "--format", "json")
    assert res.exit_code == 0
    doc = json.loads(res.output)
    want = json.loads(run("scores", "--db", str(dbfile), "r-b", "--by", "overall", "--format", "json").output)
    assert doc["nodes"] == want["nodes"]
    res = run("export", "--db", str(dbfile), "r-b", "--out", str(tmp_path / "m.xlsx"), "--format", "xlsx")
    assert res.exit_code == 0
    res = run("score-file", "--db", str(dbfile), "--benchmark", "nope", str(out))
    assert res.exit_code == 1 and "no benchmark named 'nope'" in res.output


def test_calibration(dbfile: Path) -> None:
    doc = json.loads(run("calibration", "--db", str(dbfile), "r-b", "--format", "json").output)
    assert doc["n"] == 79
    assert 0 <= doc["ece"] <= 1 and doc["brier"] > 0
    res = run("calibration", "--db", str(dbfile), "r-a")
    assert res.exit_code == 0
    assert res.output == (
        "run r-a has no option probabilities: none of its 80 answered questions carries them "
        "(the model sent labels or text only), so there is nothing to calibrate\n"
    )
    table = run("calibration", "--db", str(dbfile), "r-b").output.splitlines()
    # r-b puts 0.7 on A for every question: the argmax is A, right where the key is A.
    keyed_a = sum(1 for q in make_questions(80, seed=21, unanswered=[79]) if q.answer == "A")
    assert table[0] == "calibration over 79 answers with option probabilities and an answer key"
    assert table[1].startswith(f"accuracy of the argmax of the probabilities: {100 * keyed_a / 79:.2f}% ")
    unknown = run("calibration", "--db", str(dbfile), "r-nope")
    assert unknown.exit_code == 1 and "no run 'r-nope'" in unknown.output


def test_by_repeats_and_tree_shows_everything(dbfile: Path) -> None:
    doc = json.loads(run("scores", "--db", str(dbfile), "r-a", "--by", "task", "--by", "modality",
                         "--format", "json").output)
    assert {n["dimension"] for n in doc["nodes"]} == {"overall", "task", "modality"}
    assert list(doc["macro_accuracy"]) == ["task", "modality"]
    default = json.loads(run("scores", "--db", str(dbfile), "r-a", "--format", "json").output)
    assert {n["dimension"] for n in default["nodes"]} == {"overall", "task", "department", "granularity", "modality"}
    tree = json.loads(run("scores", "--db", str(dbfile), "r-a", "--tree", "--format", "json").output)
    assert {n["dimension"] for n in tree["nodes"]} == {
        "overall", "task", "department", "granularity", "modality", "label", "tree"
    }
