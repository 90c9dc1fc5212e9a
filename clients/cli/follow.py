"""Following a run: progress on stderr, reconnection, the summary block and the exit code.

``run --wait``, ``watch`` and ``resume --wait`` call :func:`follow_and_exit`. Progress goes
to stderr, so stdout carries only what scripts capture (the run id):

- on a terminal, a live bar drawn by ``rich`` (done/total, rate, ETA, errors, state);
  while the model is unreachable the ETA gives way to "waiting for model Ns: REASON";
- otherwise (a pipe, a file, ``TERM=dumb``), one plain line every ``--progress-interval``
  seconds, without carriage returns or escape codes;
- nothing with ``--no-progress``.

When the evaluator goes away (a restart), the watch reconnects with exponential backoff
until ``--reconnect-timeout`` passes without contact. Ctrl-C stops following, says that
the run goes on at the server and how to watch or cancel it, and exits 130. At the end a
summary block gives the state, the overall accuracy with its 95% CI, the errors (grouped
by reason from GetRunReport when the exit code is 3 or 4), the duration, the run id and
the next commands; the exit code follows
:data:`~.options.EXIT_CODES_EPILOG`.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO, TypeVar

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from ..connection import Connection, EvaluatorError
from .options import (
    DEFAULT_SERVER,
    EXIT_INTERRUPTED,
    EXIT_NOT_SUCCEEDED,
    EXIT_OK,
    EXIT_SOME_ERRORS,
)
from .reasons import sub_state_text, summary_error_lines

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

    from ..evaluator_client import EvaluatorClient

F = TypeVar("F", bound=Callable[..., Any])

STATE_NAMES: dict[int, str] = {
    pb.RUN_STATE_QUEUED: "queued",
    pb.RUN_STATE_RUNNING: "running",
    pb.RUN_STATE_SUCCEEDED: "succeeded",
    pb.RUN_STATE_FAILED: "failed",
    pb.RUN_STATE_CANCELLED: "cancelled",
    pb.RUN_STATE_INTERRUPTED: "interrupted",
}

FINAL_STATES = frozenset({pb.RUN_STATE_SUCCEEDED, pb.RUN_STATE_FAILED, pb.RUN_STATE_CANCELLED})
"""States after which nothing more happens to a run without a resume."""

RECONNECT_FIRST_S = 0.5
"""First wait before watching again after the evaluator went away; doubles each time."""
RECONNECT_MAX_S = 10.0
"""Longest wait between two reconnection attempts."""


def state_name(state: int) -> str:
    """Lower-case name of a proto RunState."""
    return STATE_NAMES.get(state, "unspecified")


def _eta(seconds: float) -> str:
    if seconds <= 0:
        return "?"
    s = round(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def progress_text(run: pb.Run) -> str:
    """The plain progress line of ``run`` (no bar, no escape codes)."""
    p = run.progress
    pct = f" ({100 * p.done / p.total:.0f}%)" if p.total else ""
    waiting = sub_state_text(run)
    return (
        f"{run.id} {state_name(run.state)} {p.done}/{p.total}{pct} {p.rate_per_second:.1f}/s "
        f"errors {p.errors} " + (waiting if waiting else f"ETA {_eta(p.eta_seconds)}")
    )


class Display(Protocol):
    """Where progress goes while a run is followed."""

    def update(self, run: pb.Run) -> None:
        """Show the run as of this event."""

    def note(self, text: str) -> None:
        """Say something between progress updates (a reconnection, for example)."""

    def close(self) -> None:
        """Stop showing progress (the last state stays on screen)."""


class NoDisplay:
    """``--no-progress``: only notes, one line each."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def update(self, run: pb.Run) -> None:
        """Nothing to show."""

    def note(self, text: str) -> None:
        """One line on the stream."""
        print(text, file=self._stream, flush=True)

    def close(self) -> None:
        """Nothing to close."""


