"""Scoring speed: extraction per era, grade_pending and compute_scores on a full-size run.

Baseline in the same run: the literal reference transcription in tests/_scoring_reference.py
(extraction) and a plain Python loop over the graded rows (aggregation). Prints figures and
ratios; nothing is asserted. Usage: .venv/bin/python bench/bench_scoring.py [N]
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmai_eval.server.scoring.extraction import ERAS, can_infer
from gmai_eval.server.scoring.grading import compute_scores, grade_pending
from gmai_eval.server.store import Database

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions
from tests._scoring_reference import reference_can_infer

FILLER = ["the", "image", "shows", "a", "lesion", "in", "the", "marked", "region", "which", "is", "typical", "of"]


def predictions(qs: list, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for q in qs:
        kind = rng.randrange(4)
        if kind == 0:
            out.append(q.answer or "A")
        elif kind == 1:
            out.append(q.category)
        elif kind == 2:
            out.append(" ".join(rng.choice(FILLER) for _ in range(30)) + f" {q.answer}")
        else:
            out.append("I am not sure what this shows.")
    return out


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 25_831
    qs = make_questions(n, seed=1)
    preds = predictions(qs)
    print(f"{n} questions (the size of VAL+TEST)")
    for era in ERAS:
        ours = timed(lambda e=era: [can_infer(p, q.choices, e) for p, q in zip(preds, qs, strict=True)])
        ref = timed(lambda e=era: [reference_can_infer(p, q.choices, e) for p, q in zip(preds, qs, strict=True)])
        print(f"extraction {era}: {n / ours:,.0f} answers/s (reference transcription {n / ref:,.0f}/s, ratio {ref / ours:.2f}x)")
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "b.db")
        bid = insert_benchmark(db, qs)
        insert_run(db, bid, [A(q.idx, text=p) for q, p in zip(qs, preds, strict=True)])
        t = time.perf_counter()
        graded = asyncio.run(grade_pending(db, "r-000000000001"))
        g = time.perf_counter() - t
        t = time.perf_counter()
        again = asyncio.run(grade_pending(db, "r-000000000001"))
        noop = time.perf_counter() - t
        print(f"grade_pending: {graded} answers in {g:.2f} s ({graded / g:,.0f}/s); "
              f"a call with nothing pending: {1000 * noop:.1f} ms ({again} graded)")
        t = time.perf_counter()
        scores = compute_scores(db, "r-000000000001")
        c = time.perf_counter() - t
        print(f"compute_scores: {len(scores.nodes)} nodes in {1000 * c:.0f} ms; overall {scores.overall.accuracy:.4f}")
        db.close()


if __name__ == "__main__":
    main()
