"""One run being driven: its scheduler session, its grading, and the state it ends in.

A :class:`RunSession` is the background task that asks a run's pending questions through
a :class:`~gmai_eval.server.runs.scheduler.Scheduler`, hands newly final answers to the
grader about once a second, grades once more at the end, and records ``succeeded`` or
``failed``. A session that is stopped (shutdown) leaves the run's state to the manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from gmai_eval.server.errors import StoreFull
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import RunState
from gmai_eval.server.runs.contract import Limits
from gmai_eval.server.runs.model_client import ModelClient
from gmai_eval.server.runs.progress import Throughput
from gmai_eval.server.runs.run_log import note, note_soon, retries_summary
from gmai_eval.server.runs.scheduler import Scheduler
from gmai_eval.server.store import runs as store
from gmai_eval.server.store.attempts import arun_counts
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.error_groups import error_groups
from gmai_eval.server.store.run_questions import apending_questions

log = logging.getLogger(__name__)

GRADE_INTERVAL_S = 1.0
"""How often newly final answers are handed to the grader while a run is going."""

Grader = Callable[[str], Awaitable[None]]
"""Grades the newly final answers of a run (by id)."""


async def grade(grader: Grader | None, run_id: str) -> None:
    """Run ``grader`` on a run; a failure is logged and the answers are kept."""
    if grader is None:
        return
    try:
        await grader(run_id)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("grading run %s failed; answers are kept", run_id)


class RunSession:
    """Drives one run in a background task, created at once (call inside a running loop).

    Args:
        db: the database.
        row: the run, in state ``running``.
        client: its model client (closed when the session ends).
        limits: what the model advertised.
        metrics: operational metrics.
        grader: grades newly final answers while the run goes.
        final_grader: grades once before the run reaches its final state.
        backoff_base_s: first retry backoff ceiling of the scheduler.
        on_exit: called with the session once its task is over.
    """

    def __init__(
        self,
        *,
        db: Database,
        row: store.RunRow,
        client: ModelClient,
        limits: Limits,
        metrics: EvaluatorMetrics,
        grader: Grader | None,
        final_grader: Grader | None,
        backoff_base_s: float,
        on_exit: Callable[[RunSession], None],
    ) -> None:
        self.db = db
        self.row = row
        self.client = client
        self.limits = limits
        self.metrics = metrics
        self.grader = grader
        self.final_grader = final_grader
        self.backoff_base_s = backoff_base_s
        self.scheduler: Scheduler | None = None
        """The scheduler, once the session has read what is pending."""
        self.throughput = Throughput()
        """Samples of questions done, for the rate and ETA."""
        self._dirty = False
        self._waiting = False
        self._on_exit = on_exit
        self.unsaved_stop: tuple[RunState, str] | None = None
        """How the run stopped when the store could not record it (a full disk)."""
        self.task = asyncio.create_task(self._drive(), name=f"run {row.id}")
        """The driving task."""

    def stop(self) -> None:
        """Stop taking new questions; in-flight ones finish."""
        if self.scheduler is not None:
            self.scheduler.stop()

    async def _drive(self) -> None:
        row = self.row
        grading: asyncio.Task[None] | None = None
        started = time.monotonic()
        try:
            counts = await arun_counts(self.db, row.id, row.params.extraction_era)
            pending = await apending_questions(self.db, row.id)
            self.throughput.sample(counts.done)
            progress = self.metrics.run_progress.labels(row.model, row.benchmark)
            progress.set(counts.done / row.total if row.total else 1.0)

            def on_answer() -> None:
                self._dirty = True
                sched = self.scheduler
                if sched is not None and self.throughput.sample(sched.done):
                    progress.set(sched.done / row.total if row.total else 1.0)

            sched = Scheduler(
                db=self.db,
                run_id=row.id,
                benchmark_id=row.benchmark_id,
                model=row.model,
                client=self.client,
                params=row.params,
                limits=self.limits,
                total=row.total,
                done=counts.done,
                errors=counts.errors,
                metrics=self.metrics,
                on_answer=on_answer,
                backoff_base_s=self.backoff_base_s,
                endpoints=row.model_spec.endpoints,
                on_event=self._outage_event,
            )
            self.scheduler = sched
            if self.grader is not None:
                grading = asyncio.create_task(self._grade_loop())
            result = await sched.run(pending)
            if grading is not None:
                grading.cancel()
                await asyncio.gather(grading, return_exceptions=True)
                grading = None
            if result.outcome == "stopped":
                return
            await grade(self.final_grader, row.id)
            if result.outcome == "completed" and sched.errors > (
                row.params.max_error_fraction * row.total
            ):
                result = replace(
                    result,
                    outcome="failed",
                    cause="errors",
                    message=(
                        f"{sched.errors} of {row.total} questions ended in error, more than"
                        f" max_error_fraction {row.params.max_error_fraction:g} allows"
                    ),
                )
            state = RunState.SUCCEEDED if result.outcome == "completed" else RunState.FAILED
            changed = await store.aset_run_state(
                self.db,
                row.id,
                state,
                error_message=result.message,
                finished=True,
                only_from=(RunState.RUNNING,),
            )
            if changed:
                self.metrics.runs.labels(state).inc()
                if result.cause:
                    self.metrics.run_failures.labels(result.cause).inc()
                self.metrics.run_duration.labels(row.benchmark).observe(
                    time.monotonic() - started
                )
                await self._ended(state, result.message)
            progress.set(sched.done / row.total if row.total else 1.0)
        except asyncio.CancelledError:
            raise
        except StoreFull as exc:
            # Not the run's fault: stop here, keep every committed answer, and resume at the
            # next start (the state write itself may fail on a full disk: the run then stays
            # "running" in the file, which the next start resumes just the same, and the
            # manager reports it interrupted from ``unsaved_stop`` meanwhile).
            log.error("run %s interrupted: %s", row.id, exc)
            self.unsaved_stop = (RunState.INTERRUPTED, str(exc))
            with contextlib.suppress(Exception):
                changed = await store.aset_run_state(
                    self.db, row.id, RunState.INTERRUPTED, error_message=str(exc),
                    only_from=(RunState.RUNNING,),
                )
                if changed:
                    self.unsaved_stop = None
                    self.metrics.runs.labels("interrupted").inc()
                    await note(
                        self.db, row.id, "interrupted", f"{exc}; resumes at the next start",
                        level=logging.ERROR,
                    )
        except Exception as exc:
            log.exception("run %s failed", row.id)
            with contextlib.suppress(Exception):
                await grade(self.final_grader, row.id)
                await store.aset_run_state(
                    self.db,
                    row.id,
                    RunState.FAILED,
                    error_message=f"internal error: {type(exc).__name__}: {exc}",
                    finished=True,
                    only_from=(RunState.RUNNING,),
                )
                self.metrics.runs.labels("failed").inc()
                self.metrics.run_failures.labels("internal").inc()
        finally:
            if self._waiting:
                self._waiting = False
                self.metrics.waiting_for_model.labels(row.model).dec()
            if grading is not None:
                grading.cancel()
                await asyncio.gather(grading, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.client.close()
            self._on_exit(self)

    def _outage_event(self, kind: str, message: str) -> None:
        """An outage of the model started or ended: the waiting gauge follows."""
        note_soon(self.db, self.row.id, kind, message, level=logging.WARNING)
        waiting = kind == "outage_started"
        if waiting != self._waiting:
            self._waiting = waiting
            gauge = self.metrics.waiting_for_model.labels(self.row.model)
            if waiting:
                gauge.inc()
            else:
                gauge.dec()

    async def _ended(self, state: str, reason: str) -> None:
        """Log and store the end of the run with its counts and its retries."""
        row = self.row
        counts = await arun_counts(self.db, row.id, row.params.extraction_era)
        groups = await asyncio.to_thread(error_groups, self.db, row.id, final=False)
        message = (
            f"{counts.done}/{row.total} done, {counts.errors} in error,"
            f" {retries_summary(groups)}" + (f"; {reason}" if reason else "")
        )
        level = logging.INFO if state == RunState.SUCCEEDED else logging.WARNING
        await note(self.db, row.id, str(state), message, level=level)

    async def _grade_loop(self) -> None:
        while True:
            await asyncio.sleep(GRADE_INTERVAL_S)
            if self._dirty:
                self._dirty = False
                await grade(self.grader, self.row.id)
