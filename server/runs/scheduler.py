"""Asks a run's pending questions to a model and records every attempt.

The scheduler composes store -> model client -> store for one run session:

* a loader task reads the pending questions with their images a window at a time (one
  query per window) into a bounded queue, so no call waits on a per-question read;
* ``concurrency`` worker coroutines take questions from the queue; an
  :class:`AdaptiveLimit` (AIMD: halve on RESOURCE_EXHAUSTED, +1 after ``limit`` successes,
  up to the configured maximum) gates how many calls are in flight;
* every call has a deadline; UNAVAILABLE, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED are
  retried up to ``max_attempts`` with exponential backoff and full jitter;
* an UNAVAILABLE answer pauses every new attempt until the model's health check reports
  SERVING again (at most ``outage_timeout_s``), so a model restart costs each in-flight
  question one attempt instead of burning through the pending list;
* every attempt is committed as it completes (one ``awrite`` each; the writer thread
  groups concurrent commits); the question's last attempt has ``final = 1``;
* a failure on one question is data; the session stops early only once the run cannot
  stay under ``max_error_fraction`` (or clearly exceeds it after enough questions).

Blinding: the wire carries an opaque, per-run question id, the question, its options, the
rendered prompt, the image and the run's model parameters; never the row index, answer or
taxonomy fields.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from gmai_eval.model.v1 import model_pb2
from gmai_eval.server.errors import (
    ModelCallError,
    ModelOverloaded,
    ModelProtocolError,
    ModelUnavailable,
)
from gmai_eval.server.metrics.operational import EvaluatorMetrics
from gmai_eval.server.records import RunParams
from gmai_eval.server.runs.model_client import ModelClient
from gmai_eval.server.runs.requests import build_request, parameters_struct
from gmai_eval.server.store.attempts import arecord_attempt
from gmai_eval.server.store.database import Database
from gmai_eval.server.store.runs import (
    Attempt,
    PendingQuestion,
    RunItem,
    aload_items,
)

log = logging.getLogger(__name__)

WINDOW = 64
"""Questions loaded per read; also the depth of the queue of loaded questions."""

DEFAULT_MEDIA_TYPES = ("image/png", "image/jpeg")
"""What a model accepts when it advertises no media types."""

EARLY_FAIL_MIN_DONE = 100
"""Questions that must be done before the error fraction can fail a run early."""

_STATUS_NAMES = {
    model_pb2.ANSWER_STATUS_UNSPECIFIED: "answered",
    model_pb2.ANSWER_STATUS_ANSWERED: "answered",
    model_pb2.ANSWER_STATUS_ABSTAINED: "abstained",
    model_pb2.ANSWER_STATUS_REFUSED: "refused",
    model_pb2.ANSWER_STATUS_INPUT_UNSUPPORTED: "input_unsupported",
}


def opaque_question_id(salt: str, idx: int | str) -> str:
    """The id of question ``idx`` on the wire: ``q-`` + 16 hex of HMAC-SHA256(salt, str(idx))."""
    mac = hmac.new(salt.encode(), str(idx).encode(), hashlib.sha256).hexdigest()
    return "q-" + mac[:16]


@dataclass(frozen=True)
class Limits:
    """What the model advertised in GetModelInfo (0 = no limit)."""

    max_image_bytes: int = 0
    """Largest single image."""
    max_request_bytes: int = 0
    """Largest serialized request."""
    min_concurrency: int = 1
    """Floor of the adaptive limit (the model's preferred batch size)."""
    max_concurrency: int = 0
    """Ceiling the model advises (0 = the run's ``concurrency``)."""
    media_types: tuple[str, ...] = ()
    """Image media types the model accepts (empty = PNG and JPEG)."""
    model_version: str = ""
    """The version the run's pre-flight recorded; answers stamped with another version are
    refused, so a model upgraded under a running (or resumed) run never mixes into it."""

    @staticmethod
    def from_info(info: model_pb2.GetModelInfoResponse, concurrency: int) -> Limits:
        """Limits from a GetModelInfo answer, for a run of ``concurrency``."""
        return Limits.from_values(
            int(info.max_image_bytes),
            int(info.max_request_bytes),
            int(info.preferred_batch_size),
            int(info.max_concurrency),
            concurrency,
            media_types=tuple(info.supported_media_types),
            model_version=info.version,
        )

    @staticmethod
    def from_values(
        max_image: int,
        max_request: int,
        preferred_batch: int,
        max_conc: int,
        concurrency: int,
        *,
        media_types: tuple[str, ...] = (),
        model_version: str = "",
    ) -> Limits:
        """Limits from advertised values (0 = none) for a run of ``concurrency``."""
        ceiling = min(concurrency, max_conc) if max_conc > 0 else concurrency
        floor = max(1, min(preferred_batch or 1, ceiling))
        return Limits(max_image, max_request, floor, ceiling, media_types, model_version)


class AdaptiveLimit:
    """An AIMD concurrency limit for asyncio tasks.

    Args:
        maximum: the configured ceiling (and starting value).
        minimum: the floor.
        on_change: called with the new limit whenever it changes.
    """

    def __init__(
        self, maximum: int, minimum: int = 1, on_change: Callable[[int], None] | None = None
    ) -> None:
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.limit = self.maximum
        self.inflight = 0
        self._successes = 0
        self._last_cut = -math.inf
        self._waiters: list[asyncio.Future[None]] = []
        self._on_change = on_change
        if on_change is not None:
            on_change(self.limit)

    async def acquire(self) -> None:
        """Wait for a slot."""
        if self.inflight < self.limit and not self._waiters:
            self.inflight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()
            elif fut in self._waiters:
                self._waiters.remove(fut)
            raise

    def release(self) -> None:
        """Give a slot back."""
        self.inflight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.inflight < self.limit:
            fut = self._waiters.pop(0)
            if not fut.done():
                self.inflight += 1
                fut.set_result(None)

    def on_success(self) -> None:
        """Additive increase: +1 after ``limit`` successes in a row."""
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self._set(self.limit + 1)

    def on_overload(self) -> None:
        """Multiplicative decrease: halve (at most once per 200 ms of overload signals)."""
        now = time.monotonic()
        self._successes = 0
        if now - self._last_cut < 0.2:
            return
        self._last_cut = now
        self._set(max(self.minimum, self.limit // 2))

    def _set(self, value: int) -> None:
        if value != self.limit:
            self.limit = value
            if self._on_change is not None:
                self._on_change(value)
            self._wake()


def validate_response(
    req: model_pb2.AnswerVQARequest,
    resp: model_pb2.AnswerVQAResponse,
    endpoint: str,
    expected_version: str = "",
) -> None:
    """Check a response against the protocol.

    Args:
        req: the request sent.
        resp: the model's response.
        endpoint: the replica that answered, for the error.
        expected_version: the model version the run recorded; a response stamped with
            another version is refused (an unstamped one is accepted).

    Raises:
        ModelProtocolError: wrong question id, another model version, a label or scored
            label not among the request's options, or a probability outside [0, 1].
    """
    if resp.question_id != req.question_id:
        raise ModelProtocolError(
            f"response question_id {resp.question_id!r} does not echo {req.question_id!r}",
            code="PROTOCOL_ERROR",
            endpoint=endpoint,
        )
    if expected_version and resp.model_version and resp.model_version != expected_version:
        raise ModelProtocolError(
            f"answered by model version {resp.model_version!r}, but the run records"
            f" {expected_version!r}: the model changed under the run",
            code="MODEL_VERSION_CHANGED",
            endpoint=endpoint,
        )
    labels = {o.label for o in req.options}
    for lab in resp.selected_labels:
        if lab not in labels:
            raise ModelProtocolError(
                f"selected label {lab!r} is not one of the options {sorted(labels)}",
                code="PROTOCOL_ERROR",
                endpoint=endpoint,
            )
    for score in resp.option_scores:
        if score.label not in labels:
            raise ModelProtocolError(
                f"option_scores label {score.label!r} is not one of the options {sorted(labels)}",
                code="PROTOCOL_ERROR",
                endpoint=endpoint,
            )
        if not 0.0 <= score.probability <= 1.0:
            raise ModelProtocolError(
                f"option_scores probability {score.probability!r} for {score.label!r}"
                " is outside [0, 1]",
                code="PROTOCOL_ERROR",
                endpoint=endpoint,
            )


def unsendable(lim: Limits, item: RunItem, size: int) -> tuple[str, str] | None:
    """``(code, reason)`` when the model's advertised limits exclude this request.

    Args:
        lim: what the model advertised.
        item: the question (its image type and size).
        size: the serialized request size.
    """
    accepted = lim.media_types or DEFAULT_MEDIA_TYPES
    if item.media_type not in accepted:
        return "MEDIA_TYPE_UNSUPPORTED", (
            f"image {item.image_sha256[:12]} is {item.media_type}; the model accepts"
            f" {', '.join(accepted)}; not sent"
        )
    if lim.max_image_bytes and len(item.image) > lim.max_image_bytes:
        return "INPUT_TOO_LARGE", (
            f"image {item.image_sha256[:12]} is {len(item.image)} bytes, over the model's"
            f" max_image_bytes {lim.max_image_bytes}; not sent"
        )
    if lim.max_request_bytes and size > lim.max_request_bytes:
        return "INPUT_TOO_LARGE", (
            f"request is {size} bytes, over the model's max_request_bytes"
            f" {lim.max_request_bytes}; not sent"
        )
    return None


@dataclass(frozen=True)
class SessionResult:
    """How a scheduling session ended."""

    outcome: str
    """``completed`` (no pending question left), ``failed`` or ``stopped``."""
    message: str = ""
    """Why it failed."""


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
        outage_timeout_s: longest pause of an outage before attempts resume regardless.
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
        outage_timeout_s: float = 600.0,
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
        self.outage_timeout_s = outage_timeout_s
        self._parameters = parameters_struct(params.model_parameters)
        self._open = asyncio.Event()
        self._open.set()
        self._probe_task: asyncio.Task[None] | None = None
        self._stopping = False
        self._failure = ""
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

    def _outage(self) -> None:
        """An attempt got UNAVAILABLE: pause new attempts until the model is healthy."""
        if self._open.is_set() and not self._stopping:
            self._open.clear()
            self._probe_task = asyncio.create_task(self._probe())

    async def _probe(self) -> None:
        start = time.monotonic()
        delay = 0.05
        try:
            while not self._stopping and time.monotonic() - start < self.outage_timeout_s:
                await asyncio.sleep(delay)
                try:
                    if await self.client.health():
                        break
                except Exception:  # a failed probe is just "not yet"
                    log.debug("health probe failed", exc_info=True)
                delay = min(delay * 2, 2.0)
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
            return SessionResult("failed", self._failure)
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
        size = req.ByteSize()
        refused = unsendable(self.limits, item, size)
        attempt = item.next_attempt
        if refused is not None:
            await self._record(
                Attempt(
                    run_id=self.run_id,
                    idx=item.idx,
                    attempt=attempt,
                    request_id="",
                    outcome="error",
                    final=True,
                    code=refused[0],
                    error=refused[1],
                    request_bytes=size,
                )
            )
            return
        deadline = self.params.deadline_s
        for n in range(self.params.max_attempts):
            if not self._open.is_set():
                await self._open.wait()
            if self._stopping:
                return
            req.request_id = f"{item.qid}-{attempt}"
            endpoint = ""
            err: ModelCallError | None = None
            await self.limit.acquire()
            start = time.perf_counter()
            try:
                resp, endpoint = await self.client.answer_from(req, deadline_s=deadline)
                validate_response(req, resp, endpoint, self.limits.model_version)
            except ModelCallError as exc:
                err = exc
            finally:
                self.limit.release()
            latency = time.perf_counter() - start
            if err is None:
                self.limit.on_success()
                await self._record(
                    Attempt(
                        run_id=self.run_id,
                        idx=item.idx,
                        attempt=attempt,
                        request_id=req.request_id,
                        outcome="answered",
                        final=True,
                        status=_STATUS_NAMES.get(resp.status, "answered"),
                        labels=tuple(resp.selected_labels),
                        text=resp.text,
                        option_scores={s.label: s.probability for s in resp.option_scores},
                        model_version=resp.model_version,
                        endpoint=endpoint,
                        latency_s=latency,
                        request_bytes=size,
                    )
                )
                return
            if isinstance(err, ModelOverloaded):
                self.limit.on_overload()
            elif isinstance(err, ModelUnavailable):
                self._outage()
            last = n == self.params.max_attempts - 1
            retry = err.retryable and not last
            if retry and self._stopping:
                # Shutting down: keep the question pending rather than give up on it.
                await self._record(self._error(item, attempt, req, err, latency, size, False))
                return
            await self._record(self._error(item, attempt, req, err, latency, size, not retry))
            if not retry:
                return
            if self.metrics is not None:
                self.metrics.retries.labels(self.model, err.code).inc()
            ceiling = min(self.backoff_max_s, self.backoff_base_s * (2**n))
            await asyncio.sleep(random.uniform(0, ceiling))
            attempt += 1

    def _error(
        self,
        item: RunItem,
        attempt: int,
        req: model_pb2.AnswerVQARequest,
        err: ModelCallError,
        latency: float,
        size: int,
        final: bool,
    ) -> Attempt:
        return Attempt(
            run_id=self.run_id,
            idx=item.idx,
            attempt=attempt,
            request_id=req.request_id,
            outcome="error",
            final=final,
            code=err.code,
            error=str(err),
            endpoint=err.endpoint,
            latency_s=latency,
            request_bytes=size,
        )

    async def _record(self, attempt: Attempt) -> None:
        await arecord_attempt(self.db, attempt)
        if not attempt.final:
            return
        self.done += 1
        if attempt.outcome == "error":
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
