"""An AIMD limit on the calls a run has in flight.

The limit starts at the run's concurrency, halves when the model answers
RESOURCE_EXHAUSTED (one cut per congestion episode) and grows by one after ``limit``
successes in a row, so a loaded model is backed off and recovered from without tuning.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

CUT_INTERVAL_S = 0.2
"""Overload signals closer together than this are one congestion episode (one cut)."""


class AdaptiveLimit:
    """An AIMD concurrency limit for asyncio tasks.

    Args:
        maximum: the configured ceiling (and starting value).
        minimum: the floor.
        on_change: called with the new limit whenever it changes.
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        maximum: int,
        minimum: int = 1,
        on_change: Callable[[int], None] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.limit = self.maximum
        self.inflight = 0
        self._successes = 0
        self._last_cut = -math.inf
        self._waiters: list[asyncio.Future[None]] = []
        self._on_change = on_change
        self._clock = clock
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
        """Multiplicative decrease: halve (at most once per :data:`CUT_INTERVAL_S`)."""
        now = self._clock()
        self._successes = 0
        if now - self._last_cut < CUT_INTERVAL_S:
            return
        self._last_cut = now
        self._set(max(self.minimum, self.limit // 2))

    def _set(self, value: int) -> None:
        if value != self.limit:
            self.limit = value
            if self._on_change is not None:
                self._on_change(value)
            self._wake()
