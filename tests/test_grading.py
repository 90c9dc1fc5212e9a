"""Grading: incremental grade_pending, rescore without any model, judge over real gRPC."""

from __future__ import annotations

from pathlib import Path

from gmai_eval.server.aggregate import compute_scores
from gmai_eval.server.grading import grade_pending, rescore
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as gstore

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions

LONG = "Option {} is the one because " + "the marked region looks typical on this image " * 3


async def test_grade_pending_is_incremental_and_idempotent(tmp_path: Path) -> None:
    qs = make_questions(20, seed=1)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, labels=[q.answer or "A"]) for q in qs[:10]],
                   state="running", extra_questions=[q.idx for q in qs[10:]])
        assert await grade_pending(db, "r-000000000001") == 10
        assert await grade_pending(db, "r-000000000001") == 0

        # more answers arrive
        def add(s: object) -> None:
            for q in qs[10:15]:
                s.conn.execute(  # type: ignore[attr-defined]
                    "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, status, text, created_at)"
                    " VALUES ('r-000000000001', ?, 1, 'x', 'answered', 1, 'answered', ?, 'now')",
                    (q.idx, q.answer),
                )

        db.write(add)
        assert await grade_pending(db, "r-000000000001") == 5
        assert await grade_pending(db, "r-000000000001", era="2026-06") == 15
        v = db.read(lambda s: gstore.verdicts(s, "r-000000000001", "2024", ""))
        assert len(v) == 15 and set(v.values()) == {"correct"}
        scores = compute_scores(db, "r-000000000001")
        assert scores.overall.n == 15 and scores.ungraded == 5


async def test_rescore_changes_era_without_a_model(tmp_path: Path) -> None:
    qs = make_questions(12, seed=2)
    with Database(tmp_path / "e.db") as db:
        bid = insert_benchmark(db, qs)
        attempts = [A(q.idx, text=LONG.format(q.answer)) for q in qs]
        insert_run(db, bid, attempts)
        base = compute_scores(db, "r-000000000001")
        assert base.overall.correct == 12  # 2024: a lone letter anywhere counts
        res = await rescore(db, "r-000000000001", "2025-08")
        assert res.graded == 12 and res.changed == 12 and res.judged == 0
        later = compute_scores(db, "r-000000000001", era="2025-08")
        assert later.overall.correct == 0 and later.overall.unparsed == 12
        # rescoring the run's own era reproduces its scores exactly
        res2 = await rescore(db, "r-000000000001")
        assert res2.changed == 0
        assert compute_scores(db, "r-000000000001") == base
