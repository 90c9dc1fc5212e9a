"""The run manager: creates, drives, resumes, cancels and reports evaluation runs.

A run is created with a pre-flight handshake (health SERVING, GetModelInfo, one smoke
question), its question list is frozen in ``run_questions``, and a :class:`~gmai_eval.server.runs.session.RunSession` drives a scheduler over the pending
questions in the background. Progress, rate and ETA are assembled in :mod:`.progress`.

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
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from gmai_eval.server.errors import RunStateError, ShuttingDown
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import (
    FINAL_RUN_STATES,
    RESUMABLE_RUN_STATES,
    ModelSpec,
    RunParams,
    RunRecord,
    RunState,
)
from gmai_eval.server.runs.contract import Limits, limits_from_dict, run_concurrency
from gmai_eval.server.runs.creation import (
    handshake_line,
    new_run_row,
    provenance_line,
    restart_spec,
    run_asks,
    run_for_request,
    select_questions,
)
from gmai_eval.server.runs.model_check import ModelCheck, check_model
from gmai_eval.server.runs.model_client import GrpcModelClient, ModelClient
from gmai_eval.server.runs.preflight import (
    check_same_model,
    normalize_params,
    preflight,
)
from gmai_eval.server.runs.progress import RunReport, progress_changed, run_record, run_report
from gmai_eval.server.runs.run_log import note
from gmai_eval.server.runs.session import Grader, RunSession, grade
from gmai_eval.server.store import runs as store
from gmai_eval.server.store.attempts import run_counts
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.models import get_model
from gmai_eval.server.store.run_questions import apending_questions, run_question_indexes
from google.protobuf import json_format

log = logging.getLogger(__name__)

WATCH_INTERVAL_S = 0.25
"""Watchers see at most four updates per second."""


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
        grader: Grader | None = None,
        final_grader: Grader | None = None,
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
        self._active: dict[str, RunSession] = {}
        self._closing = False
        self._create_locks: dict[str, asyncio.Lock] = {}
        self._finishing: set[str] = set()
        self._unsaved: dict[str, tuple[RunState, str]] = {}  # stops a full disk kept out of the file

    # -- life cycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Resume every run left ``running`` (process killed) or ``interrupted`` (shutdown)."""
        for run_id in store.run_ids_in_states(self.db, (RunState.RUNNING, RunState.INTERRUPTED)):
            if run_id in self._active:
                continue
            row = store.get_run(self.db, run_id)
            spec = restart_spec(self.db, row)
            await store.aset_run_state(self.db, run_id, RunState.RUNNING, started=True)
            limits = limits_from_dict(row.model_info, row.params.concurrency)
            await note(
                self.db, run_id, "resumed",
                f"at start-up, from {row.state}: {row.model} on {row.benchmark}",
            )
            self._launch(replace(row, model_spec=spec), self._factory(spec), limits)

    async def shutdown(self, grace_s: float = 5.0, *, mark_interrupted: bool = True) -> None:
        """Stop scheduling, let in-flight calls finish for up to ``grace_s``, then stop.

        Args:
            grace_s: seconds to wait for in-flight calls.
            mark_interrupted: mark the runs that were going ``interrupted`` (False leaves
                them ``running``, exactly as a killed process would).
        """
        self._closing = True
        active = dict(self._active)
        for session in active.values():
            session.stop()
        tasks = [session.task for session in active.values()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(0.0, grace_s))
            for t in pending:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if mark_interrupted:
            for run_id in active:
                changed = await store.aset_run_state(
                    self.db, run_id, RunState.INTERRUPTED, only_from=(RunState.RUNNING,)
                )
                if changed:
                    self.metrics.runs.labels("interrupted").inc()
                    await note(self.db, run_id, "interrupted", "the evaluator shut down; resumes at its next start")

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
                existing = await asyncio.to_thread(run_for_request, self.db, request_id, model, benchmark, params)
                if existing is not None:
                    return await asyncio.to_thread(self.get_run, existing)
            spec, bench, indexes = await asyncio.to_thread(
                select_questions, self.db, model, benchmark, params
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
                params = replace(
                    params, concurrency=run_concurrency(params.concurrency, info.max_concurrency)
                )
                info_dict = json_format.MessageToDict(info, preserving_proto_field_name=True)
                questions = await asyncio.to_thread(run_asks, self.db, bench.id, indexes, salt, params.circular)
                row = new_run_row(run_id, spec, bench, params, info_dict, request_id, salt, len(questions))
                await asyncio.to_thread(store.insert_run, self.db, row, questions)
            except BaseException:
                await client.close()
                raise
        self.metrics.runs.labels("started").inc()
        await note(self.db, run_id, "created", provenance_line(row))
        await note(self.db, run_id, "preflight_passed", handshake_line(info_dict))
        self._launch(row, client, Limits.from_info(info, params.concurrency))
        return await asyncio.to_thread(self.get_run, run_id)

    # -- driving --------------------------------------------------------------------------

    def _launch(self, row: store.RunRow, client: ModelClient, limits: Limits) -> None:
        self._unsaved.pop(row.id, None)
        self._active[row.id] = RunSession(
            db=self.db,
            row=row,
            client=client,
            limits=limits,
            metrics=self.metrics,
            grader=self._grader,
            final_grader=self._final_grader,
            backoff_base_s=self._backoff_base_s,
            on_exit=self._ended,
        )
        self.metrics.active_runs.set(len(self._active))

    def _ended(self, session: RunSession) -> None:
        if self._active.get(session.row.id) is session:
            del self._active[session.row.id]
            if session.unsaved_stop is not None:
                self._unsaved[session.row.id] = session.unsaved_stop
        self.metrics.active_runs.set(len(self._active))

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
            RunState.CANCELLED,
            finished=True,
            only_from=(RunState.QUEUED, RunState.RUNNING, RunState.INTERRUPTED),
        )
        if not changed:
            now = await asyncio.to_thread(store.get_run, self.db, run_id)
            raise RunStateError(f"run {run_id} is already {now.state}")
        self._finishing.add(run_id)
        try:
            self.metrics.runs.labels("cancelled").inc()
            await note(self.db, run_id, "cancelled", f"cancelled from {row.state}")
            session = self._active.get(run_id)
            if session is not None:
                session.task.cancel()
                await asyncio.gather(session.task, return_exceptions=True)
            await grade(self._final_grader, run_id)  # the answers kept are graded like those of a finished run
        finally:
            self._finishing.discard(run_id)
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
        if row.state not in RESUMABLE_RUN_STATES or run_id in self._active:
            what = "still running" if row.state == RunState.RUNNING else f"already {row.state}"
            raise RunStateError(f"run {run_id} is {what}; only {', '.join(RESUMABLE_RUN_STATES)} runs resume")
        spec = await asyncio.to_thread(restart_spec, self.db, row)
        pending = await apending_questions(self.db, run_id)
        first = pending[0].idx if pending else None
        client = self._factory(spec)
        try:
            if first is None:
                first_all = await asyncio.to_thread(run_question_indexes, self.db, run_id)
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
            check_same_model(run_id, row.model_info, info_dict)
            await store.aset_model_info(self.db, run_id, info_dict)
            changed = await store.aset_run_state(
                self.db, run_id, RunState.RUNNING, error_message="", started=True,
                only_from=RESUMABLE_RUN_STATES,
            )
            if not changed:
                raise RunStateError(f"run {run_id} changed state during the resume")
        except BaseException:
            await client.close()
            raise
        self.metrics.runs.labels("started").inc()
        row = replace(row, model_info=info_dict, state=RunState.RUNNING, model_spec=spec)
        await note(self.db, run_id, "preflight_passed", handshake_line(info_dict))
        await note(self.db, run_id, "resumed", f"resumed from {row.state}")
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
        counts = run_counts(self.db, row.id, row.params.extraction_era)
        session = self._active.get(row.id)
        if row.state == RunState.RUNNING and session is None and row.id in self._unsaved:
            state, message = self._unsaved[row.id]
            row = replace(row, state=state, error_message=message)
        rate = 0.0
        outage = None
        if session is not None and session.scheduler is not None:
            rate = session.throughput.rate(counts.done)
            outage = session.scheduler.outage
        return run_record(row, counts, rate, outage)

    async def watch(self, run_id: str) -> AsyncIterator[RunRecord]:
        """The run's current state, then each change (at most ~4 per second).

        Ends once the run is final, or interrupted and not being driven here.

        Raises:
            NotFound: no such run.
        """
        last: RunRecord | None = None
        while True:
            rec = await asyncio.to_thread(self.get_run, run_id)
            if last is None or progress_changed(last, rec):
                yield rec
                last = rec
            if rec.state in FINAL_RUN_STATES or (
                rec.state == RunState.INTERRUPTED and run_id not in self._active
            ):
                return
            await asyncio.sleep(WATCH_INTERVAL_S)

    def get_report(self, run_id: str) -> RunReport:
        """The run with its history and its errors and retries grouped.

        Raises:
            NotFound: no such run.
        """
        return run_report(self.db, self.get_run(run_id))

    async def check_model(self, name: str, benchmark: str = "") -> ModelCheck:
        """Run the pre-flight handshake against registered model ``name``; report each step.

        Raises:
            NotFound: no such model or benchmark.
        """
        spec = await asyncio.to_thread(get_model, self.db, name)
        client = self._factory(spec)
        try:
            return await check_model(self.db, client, spec, benchmark)
        finally:
            await client.close()

    def is_driving(self, run_id: str) -> bool:
        """True while a session of ``run_id`` is being driven here (its task not over)."""
        session = self._active.get(run_id)
        return session is not None and not session.task.done()

    def in_use(self, run_id: str) -> bool:
        """True while ``run_id`` is driven here or still being finished (a cancel grading it)."""
        return self.is_driving(run_id) or run_id in self._finishing

    def is_closing(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._closing
