"""The run manager: creates, drives, resumes, cancels and reports evaluation runs.

A run is created with a pre-flight handshake (health SERVING, GetModelInfo, one smoke
question), its question list is frozen in ``run_questions``, and a background task drives
a :class:`~gmai_eval.server.runs.scheduler.Scheduler` session over the pending questions.

Durability: every attempt is committed as it completes and a question is pending until it
has a final attempt, so a process killed at any moment loses at most the calls in flight.
:meth:`RunManager.start` resumes every run left ``running`` (killed) or ``interrupted``
(graceful shutdown); a resumed session asks only the pending questions, continuing the
attempt numbers, so nothing is recorded twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace

import gmai_eval
from gmai_eval.server.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
    PreflightFailed,
    RunStateError,
    ShuttingDown,
)
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import (
    FINAL_RUN_STATES,
    Benchmark,
    ModelSpec,
    RunParams,
    RunProgress,
    RunRecord,
)
from gmai_eval.server.runs.model_client import GrpcModelClient, ModelClient
from gmai_eval.server.runs.preflight import (
    limits_from_dict,
    normalize_params,
    preflight,
    sample_indexes,
)
from gmai_eval.server.runs.scheduler import Limits, Scheduler, opaque_question_id
from gmai_eval.server.store import runs as store
from gmai_eval.server.store.benchmarks import get_benchmark, select_question_indexes
from gmai_eval.server.store.database import Database
from gmai_eval.server.taxonomy import parse_filter
from google.protobuf import json_format

log = logging.getLogger(__name__)

RESUMABLE_STATES = ("failed", "cancelled", "interrupted")
"""States :meth:`RunManager.resume_run` accepts."""

WATCH_INTERVAL_S = 0.25
"""Watchers see at most four updates per second."""

GRADE_INTERVAL_S = 1.0
"""How often newly final answers are handed to the grader while a run is going."""

@dataclass
class _Active:
    """A run being driven by this manager."""

    task: asyncio.Task[None]
    scheduler: Scheduler | None = None
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))
    dirty: bool = False


class RunManager:
    """Creates and drives runs over one database.

    Args:
        db: the evaluator database.
        metrics: operational metrics.
        client_factory: builds the model client of a registered model (default: gRPC).
        grader: ``grader(run_id)`` grades newly final answers; called every second while
            answers arrive.
        final_grader: ``final_grader(run_id)`` does a run's final grading; called once before
            the run reaches its final state (succeeded, failed, cancelled). Default: ``grader``.
        backoff_base_s: first retry backoff ceiling of the scheduler.
    """

    def __init__(
        self,
        db: Database,
        *,
        metrics: EvaluatorMetrics,
        client_factory: Callable[[ModelSpec], ModelClient] | None = None,
        grader: Callable[[str], Awaitable[None]] | None = None,
        final_grader: Callable[[str], Awaitable[None]] | None = None,
        backoff_base_s: float = 0.5,
    ) -> None:
        self.db = db
        self.metrics = metrics
        self._factory: Callable[[ModelSpec], ModelClient] = client_factory or (
            lambda spec: GrpcModelClient(spec, metrics)
        )
        self._grader = grader
        self._final_grader = final_grader or grader
        self._backoff_base_s = backoff_base_s
        self._active: dict[str, _Active] = {}
        self._closing = False
        self._create_locks: dict[str, asyncio.Lock] = {}

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every run left ``running`` (process killed) or ``interrupted`` (shutdown)."""
        for run_id in store.run_ids_in_states(self.db, ("running", "interrupted")):
            if run_id in self._active:
                continue
            row = store.get_run(self.db, run_id)
            try:
                spec = store.get_model(self.db, row.model)
            except NotFound:
                spec = row.model_spec
            await store.aset_run_state(self.db, run_id, "running", started=True)
            limits = limits_from_dict(row.model_info, row.params.concurrency)
            log.info("resuming run %s (%s on %s)", run_id, row.model, row.benchmark)
            self._launch(row, self._factory(spec), limits)

    async def shutdown(self, grace_s: float = 5.0, *, mark_interrupted: bool = True) -> None:
        """Stop scheduling, let in-flight calls finish for up to ``grace_s``, then stop.

        Args:
            grace_s: seconds to wait for in-flight calls.
            mark_interrupted: mark the runs that were going ``interrupted`` (False leaves
                them ``running``, exactly as a killed process would).
        """
        self._closing = True
        active = dict(self._active)
        for act in active.values():
            if act.scheduler is not None:
                act.scheduler.stop()
        tasks = [a.task for a in active.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, grace_s))
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if mark_interrupted:
            for run_id in active:
                changed = await store.aset_run_state(
                    self.db, run_id, "interrupted", only_from=("running",)
                )
                if changed:
                    self.metrics.runs.labels("interrupted").inc()

    # -- creation -------------------------------------------------------------------------

    async def create_run(
        self, model: str, benchmark: str, params: RunParams, request_id: str | None = None
    ) -> RunRecord:
        """Create a run after a pre-flight handshake and start it in the background.

        Raises:
            NotFound: unknown model or benchmark.
            InvalidArgument: bad filter or parameters, or an empty subset.
            PreflightFailed: the model failed the handshake (the message says how).
            AlreadyExists: ``request_id`` was used for a different run.
            ShuttingDown: the manager is shutting down.
        """
        if self._closing:
            raise ShuttingDown("the evaluator is shutting down; no new runs")
        params = normalize_params(params)
        request_id = request_id or None
        lock: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
        if request_id is not None:
            # Only creations with the same idempotency key wait for each other.
            lock = self._create_locks.setdefault(request_id, asyncio.Lock())
        async with lock:
            if request_id is not None:
                existing = await asyncio.to_thread(
                    store.find_run_by_request_id, self.db, request_id
                )
                if existing is not None:
                    same = (existing.model, existing.benchmark, existing.params) == (
                        model,
                        benchmark,
                        params,
                    )
                    if not same:
                        raise AlreadyExists(
                            f"request_id {request_id!r} was used for run {existing.id}"
                            " with different parameters"
                        )
                    return await asyncio.to_thread(self.get_run, existing.id)
            spec, bench, indexes = await asyncio.to_thread(
                self._select, model, benchmark, params
            )
            run_id = "r-" + secrets.token_hex(6)
            salt = secrets.token_hex(16)
            client = self._factory(spec)
            try:
                info = await preflight(
                    self.db,
                    client,
                    spec,
                    bench.id,
                    indexes[0],
                    salt,
                    params,
                    backoff_base_s=self._backoff_base_s,
                )
                info_dict = json_format.MessageToDict(info, preserving_proto_field_name=True)
                stamp = store.now_iso()
                row = store.RunRow(
                    id=run_id,
                    model=spec.name,
                    benchmark_id=bench.id,
                    benchmark=bench.name,
                    benchmark_digest=bench.digest,
                    state="running",
                    params=params,
                    model_spec=spec,
                    model_info=info_dict,
                    evaluator_version=gmai_eval.__version__,
                    request_id=request_id,
                    salt=salt,
                    total=len(indexes),
                    error_message="",
                    created_at=stamp,
                    started_at=stamp,
                    finished_at="",
                )
                questions = [(idx, opaque_question_id(salt, idx)) for idx in indexes]
                await asyncio.to_thread(store.insert_run, self.db, row, questions)
            except BaseException:
                await client.close()
                raise
        self.metrics.runs.labels("started").inc()
        self._launch(row, client, Limits.from_info(info, params.concurrency))
        return await asyncio.to_thread(self.get_run, run_id)

    def _select(
        self, model: str, benchmark: str, params: RunParams
    ) -> tuple[ModelSpec, Benchmark, list[int]]:
        """Resolve model and benchmark and select the run's questions (blocking reads)."""
        spec = store.get_model(self.db, model)
        bench = get_benchmark(self.db, benchmark)
        flt = parse_filter(params.filter)
        indexes = select_question_indexes(self.db, bench.id, flt)
        indexes = sample_indexes(indexes, params.limit, params.seed)
        if not indexes:
            raise InvalidArgument(
                f"the filter {params.filter!r} selects no question of {benchmark!r}"
            )
        return spec, bench, indexes

    # -- driving --------------------------------------------------------------------------

    def _launch(self, row: store.RunRow, client: ModelClient, limits: Limits) -> None:
        task = asyncio.create_task(self._drive(row, client, limits), name=f"run {row.id}")
        self._active[row.id] = _Active(task=task)
        self.metrics.active_runs.set(len(self._active))

    async def _drive(self, row: store.RunRow, client: ModelClient, limits: Limits) -> None:
        act = self._active[row.id]
        grading: asyncio.Task[None] | None = None
        started = time.monotonic()
        try:
            counts = await store.arun_counts(self.db, row.id, row.params.extraction_era)
            pending = await store.apending_questions(self.db, row.id)
            act.samples.append((time.monotonic(), counts.done))
            progress = self.metrics.run_progress.labels(row.model, row.benchmark)
            progress.set(counts.done / row.total if row.total else 1.0)

            def on_answer() -> None:
                act.dirty = True
                sched = act.scheduler
                if sched is None:
                    return
                now = time.monotonic()
                if not act.samples or now - act.samples[-1][0] >= 0.5:
                    act.samples.append((now, sched.done))
                    progress.set(sched.done / row.total if row.total else 1.0)

            sched = Scheduler(
                db=self.db,
                run_id=row.id,
                benchmark_id=row.benchmark_id,
                model=row.model,
                client=client,
                params=row.params,
                limits=limits,
                total=row.total,
                done=counts.done,
                errors=counts.errors,
                metrics=self.metrics,
                on_answer=on_answer,
                backoff_base_s=self._backoff_base_s,
            )
            act.scheduler = sched
            if self._grader is not None:
                grading = asyncio.create_task(self._grade_loop(row.id, act))
            result = await sched.run(pending)
            if grading is not None:
                grading.cancel()
                await asyncio.gather(grading, return_exceptions=True)
                grading = None
            if result.outcome == "stopped":
                return
            await self._grade(row.id, final=True)
            if result.outcome == "completed" and sched.errors > (
                row.params.max_error_fraction * row.total
            ):
                result = replace(
                    result,
                    outcome="failed",
                    message=(
                        f"{sched.errors} of {row.total} questions ended in error, more than"
                        f" max_error_fraction {row.params.max_error_fraction:g} allows"
                    ),
                )
            state = "succeeded" if result.outcome == "completed" else "failed"
            changed = await store.aset_run_state(
                self.db,
                row.id,
                state,
                error_message=result.message,
                finished=True,
                only_from=("running",),
            )
            if changed:
                self.metrics.runs.labels(state).inc()
                self.metrics.run_duration.labels(row.benchmark).observe(
                    time.monotonic() - started
                )
            progress.set(sched.done / row.total if row.total else 1.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("run %s failed", row.id)
            with contextlib.suppress(Exception):
                await self._grade(row.id, final=True)
                await store.aset_run_state(
                    self.db,
                    row.id,
                    "failed",
                    error_message=f"internal error: {type(exc).__name__}: {exc}",
                    finished=True,
                    only_from=("running",),
                )
                self.metrics.runs.labels("failed").inc()
        finally:
            if grading is not None:
                grading.cancel()
                await asyncio.gather(grading, return_exceptions=True)
            with contextlib.suppress(Exception):
                await client.close()
            if self._active.get(row.id) is act:
                del self._active[row.id]
            self.metrics.active_runs.set(len(self._active))

    async def _grade_loop(self, run_id: str, act: _Active) -> None:
        while True:
            await asyncio.sleep(GRADE_INTERVAL_S)
            if act.dirty:
                act.dirty = False
                await self._grade(run_id)

    async def _grade(self, run_id: str, *, final: bool = False) -> None:
        grader = self._final_grader if final else self._grader
        if grader is None:
            return
        try:
            await grader(run_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("grading run %s failed; answers are kept", run_id)

    # -- control --------------------------------------------------------------------------

    async def cancel_run(self, run_id: str) -> RunRecord:
        """Cancel a running (or interrupted) run; answers recorded so far are kept.

        Raises:
            NotFound: no such run.
            RunStateError: the run is already final.
        """
        row = await asyncio.to_thread(store.get_run, self.db, run_id)
        if row.state in FINAL_RUN_STATES:
            raise RunStateError(f"run {run_id} is already {row.state}")
        changed = await store.aset_run_state(
            self.db,
            run_id,
            "cancelled",
            finished=True,
            only_from=("queued", "running", "interrupted"),
        )
        if not changed:
            now = await asyncio.to_thread(store.get_run, self.db, run_id)
            raise RunStateError(f"run {run_id} is already {now.state}")
        self.metrics.runs.labels("cancelled").inc()
        act = self._active.get(run_id)
        if act is not None:
            act.task.cancel()
            await asyncio.gather(act.task, return_exceptions=True)
        await self._grade(run_id, final=True)  # the answers kept are graded like those of a finished run
        return await asyncio.to_thread(self.get_run, run_id)

    async def resume_run(self, run_id: str) -> RunRecord:
        """Resume a failed, cancelled or interrupted run: only pending questions are asked.

        Raises:
            NotFound: no such run.
            RunStateError: the run succeeded or is running.
            PreflightFailed: the model fails the handshake now.
            ShuttingDown: the manager is shutting down.
        """
        if self._closing:
            raise ShuttingDown("the evaluator is shutting down; no resumes")
        row = await asyncio.to_thread(store.get_run, self.db, run_id)
        if row.state not in RESUMABLE_STATES or run_id in self._active:
            what = "still running" if row.state == "running" else f"already {row.state}"
            raise RunStateError(f"run {run_id} is {what}; only {', '.join(RESUMABLE_STATES)} runs resume")
        try:
            spec = await asyncio.to_thread(store.get_model, self.db, row.model)
        except NotFound:
            spec = row.model_spec
        pending = await store.apending_questions(self.db, run_id)
        first = pending[0].idx if pending else None
        client = self._factory(spec)
        try:
            if first is None:
                first_all = await asyncio.to_thread(store.run_question_indexes, self.db, run_id)
                first = first_all[0]
            info = await preflight(
                self.db,
                client,
                spec,
                row.benchmark_id,
                first,
                row.salt,
                row.params,
                backoff_base_s=self._backoff_base_s,
            )
            info_dict = json_format.MessageToDict(info, preserving_proto_field_name=True)
            _check_same_model(run_id, row.model_info, info_dict)
            await store.aset_model_info(self.db, run_id, info_dict)
            changed = await store.aset_run_state(
                self.db, run_id, "running", error_message="", started=True,
                only_from=RESUMABLE_STATES,
            )
            if not changed:
                raise RunStateError(f"run {run_id} changed state during the resume")
        except BaseException:
            await client.close()
            raise
        self.metrics.runs.labels("started").inc()
        row = replace(row, model_info=info_dict, state="running")
        self._launch(row, client, Limits.from_info(info, row.params.concurrency))
        return await asyncio.to_thread(self.get_run, run_id)

    # -- reading --------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRecord:
        """The run with its progress.

        Raises:
            NotFound: no such run.
        """
        return self._record(store.get_run(self.db, run_id))

    def list_runs(
        self, model: str = "", benchmark: str = "", limit: int = 100, after: tuple[str, str] | None = None
    ) -> list[RunRecord]:
        """Runs, newest first, optionally of one model and/or benchmark, after a page cursor."""
        return [self._record(r) for r in store.list_runs(self.db, model, benchmark, limit, after)]

    def _record(self, row: store.RunRow) -> RunRecord:
        counts = store.run_counts(self.db, row.id, row.params.extraction_era)
        rate = eta = 0.0
        act = self._active.get(row.id)
        if act is not None and act.scheduler is not None and act.samples:
            t0, d0 = act.samples[0]
            for t, d in act.samples:  # the oldest sample within the last 10 s
                if time.monotonic() - t <= 10:
                    t0, d0 = t, d
                    break
            elapsed = time.monotonic() - t0
            if elapsed > 0.2:
                rate = max(0.0, (counts.done - d0) / elapsed)
            if rate > 0:
                eta = (row.total - counts.done) / rate
        progress = RunProgress(
            total=row.total,
            done=counts.done,
            errors=counts.errors,
            retries=counts.retries,
            correct=counts.correct,
            rate_per_s=rate,
            eta_s=eta,
        )
        return RunRecord(
            id=row.id,
            model=row.model,
            benchmark=row.benchmark,
            benchmark_id=row.benchmark_id,
            benchmark_digest=row.benchmark_digest,
            state=row.state,
            params=row.params,
            progress=progress,
            model_info=row.model_info,
            evaluator_version=row.evaluator_version,
            error_message=row.error_message,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )

    async def watch(self, run_id: str) -> AsyncIterator[RunRecord]:
        """The run's current state, then each change (at most ~4 per second).

        Ends once the run is final, or interrupted and not being driven here.

        Raises:
            NotFound: no such run.
        """
        last: RunRecord | None = None
        while True:
            rec = await asyncio.to_thread(self.get_run, run_id)
            if last is None or _changed(last, rec):
                yield rec
                last = rec
            if rec.state in FINAL_RUN_STATES or (
                rec.state == "interrupted" and run_id not in self._active
            ):
                return
            await asyncio.sleep(WATCH_INTERVAL_S)

    def is_closing(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closing


def _check_same_model(run_id: str, before: dict[str, object], now: dict[str, object]) -> None:
    """Refuse to resume a run against another model version or other weights.

    A run's answers must all come from the model its provenance names; a run resumed after
    a model upgrade would silently mix two models. Start a new run (and compare the two).

    Raises:
        PreflightFailed: the version or the weights digest differs from the recorded one.
    """
    for key in ("name", "version", "weights_digest"):
        old, new = before.get(key, ""), now.get(key, "")
        if old != new:
            raise PreflightFailed(
                f"run {run_id} was answered by {key} {old!r} and the model now reports {new!r};"
                " resuming would mix two models: start a new run and compare the two"
            )


def _changed(a: RunRecord, b: RunRecord) -> bool:
    pa, pb = a.progress, b.progress
    return (a.state, pa.done, pa.errors, pa.retries, pa.correct, a.error_message) != (
        b.state,
        pb.done,
        pb.errors,
        pb.retries,
        pb.correct,
        b.error_message,
    )