class PlainDisplay:
    """One plain line every ``interval`` seconds (and at the first and last event)."""

    def __init__(self, stream: TextIO, interval: float) -> None:
        self._stream = stream
        self._interval = interval
        self._latest: pb.Run | None = None
        self._printed: pb.Run | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="progress-lines", daemon=True)
        self._ticker.start()

    def _emit(self) -> None:
        with self._lock:
            run = self._latest
            if run is None or run is self._printed:
                return
            self._printed = run
            print(progress_text(run), file=self._stream, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(self._interval):
            self._emit()

    def update(self, run: pb.Run) -> None:
        """Remember the run; the first event is printed at once, later ones at the next tick."""
        first = self._latest is None
        with self._lock:
            self._latest = run
        if first:
            self._emit()

    def note(self, text: str) -> None:
        """One line, between progress lines."""
        with self._lock:
            print(text, file=self._stream, flush=True)

    def close(self) -> None:
        """Stop the ticker and print the last state if it was not printed."""
        self._stop.set()
        self._ticker.join()
        self._emit()


class RichDisplay:
    """A live bar on a terminal, drawn by rich."""

    def __init__(self, console: Console) -> None:
        # rich is imported only when a terminal draws a bar
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}/s"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("errors {task.fields[errors]}"),
            TextColumn("{task.fields[state]}"),
            console=console,
            transient=False,
        )
        self._task: TaskID | None = None
        self._progress.start()

    def update(self, run: pb.Run) -> None:
        """Move the bar."""
        p = run.progress
        rate, eta, state = f"{p.rate_per_second:.1f}", _eta(p.eta_seconds), state_name(run.state)
        waiting = sub_state_text(run)
        if waiting:
            eta, state = "?", f"{state} ({waiting})"
        if self._task is None:
            self._task = self._progress.add_task(
                run.id, total=p.total or None, completed=p.done, rate=rate, eta=eta, errors=p.errors, state=state
            )
        else:
            self._progress.update(
                self._task, total=p.total or None, completed=p.done, rate=rate, eta=eta, errors=p.errors, state=state
            )

    def note(self, text: str) -> None:
        """A line printed above the bar."""
        self._progress.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        """Leave the last frame on screen."""
        self._progress.stop()


def choose_display(show: bool, interval: float, stream: TextIO | None = None) -> Display:
    """The display for this stream: rich on a terminal, plain lines elsewhere, or none."""
    out = stream if stream is not None else sys.stderr
    if not show:
        return NoDisplay(out)
    if out.isatty() and os.environ.get("TERM", "") != "dumb":
        from rich.console import Console  # rich: only when a terminal draws a bar

        return RichDisplay(Console(file=out))
    return PlainDisplay(out, interval)


@dataclass(frozen=True)
class FollowSettings:
    """How to follow a run (the options of ``run --wait``, ``watch``, ``resume --wait``)."""

    progress: bool = True
    """False with ``--no-progress``."""
    interval: float = 10.0
    """Seconds between two plain progress lines."""
    reconnect_timeout: float = 300.0
    """Give up after this many seconds without reaching the evaluator."""


def follow_options(fn: F) -> F:
    """Add --no-progress, --progress-interval and --reconnect-timeout; pass ``follow``."""

    @click.option("--no-progress", is_flag=True, help="Show no progress (the summary is still printed).")
    @click.option(
        "--progress-interval", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
        help="Seconds between two progress lines when stderr is not a terminal.",
    )
    @click.option(
        "--reconnect-timeout", default=300.0, show_default=True, type=click.FloatRange(min=0),
        help="Keep trying this many seconds to reach the evaluator again when it goes away.",
    )
    @functools.wraps(fn)
    def wrapper(no_progress: bool, progress_interval: float, reconnect_timeout: float, **kw: Any) -> Any:
        return fn(follow=FollowSettings(not no_progress, progress_interval, reconnect_timeout), **kw)

    return wrapper  # type: ignore[return-value]


def _hint_target(conn: Connection) -> str:
    return "" if conn.target == DEFAULT_SERVER else f" --server {conn.target}"


