"""A run's view of its model's reachability: when an outage began, and when to give up.

An outage starts with the first UNAVAILABLE answer after the model last answered, and ends
with the next answer of any kind from any endpoint (a health check reporting SERVING only
lets the run try again). While it lasts the run is "waiting for model": the scheduler
sends nothing new, and once no endpoint has answered for the run's ``max_outage_s`` the
run ends ``failed`` with :meth:`Outage.reason`, which names the endpoints, the last error
and since when they have been unreachable.

The evaluator logs a warning when an outage starts, every :data:`LOG_EVERY_S` while it
lasts, and when it ends. Time comes from an injected monotonic ``clock`` (tests pass their
own) and an injected ``wall`` clock for the times shown to people.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LOG_EVERY_S = 60.0
"""How often a lasting outage is logged again."""

WAITING_FOR_MODEL = "waiting_for_model"
"""The sub-state of a running run during an outage."""

OutageEvent = Callable[[str, str], None]
"""Called with ``(kind, message)``: ``outage_started`` or ``outage_ended``."""


def iso(unix_s: float) -> str:
    """ISO-8601 UTC of a Unix time, to the second."""
    return dt.datetime.fromtimestamp(unix_s, dt.UTC).isoformat(timespec="seconds")


class Outage:
    """The reachability of one run's model.

    Args:
        run_id: the run, for the log lines.
        model: registered model name.
        endpoints: every endpoint of the model, for the reason.
        max_outage_s: the longest outage the run waits through.
        clock: monotonic seconds.
        wall: Unix seconds.
        log_every_s: how often a lasting outage is logged again.
        on_event: told when an outage starts and ends.
    """

    def __init__(
        self,
        *,
        run_id: str,
        model: str,
        endpoints: tuple[str, ...],
        max_outage_s: float,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        log_every_s: float = LOG_EVERY_S,
        on_event: OutageEvent | None = None,
    ) -> None:
        self.run_id = run_id
        self.model = model
        self.endpoints = endpoints
        self.max_outage_s = max_outage_s
        self._clock = clock
        self._wall = wall
        self._log_every_s = log_every_s
        self._on_event = on_event
        self._since: float | None = None
        self._since_wall = 0.0
        self._logged_at = 0.0
        self.last_error = ""
        """The last error that kept (or put) the model unreachable."""

    @property
    def waiting(self) -> bool:
        """True during an outage."""
        return self._since is not None

    @property
    def since_wall(self) -> float:
        """Unix time the outage began (0 when none)."""
        return self._since_wall if self._since is not None else 0.0

    def elapsed(self) -> float:
        """Seconds since the outage began (0 when none)."""
        return 0.0 if self._since is None else self._clock() - self._since

    def remaining(self) -> float:
        """Seconds left before the run gives up (``max_outage_s`` when no outage)."""
        return max(0.0, self.max_outage_s - self.elapsed())

    def expired(self) -> bool:
        """True once the outage has lasted ``max_outage_s``."""
        return self._since is not None and self.elapsed() >= self.max_outage_s

    def unreachable(self, error: str) -> bool:
        """An endpoint answered UNAVAILABLE (or could not be reached) with ``error``.

        Returns:
            True if this starts an outage.
        """
        self.last_error = error
        if self._since is not None:
            return False
        self._since = self._logged_at = self._clock()
        self._since_wall = self._wall()
        message = (
            f"model {self.model} unreachable ({', '.join(self.endpoints)}): {error};"
            f" waiting up to {self.max_outage_s:g} s for it"
        )
        log.warning("run %s: %s", self.run_id, message)
        if self._on_event is not None:
            self._on_event("outage_started", message)
        return True

    def answered(self) -> None:
        """An endpoint answered (anything but UNAVAILABLE): the outage, if any, is over."""
        if self._since is None:
            return
        elapsed = self.elapsed()
        self._since = None
        message = f"model {self.model} answers again after {elapsed:.1f} s unreachable"
        log.warning("run %s: %s", self.run_id, message)
        if self._on_event is not None:
            self._on_event("outage_ended", message)

    def tick(self) -> None:
        """Log again if the outage has gone on for another ``log_every_s``."""
        if self._since is None:
            return
        now = self._clock()
        if now - self._logged_at < self._log_every_s:
            return
        self._logged_at = now
        log.warning(
            "run %s: model %s still unreachable after %.0f s (since %s): %s; the run fails in %.0f s",
            self.run_id,
            self.model,
            now - self._since,
            iso(self._since_wall),
            self.last_error,
            self.remaining(),
        )

    def reason(self) -> str:
        """Why the run failed: endpoints, last error, since when, the limit."""
        return (
            f"model {self.model} unreachable for {self.elapsed():.0f} s (since"
            f" {iso(self._since_wall)}), over max_outage {self.max_outage_s:g} s;"
            f" endpoints {', '.join(self.endpoints)}; last error: {self.last_error}"
        )
