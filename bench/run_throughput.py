"""Run throughput: questions per second through the whole run path, next to raw gRPC.

The whole path is SQLite (questions and images) -> scheduler -> model client -> an
instant model on loopback -> SQLite (one committed attempt per answer), driven by a real
:class:`RunManager`. The baseline, in the same run and against the same model process, is
raw ``grpc.aio`` unary AnswerVQA calls of the same size with the same concurrency and
channel options. The model server runs in a separate process.

Usage::

    .venv/bin/python bench/run_throughput.py [--questions 3000] [--images 200]
        [--image-kb 200] [--concurrency 32] [--repeat 5] [--profile] [--model-delay-ms 0]

The last line checks issue 9's floor. It was set as 2,200 q/s when raw ``grpc.aio`` made
3,472 q/s on this machine (the whole path then: 2,660), so it is checked as a share of raw
measured in the same run: the whole path's median at least 63.4% of raw's (``--floor``).
An absolute figure cannot be checked on a shared VM whose raw gRPC moves by 2x between
rounds and has halved since (docs/benchmarks.md). The exit status is 1 below the floor.

``--concurrency 0`` leaves the run's concurrency to the evaluator's default (the model
advertises ``max_concurrency`` 128, as the SDK's cheap models do); ``--model-delay-ms``
makes the model wait that long before each answer, for a run bound by the model's latency
rather than by CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import os
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import grpc.aio
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import ModelSpec, RunParams, SourceFile, TlsSettings
from gmai_eval.server.runs.contract import run_concurrency
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.runs.model_client import channel_options
from gmai_eval.server.store import benchmark_imports as bench_imports
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import register_model
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from prometheus_client import CollectorRegistry

SERVICE = "gmai_eval.model.v1.ModelService"

FLOOR_QPS, FLOOR_RAW_QPS = 2200, 3472
"""Issue 9's floor and raw gRPC's rate in the run that set it (2026-11-28)."""


# -- the instant model (separate process) ---------------------------------------------------


class InstantModel(model_pb2_grpc.ModelServiceServicer):
    """Answers "A" at once, or after ``delay_s``."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    async def AnswerVQA(self, request, context):  # type: ignore[no-untyped-def]
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return model_pb2.AnswerVQAResponse(
            question_id=request.question_id,
            status=model_pb2.ANSWER_STATUS_ANSWERED,
            selected_labels=["A"],
            request_id=request.request_id,
        )

    async def GetModelInfo(self, request, context):  # type: ignore[no-untyped-def]
        return model_pb2.GetModelInfoResponse(
            name="instant", version="1", protocol_version="gmai_eval.model.v1", max_concurrency=128
        )


async def serve_model(port_file: str, delay_s: float) -> None:
    """Serve the instant model on a free loopback port; write the port to ``port_file``."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    model_pb2_grpc.add_ModelServiceServicer_to_server(InstantModel(delay_s), server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    for key in (SERVICE, ""):
        await health.set(key, health_pb2.HealthCheckResponse.SERVING)
    Path(port_file).write_text(str(port))
    await server.wait_for_termination()


# -- data -----------------------------------------------------------------------------------


def build_db(path: Path, questions: int, images: int, image_kb: int) -> None:
    """A ready benchmark of ``questions`` rows over ``images`` distinct images."""
    db = Database(path)
    bid = bench_imports.begin_import(db, "bench", "VAL")
    imgs = []
    for i in range(images):
        seed = hashlib.sha256(str(i).encode()).digest()
        data = (b"\x89PNG\r\n\x1a\n" + seed * (image_kb * 1024 // 32 + 1))[: image_kb * 1024]
        imgs.append(bench_imports.ImageRow(hashlib.sha256(data).hexdigest(), "image/png", 512, 512, "RGB", data))
    rows = [
        bench_imports.QuestionRow(
            idx=i,
            question=f"This is a CT image. Which organ is marked in question {i}?",
            options=("liver", "spleen", "kidney", "pancreas", ""),
            answer="A",
            answer_source="answer",
            category="liver",
            clinical_task="Organ Recognition - Abdomen",
            department="Radiology",
            granularity="Mask level",
            modality="CT",
            original_task="SEG_2D",
            image_path=f"{i}.png",
            image_sha256=imgs[i % images].sha256,
            source_file="bench.tsv",
            source_row=i + 1,
            extra={},
        )
        for i in range(questions)
    ]
    db.write(lambda d: bench_imports.write_batch(d, bid, imgs, rows))
    bench_imports.finish_import(db, bid, "sha256:bench", "VAL", [SourceFile("bench.tsv", "sha256:x", questions, 1)], [])
    db.close()


# -- measurements ---------------------------------------------------------------------------


async def raw_grpc(target: str, n: int, concurrency: int, image_kb: int) -> float:
    """Questions/s of bare AnswerVQA calls of the same size and concurrency."""
    opts = channel_options(tls=TlsSettings(), balanced=False)
    async with grpc.aio.insecure_channel(target, options=opts) as channel:
        stub = model_pb2_grpc.ModelServiceStub(channel)
        data = os.urandom(image_kb * 1024)
        req = model_pb2.AnswerVQARequest(
            question_id="q-0123456789abcdef",
            question="This is a CT image. Which organ is marked?",
            options=[model_pb2.Option(label=x, text=t) for x, t in zip("ABCD", ("liver", "spleen", "kidney", "pancreas"), strict=True)],
            images=[model_pb2.Image(data=data, media_type="image/png", sha256="0" * 64)],
            prompt="Question: ...",
        )
        await stub.AnswerVQA(req, timeout=10)
        left = n

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await stub.AnswerVQA(req, timeout=60)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return n / (time.perf_counter() - start)


async def whole_path(db_path: Path, target: str, concurrency: int, name: str) -> tuple[float, int]:
    """Questions/s of one run through RunManager; returns (q/s, questions)."""
    db = Database(db_path)
    try:
        register_model(db, ModelSpec(name, (target,)))
        mgr = RunManager(db, metrics=EvaluatorMetrics(CollectorRegistry()))
        await mgr.start()
        start = time.perf_counter()
        rec = await mgr.create_run(name, "bench", RunParams(concurrency=concurrency))
        active = mgr._active.get(rec.id)  # the run's driving task (bench only)
        if active is not None:
            await active.task
        elapsed = time.perf_counter() - start
        rec = mgr.get_run(rec.id)
        await mgr.shutdown(0)
        assert rec.state == "succeeded", rec
        assert rec.progress.done == rec.progress.total and rec.progress.errors == 0
        return rec.progress.total / elapsed, rec.progress.total
    finally:
        db.close()


def minor_faults() -> int:
    """Minor page faults of this process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


