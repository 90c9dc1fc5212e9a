"""Helpers for run-engine tests: a scriptable model service and a small benchmark.

:class:`ScriptedModel` is a real ``grpc.aio`` ModelService (plus health) whose answer is a
deterministic function of the question text and options (so two runs with different
opaque ids give the same answers), with switches to misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import grpc
import grpc.aio
from gmai_eval.model.v1 import model_pb2, model_pb2_grpc
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import ModelSpec, RunRecord, SourceFile
from gmai_eval.server.runs.manager import RunManager
from gmai_eval.server.scoring.grading import finish_grading
from gmai_eval.server.store import benchmark_imports as bench_imports
from gmai_eval.server.store.database import Database
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from prometheus_client import CollectorRegistry

SERVICE = "gmai_eval.model.v1.ModelService"

TASKS = ("Disease Diagnosis", "Organ Recognition - Abdomen", "Counting")
MODALITIES = ("CT", "MR", "X-Ray", "Fundus Photography")


def answer_for(question: str, options: Sequence[tuple[str, str]]) -> str:
    """The deterministic label the scripted model picks for a question."""
    key = question + "\x00" + "\x00".join(f"{lab}={text}" for lab, text in options)
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return options[h % len(options)][0]


@dataclass
class Script:
    """How the scripted model behaves; change fields while it runs."""

    delay_s: float = 0.0
    """Sleep before answering."""
    slow_questions: set[str] = field(default_factory=set)
    """Question texts that sleep ``slow_delay_s`` instead."""
    slow_delay_s: float = 0.0
    """Delay for ``slow_questions``."""
    fail_times: int = 0
    """Fail the first N calls of each question (by text) with ``fail_code``."""
    fail_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    """Code of the scripted failures."""
    always_fail: set[str] = field(default_factory=set)
    """Question texts that always fail with ``always_fail_code``."""
    always_fail_code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    """Code for ``always_fail``."""
    from_call: int = 0
    """``exhausted_calls``, ``fail_times``, ``wrong_id`` and ``unknown_label`` apply only to
    calls after this many (1 spares the pre-flight's smoke question, without racing the
    run's first calls)."""
    exhausted_calls: int = 0
    """The next N calls (overall) get RESOURCE_EXHAUSTED."""
    exhausted_retry_after_s: float = 0.0
    """When set, those RESOURCE_EXHAUSTED carry a google.rpc.RetryInfo of this delay."""
    wrong_id: bool = False
    """Echo a wrong question_id."""
    unknown_label: bool = False
    """Select label "Z"."""
    free_text: bool = False
    """Answer with text only ("The answer is X.")."""
    protocol_version: str = "gmai_eval.model.v1"
    """Advertised protocol."""
    version: str = "1.0"
    """Advertised model version (and the version stamped on answers)."""
    max_image_bytes: int = 0
    """Advertised limit."""
    max_request_bytes: int = 0
    """Advertised limit."""
    preferred_batch_size: int = 0
    """Advertised batch size."""
    max_concurrency: int = 0
    """Advertised concurrency ceiling."""
    media_types: tuple[str, ...] = ()
    """Advertised supported media types."""


def _retry_info_trailer(delay_s: float) -> tuple[tuple[str, bytes], ...]:
    """The grpc-status-details-bin trailer of a RESOURCE_EXHAUSTED carrying a RetryInfo."""
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import code_pb2, error_details_pb2, status_pb2

    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=int(delay_s), nanos=int(delay_s % 1 * 1e9)))
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="queue full", details=[detail])
    return (("grpc-status-details-bin", status.SerializeToString()),)


