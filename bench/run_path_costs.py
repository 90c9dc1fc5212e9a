"""Where the run path's CPU per question goes, apart from gRPC.

Runs the whole path of bench/run_throughput.py (SQLite -> scheduler -> model client seam ->
SQLite) against an in-process instant model, so no gRPC is involved, then times its parts
one by one on the same data: reading a window of questions with their images, building
a request, serializing it for sending, and committing attempt rows. Prints CPU time
per question (``time.process_time``, all threads) and minor page faults per question.

Usage::

    .venv/bin/python bench/run_path_costs.py [--questions 3000] [--images 200]
        [--image-kb 200] [--concurrency 32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import AnswerStatus, AttemptOutcome, ModelSpec, RunParams
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.runs.model_client import EndpointHealth
from gmai_eval.server.runs.requests import build_request, parameters_struct
from gmai_eval.server.store import run_questions
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.attempts import Attempt, arecord_attempt
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import register_model
from prometheus_client import CollectorRegistry
from run_throughput import build_db


class InstantClient:
    """An in-process model client that serialises each request, as gRPC would, and answers "A"."""

    async def answer(self, req: model_pb2.AnswerVQARequest, *, deadline_s: float) -> model_pb2.AnswerVQAResponse:
        return (await self.answer_from(req, deadline_s=deadline_s))[0]

    async def answer_from(
        self, req: model_pb2.AnswerVQARequest, *, deadline_s: float, payload: bytes | None = None
    ) -> tuple[model_pb2.AnswerVQAResponse, str]:
        if payload is None:
            req.SerializeToString()
        await asyncio.sleep(0)
        resp = model_pb2.AnswerVQAResponse(
            question_id=req.question_id, status=model_pb2.ANSWER_STATUS_ANSWERED, selected_labels=["A"]
        )
        return resp, "in-process"

    async def info(self, *, deadline_s: float = 10) -> model_pb2.GetModelInfoResponse:
        return model_pb2.GetModelInfoResponse(name="instant", protocol_version="gmai_eval.model.v1")

    async def health(self) -> bool:
        return True

    async def check_health(self) -> list[EndpointHealth]:
        return [EndpointHealth("in-process", True, "SERVING")]

    async def close(self) -> None:
        return None


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def measure(label: str, n: int, fn: Callable[[], object]) -> None:
    """Print CPU microseconds and page faults per question of ``fn`` (``n`` questions)."""
    c0, f0 = time.process_time(), faults()
    fn()
    print(f"  {label:44s} {(time.process_time() - c0) / n * 1e6:6.1f} us/question  {(faults() - f0) / n:5.1f} faults/question")


async def pipeline(db: Database, name: str, concurrency: int) -> tuple[str, int, float, float, float]:
    """One run through RunManager with the in-process model: (run, benchmark, us CPU, q/s, faults) per question."""
    register_model(db, ModelSpec(name, ("in-process:0",)))
    mgr = RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()), client_factory=lambda _: InstantClient())
    await mgr.start()
    c0, t0, f0 = time.process_time(), time.perf_counter(), faults()
    rec = await mgr.create_run(name, "bench", RunParams(concurrency=concurrency))
    active = mgr._active.get(rec.id)  # the run's driving task (bench only)
    if active is not None:
        await active.task
    n = mgr.get_run(rec.id).progress.done
    cpu, wall, flt = time.process_time() - c0, time.perf_counter() - t0, faults() - f0
    await mgr.shutdown(0)
    row = run_store.get_run(db, rec.id)
    return rec.id, row.benchmark_id, cpu / n * 1e6, n / wall, flt / n


async def rounds(args: argparse.Namespace, path: Path) -> tuple[str, int]:
    """The whole path, ``repeat`` times; returns the last run and its benchmark."""
    cpus = []
    run_id, bench_id = "", 0
    for i in range(args.repeat):
        with Database(path) as db:
            run_id, bench_id, cpu, qps, flt = await pipeline(db, f"m{i}", args.concurrency)
        cpus.append(cpu)
        print(f"whole path, in-process model, round {i + 1}: {cpu:5.0f} us CPU/question, {qps:6.0f} q/s, {flt:4.1f} faults/question")
    print(f"whole path, in-process model, median: {statistics.median(cpus):5.0f} us CPU/question")
    return run_id, bench_id


def parts(path: Path, run_id: str, bench_id: int, n: int) -> None:
    """Time the parts of the path alone."""
    print("parts, timed alone on the same data:")
    pending = [run_questions.PendingQuestion(i, 1) for i in range(n)]
    with Database(path) as db:

        def read() -> list[run_questions.RunItem]:
            out: list[run_questions.RunItem] = []
            for s in range(0, n, 64):
                out = run_questions.load_items(db, run_id, bench_id, pending[s : s + 64])
            return out

        read()  # warm this thread's connection and its map of the file
        measure("read questions + images (64 per query)", n, read)
        window = read()
        params = parameters_struct({})
        reqs = [build_request(it, params) for it in window]

        def build() -> None:
            for i in range(n):
                build_request(window[i % len(window)], params)  # built, then dropped, as a run does

        measure("build_request", n, build)

        def serialize() -> None:
            for i in range(n):
                reqs[i % len(reqs)].SerializeToString()  # sent, then dropped

        measure("serialize for sending", n, serialize)
        attempts = [
            Attempt(run_id, i, 99, f"r-{i}", AttemptOutcome.ANSWERED, True, status=AnswerStatus.ANSWERED, labels=("A",), latency_s=0.001, request_bytes=1)
            for i in range(n)
        ]

        async def write(together: int) -> None:
            # Attempts awaited together are grouped into one commit by the writer thread.
            for s in range(0, n, together):
                await asyncio.gather(*(arecord_attempt(db, a) for a in attempts[s : s + together]))

        for together in (1, 4, 32):
            measure(f"commit attempt rows, {together} awaited together", n, functools.partial(asyncio.run, write(together)))


def main(args: argparse.Namespace) -> None:
    print(f"questions={args.questions} image_kb={args.image_kb}")
    tmp = Path(tempfile.mkdtemp(prefix="gmai-costs-"))
    try:
        build_db(tmp / "eval.db", args.questions, args.images, args.image_kb)
        run_id, bench_id = asyncio.run(rounds(args, tmp / "eval.db"))
        parts(tmp / "eval.db", run_id, bench_id, args.questions)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=3000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--image-kb", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    main(parser.parse_args())
