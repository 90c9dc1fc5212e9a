"""Batches of a cheap model, formed and run on the event loop without a scheduler task.

See :class:`LoopBatcher`; the queue, its limits and the delivery of answers are those of
:class:`~gmai_eval.clients.sdk.batching.Batcher` (:class:`~gmai_eval.clients.sdk.batching.BatchQueue`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from .batching import BatchObserver, BatchQueue, BatchTiming
from .model import Answer, Question


class LoopBatcher(BatchQueue):
    """Batches for a cheap model, formed and run on the event loop by one callback.

    A model whose answers cost microseconds (``Model.cheap``) gains nothing from a
    scheduler task and a task per batch: their hand-offs cost more than its answers. Here
    the first request queued schedules one callback (``call_soon``, or ``call_later`` for
    the oldest request's ``max_queue_delay``, or at once when the batch is full); the
    callback takes up to ``max_batch_size`` requests, calls ``run_batch`` right there and
    sets each caller's future, then schedules itself again while requests wait. Requests
    arriving in the same turn of the loop share a batch. One batch runs at a time
    (``concurrency`` is 1): the loop runs nothing else meanwhile.

    Args:
        run_batch: The batch function (``Model.predict_batch``); answers in order. It
            runs on the event loop, so it must answer in microseconds and never block.
        max_batch_size: Largest batch formed.
        max_queue_delay_s: Longest the oldest queued request waits for a batch to fill.
        max_queue_size: Requests allowed to wait; one more raises Overloaded.
        observer: Optional receiver of batch events (metrics).
        clock: Monotonic seconds, for queue and compute times (tests inject one).
    """

    def __init__(
        self,
        run_batch: Callable[[Sequence[Question]], Sequence[Answer]],
        *,
        max_batch_size: int = 1,
        max_queue_delay_s: float = 0.0,
        max_queue_size: int = 1024,
        observer: BatchObserver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            run_batch,
            max_batch_size=max_batch_size,
            max_queue_delay_s=max_queue_delay_s,
            max_queue_size=max_queue_size,
            concurrency=1,
            observer=observer,
            clock=clock,
        )
        self._flush_handle: asyncio.Handle | None = None
        self._flush_now = False
        """Whether the scheduled callback is a ``call_soon`` (not a delay's timer)."""

    def start(self) -> None:
        """Nothing to start: the first request schedules the first batch."""

    async def submit(self, question: Question) -> tuple[Answer, BatchTiming]:
        """Queue one question and wait for its answer.

        Raises:
            Overloaded: the queue is full (with the delay to retry after).
            NotReady: the batcher is closing.
        """
        future = self._enqueue(question)
        self._arm()
        return await future

    async def close(self) -> None:
        """Stop accepting and answer every queued request, then return."""
        self._closing = True
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
            self._flush_now = False
        while self._pending:
            self._run_one_batch()

    def _arm(self) -> None:
        """Schedule the callback that runs the next batch, if it is not already due."""
        if self._flush_now:
            return
        loop = asyncio.get_running_loop()
        due = len(self._pending) >= self.max_batch_size or not self.max_queue_delay_s
        if due:
            if self._flush_handle is not None:  # the delay's timer: the batch is full now
                self._flush_handle.cancel()
            self._flush_handle = loop.call_soon(self._flush)
            self._flush_now = True
        elif self._flush_handle is None:
            remaining = self._pending[0].enqueued + self.max_queue_delay_s - self._clock()
            self._flush_handle = loop.call_later(max(remaining, 0.0), self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._flush_now = False
        self._run_one_batch()
        if self._pending:
            self._arm()

    def _run_one_batch(self) -> None:
        self._drop_cancelled()
        batch = self._take_batch()
        if not batch:
            return
        start = self._clock()
        try:
            answers = self._checked(self._run_batch([item.question for item in batch]), batch)
        except Exception as exc:  # delivered to every caller of the batch
            self._fail(batch, exc)
            return
        self._deliver(batch, answers, start)