class ScriptedModel(model_pb2_grpc.ModelServiceServicer):
    """A scriptable ModelService; counts every call.

    Args:
        script: behaviour switches.
        name: the model name it reports.
    """

    def __init__(self, script: Script | None = None, name: str = "scripted") -> None:
        self.script = script or Script()
        self.name = name
        self.calls = 0
        self.calls_by_question: collections.Counter[str] = collections.Counter()
        self.scripted_calls_by_question: collections.Counter[str] = collections.Counter()
        self.call_times: collections.defaultdict[str, list[float]] = collections.defaultdict(list)
        """Monotonic arrival times of each question's calls."""
        self.question_ids: list[str] = []
        self.requests: list[model_pb2.AnswerVQARequest] = []
        self.keep_requests = False
        self.inflight = 0
        self.max_inflight = 0
        self.gate: asyncio.Event | None = None
        """When set, every call after the first (the pre-flight's smoke question) waits for it."""

    async def AnswerVQA(
        self, request: model_pb2.AnswerVQARequest, context: grpc.aio.ServicerContext
    ) -> model_pb2.AnswerVQAResponse:
        s = self.script
        self.calls += 1
        self.calls_by_question[request.question] += 1
        self.question_ids.append(request.question_id)
        if self.keep_requests:
            self.requests.append(request)
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            if self.gate is not None and self.calls > 1:
                await self.gate.wait()
            self.call_times[request.question].append(time.monotonic())
            scripted = self.calls > s.from_call
            if scripted and s.exhausted_calls > 0:
                s.exhausted_calls -= 1
                trailer = _retry_info_trailer(s.exhausted_retry_after_s) if s.exhausted_retry_after_s else ()
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full", trailing_metadata=trailer)
            if request.question in s.always_fail:
                await context.abort(s.always_fail_code, "scripted failure")
            if scripted:
                self.scripted_calls_by_question[request.question] += 1
            if scripted and self.scripted_calls_by_question[request.question] <= s.fail_times:
                await context.abort(s.fail_code, "scripted transient failure")
            delay = s.slow_delay_s if request.question in s.slow_questions else s.delay_s
            if delay:
                await asyncio.sleep(delay)
            options = [(o.label, o.text) for o in request.options]
            label = answer_for(request.question, options)
            resp = model_pb2.AnswerVQAResponse(
                question_id="q-wrong" if scripted and s.wrong_id else request.question_id,
                status=model_pb2.ANSWER_STATUS_ANSWERED,
                model_version=self.script.version,
                request_id=request.request_id,
            )
            if s.free_text:
                resp.text = f"The answer is {label}."
            else:
                resp.selected_labels.append("Z" if scripted and s.unknown_label else label)
            return resp
        finally:
            self.inflight -= 1

    async def GetModelInfo(
        self, request: model_pb2.GetModelInfoRequest, context: grpc.aio.ServicerContext
    ) -> model_pb2.GetModelInfoResponse:
        s = self.script
        return model_pb2.GetModelInfoResponse(
            name=self.name,
            version=s.version,
            protocol_version=s.protocol_version,
            max_image_bytes=s.max_image_bytes,
            max_request_bytes=s.max_request_bytes,
            supported_media_types=list(s.media_types),
            preferred_batch_size=s.preferred_batch_size,
            max_concurrency=s.max_concurrency,
            capabilities=["free_text"] if s.free_text else [],
        )


@dataclass
class ModelServer:
    """A running scripted model server."""

    model: ScriptedModel
    server: grpc.aio.Server
    health: health_aio.HealthServicer
    port: int

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"127.0.0.1:{self.port}"

    async def stop(self, grace: float | None = None) -> None:
        """Stop serving."""
        await self.server.stop(grace)


