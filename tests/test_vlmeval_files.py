"""VLMEvalKit file layouts: parity of verdicts and group accuracies with an independent
reference, export/import round trips, and clear errors for bad prediction files."""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

import pytest
from gmai_eval.server.data.synth import write_synthetic_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import InvalidArgument, NotFound
from gmai_eval.server.scoring.extraction import ERAS
from gmai_eval.server.scoring.vlmeval_export import PREDICTION_COLUMNS, export_run
from gmai_eval.server.scoring.vlmeval_files import read_prediction_file, score_file
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as gstore
from gmai_eval.server.store import prediction_files as files
from gmai_eval.server.store.benchmarks import load_questions
from openpyxl import Workbook, load_workbook

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions
from tests._scoring_reference import reference_can_infer, reference_group_acc, reference_hits

FILLER = ["the", "image", "shows", "a", "lesion", "X-ray", "answer", "is", "correct", "option", "I", "A", "E"]
GROUPS = {"clinical vqa task": "clinical VQA task", "department": "department",
          "perceptual granularity": "perceptual granularity"}


def _prediction(rng: random.Random, choices: dict[str, str]) -> str:
    letters = [*choices, "E", "Z", "a", "d"]
    texts = list(choices.values())
    kind = rng.randrange(11)
    if kind == 0:
        return rng.choice(letters)
    if kind == 1:
        return f"{rng.choice(['(', '[', '**', ''])}{rng.choice(letters)}{rng.choice(['.', ')', ']', '**', ''])}"
    if kind == 2:
        return rng.choice(texts)
    if kind == 3:
        return f"{rng.choice(letters)}. {rng.choice(texts)}"
    if kind == 4:
        return " ".join(rng.choice(FILLER) for _ in range(rng.randint(3, 25))) + f" {rng.choice(letters)}"
    if kind == 5:
        return (f"{rng.choice(letters)} is wrong; the {rng.choice(['correct ', ''])}answer is "
                f"{rng.choice(['**', ''])}{rng.choice(letters)}{rng.choice(['**', ''])}")
    if kind == 6:
        return rng.choice(["Cannot determine the answer", "I can't process this file.",
                           "Failed to obtain answer via API", ""])
    if kind == 7:
        return " and ".join(rng.sample(texts, min(2, len(texts))))
    if kind == 8:
        return rng.choice(texts) + " " + " ".join(rng.choice(FILLER) for _ in range(rng.randint(5, 60)))
    if kind == 9:
        return f"{rng.choice(letters)} or {rng.choice(letters)}"
    return "Option " + rng.choice(letters) + " because " + " ".join(rng.choice(FILLER) for _ in range(12))


