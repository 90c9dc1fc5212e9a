"""The user path: what a user types, with default flags, next to raw gRPC in the same run.

It runs exactly the commands of the README, as subprocesses, on a synthetic benchmark::

    gmai-eval synth --out bench.tsv --questions 10000
    gmai-eval import --db eval.db --name bench bench.tsv
    gmai-eval serve --db eval.db --port 0 --metrics-port 0        # free ports, else defaults
    gmai-model serve random --port 0
    gmai-eval models add random --endpoint 127.0.0.1:PORT
    gmai-eval run --model random --benchmark bench --wait --no-progress     # timed, N times

Between user-path rounds it times a raw ``grpc.aio`` client (in this process) making
AnswerVQA calls against the same ``gmai-model`` process, at the concurrency the run used
(the run's ``concurrency`` capped by the model's advertised ``max_concurrency``), sending
the same requests the evaluator sends (every question of the TSV, with its image, sha256
and rendered prompt), so the mean payload is the same. Rounds alternate raw, user path.

For each user-path round it prints the questions/s over the run's own clock (created ->
finished, read back with GetRun) and over the wall time of ``run --wait`` (which adds the
CLI's start-up and the final summary), and the ratio of the former to the raw round
before it, then the CPU time per question of the model process (in the raw round and in the
run) and of the evaluator process (in the run). The last lines give medians and ranges.

Usage::

    .venv/bin/python bench/user_path.py [--questions 10000] [--repeat 3] [--data DIR]
        [--model-args "--max-batch-size 64"] [--concurrency 64] [--profile-model model.prof]
        [--profile-evaluator evaluator.prof]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
import grpc.aio
from gmai_eval.clients.reference.data import Row, read_rows
from gmai_eval.evaluator.v1 import evaluator_pb2, evaluator_pb2_grpc
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from gmai_eval.server.records import TlsSettings
from gmai_eval.server.runs.contract import run_concurrency
from gmai_eval.server.runs.model_client import channel_options
from gmai_eval.server.scoring.prompt import render_prompt

BIN = Path(sys.executable).parent


def _cli(name: str) -> list[str]:
    """The console script ``name`` of this venv (what a user's shell finds)."""
    return [str(BIN / name)]


class Service:
    """A server subprocess that prints one ``... serving on HOST:PORT ...`` line when ready."""

    def __init__(self, argv: Sequence[str], log: Path) -> None:
        self.log = log.open("w")
        self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=self.log, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving on" not in line:
            self.stop()
            tail = log.read_text(errors="replace")[-2000:]
            raise SystemExit(f"{argv[0]} did not start: {line!r}; its log:\n{tail}")
        self.address = line.split("serving on ", 1)[1].split()[0]

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """SIGTERM, then wait for the drain."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def raw_requests(rows: Sequence[Row]) -> list[model_pb2.AnswerVQARequest]:
    """The AnswerVQA requests the evaluator would send for ``rows`` (same fields, same size)."""
    out = []
    for i, row in enumerate(rows):
        out.append(
            model_pb2.AnswerVQARequest(
                question_id=f"q-{i:016x}",
                request_id=f"r-{i:016x}-1",
                images=[
                    model_pb2.Image(
                        data=row.image,
                        media_type="image/png",
                        sha256=hashlib.sha256(row.image).hexdigest(),
                    )
                ],
                question=row.question,
                options=[model_pb2.Option(label=lab, text=text) for lab, text in row.options],
                prompt=render_prompt(row.question, row.options),
                answer_format=model_pb2.ANSWER_FORMAT_SINGLE_CHOICE,
            )
        )
    return out


async def raw_round(
    target: str, requests: Sequence[model_pb2.AnswerVQARequest], concurrency: int
) -> float:
    """Questions/s of bare AnswerVQA calls over ``requests`` at ``concurrency``."""
    opts = channel_options(tls=TlsSettings(), balanced=False)
    async with grpc.aio.insecure_channel(target, options=opts) as channel:
        stub = model_pb2_grpc.ModelServiceStub(channel)
        await stub.AnswerVQA(requests[0], timeout=30)
        it = iter(requests)

        async def worker() -> None:
            for req in it:
                await stub.AnswerVQA(req, timeout=60)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return len(requests) / (time.perf_counter() - start)


def user_round(server: str, model: str, concurrency: int | None) -> tuple[str, float]:
    """One ``gmai-eval run --wait``; returns (run id, wall seconds)."""
    argv = [*_cli("gmai-eval"), "run", "--model", model, "--benchmark", "bench"]
    argv += ["--wait", "--no-progress", "--server", server]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run --wait exited {done.returncode}: {done.stderr.strip()[-500:]}")
    return done.stdout.split()[0], wall


async def model_max_concurrency(target: str) -> int:
    """The model's advertised ``max_concurrency`` (0 = none)."""
    async with grpc.aio.insecure_channel(target) as channel:
        stub = model_pb2_grpc.ModelServiceStub(channel)
        info = await stub.GetModelInfo(model_pb2.GetModelInfoRequest(), timeout=10)
        return int(info.max_concurrency)


async def run_record(server: str, run_id: str) -> evaluator_pb2.Run:
    """The run as GetRun returns it."""
    async with grpc.aio.insecure_channel(server) as channel:
        stub = evaluator_pb2_grpc.EvaluatorServiceStub(channel)
        return (await stub.GetRun(evaluator_pb2.GetRunRequest(id=run_id), timeout=10)).run


def _median_range(values: Sequence[float]) -> str:
    return f"{statistics.median(values):6.0f} ({min(values):.0f}-{max(values):.0f})"


def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="gmai-user-path-"))
    data = Path(args.data) if args.data else tmp
    data.mkdir(parents=True, exist_ok=True)
    services: list[Service] = []
    try:
        tsv, db = data / f"bench-{args.questions}.tsv", data / f"eval-{args.questions}.db"
        t0 = time.perf_counter()
        if not (tsv.exists() and db.exists()):
            db.unlink(missing_ok=True)
            synth = ["synth", "--out", str(tsv), "--questions", str(args.questions)]
            subprocess.run(_cli("gmai-eval") + synth, check=True, stdout=subprocess.DEVNULL)
            imp = ["import", "--db", str(db), "--name", "bench", str(tsv)]
            subprocess.run(_cli("gmai-eval") + imp, check=True, stdout=subprocess.DEVNULL)
        rows = list(read_rows(tsv))
        requests = raw_requests(rows)
        mean_kb = sum(r.ByteSize() for r in requests) / len(requests) / 1024
        print(
            f"synth + import (or reuse) of {len(rows)} questions: {time.perf_counter() - t0:.1f} s; "
            f"mean request {mean_kb:.1f} KB"
        )
        evaluator_argv = [*_cli("gmai-eval"), "serve", "--db", str(db), "--port", "0", "--metrics-port", "0"]
        if args.profile_evaluator:
            evaluator_argv[:1] = [
                sys.executable, "-m", "cProfile", "-o", str(Path(args.profile_evaluator).resolve()),
                "-m", "gmai_eval.clients.cli.main",
            ]  # fmt: skip
        evaluator = Service(evaluator_argv, tmp / "evaluator.log")
        services.append(evaluator)
        model_argv = [*_cli("gmai-model"), "serve", "random", "--port", "0"]
        if args.profile_model:
            model_argv = [
                sys.executable, "-m", "cProfile", "-o", str(Path(args.profile_model).resolve()),
                "-m", "gmai_eval.clients.reference.cli", "serve", "random", "--port", "0",
            ]  # fmt: skip
        model = Service(model_argv + shlex.split(args.model_args), tmp / "model.log")
        services.append(model)
        server, target = evaluator.address, model.address.replace("0.0.0.0", "127.0.0.1")
        add = ["models", "add", "random", "--endpoint", target, "--server", server]
        subprocess.run(_cli("gmai-eval") + add, check=True, stdout=subprocess.DEVNULL)
        print(
            f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f} "
            f"python={sys.version.split()[0]} grpc={grpc.__version__} "
            f"model args: {args.model_args or '(defaults)'}"
        )
        advertised = asyncio.run(model_max_concurrency(target))
        wanted = run_concurrency(args.concurrency or 0, advertised)
        concurrency = min(wanted, advertised) if advertised else wanted
        print(
            f"concurrency {concurrency}: the run's {'--concurrency' if args.concurrency else 'default'} {wanted}, "
            f"capped by the model's max_concurrency {advertised}"
        )
        raws, runs, walls = [], [], []
        for i in range(args.repeat):
            model_cpu = model.cpu_seconds()
            raw = asyncio.run(raw_round(target, requests, concurrency))
            raw_model_us = (model.cpu_seconds() - model_cpu) / len(requests) * 1e6
            model_cpu, evaluator_cpu = model.cpu_seconds(), evaluator.cpu_seconds()
            run_id, wall = user_round(server, "random", args.concurrency)
            user_model_cpu = model.cpu_seconds() - model_cpu
            user_evaluator_cpu = evaluator.cpu_seconds() - evaluator_cpu
            run = asyncio.run(run_record(server, run_id))
            if run.parameters.concurrency != wanted:
                raise SystemExit(f"the run used concurrency {run.parameters.concurrency}")
            seconds = (run.finished_time.ToNanoseconds() - run.created_time.ToNanoseconds()) / 1e9
            n = run.progress.done
            raws.append(raw)
            runs.append(n / seconds)
            walls.append(n / wall)
            print(
                f"round {i + 1}: raw grpc.aio {raw:6.0f} q/s | user path {n / seconds:6.0f} q/s "
                f"over the run ({seconds:.2f} s), {n / wall:6.0f} q/s over run --wait "
                f"({wall:.2f} s) | ratio {n / seconds / raw:6.1%} | {n} questions, "
                f"load {os.getloadavg()[0]:.1f}"
            )
            print(
                f"  CPU per question: model {raw_model_us:.0f} us (raw) / "
                f"{user_model_cpu / n * 1e6:.0f} us (user path), "
                f"evaluator {user_evaluator_cpu / n * 1e6:.0f} us (user path)"
            )
        ratios = [u / r for u, r in zip(runs, raws, strict=True)]
        print(
            f"median (range) of {args.repeat}: raw grpc.aio {_median_range(raws)} q/s | "
            f"user path {_median_range(runs)} q/s over the run, {_median_range(walls)} q/s "
            f"over run --wait | ratio {statistics.median(ratios):.1%} "
            f"({min(ratios):.1%}-{max(ratios):.1%}) at concurrency {concurrency}"
        )
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--questions", type=int, default=10_000)
    parser.add_argument(
        "--data", metavar="DIR", help="Keep the TSV and database here and reuse them next time."
    )
    parser.add_argument("--repeat", type=int, default=3, help="Rounds of each side.")
    parser.add_argument(
        "--model-args", default="", help="Extra flags for gmai-model serve random (default none)."
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="Pass --concurrency N to gmai-eval run (default: not passed, the default flags).",
    )
    parser.add_argument(
        "--profile-model", metavar="FILE", help="Run the model under cProfile; write stats here."
    )
    parser.add_argument(
        "--profile-evaluator",
        metavar="FILE",
        help="Run the evaluator under cProfile; write stats here.",
    )
    main(parser.parse_args())