def watch_until_final(
    c: EvaluatorClient,
    run_id: str,
    display: Display,
    settings: FollowSettings,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> pb.Run:
    """Watch ``run_id`` until its stream ends, reconnecting while the evaluator is away.

    Raises:
        EvaluatorError: a call failed for another reason than UNAVAILABLE, or the evaluator
            stayed unreachable for ``settings.reconnect_timeout`` seconds.
    """
    last: pb.Run | None = None
    lost_since: float | None = None
    wait = RECONNECT_FIRST_S
    while True:
        try:
            for run in c.watch_run(run_id):
                if lost_since is not None:
                    display.note(f"reconnected to the evaluator at {c.conn.target}")
                    lost_since, wait = None, RECONNECT_FIRST_S
                last = run
                display.update(run)
            if last is None:
                raise EvaluatorError("UNKNOWN", f"the watch of {run_id} ended without an event")
            return last
        except EvaluatorError as exc:
            if exc.code != "UNAVAILABLE":
                raise
            now = clock()
            if lost_since is None:
                lost_since = now
                display.note(f"lost the evaluator at {c.conn.target} ({exc.message}); reconnecting")
            elif now - lost_since >= settings.reconnect_timeout:
                raise EvaluatorError(
                    "UNAVAILABLE",
                    f"the evaluator at {c.conn.target} stayed unreachable for {now - lost_since:.0f} s; "
                    f"run {run_id} may still be going: gmai-eval watch {run_id}{_hint_target(c.conn)}",
                ) from None
        sleep(wait)
        wait = min(wait * 2, RECONNECT_MAX_S)


def _duration(run: pb.Run) -> str:
    if not (run.HasField("created_time") and run.HasField("finished_time")):
        return ""
    seconds = max(0.0, (run.finished_time.ToNanoseconds() - run.created_time.ToNanoseconds()) / 1e9)
    s = round(seconds)
    return f"{s // 3600}h {s % 3600 // 60}m {s % 60}s" if s >= 3600 else f"{s // 60}m {s % 60}s" if s >= 60 else f"{seconds:.1f}s"


def _accuracy(c: EvaluatorClient, run_id: str) -> str:
    try:
        scores = c.get_run_scores(run_id, dimensions=["overall"])
    except EvaluatorError as exc:
        return f"accuracy unavailable ({exc})"
    overall = next((n for n in scores.nodes if n.dimension == "overall"), None)
    if overall is None or overall.n == 0:
        return "accuracy: no scored question"
    return (
        f"accuracy {100 * overall.accuracy:.2f}% (95% CI {100 * overall.ci_low:.2f}-{100 * overall.ci_high:.2f}%, "
        f"{overall.correct}/{overall.n} correct)"
    )


def exit_code(run: pb.Run) -> int:
    """0 succeeded without errors, 4 succeeded with some errors, 3 did not succeed."""
    if run.state != pb.RUN_STATE_SUCCEEDED:
        return EXIT_NOT_SUCCEEDED
    return EXIT_SOME_ERRORS if run.progress.errors else EXIT_OK


def _error_reasons(c: EvaluatorClient, run_id: str, hint: str) -> list[str]:
    try:
        report = c.get_run_report(run_id)
    except EvaluatorError as exc:
        return [f"  errors by reason unavailable ({exc})"]
    return summary_error_lines(report.errors, run_id, hint)


def summary(c: EvaluatorClient, run: pb.Run) -> list[str]:
    """The summary block printed when a followed run ends."""
    p = run.progress
    took = _duration(run)
    lines = [f"run {run.id} {state_name(run.state)}" + (f" in {took}" if took else "")]
    lines.append(f"  {run.model} on {run.benchmark}: {p.done}/{p.total} questions, {p.errors} in error, {p.retries} retries")
    if run.state == pb.RUN_STATE_SUCCEEDED or p.done:
        lines.append("  " + _accuracy(c, run.id))
    if run.error_message:
        lines.append(f"  reason: {run.error_message}")
    hint = _hint_target(c.conn)
    if exit_code(run) != EXIT_OK and p.errors:
        lines += _error_reasons(c, run.id, hint)
    nxt = [f"gmai-eval scores {run.id}{hint}", f"gmai-eval export {run.id} --out {run.id}.tsv{hint}"]
    if run.state != pb.RUN_STATE_SUCCEEDED:
        nxt = [f"gmai-eval resume {run.id} --wait{hint}", *nxt]
    lines.append("  next: " + "   ".join(nxt))
    return lines


def follow_and_exit(c: EvaluatorClient, run_id: str, settings: FollowSettings) -> None:
    """Follow ``run_id`` to its end, print the summary on stderr and exit with its code.

    Ctrl-C exits 130 after saying that the run goes on and how to watch or cancel it.
    """
    display = choose_display(settings.progress, settings.interval)
    try:
        try:
            final = watch_until_final(c, run_id, display, settings)
        finally:
            display.close()
    except KeyboardInterrupt:
        hint = _hint_target(c.conn)
        click.echo(
            f"interrupted: run {run_id} goes on at the evaluator; follow it with "
            f"`gmai-eval watch {run_id}{hint}`, stop it with `gmai-eval cancel {run_id}{hint}`",
            err=True,
        )
        sys.exit(EXIT_INTERRUPTED)
    for line in summary(c, final):
        click.echo(line, err=True)
    sys.exit(exit_code(final))
