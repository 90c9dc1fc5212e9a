"""Read paths against run size: scores, compare, calibration, export, runs show and a scrape.

For each size it builds a fresh database with one benchmark and two finished runs on it
(free-text answers and option scores, so every read has work to do), grades them on the
write path (what the run manager does while a run goes and at its end), then times each
read once, in process:

- ``scores``: ``grading.compute_scores`` (what ``gmai-eval scores`` and GetRunScores call);
- ``compare``: ``compare.compare_runs`` of the two runs;
- ``calibration``: ``grading.run_calibration``;
- ``export xlsx``: ``vlmeval_export.export_run`` to an .xlsx file and its group CSVs;
- ``runs show``: ``RunManager.get_run``, the run with its progress counts (what GetRun
  and ``gmai-eval runs show`` read);
- ``scrape``: the first HTTP scrape of a fresh registry with the accuracy collector.

Nothing is asserted; it prints one row per size, seconds per read. Usage::

    .venv/bin/python bench/read_scaling.py [--sizes 1000,5000,10000,21281]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmai_eval.server.metrics.collector import build_registry
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import OPTION_LABELS
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.scoring import grading
from gmai_eval.server.scoring.compare import compare_runs
from gmai_eval.server.scoring.vlmeval_export import export_run
from gmai_eval.server.store import Database
from prometheus_client import CollectorRegistry

from tests._metrics_helpers import fetch, serve_registry
from tests._scoring_helpers import A, Q, insert_benchmark, insert_run, make_questions

READS = ("scores", "compare", "calibration", "export xlsx", "runs show", "scrape")


def attempts(qs: list[Q], seed: int) -> list[A]:
    """One answer per question: a letter, an option text or a sentence, with option scores."""
    rng = random.Random(seed)
    out = []
    for q in qs:
        labels = OPTION_LABELS[: len(q.options)]
        weights = [rng.random() for _ in labels]
        total = sum(weights)
        scores = {lab: w / total for lab, w in zip(labels, weights, strict=True)}
        kind = rng.randrange(3)
        text = rng.choice(labels) if kind == 0 else q.options[rng.randrange(len(q.options))] if kind == 1 else (
            f"The image most likely shows option {rng.choice(labels)}."
        )
        out.append(A(q.idx, text=text, option_scores=scores))
    return out


def timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def measure(n: int, tmp: Path) -> dict[str, float]:
    """Build a database of two ``n``-question runs and time each read once."""
    db = Database(tmp / f"reads-{n}.db")
    try:
        qs = make_questions(n, seed=1)
        bid = insert_benchmark(db, qs)
        for run_id, seed in (("r-a", 2), ("r-b", 3)):
            insert_run(db, bid, attempts(qs, seed), run_id=run_id)
            asyncio.run(grading.finish_grading(db, run_id))  # what the run manager does at a run's end
        manager = RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()))
        out = {
            "scores": timed(lambda: grading.compute_scores(db, "r-a")),
            "compare": timed(lambda: compare_runs(db, "r-a", "r-b")),
            "calibration": timed(lambda: grading.run_calibration(db, "r-a")),
            "export xlsx": timed(lambda: export_run(db, "r-a", tmp / f"r-a-{n}.xlsx", "xlsx")),
            "runs show": timed(lambda: manager.get_run("r-a")),
        }
        registry, _ = build_registry(db)
        with serve_registry(registry) as url:
            out["scrape"] = timed(lambda: fetch(url, timeout=600))
        return out
    finally:
        db.close()


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,5000,10000,21281", help="Comma-separated run sizes.")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print("| questions | " + " | ".join(READS) + " |")
    print("|---:|" + "---:|" * len(READS))
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            got = measure(n, Path(tmp))
            print(f"| {n:,} | " + " | ".join(f"{got[r]:.2f}" for r in READS) + " |", flush=True)


if __name__ == "__main__":
    main()
