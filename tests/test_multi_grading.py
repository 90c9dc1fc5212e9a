"""Grading of a multi-answer benchmark through the store: a real SQLite file, the real
importer and score-file; the three metrics checked against values worked by hand."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.scoring import grading
from gmai_eval.server.scoring.vlmeval_files import score_file
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as store

from tests._data_helpers import image_b64, make_row, write_tsv

# options of every row: A liver, B spleen, C kidney
KEYS = ["A,C", "B", "A,B,C", "C", "A,B"]
PREDICTIONS = [
    "A, C",  # exact; ACC 1, Recall 1
    "B and C",  # ACC 1/2, Recall 1
    "liver",  # ACC 1, Recall 1/3
    "no idea",  # unparsed: 0, 0
    "Cannot determine the answer",  # refused: 0, 0
]


def _prediction_file(path: Path, predictions: list[str]) -> Path:
    path.write_text("index\tprediction\n" + "".join(f"{i}\t{p}\n" for i, p in enumerate(predictions)))
    return path


@pytest.fixture
def multi_db(tmp_path: Path) -> Database:
    rows = [
        make_row(i, answer=key, question=f"Q{i}: which organs are shown?", image=image_b64(i))
        for i, key in enumerate(KEYS)
    ]
    db = Database(tmp_path / "m.db")
    import_tsv_files(db, "multi", [write_tsv(tmp_path / "m.tsv", rows)], multi_choice=True)
    return db


def test_score_file_grades_sets_and_the_paper_metrics(multi_db: Database, tmp_path: Path) -> None:
    with multi_db as db:
        run_id = score_file(db, "multi", _prediction_file(tmp_path / "p.tsv", PREDICTIONS))
        scores = grading.compute_scores(db, run_id)
        overall = scores.overall
        assert scores.multi_choice
        assert (overall.n, overall.correct, overall.unparsed, overall.refused) == (5, 1, 1, 1)
        assert overall.accuracy == pytest.approx(1 / 5)
        mcls = scores.mcls[("overall", ())]
        assert mcls.acc_mcls == pytest.approx((1 + 1 / 2 + 1) / 5)  # 0.5
        assert mcls.recall_mcls == pytest.approx((1 + 1 + 1 / 3) / 5)  # 7/15
        rows = grading.graded_rows(db, db.read(lambda s: store.run_info(s, run_id)), None, "")
        assert [(r.extracted, r.verdict) for r in rows] == [
            ("A,C", "correct"), ("B,C", "incorrect"), ("A", "incorrect"), ("", "unparsed"), ("Z", "refused"),
        ]
        # the era plays no part in multi-answer rules
        other = grading.compute_scores(db, run_id, era="2025-08")
        assert other.overall.correct == 1
        assert other.mcls[("overall", ())].recall_mcls == pytest.approx(7 / 15)


def test_a_single_choice_benchmark_has_no_mcls(tmp_path: Path) -> None:
    with Database(tmp_path / "s.db") as db:
        rows = [make_row(i, image=image_b64(i)) for i in range(2)]
        import_tsv_files(db, "single", [write_tsv(tmp_path / "s.tsv", rows)])
        run_id = score_file(db, "single", _prediction_file(tmp_path / "p.tsv", ["A", "A, C"]))
        scores = grading.compute_scores(db, run_id)
        assert not scores.multi_choice and scores.mcls == {}
        assert (scores.overall.correct, scores.overall.unparsed) == (1, 1)  # "A, C" is ambiguous: unparsed


class CountingJudge:
    """A judge seam that would resolve everything to A, and counts its calls."""

    name = "judge-a"

    def __init__(self) -> None:
        self.calls = 0

    async def ask(self, prompt: str, options: list[tuple[str, str]]) -> str:
        self.calls += 1
        return "A"


def test_the_judge_and_calibration_leave_multi_answer_runs_alone(multi_db: Database, tmp_path: Path) -> None:
    with multi_db as db:
        run_id = score_file(db, "multi", _prediction_file(tmp_path / "p.tsv", PREDICTIONS))
        judge = CountingJudge()
        result = asyncio.run(grading.rescore(db, run_id, judge=judge))
        assert (judge.calls, result.judged, result.changed) == (0, 0, 0)
        judged = grading.compute_scores(db, run_id, judge="judge-a")
        assert (judged.overall.correct, judged.overall.unparsed) == (1, 1)
        assert grading.calibration_items(db, run_id) == []