def _official_rows(db: Database, bid: int, rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for q in load_questions(db, bid):
        row: dict[str, object] = {
            "index": q.index, "question": q.question, "answer": q.answer, "category": q.category,
            "clinical VQA task": q.clinical_task, "department": q.department, "perceptual granularity": q.granularity,
            "modality": q.modality, "original task": q.original_task, "image_path": q.image_path,
        }
        for label in "ABCDE":
            row[label] = q.option_text(label) or ""
        choices = {lab: t for lab, t in q.options}
        row["prediction"] = _prediction(rng, choices)
        rows.append(row)
    return rows


def _write_tsv(path: Path, rows: list[dict[str, object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(PREDICTION_COLUMNS)
        for r in rows:
            w.writerow([r.get(c, "") if r.get(c) is not None else "" for c in PREDICTION_COLUMNS])


def _read_group_csv(path: Path) -> dict[str, float]:
    with path.open(encoding="utf-8") as f:
        header, values = list(csv.reader(f))
    assert header[0] == "split" and values[0] == "none"
    return {h: (math.nan if v == "" else float(v)) for h, v in zip(header[1:], values[1:], strict=True)}


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    if list(a) != list(b):
        return False
    return all((math.isnan(x) and math.isnan(b[k])) or x == b[k] for k, x in a.items())


@pytest.fixture(params=["helpers", "synth"])
def bench(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Database, int]:
    db = Database(tmp_path / "e.db")
    if request.param == "synth":
        tsv = tmp_path / "val.tsv"
        write_synthetic_tsv(tsv, 240, 3, image_size=32)
        bid = import_tsv_files(db, "GMAI-MMBench_VAL", [tsv]).benchmark.id
    else:
        bid = insert_benchmark(db, make_questions(240, seed=11), name="GMAI-MMBench_VAL")
    yield db, bid
    db.close()


@pytest.mark.parametrize("era", ERAS)
def test_parity_with_reference(bench: tuple[Database, int], era: str, tmp_path: Path) -> None:
    db, bid = bench
    rows = _official_rows(db, bid, random.Random(era))
    pred = tmp_path / f"model_GMAI-MMBench_VAL_{era}.tsv"
    _write_tsv(pred, rows)
    run_id = score_file(db, "GMAI-MMBench_VAL", pred, era)
    # per question: our verdicts equal the reference hits
    want = reference_hits([{**r, "prediction": r["prediction"] or None} for r in rows], era)
    verdicts = db.read(lambda s: gstore.verdicts(s, run_id, era, ""))
    assert {i: int(v == "correct") for i, v in verdicts.items()} == want
    # every rule branch was exercised by the generated predictions
    methods = {r.method for r in db.read(lambda s: gstore.graded_rows(s, run_id, era, ""))}
    expected = {"option", "text", "refusal", "api_failure", "none"} | ({"regex"} if era == "2026-06" else set())
    assert expected <= methods
    # group CSVs equal the reference computation
    out = export_run(db, run_id, tmp_path / "exp" / "model_GMAI-MMBench_VAL.tsv", "tsv", era)
    names = sorted(p.name for p in out.group_csvs)
    assert names == sorted(f"model_GMAI-MMBench_VAL_{c}_acc.csv" for c in GROUPS)
    for column, official in GROUPS.items():
        got = _read_group_csv(out.predictions.with_name(f"model_GMAI-MMBench_VAL_{column}_acc.csv"))
        ref = reference_group_acc(rows, want, official)
        assert _same(got, ref), (column, got, ref)
    # re-scoring the exported file gives the same verdicts
    again = score_file(db, "GMAI-MMBench_VAL", out.predictions, era)
    assert db.read(lambda s: gstore.verdicts(s, again, era, "")) == verdicts


def test_department_none_column_is_empty(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        qs = make_questions(30, seed=4)
        assert any(q.department == "" for q in qs)
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, labels=[q.answer or "A"]) for q in qs])
        out = export_run(db, "r-000000000001", tmp_path / "p.tsv")
        got = _read_group_csv(tmp_path / "p_department_acc.csv")
        assert got["Overall"] == 1.0
        assert "None" in got and math.isnan(got["None"])
        assert list(got)[1:] == sorted(list(got)[1:])
        assert out.rows == 30


def test_export_predictions_follow_our_verdicts(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        qs = make_questions(8, seed=5)
        bid = insert_benchmark(db, qs)
        attempts = [
            A(0, labels=[qs[0].answer or "A"]),
            A(1, text="=SUM(A1) is a formula-looking answer\twith a tab\nand a newline"),
            A(2, status="refused", text=qs[2].answer or "A"),
            A(3, outcome="error"),
            A(4, labels=["A", "B"]),
            A(5, status="abstained"),
        ]
        insert_run(db, bid, attempts, extra_questions=[6, 7])
        for fmt in ("tsv", "xlsx"):
            path = tmp_path / f"p.{fmt}"
            res = export_run(db, "r-000000000001", path, fmt)
            assert res.rows == 6  # unanswered questions are left out
            preds = {i: p for _, i, p in read_prediction_file(path)}
            assert preds[0] == qs[0].answer
            assert preds[1].startswith("=SUM(A1)") and "\t" in preds[1] and "\n" in preds[1]
            assert preds[2] == "Cannot determine the answer"
            assert preds[3] == "Failed to obtain answer via API"
            assert preds[4] == "A,B"
            assert preds[5] == "Cannot determine the answer"
        wb = load_workbook(tmp_path / "p.xlsx")
        header = [c.value for c in wb.active[1]]
        assert header == list(PREDICTION_COLUMNS)
        assert wb.active.cell(row=3, column=header.index("prediction") + 1).data_type == "s"
        wb.close()


def test_xlsx_export_refuses_a_cell_over_excels_limit_and_writes_nothing(tmp_path: Path) -> None:
    # 32,767 UTF-16 units fit a cell; one more does not. The emoji counts 2 units (1 character).
    with Database(tmp_path / "e.db") as db:
        qs = make_questions(3, seed=5)
        bid = insert_benchmark(db, qs)
        fits, over = "x" * 32_767, "x" * 32_766 + "\U0001f600"
        insert_run(db, bid, [A(0, text=fits), A(1, text="B"), A(2, text=over)], run_id="r-over")
        with pytest.raises(InvalidArgument, match=r"index 2, column 'prediction': 32,767 characters.*--format tsv"):
            export_run(db, "r-over", tmp_path / "p.xlsx", "xlsx")
        assert list(tmp_path.glob("p*")) == []
        insert_run(db, bid, [A(0, text=fits), A(1, text="B")], run_id="r-fits")
        assert export_run(db, "r-fits", tmp_path / "p.xlsx", "xlsx").rows == 2
        assert {i: p for _, i, p in read_prediction_file(tmp_path / "p.xlsx")} == {0: fits, 1: "B"}


def _xlsx(path: Path, header: list[str], rows: list[list[object]]) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)


def test_score_file_errors(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        insert_benchmark(db, make_questions(5), name="b")
        bad = tmp_path / "bad.tsv"
        bad.write_text("index\tprediction\n0\tA\n1\tB\n99\tC\n", "utf-8")
        with pytest.raises(InvalidArgument, match=r"bad.tsv, row 3, column 'index': index 99 is not in benchmark"):
            score_file(db, "b", bad)
        dup = tmp_path / "dup.tsv"
        dup.write_text("index\tprediction\n0\tA\n0\tB\n", "utf-8")
        with pytest.raises(InvalidArgument, match=r"row 2.*repeats row 1"):
            score_file(db, "b", dup)
        nocol = tmp_path / "nocol.tsv"
        nocol.write_text("index\tanswer\n0\tA\n", "utf-8")
        with pytest.raises(InvalidArgument, match="no 'prediction' column"):
            score_file(db, "b", nocol)
        notint = tmp_path / "notint.xlsx"
        _xlsx(notint, ["Index", "Prediction"], [[0, "A"], ["x1", "B"]])
        with pytest.raises(InvalidArgument, match="row 2, column 'index': not an integer"):
            score_file(db, "b", notint)
        with pytest.raises(NotFound):
            score_file(db, "nope", bad)
        with pytest.raises(InvalidArgument, match="era"):
            score_file(db, "b", bad, era="1999")
        # nothing half-written: no run was created by the failures
        assert db.read(lambda s: s.execute("SELECT COUNT(*) FROM runs").fetchone()[0]) == 0


def test_score_file_xlsx_numeric_and_missing_cells(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        qs = make_questions(4, seed=9)
        insert_benchmark(db, qs, name="b")
        f = tmp_path / "m.xlsx"
        _xlsx(f, ["index", "A", "prediction"], [[0, "x", None], [1.0, "x", 3], [2, "x", qs[2].answer], [3, "x", ""],
                                                [4, "x", "None"], [5, "x", "NA"], [6, "x", " None"]])
        with pytest.raises(InvalidArgument, match="index 4 is not in benchmark 'b'"):
            score_file(db, "b", f)
        f2 = tmp_path / "m.tsv"
        f2.write_text("index\tprediction\n0\t\n1\t3\n2\t" + str(qs[2].answer) + "\n3\tNone\n", "utf-8")
        run = score_file(db, "b", f2)
        rows = db.read(lambda s: files.export_rows(s, run))
        texts = {r.idx: r.recorded.text for r in rows if r.recorded}
        assert texts == {0: "nan", 1: "3", 2: qs[2].answer, 3: "nan"}
        _xlsx(f, ["index", "A", "prediction"], [[0, "x", 2.5], [1.0, "x", 3.0], [2, "x", qs[2].answer], [3, "x", "null"]])
        run = score_file(db, "b", f)
        rows = db.read(lambda s: files.export_rows(s, run))
        texts = {r.idx: r.recorded.text for r in rows if r.recorded}
        assert texts == {0: "2.5", 1: "3", 2: qs[2].answer, 3: "nan"}
        assert read_prediction_file(tmp_path / "m.tsv")[3][2] == "nan"
        info = db.read(lambda s: gstore.run_info(s, run))
        assert (info.model, info.state, info.total) == ("file:m", "succeeded", 4)
        v = db.read(lambda s: gstore.verdicts(s, run, "2024", ""))
        assert v[2] == "correct"
        assert (v[0] == "correct") == (reference_can_infer("nan", qs[0].choices, "2024") == qs[0].answer)
        assert v[0] in ("correct", "incorrect", "unparsed")


def test_file_runs_are_ordinary_runs(tmp_path: Path) -> None:
    """A score-file run reads back through the run store like any other run."""
    from gmai_eval.server.store.runs import get_run, list_runs

    with Database(tmp_path / "e.db") as db:
        qs = make_questions(3)
        insert_benchmark(db, qs, name="b")
        f = tmp_path / "preds.tsv"
        f.write_text("index\tprediction\n0\tA\n1\tB\n2\tC\n", "utf-8")
        run = score_file(db, "b", f, era="2025-08")
        row = get_run(db, run)
        assert row.model == "file:preds" and row.state == "succeeded"
        assert row.params.extraction_era == "2025-08"
        assert [r.id for r in list_runs(db)] == [run]


def test_score_file_refuses_a_benchmark_still_importing(tmp_path: Path) -> None:
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, make_questions(5), name="b")
        preds = tmp_path / "p.tsv"
        preds.write_text("index\tprediction\n0\tA\n", "utf-8")
        db.write(lambda s: s.execute("UPDATE benchmarks SET state = 'importing' WHERE id = ?", [bid]))
        with pytest.raises(NotFound):
            score_file(db, "b", preds)