async def start_model_server(
    model: ScriptedModel | None = None,
    port: int = 0,
    serving: bool = True,
    credentials: grpc.ServerCredentials | None = None,
) -> ModelServer:
    """Start a scripted model on 127.0.0.1 (``port`` 0 picks a free one; TLS if given)."""
    model = model or ScriptedModel()
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    model_pb2_grpc.add_ModelServiceServicer_to_server(model, server)
    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    address = f"127.0.0.1:{port}"
    if credentials is not None:
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    assert bound, f"cannot bind 127.0.0.1:{port}"
    await server.start()
    status = (
        health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for key in (SERVICE, ""):
        await health.set(key, status)
    return ModelServer(model, server, health, bound)


def spec_for(name: str, *servers: ModelServer) -> ModelSpec:
    """A model spec pointing at ``servers``."""
    return ModelSpec(name=name, endpoints=tuple(s.endpoint for s in servers))


def build_benchmark(
    db: Database,
    name: str = "bench",
    n: int = 40,
    *,
    image_bytes: int = 64,
    big_images: Sequence[int] = (),
    big_image_bytes: int = 0,
    jpeg: Sequence[int] = (),
) -> list[int]:
    """Write a ready benchmark of ``n`` questions through the benchmark store.

    Args:
        db: the database.
        name: benchmark name.
        n: questions (indexes 1000..1000+n-1).
        image_bytes: size of each (fake PNG) image; every question has its own image.
        big_images: positions (0-based) whose image has ``big_image_bytes`` instead.
        big_image_bytes: size of those images.
        jpeg: positions whose image is stored as ``image/jpeg``.

    Returns:
        The question indexes.
    """
    bid = bench_imports.begin_import(db, name, "VAL")
    images, questions = [], []
    for i in range(n):
        size = big_image_bytes if i in big_images else image_bytes
        seed = hashlib.sha256(f"{name}/{i}".encode()).digest()
        data = b"\x89PNG\r\n\x1a\n" + (seed * (size // 32 + 1))[: max(0, size - 8)]
        sha = hashlib.sha256(data).hexdigest()
        media = "image/jpeg" if i in jpeg else "image/png"
        images.append(bench_imports.ImageRow(sha, media, 16, 16, "RGB", data))
        n_opts = 2 + i % 4
        opts = tuple(f"option {j} of question {i}" if j < n_opts else "" for j in range(5))
        questions.append(
            bench_imports.QuestionRow(
                idx=1000 + i,
                question=f"Question {i}: which finding is shown?",
                options=opts,  # type: ignore[arg-type]
                answer="ABCDE"[i % n_opts],
                answer_source="answer",
                category=opts[i % n_opts],
                clinical_task=TASKS[i % len(TASKS)],
                department="Radiology",
                granularity="Image level",
                modality=MODALITIES[i % len(MODALITIES)],
                original_task="CLS",
                image_path=f"{i}.png",
                image_sha256=sha,
                source_file=f"{name}.tsv",
                source_row=i + 1,
                extra={},
            )
        )
    db.write(lambda d: bench_imports.write_batch(d, bid, images, questions))
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    bench_imports.finish_import(
        db, bid, digest, "VAL", [SourceFile(f"{name}.tsv", digest, n, 1)], []
    )
    return [q.idx for q in questions]


async def wait_final(mgr: RunManager, run_id: str, timeout: float = 60) -> RunRecord:
    """Follow ``mgr.watch(run_id)`` until the run is final; return its last record."""
    last = None

    async def follow() -> None:
        nonlocal last
        async for rec in mgr.watch(run_id):
            last = rec

    await asyncio.wait_for(follow(), timeout)
    assert last is not None
    return last


@contextlib.asynccontextmanager
async def running_manager(
    db: Database, metrics: EvaluatorMetrics | None = None, *, graded: bool = False
) -> AsyncIterator[RunManager]:
    """A started :class:`RunManager` with fast retries, shut down on exit.

    ``graded`` grades each run when it ends, as app.py wires it.
    """

    async def final_grader(run_id: str) -> None:
        await finish_grading(db, run_id)

    mgr = RunManager(
        db, metrics=metrics or EvaluatorMetrics(CollectorRegistry()),
        final_grader=final_grader if graded else None, backoff_base_s=0.01,
    )
    await mgr.start()
    try:
        yield mgr
    finally:
        await mgr.shutdown(grace_s=0)