async def main(args: argparse.Namespace) -> bool:
    """Run the rounds and print them; True when the whole path meets the floor."""
    tmp = Path(tempfile.mkdtemp(prefix="gmai-bench-"))
    port_file = tmp / "port"
    serve = [sys.executable, __file__, "--serve-model", str(port_file), "--model-delay-ms", str(args.model_delay_ms)]
    proc = subprocess.Popen(serve)
    try:
        t0 = time.perf_counter()
        db_path = tmp / "eval.db"
        build_db(db_path, args.questions, args.images, args.image_kb)
        print(f"built {args.questions} questions, {args.images} images of {args.image_kb} KB in {time.perf_counter() - t0:.1f} s")
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            await asyncio.sleep(0.05)
        target = f"127.0.0.1:{port_file.read_text()}"
        in_flight = run_concurrency(args.concurrency, 128)  # the model advertises 128
        print(f"cpus={os.cpu_count()} concurrency={in_flight} python={sys.version.split()[0]} grpc={grpc.__version__}")
        raws: list[float] = []
        wholes: list[float] = []
        cpus_raw: list[float] = []
        cpus_whole: list[float] = []
        for i in range(args.repeat):
            cpu0, flt0 = time.process_time(), minor_faults()
            raw = await raw_grpc(target, args.questions, in_flight, args.image_kb)
            cpu_raw = (time.process_time() - cpu0) / args.questions * 1e6
            flt_raw = (minor_faults() - flt0) / args.questions
            raws.append(raw)
            cpus_raw.append(cpu_raw)
            prof = cProfile.Profile() if args.profile and i == args.repeat - 1 else None
            if prof:
                prof.enable()
            cpu0, flt0 = time.process_time(), minor_faults()
            qps, n = await whole_path(db_path, target, args.concurrency, f"m{i}")
            cpu_whole = (time.process_time() - cpu0) / n * 1e6
            flt_whole = (minor_faults() - flt0) / n
            if prof:
                prof.disable()
                pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            wholes.append(qps)
            cpus_whole.append(cpu_whole)
            print(f"round {i + 1}: raw grpc.aio {raw:8.0f} q/s | whole path {qps:8.0f} q/s ({n} questions) | ratio {qps / raw:6.1%} | evaluator CPU/question raw {cpu_raw:4.0f} us, whole {cpu_whole:4.0f} us | page faults/question raw {flt_raw:4.1f}, whole {flt_whole:4.1f}")
        raw_m, whole_m = statistics.median(raws), statistics.median(wholes)
        print(f"median of {args.repeat}: raw grpc.aio {raw_m:8.0f} q/s | whole path {whole_m:8.0f} q/s | ratio {whole_m / raw_m:6.1%}")
        # The throughput ratio moves with the load of other processes on the machine; the
        # evaluator's CPU per question does much less. Their ratio is what the throughput
        # ratio would be if the evaluator's CPU were the only bottleneck.
        cr, cw = statistics.median(cpus_raw), statistics.median(cpus_whole)
        print(f"median evaluator CPU/question: raw {cr:4.0f} us | whole {cw:4.0f} us | raw/whole {cr / cw:6.1%}")
        met = whole_m >= args.floor * raw_m
        print(
            f"floor: whole path {whole_m / raw_m:.1%} of raw, at least {args.floor:.1%} needed"
            f" ({FLOOR_QPS:,} of {FLOOR_RAW_QPS:,} q/s when set; {args.floor * raw_m:,.0f} q/s"
            f" at this run's raw rate): {'met' if met else 'NOT MET'}"
        )
        return met
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=3000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--image-kb", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32, help="0: the evaluator's default")
    parser.add_argument("--model-delay-ms", type=float, default=0.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--floor", type=float, default=FLOOR_QPS / FLOOR_RAW_QPS,
        help="Least share of raw grpc.aio the whole path must reach (default: %(default).3f).",
    )
    parser.add_argument("--serve-model", metavar="PORT_FILE", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve_model:
        asyncio.run(serve_model(ns.serve_model, ns.model_delay_ms / 1000))
    else:
        sys.exit(0 if asyncio.run(main(ns)) else 1)
