"""Cost of a /metrics scrape with the accuracy collector: the first scrape vs later ones.

The runs' summaries are stored when the runs are written (as at a run's end), so no scrape
scores a run: the first scrape should cost about what later ones do.

Builds a database with a GMAI-MMBench-VAL-sized benchmark (4,550 questions spread over the
real numbers of tasks, departments, granularities and modalities) and MODELS models with
two finished versions each, then times scrapes of the registry over HTTP. Prints series
counts, the first scrape, the median of the later ones and their ratio.

    .venv/bin/python bench/metrics_scrape.py [--models 4] [--questions 4550] [--scrapes 15]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gmai_eval.server.metrics.collector import build_registry
from gmai_eval.server.store import Database
from gmai_eval.server.taxonomy import DEPARTMENTS, GRANULARITIES, TASKS

from tests._metrics_helpers import Answer, add_benchmark, add_run, fetch, serve_registry


def answers(n: int, correct_every: int) -> list[Answer]:
    """``n`` answers over 18 tasks, 19 departments, 4 granularities and 38 modalities."""
    return [
        Answer(
            task=TASKS[i % len(TASKS)][0],
            department=DEPARTMENTS[(i // 3) % len(DEPARTMENTS)][0],
            granularity=GRANULARITIES[i % len(GRANULARITIES)][0],
            modality=f"modality-{(i // 7) % 38:02d}",
            verdict="correct" if i % correct_every == 0 else "incorrect",
        )
        for i in range(n)
    ]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--questions", type=int, default=4550)
    parser.add_argument("--scrapes", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.db")
        try:
            t0 = time.perf_counter()
            bid = add_benchmark(db, "gmai-val", answers(args.questions, 2))
            for m in range(args.models):
                for v in (1, 2):
                    add_run(db, run_id=f"r-{m}-{v}", model=f"model-{m}", version=f"{v}.0", benchmark_id=bid,
                            answers=answers(args.questions, 2 + v), finished_at=f"2026-11-0{v}T00:00:00+00:00")
            print(f"setup: {args.models} models x 2 versions x {args.questions} questions "
                  f"in {time.perf_counter() - t0:.1f} s")
            registry, _ = build_registry(db)
            with serve_registry(registry) as url:
                t0 = time.perf_counter()
                text = fetch(url)
                first = time.perf_counter() - t0
                cached = []
                for _ in range(args.scrapes):
                    t0 = time.perf_counter()
                    fetch(url)
                    cached.append(time.perf_counter() - t0)
        finally:
            db.close()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    acc = [ln for ln in lines if ln.startswith("gmai_eval_accuracy_ratio{")]
    med = statistics.median(cached)
    print(f"series: {len(lines)} in total, {len(acc)} gmai_eval_accuracy_ratio "
          f"({len(acc) // max(1, args.models * 2)} nodes per exported run)")
    print(f"first scrape: {first * 1000:.1f} ms")
    print(f"later scrapes, median of {args.scrapes}: {med * 1000:.1f} ms")
    print(f"ratio first/later: {first / med:.1f}x")


if __name__ == "__main__":
    main()
