"""Test helpers of the results area: a database with two releases of a model and real images.

``build_release_db`` writes a benchmark whose questions carry real PNG images, then two
whole runs of model ``m`` (version ``v1``, then ``v2``) on the same questions, the first
with option probabilities, plus a subset run (``limit``) of ``v2`` and a run of another
model. The expected numbers of every test are computed from ``ANSWERS`` by hand, never by
the code under test.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from gmai_eval.server.records import OPTION_LABELS
from gmai_eval.server.scoring.grading import finish_grading_sync
from gmai_eval.server.store import Database
from PIL import Image

from tests._scoring_helpers import A, Q, insert_benchmark, insert_run, make_questions

N_QUESTIONS = 120


@dataclass(frozen=True)
class ReleaseDb:
    """The database and what was written into it."""

    path: Path
    """The SQLite file."""
    questions: list[Q]
    """The benchmark's questions."""
    answers: dict[str, dict[int, str]]
    """run id -> idx -> the label the model chose."""


def png(seed: int, size: int = 96) -> bytes:
    """A small, real PNG image."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(40):
        x, y = rng.randrange(size), rng.randrange(size)
        img.putpixel((x, y), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _add_images(db: Database, bid: int, questions: list[Q]) -> None:
    def fn(s: object) -> None:
        conn = s
        for q in questions:
            data = png(q.idx)
            sha = f"png{q.idx}"
            conn.execute(
                "INSERT OR IGNORE INTO images (sha256, media_type, width, height, mode, size_bytes, data)"
                " VALUES (?, 'image/png', 96, 96, 'RGB', ?, ?)", (sha, len(data), data))
            conn.execute("UPDATE questions SET image_sha256 = ? WHERE benchmark_id = ? AND idx = ?", (sha, bid, q.idx))

    db.write(fn)


def _choose(q: Q, rng: random.Random, skill: float) -> str:
    assert q.answer is not None
    if rng.random() < skill:
        return q.answer
    wrong = [lab for lab in OPTION_LABELS[: len(q.options)] if lab != q.answer]
    return rng.choice(wrong)


def _scores(q: Q, chosen: str) -> dict[str, float]:
    """0.7 on the chosen label, the rest shared by the other options."""
    labels = OPTION_LABELS[: len(q.options)]
    return {lab: 0.7 if lab == chosen else 0.3 / (len(labels) - 1) for lab in labels}


def set_run_info(db: Database, run_id: str, *, version: str, digest: str, params: dict[str, object] | None = None) -> None:
    """Give a run the model info a pre-flight records (and other parameters)."""
    info = json.dumps({"version": version, "weights_digest": digest})

    def fn(s: object) -> None:
        conn = s
        conn.execute("UPDATE runs SET model_info = ? WHERE id = ?", (info, run_id))
        if params is not None:
            conn.execute("UPDATE runs SET params = ? WHERE id = ?", (json.dumps(params), run_id))

    db.write(fn)


def build_release_db(path: Path) -> ReleaseDb:
    """Write the database described in the module docstring."""
    qs = make_questions(N_QUESTIONS, seed=12)
    rng = random.Random(5)
    answers: dict[str, dict[int, str]] = {}
    with Database(path) as db:
        bid = insert_benchmark(db, qs)
        _add_images(db, bid, qs)
        specs = [("r-v1", "m", "v1", 0.7, "2026-01-01T10:00:00+00:00"),
                 ("r-v2", "m", "v2", 0.45, "2026-02-01T10:00:00+00:00"),
                 ("r-other", "other", "o1", 0.6, "2026-02-02T10:00:00+00:00")]
        for run_id, model, version, skill, finished in specs:
            chosen = {q.idx: _choose(q, rng, skill) for q in qs}
            answers[run_id] = chosen
            probs = run_id == "r-v1"
            insert_run(db, bid, [A(q.idx, labels=[chosen[q.idx]],
                                   option_scores=_scores(q, chosen[q.idx]) if probs else {}) for q in qs],
                       run_id=run_id, model=model, finished_at=finished, graded=False)
            set_run_info(db, run_id, version=version, digest=f"sha256:{version}weights")
            finish_grading_sync(db, run_id)
        subset = qs[:20]
        answers["r-sub"] = {q.idx: q.answer or "A" for q in subset}
        insert_run(db, bid, [A(q.idx, labels=[q.answer or "A"]) for q in subset], run_id="r-sub", model="m",
                   finished_at="2026-03-01T10:00:00+00:00", graded=False)
        set_run_info(db, "r-sub", version="v3", digest="sha256:v3weights",
                     params={"extraction_era": "2024", "limit": 20, "seed": 1})
        finish_grading_sync(db, "r-sub")
    return ReleaseDb(path, qs, answers)


def correct_count(rel: ReleaseDb, run_id: str, task: str | None = None) -> tuple[int, int]:
    """(correct, n) of a run, over every question or one task's, counted by hand."""
    chosen = rel.answers[run_id]
    qs = [q for q in rel.questions if q.idx in chosen and (task is None or q.task == task)]
    return sum(chosen[q.idx] == q.answer for q in qs), len(qs)
