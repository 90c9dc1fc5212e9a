"""Dynamic batching, in the manner of Triton's dynamic batcher.

Requests wait in one bounded queue. A scheduler coroutine forms a batch as soon as a
worker slot is free: it takes the oldest request, then waits until either
``max_batch_size`` requests are queued or the oldest has waited ``max_queue_delay``, and
runs the batch function in the worker executor (never on the event loop). Each answer
goes back to the future of the request that asked it. While a batch runs, new requests
queue up and form the next batch, so under load batches fill without any delay.

With ``max_batch_size=1`` and no delay the same path serves one request at a time.
A full queue raises :class:`~gmai_eval.clients.sdk.errors.Overloaded` at once
(``RESOURCE_EXHAUSTED``), which tells the evaluator to back off. It carries a retry delay
(:func:`retry_delay_s`): the time the queue takes to drain at the recent batch rate.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from .errors import InvalidAnswer, NotReady, Overloaded
from .model import Answer, Question

RETRY_DELAY_MIN_S = 0.05
"""Shortest retry delay a full queue advertises."""
RETRY_DELAY_MAX_S = 5.0
"""Longest retry delay a full queue advertises."""
RETRY_DELAY_UNKNOWN_S = 1.0
"""Retry delay advertised before any batch has finished (no rate known yet)."""
RATE_WINDOW = 16
"""Batches the recent rate is measured over."""


def retry_delay_s(queued: int, recent: Iterable[tuple[int, float]], concurrency: int) -> float:
    """How long a refused caller should wait: the time to drain the queue at the recent rate.

    The rate is the questions answered per compute second over the recent batches, times
    the batches that run at once: ``delay = queued / (concurrency * sum(sizes) /
    sum(seconds))``, clamped to [``RETRY_DELAY_MIN_S``, ``RETRY_DELAY_MAX_S``].

    Args:
        queued: Requests waiting.
        recent: ``(batch size, compute seconds)`` of the recent successful batches.
        concurrency: Batches running at once.

    Returns:
        Seconds; ``RETRY_DELAY_UNKNOWN_S`` when no batch has finished yet.
    """
    batches = list(recent)
    if not batches:
        return RETRY_DELAY_UNKNOWN_S
    questions = sum(size for size, _ in batches)
    seconds = sum(compute for _, compute in batches)
    delay = queued * seconds / (concurrency * questions)
    return min(max(delay, RETRY_DELAY_MIN_S), RETRY_DELAY_MAX_S)


@dataclass(frozen=True)
class BatchTiming:
    """How one request was served."""

    queue_seconds: float
    """Seconds between arrival and the start of its batch."""
    compute_seconds: float
    """Seconds the batch function took for the batch that held it."""
    batch_size: int
    """Size of that batch."""


class BatchObserver(Protocol):
    """Receives batching events (the metrics module implements it)."""

    def batch_done(self, size: int, compute_seconds: float) -> None:
        """Called after each batch with its size and compute time."""

    def queue_depth(self, depth: int) -> None:
        """Called whenever the number of queued requests changes."""


@dataclass
class _Item:
    question: Question
    future: asyncio.Future[tuple[Answer, BatchTiming]]
    enqueued: float


class BatchQueue:
    """What both batchers share: the bounded queue, its admission and the delivery of answers.

    :class:`Batcher` runs batches in an executor (or awaits them); :class:`~gmai_eval.clients.sdk.loop_batching.LoopBatcher`
    runs a cheap model's batches on the event loop.
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Question]], Sequence[Answer]],
        *,
        max_batch_size: int,
        max_queue_delay_s: float,
        max_queue_size: int,
        concurrency: int,
        observer: BatchObserver | None,
        clock: Callable[[], float],
    ) -> None:
        if max_batch_size < 1 or max_queue_size < 1 or concurrency < 1:
            raise ValueError("max_batch_size, max_queue_size and concurrency must be >= 1")
        if max_queue_delay_s < 0:
            raise ValueError("max_queue_delay_s must be >= 0")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_queue_delay_s = max_queue_delay_s
        self.max_queue_size = max_queue_size
        self.concurrency = concurrency
        self._observer = observer
        self._clock = clock
        self._recent: collections.deque[tuple[int, float]] = collections.deque(maxlen=RATE_WINDOW)
        self._pending: collections.deque[_Item] = collections.deque()
        self._closing = False

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return len(self._pending)

    def retry_delay_s(self) -> float:
        """The retry delay a refused caller gets now (see :func:`retry_delay_s`)."""
        return retry_delay_s(len(self._pending), self._recent, self.concurrency)

    def _enqueue(self, question: Question) -> asyncio.Future[tuple[Answer, BatchTiming]]:
        """Queue ``question``; the future its answer will reach.

        Raises:
            Overloaded: the queue is full (with the delay to retry after).
            NotReady: the batcher is closing.
        """
        if self._closing:
            raise NotReady("the model service is draining")
        if len(self._pending) >= self.max_queue_size:
            raise Overloaded(
                f"request queue full ({self.max_queue_size} waiting)",
                retry_after_s=self.retry_delay_s(),
            )
        future: asyncio.Future[tuple[Answer, BatchTiming]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending.append(_Item(question, future, self._clock()))
        self._report_depth()
        return future

    def _report_depth(self) -> None:
        if self._observer is not None:
            self._observer.queue_depth(len(self._pending))

    def _drop_cancelled(self) -> None:
        while self._pending and self._pending[0].future.done():
            self._pending.popleft()
        if any(item.future.done() for item in self._pending):
            self._pending = collections.deque(i for i in self._pending if not i.future.done())

    def _take_batch(self) -> list[_Item]:
        """Take the oldest requests, up to ``max_batch_size``."""
        pending = self._pending
        batch = [pending.popleft() for _ in range(min(self.max_batch_size, len(pending)))]
        self._report_depth()
        return batch

    def _checked(self, answers: Sequence[Answer], batch: list[_Item]) -> list[Answer]:
        out = list(answers)
        if len(out) != len(batch):
            raise InvalidAnswer(
                f"predict_batch returned {len(out)} answers for {len(batch)} questions"
            )
        return out

    @staticmethod
    def _fail(batch: list[_Item], exc: Exception) -> None:
        """Deliver ``exc`` to every caller of the batch still waiting."""
        for item in batch:
            if not item.future.done():
                item.future.set_exception(exc)

    def _deliver(self, batch: list[_Item], answers: list[Answer], start: float) -> None:
        """Record the batch and hand each answer to the caller that asked it."""
        compute = self._clock() - start
        self._recent.append((len(batch), compute))
        if self._observer is not None:
            self._observer.batch_done(len(batch), compute)
        for item, answer in zip(batch, answers, strict=True):
            if not item.future.done():
                timing = BatchTiming(start - item.enqueued, compute, len(batch))
                item.future.set_result((answer, timing))


class Batcher(BatchQueue):
    """Collects requests into batches and runs them in an executor.

    Args:
        run_batch: The batch function (``Model.predict_batch``); answers in order.
        executor: Where ``run_batch`` runs (the SDK's one-worker thread pool).
        max_batch_size: Largest batch formed.
        max_queue_delay_s: Longest the oldest queued request waits for a batch to fill.
        max_queue_size: Requests allowed to wait; one more raises Overloaded.
        concurrency: Batches allowed to run at once (1 for a GPU model; more for
            adapters that call a remote endpoint).
        observer: Optional receiver of batch events (metrics).
        run_batch_async: A coroutine batch function; when given it is awaited on the
            event loop instead of running ``run_batch`` in the executor (async models
            that call remote services).
        clock: Monotonic seconds, for queue times, batch deadlines and compute times
            (tests inject one).
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Question]], Sequence[Answer]],
        executor: Executor,
        *,
        max_batch_size: int = 1,
        max_queue_delay_s: float = 0.0,
        max_queue_size: int = 1024,
        concurrency: int = 1,
        observer: BatchObserver | None = None,
        run_batch_async: Callable[[Sequence[Question]], Awaitable[Sequence[Answer]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            run_batch,
            max_batch_size=max_batch_size,
            max_queue_delay_s=max_queue_delay_s,
            max_queue_size=max_queue_size,
            concurrency=concurrency,
            observer=observer,
            clock=clock,
        )
        self._run_batch_async = run_batch_async
        self._executor = executor
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the scheduler coroutine on the running event loop."""
        if self._loop_task is None:
            self._loop_task = asyncio.get_running_loop().create_task(self._schedule())

    async def submit(self, question: Question) -> tuple[Answer, BatchTiming]:
        """Queue one question and wait for its answer.

        Raises:
            Overloaded: the queue is full (with the delay to retry after).
            NotReady: the batcher is closing.
        """
        future = self._enqueue(question)
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        """Stop accepting, finish every queued and running batch, then return."""
        self._closing = True
        self._wakeup.set()
        if self._loop_task is not None:
            await self._loop_task
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def _wait(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def _schedule(self) -> None:
        while True:
            await self._slots.acquire()
            # Wait for the first request (or for closing with nothing left).
            while True:
                self._wakeup.clear()
                self._drop_cancelled()
                if self._pending or self._closing:
                    break
                await self._wait(None)
            if not self._pending:
                self._slots.release()
                return
            # Let the batch fill until it is full or the oldest request has waited enough.
            deadline = self._pending[0].enqueued + self.max_queue_delay_s
            while not self._closing:
                self._wakeup.clear()
                self._drop_cancelled()
                remaining = deadline - self._clock()
                if len(self._pending) >= self.max_batch_size or remaining <= 0 or not self._pending:
                    break
                await self._wait(remaining)
            batch = self._take_batch()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _execute(self, batch: list[_Item]) -> None:
        try:
            start = self._clock()
            questions = [item.question for item in batch]
            try:
                if self._run_batch_async is not None:
                    answers = await self._run_batch_async(questions)
                else:
                    answers = await asyncio.get_running_loop().run_in_executor(
                        self._executor, self._run_batch, questions
                    )
                checked = self._checked(answers, batch)
            except asyncio.CancelledError:
                for item in batch:
                    item.future.cancel()
                raise
            except Exception as exc:  # delivered to every caller of the batch
                self._fail(batch, exc)
                return
            self._deliver(batch, checked, start)
        finally:
            self._slots.release()
