"""Test helpers of the scoring area: benchmarks, runs and attempts written straight to SQLite.

Questions are generated deterministically from a seed so that every taxonomy dimension has
several values; runs and attempts are inserted with the schema's own columns (what the run
manager writes), so grading and scoring read exactly what a live run would leave behind.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from gmai_eval.server.records import OPTION_LABELS
from gmai_eval.server.scoring.grading import finish_grading_sync
from gmai_eval.server.store import Database

TASKS = ["Disease Diagnosis", "Counting", "Severity Grading", "Organ Recognition - Abdomen"]
DEPARTMENTS = ["Ophthalmology", "Urology", "", "Dermatology"]
GRANULARITIES = ["Image level", "Mask level", "Contour level", "Box level"]
MODALITIES = ["CT", "MRI", "X-ray", "Fundus Photography"]
WORDS = [
    "atelectasis", "cardiomegaly", "pleural effusion", "liver", "kidney", "spleen", "gallbladder",
    "glaucoma", "advanced glaucoma", "melanoma", "nevus", "pulmonary calcification", "fracture",
    "normal", "tumor", "cyst", "stone", "edema", "hemorrhage", "polyp",
]


@dataclass
class Q:
    """A generated question row."""

    idx: int
    options: list[str]
    answer: str | None
    task: str
    department: str
    granularity: str
    modality: str
    question: str = "Which of the following options is the most appropriate?"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def category(self) -> str:
        if self.answer is None:
            return self.options[0]
        return self.options[OPTION_LABELS.index(self.answer)]

    @property
    def choices(self) -> dict[str, str]:
        return dict(zip(OPTION_LABELS, self.options, strict=False))


def make_questions(n: int, seed: int = 0, unanswered: Sequence[int] = ()) -> list[Q]:
    """``n`` questions with 2-5 distinct options each; indexes in ``unanswered`` have no key."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randint(2, 5)
        opts = rng.sample(WORDS, k)
        ans = None if i in unanswered else OPTION_LABELS[rng.randrange(k)]
        out.append(
            Q(
                idx=i, options=opts, answer=ans, task=rng.choice(TASKS), department=rng.choice(DEPARTMENTS),
                granularity=rng.choice(GRANULARITIES), modality=rng.choice(MODALITIES),
            )
        )
    return out


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


def insert_benchmark(db: Database, questions: Sequence[Q], name: str = "bench", digest: str = "sha256:00") -> int:
    """Insert a ready benchmark with ``questions``; return its id."""

    def fn(s: object) -> int:
        conn = s
        conn.execute(
            "INSERT OR IGNORE INTO images (sha256, media_type, width, height, mode, size_bytes, data)"
            " VALUES ('img0', 'image/png', 1, 1, 'RGB', 1, x'00')"
        )
        cur = conn.execute(
            "INSERT INTO benchmarks (name, digest, layout, state, question_count, created_at)"
            " VALUES (?, ?, 'VAL', 'ready', ?, ?)",
            (name, digest, len(questions), now()),
        )
        bid = cur.lastrowid
        for q in questions:
            opts = [*q.options, *[None] * (5 - len(q.options))]
            conn.execute(
                "INSERT INTO questions (benchmark_id, idx, question, option_a, option_b, option_c, option_d,"
                " option_e, answer, answer_source, category, clinical_task, department, granularity, modality,"
                " original_task, image_path, image_sha256, source_file, source_row)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'CLS_2D', ?, 'img0', 'f.tsv', ?)",
                (bid, q.idx, q.question, *opts, q.answer, "answer" if q.answer else "none", q.category, q.task,
                 q.department, q.granularity, q.modality, f"images/{q.idx}.png", q.idx + 1),
            )
        return int(bid)

    return db.write(fn)


@dataclass
class A:
    """An attempt to insert."""

    idx: int
    text: str = ""
    labels: list[str] = field(default_factory=list)
    outcome: str = "answered"
    status: str = "answered"
    option_scores: dict[str, float] = field(default_factory=dict)


def insert_run(
    db: Database,
    benchmark_id: int,
    attempts: Sequence[A],
    *,
    run_id: str = "r-000000000001",
    model: str = "m",
    era: str = "2024",
    state: str = "succeeded",
    digest: str = "sha256:00",
    finished_at: str | None = None,
    extra_questions: Sequence[int] = (),
    graded: bool | None = None,
) -> str:
    """Insert a run whose final attempts are ``attempts`` (plus unanswered ``extra_questions``).

    A run in a final state (succeeded, failed, cancelled) is then graded as the run manager
    does when a run ends (``grading.finish_grading``); ``graded`` overrides that.
    """

    def fn(s: object) -> str:
        conn = s
        idxs = [a.idx for a in attempts] + list(extra_questions)
        conn.execute(
            "INSERT INTO runs (id, model, benchmark_id, benchmark_digest, state, params, model_spec,"
            " evaluator_version, salt, total, created_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, '0', 's', ?, ?, ?)",
            (run_id, model, benchmark_id, digest, state, json.dumps({"extraction_era": era}),
             json.dumps({"name": model, "endpoints": ["127.0.0.1:1"]}), len(idxs), now(), finished_at or now()),
        )
        for pos, idx in enumerate(idxs):
            conn.execute("INSERT INTO run_questions (run_id, idx, qid, position) VALUES (?, ?, ?, ?)",
                         (run_id, idx, f"q{pos}", pos))
        for a in attempts:
            if a.outcome == "error":  # an earlier failed attempt too, not final
                conn.execute(
                    "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, code, created_at)"
                    " VALUES (?, ?, 0, 'x', 'error', 0, 'UNAVAILABLE', ?)", (run_id, a.idx, now()))
            conn.execute(
                "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, status, labels, text,"
                " option_scores, model_version, created_at) VALUES (?, ?, 1, 'r', ?, 1, ?, ?, ?, ?, 'v1', ?)",
                (run_id, a.idx, a.outcome, a.status if a.outcome == "answered" else "", json.dumps(a.labels),
                 a.text, json.dumps(a.option_scores), now()),
            )
        return run_id

    db.write(fn)
    if graded if graded is not None else state in ("succeeded", "failed", "cancelled"):
        finish_grading_sync(db, run_id)
    return run_id
