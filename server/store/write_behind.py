"""Write-behind for bulk writes: push the WAL's pages to disk while the writer writes.

With ``synchronous=NORMAL`` SQLite syncs only at checkpoints: it fsyncs the WAL, copies
its pages into the database file and fsyncs that. The kernel starts writing dirty pages
in the background only past ``vm.dirty_background_ratio`` (gigabytes on a server), so
during an import every page of every batch waits in memory until the checkpoint's fsync,
and the writer thread stands still while the disk takes it. :class:`WriteBehind` syncs
the WAL from a thread of its own every few milliseconds, so most of its pages are already
on disk when SQLite asks, and the writer's syncs are short.

Only the WAL, never the database file: closing a second descriptor of the database file
would release every POSIX lock this process holds on it, SQLite's included (the hazard of
section 2.2 of SQLite's "How To Corrupt An SQLite Database File"). SQLite locks only the
database file and the shared-memory file, never the WAL. Syncing the database file too
was measured and not faster (docs/benchmarks.md, "Write-behind during an import").

It adds syncs and never removes one: what SQLite makes durable, and when, is unchanged.
It only helps a large write; the importer uses it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

INTERVAL_S = 0.01
"""Time between two syncs of the files."""

log = logging.getLogger(__name__)

_sync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
"""``fdatasync`` where the platform has it (Linux), else ``fsync``."""


def wal_file(path: str) -> str:
    """The WAL of the database file ``path``."""
    return path + "-wal"


class WriteBehind:
    """Sync ``paths`` every ``interval_s`` on a thread, from ``with`` until its end.

    A file that does not exist yet is opened at a later tick; a file that cannot be synced
    (removed, or a file system that refuses) is left alone from then on, with a debug log
    line: the writes' own syncs still make them durable.

    Args:
        paths: the files (the importer gives the WAL, :func:`wal_file`).
        interval_s: time between two rounds of syncs.
        sync: the sync call, given a file descriptor (tests record it).
    """

    def __init__(
        self, paths: Sequence[str], interval_s: float = INTERVAL_S, sync: Callable[[int], None] = _sync
    ) -> None:
        self._paths = list(paths)
        self._interval = interval_s
        self._sync = sync
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gmai-write-behind", daemon=True)
        self.rounds = 0
        """Rounds of syncs done so far."""

    def __enter__(self) -> WriteBehind:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        fds: dict[str, int] = {}
        given_up: set[str] = set()
        try:
            while not self._stop.wait(self._interval):
                for path in self._paths:
                    if path in given_up:
                        continue
                    try:
                        if path not in fds:
                            fds[path] = os.open(path, os.O_RDONLY)
                        self._sync(fds[path])
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        log.debug("write-behind: leaving %s alone: %s", path, exc)
                        given_up.add(path)
                self.rounds += 1
        finally:
            for fd in fds.values():
                os.close(fd)
