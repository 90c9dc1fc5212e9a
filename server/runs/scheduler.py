"""Asks a run's pending questions to a model and records every attempt.

The scheduler composes store -> model client -> store for one run session:

* a loader task reads the pending questions with their images a window at a time (one
  query per window) into a bounded queue, so no call waits on a per-question read;
* ``concurrency`` worker coroutines take questions from the queue; an
  :class:`AdaptiveLimit` (AIMD: halve on RESOURCE_EXHAUSTED, +1 after ``limit`` successes,
  up to the configured maximum) gates how many calls are in flight;
* every call has a deadline; UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED are
  retried up to ``max_attempts`` with exponential backoff and full jitter;
* an UNAVAILABLE answer starts an :class:`Outage`: every new attempt waits until the
  model's health check reports SERVING again, so a model restart costs each in-flight
  question one attempt instead of burning through the pending list; once no endpoint has
  answered for the run's ``max_outage_s``, the session ends ``failed`` with the reason;
* every attempt is committed as it completes (``attempt_records`` builds it from the call's
  outcome; an :class:`AttemptWriter` groups those that arrive together into one write);
  the question's last attempt has ``final = 1``;
* a failure on one question is data; the session stops early only once the run cannot
  stay under ``max_error_fraction`` (or clearly exceeds it after enough questions).

Blinding: the wire carries an opaque, per-run question id, the question, its options, the
rendered prompt, the image and the run's model parameters; never the row index, answer or
taxonomy fields.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from gmai_eval.server.errors import ModelCallError, ModelOverloaded, ModelUnavailable
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import AttemptOutcome, RunParams
from gmai_eval.server.runs import attempt_records
from gmai_eval.server.runs.adaptive_limit import AdaptiveLimit
from gmai_eval.server.runs.attempt_writer import AttemptWriter
from gmai_eval.server.runs.contract import Limits, unsendable, validate_response
from gmai_eval.server.runs.model_client import ModelClient
from gmai_eval.server.runs.outage import Outage, OutageEvent
from gmai_eval.server.runs.requests import build_request, parameters_struct
from gmai_eval.server.store.attempts import Attempt
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.run_questions import PendingQuestion, RunItem, aload_items

log = logging.getLogger(__name__)

WINDOW = 64
"""Questions loaded per read; also the depth of the queue of loaded questions."""

EARLY_FAIL_MIN_DONE = 100
"""Questions that must be done before the error fraction can fail a run early."""


@dataclass(frozen=True)
class SessionResult:
    """How a scheduling session ended."""

    outcome: str
    """``completed`` (no pending question left), ``failed`` or ``stopped``."""
    message: str = ""
    """Why it failed."""
    cause: str = ""
    """What failed it: ``model_outage`` or ``errors``."""


class Scheduler:
    """Asks the pending questions of one run (one session; build a new one to resume).

    Args:
        db: the database.
        run_id: the run.
        benchmark_id: its benchmark.
        model: registered model name (metrics label).
        client: the model client.
        params: run parameters.
        limits: what the model advertised.
        total: questions in the run.
        done: questions already final when the session starts.
        errors: of those, questions whose final attempt is an error.
        metrics: operational metrics.
        on_answer: called after each final attempt is committed (progress, grading).
        backoff_base_s: first retry backoff ceiling (doubles per retry).
        backoff_max_s: backoff ceiling.
        endpoints: the model's endpoints (named when an outage fails the run).
        clock: monotonic seconds of the outage limit (tests pass their own).
        outage_log_every_s: how often a lasting outage is logged again.
        on_event: told when an outage starts and ends (``kind``, ``message``).
        probe_max_s: longest pause between two health checks during an outage.
    """

    def __init__(
        self,
        *,
        db: Database,
        run_id: str,
        benchmark_id: int,
        model: str,
        client: ModelClient,
        params: RunParams,
        limits: Limits,
        total: int,
        done: int,
        errors: int,
        metrics: EvaluatorMetrics | None = None,
        on_answer: Callable[[], None] | None = None,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
        endpoints: tuple[str, ...] = (),
        clock: Callable[[], float] = time.monotonic,
        outage_log_every_s: float = 60.0,
        on_event: OutageEvent | None = None,
        probe_max_s: float = 2.0,
    ) -> None:
        self.db = db
        self.run_id = run_id
        self.benchmark_id = benchmark_id
        self.model = model
        self.client = client
        self.params = params
        self.limits = limits
        self.total = total
        self.done = done
        self.errors = errors
        self.metrics = metrics
        self.on_answer = on_answer
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.probe_max_s = probe_max_s
        self.outage = Outage(
            run_id=run_id,
            model=model,
            endpoints=endpoints,
            max_outage_s=params.max_outage_s,
            clock=clock,
            log_every_s=outage_log_every_s,
            on_event=on_event,
        )
        """The model's reachability as this session sees it."""
        self._parameters = parameters_struct(params.model_parameters)
        self._open = asyncio.Event()
        self._open.set()
        self._probe_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failure = ""
        self._writer = AttemptWriter(db)
        gauge = metrics.concurrency_limit.labels(model) if metrics is not None else None
        self.limit = AdaptiveLimit(
            limits.max_concurrency or params.concurrency,
            limits.min_concurrency,
            on_change=gauge.set if gauge is not None else None,
        )

    def stop(self) -> None:
        """Stop taking new questions; in-flight ones finish (retries are not started)."""
        self._stopping = True
        self._open.set()

    def _unreachable(self, err: ModelCallError) -> None:
        """An attempt got UNAVAILABLE: pause new attempts until the model is healthy."""
        self.outage.unreachable(str(err))
        if self.outage.expired():
            self._give_up()
        elif self._open.is_set() and not self._finished_early:
            self._open.clear()
            self._probe_task = asyncio.create_task(self._probe())

    def _give_up(self) -> None:
        """The outage lasted the run's max_outage_s: the session ends failed."""
        if not self._failure:
            self._failure = self.outage.reason()
            log.error("run %s failed: %s", self.run_id, self._failure)
        self._open.set()

    async def _probe(self) -> None:
        delay = 0.05
        try:
            while not self._finished_early:
                if self.outage.expired():
                    self._give_up()
                    return
                await asyncio.sleep(min(delay, max(0.01, self.outage.remaining())))
                self.outage.tick()
                try:
                    found = await self.client.check_health()
                except Exception:  # a failed probe is just "not yet"
                    log.debug("health probe failed", exc_info=True)
                else:
                    if any(h.serving for h in found):
                        return
                    self.outage.unreachable("; ".join(f"{h.endpoint}: {h.status}" for h in found))
                delay = min(delay * 2, self.probe_max_s)
        finally:
            self._open.set()

    @property
    def _finished_early(self) -> bool:
        return self._stopping or bool(self._failure)

    async def run(self, pending: list[PendingQuestion]) -> SessionResult:
        """Ask every pending question; return how the session ended."""
        queue: asyncio.Queue[RunItem | None] = asyncio.Queue(maxsize=WINDOW)
        workers_n = max(1, min(self.limit.maximum, len(pending)))
        loader = asyncio.create_task(self._load(pending, queue, workers_n))
        workers = [asyncio.create_task(self._work(queue)) for _ in range(workers_n)]
        load_error: list[BaseException] = []

        def loaded(t: asyncio.Task[None]) -> None:
            # If reading fails, the workers would wait for questions forever: stop them.
            if not t.cancelled() and t.exception() is not None:
                load_error.append(t.exception())  # type: ignore[arg-type]
                for w in workers:
                    w.cancel()

        loader.add_done_callback(loaded)
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            if not load_error:
                raise
        finally:
            if self._probe_task is not None:
                self._probe_task.cancel()
            loader.cancel()
            for w in workers:
                w.cancel()
            await asyncio.gather(loader, *workers, return_exceptions=True)
        if load_error:
            raise load_error[0]
        if self._failure:
            cause = "model_outage" if self.outage.expired() else "errors"
            return SessionResult("failed", self._failure, cause)
        if self._stopping:
            return SessionResult("stopped")
        return SessionResult("completed")

    async def _load(
        self, pending: list[PendingQuestion], queue: asyncio.Queue[RunItem | None], n: int
    ) -> None:
        for start in range(0, len(pending), WINDOW):
            if self._finished_early:
                break
            chunk = pending[start : start + WINDOW]
            for item in await aload_items(self.db, self.run_id, self.benchmark_id, chunk):
                await queue.put(item)
        for _ in range(n):
            await queue.put(None)

    async def _work(self, queue: asyncio.Queue[RunItem | None]) -> None:
        while True:
            item = await queue.get()
            if item is None or self._finished_early:
                return
            await self._ask(item)

    async def _ask(self, item: RunItem) -> None:
        req = build_request(item, self._parameters)
        attempt = item.next_attempt
        req.request_id = f"{item.qid}-{attempt}"
        payload = req.SerializeToString()  # once: its length is the size checked and recorded
        size = len(payload)
        refused = unsendable(self.limits, item, size)
        if refused is not None:
            await self._record(attempt_records.unsent(self.run_id, item, attempt, refused, size))
            return
        deadline = self.params.deadline_s
        for n in range(self.params.max_attempts):
            if not self._open.is_set():
                await self._open.wait()
            if self._finished_early:
                return
            if n:  # a retry: a new request id, so serialized again
                req.request_id = f"{item.qid}-{attempt}"
                payload = req.SerializeToString()
            endpoint = ""
            err: ModelCallError | None = None
            await self.limit.acquire()
            start = time.perf_counter()
            try:
                resp, endpoint = await self.client.answer_from(req, deadline_s=deadline, payload=payload)
                validate_response(req, resp, endpoint, self.limits.model_version)
            except ModelCallError as exc:
                err = exc
            finally:
                self.limit.release()
            latency = time.perf_counter() - start
            if not isinstance(err, ModelUnavailable):
                self.outage.answered()  # any answer but UNAVAILABLE: the model is reachable
            if err is None:
                self.limit.on_success()
                await self._record(
                    attempt_records.answered(self.run_id, item, attempt, req, resp, endpoint, latency, size)
                )
                return
            if isinstance(err, ModelOverloaded):
                self.limit.on_overload()
            elif isinstance(err, ModelUnavailable):
                self._unreachable(err)
            last = n == self.params.max_attempts - 1
            retry = err.retryable and not last
            if retry and self._finished_early:
                # Shutting down: keep the question pending rather than give up on it.
                await self._record(attempt_records.failed(self.run_id, item, attempt, req, err, latency, size, False))
                return
            await self._record(attempt_records.failed(self.run_id, item, attempt, req, err, latency, size, not retry))
            if not retry:
                return
            if self.metrics is not None:
                self.metrics.retries.labels(self.model, err.code).inc()
            ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**n))
            # A model's RetryInfo is a floor under the jittered backoff, never a shortcut.
            await asyncio.sleep(max(err.retry_after_s, random.uniform(0, ceiling)))
            attempt += 1

    async def _record(self, attempt: Attempt) -> None:
        await self._writer.record(attempt)
        if not attempt.final:
            return
        self.done += 1
        if attempt.outcome == AttemptOutcome.ERROR:
            self.errors += 1
            self._check_errors()
        if self.on_answer is not None:
            self.on_answer()

    def _check_errors(self) -> None:
        allowed = self.params.max_error_fraction * self.total
        if self.errors > allowed:
            self._failure = (
                f"{self.errors} of {self.total} questions ended in error, more than"
                f" max_error_fraction {self.params.max_error_fraction:g} allows"
            )
        elif self.done >= EARLY_FAIL_MIN_DONE and self.errors > (
            self.params.max_error_fraction * self.done
        ) * 2:
            self._failure = (
                f"{self.errors} of the first {self.done} questions ended in error, twice"
                f" the max_error_fraction {self.params.max_error_fraction:g}"
            )
