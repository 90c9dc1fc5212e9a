"""A run's progress as callers see it: counts from the store, and rate and ETA while it runs.

:class:`Throughput` keeps recent ``(time, questions done)`` samples of a run being driven
here; :func:`run_record` joins a stored run, its counts and that rate into the
:class:`~gmai_eval.server.records.RunRecord` every reader gets; :func:`progress_changed`
tells a watcher whether a new record is worth sending. :func:`stored_record` and
:func:`run_report` read the same from the file alone (no rate, no sub-state): the run
manager and the CLI's ``--db`` path share them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gmai_eval.server.records import RunProgress, RunRecord, RunState
from gmai_eval.server.runs.outage import WAITING_FOR_MODEL, Outage, iso
from gmai_eval.server.store.attempts import Counts, run_counts
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.error_groups import ErrorGroup, error_groups
from gmai_eval.server.store.run_events import RunEvent, list_events
from gmai_eval.server.store.runs import RunRow

SAMPLE_EVERY_S = 0.5
"""Shortest time between two throughput samples."""

RATE_WINDOW_S = 10.0
"""The rate is measured over (about) the last this many seconds."""

MIN_ELAPSED_S = 0.2
"""No rate is given over a shorter time than this."""


@dataclass(frozen=True)
class RunReport:
    """A run with what explains it: its history, its errors and its retries."""

    run: RunRecord
    """The run, with its provenance and progress."""
    events: tuple[RunEvent, ...]
    """State history, oldest first."""
    errors: tuple[ErrorGroup, ...]
    """Final errors grouped by code and message, largest first."""
    retries: tuple[ErrorGroup, ...]
    """Retried attempts grouped by code and message, largest first."""


class Throughput:
    """Recent samples of a run's questions done; gives its current rate.

    Args:
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque(maxlen=64)

    def sample(self, done: int) -> bool:
        """Record ``done`` unless the last sample is under :data:`SAMPLE_EVERY_S` old.

        Returns:
            True if the sample was recorded.
        """
        now = self._clock()
        if self._samples and now - self._samples[-1][0] < SAMPLE_EVERY_S:
            return False
        self._samples.append((now, done))
        return True

    def rate(self, done: int) -> float:
        """Questions per second since the oldest sample of the last :data:`RATE_WINDOW_S`."""
        if not self._samples:
            return 0.0
        now = self._clock()
        t0, d0 = self._samples[0]
        for t, d in self._samples:
            if now - t <= RATE_WINDOW_S:
                t0, d0 = t, d
                break
        elapsed = now - t0
        if elapsed <= MIN_ELAPSED_S:
            return 0.0
        return max(0.0, (done - d0) / elapsed)


def run_record(
    row: RunRow, counts: Counts, rate: float = 0.0, outage: Outage | None = None
) -> RunRecord:
    """The record of a run: its stored row, its counts, and, if it is being driven here,
    its rate and whether it waits for its model (``outage``)."""
    waiting = outage is not None and outage.waiting and row.state == RunState.RUNNING
    if waiting:
        rate = 0.0  # nothing moves while the model is away: no ETA
    eta = (row.total - counts.done) / rate if rate > 0 else 0.0
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
        sub_state=WAITING_FOR_MODEL if waiting else "",
        waiting_since=iso(outage.since_wall) if waiting and outage is not None else "",
        waiting_reason=outage.last_error if waiting and outage is not None else "",
    )


def progress_changed(a: RunRecord, b: RunRecord) -> bool:
    """True if ``b`` differs from ``a`` in state, sub-state, counts or message (not in rate
    or ETA)."""
    pa, pb = a.progress, b.progress
    return (a.state, a.sub_state, pa.done, pa.errors, pa.retries, pa.correct, a.error_message) != (
        b.state,
        b.sub_state,
        pb.done,
        pb.errors,
        pb.retries,
        pb.correct,
        b.error_message,
    )


def stored_record(db: Database, row: RunRow) -> RunRecord:
    """The record of a run from the file alone: what :func:`run_record` gives a run not driven here."""
    return run_record(row, run_counts(db, row.id, row.params.extraction_era))


def run_report(db: Database, run: RunRecord) -> RunReport:
    """``run`` with its history and its errors and retries grouped, read from ``db``."""
    return RunReport(
        run=run,
        events=tuple(list_events(db, run.id)),
        errors=tuple(error_groups(db, run.id, final=True)),
        retries=tuple(error_groups(db, run.id, final=False)),
    )
