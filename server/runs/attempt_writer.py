"""Attempt writing: a run's answers go to the store in groups, each caller awaiting its own.

Answers to concurrent calls arrive within a few milliseconds of each other. Handing each
to the store's writer thread as its own write costs a thread hand-off and a transaction
step per answer; :class:`AttemptWriter` gathers those that arrive together into one write.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from gmai_eval.server.store.attempts import Attempt, submit_attempts
from gmai_eval.server.store.database import Database

GROUP_WINDOW_S = 0.002
"""How long the first answer of a group waits for others before their common write."""


class AttemptWriter:
    """Commits a run's attempts in groups, with at most one write in flight.

    Each :meth:`record` returns only once its attempt is committed. The first attempt
    recorded while no write is pending opens a :data:`GROUP_WINDOW_S` window; the attempts
    recorded in it, and those recorded while that write is in flight, go to the store as
    one write. Its cost and what it saves are in docs/benchmarks.md ("Removed
    optimisations": this one was measured and kept).

    Args:
        db: the database.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._buffer: list[Attempt] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._busy = False

    async def record(self, attempt: Attempt) -> None:
        """Queue ``attempt`` and wait for its commit."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._buffer.append(attempt)
        self._waiters.append(fut)
        if not self._busy:
            self._busy = True
            # Let the answers of the next couple of milliseconds join before writing.
            loop.call_later(GROUP_WINDOW_S, self._flush, loop)
        await fut

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, waiters = self._buffer, self._waiters
        self._buffer, self._waiters = [], []
        try:
            written = submit_attempts(self.db, batch)
        except Exception as exc:  # the database is closed
            self._written(loop, waiters, exc)
            return

        def done(f: concurrent.futures.Future[None]) -> None:  # on the writer thread
            exc = f.exception()
            if not loop.is_closed():
                loop.call_soon_threadsafe(self._written, loop, waiters, exc)

        written.add_done_callback(done)

    def _written(
        self,
        loop: asyncio.AbstractEventLoop,
        waiters: list[asyncio.Future[None]],
        exc: BaseException | None,
    ) -> None:
        for fut in waiters:
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(None)
        if self._buffer:
            self._flush(loop)
        else:
            self._busy = False
