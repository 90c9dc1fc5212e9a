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
was measured and not faster (docs/benchmarks.md, "Write-behind: the checkpoints' syncs off
the writer").

It adds syncs and never removes one: what SQLite makes durable, and when, is unchanged.
It only helps a large write (:data:`MIN_BYTES`); the importer uses it for large files.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from gmai_eval.server.store.database import PAGE_SIZE

INTERVAL_S = 0.01
"""Time between two syncs of the files."""

MIN_BYTES = PAGE_SIZE * 1000
"""Smallest write worth a write-behind: SQLite checkpoints (and syncs) after the default
1,000 pages of WAL, so a smaller write is synced once, at its end, and write-behind would
only add syncs."""

log = logging.getLogger(__name__)

_sync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)
"""``fdatasync`` where the platform has it (Linux), else ``fsync``."""

_IO_ERRORS = frozenset({errno.EIO, errno.ENOSPC, errno.EDQUOT})
"""Sync errors that say the data may not reach the disk (logged as warnings; SQLite's own
syncs report them to the writer too)."""


def wal_file(path: str) -> str:
    """The WAL of the database file ``path`` (SQLite puts it beside the file a link points to)."""
    return os.path.realpath(path) + "-wal"


class WriteBehind:
    """Sync ``paths`` every ``interval_s`` on a thread, from ``with`` until its end.

    A file that does not exist yet is opened at a later tick, and one replaced by a new
    file of the same name (a WAL deleted and created again) is opened again. A path that
    is not a regular file, or that cannot be synced (a file system that refuses), is left
    alone from then on, with a log line: the writes' own syncs still make them durable.

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

    @property
    def running(self) -> bool:
        """Whether the thread is still alive."""
        return self._thread.is_alive()

    def _loop(self) -> None:
        fds: dict[str, int] = {}
        given_up: set[str] = set()
        try:
            while len(given_up) < len(self._paths) and not self._stop.wait(self._interval):
                for path in self._paths:
                    if path not in given_up and not self._sync_one(path, fds):
                        given_up.add(path)
                self.rounds += 1
        finally:
            for fd in fds.values():
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _sync_one(self, path: str, fds: dict[str, int]) -> bool:
        """Sync ``path`` (opening it, or opening it again if replaced); False to give it up."""
        try:
            fd = fds.get(path)
            if fd is not None and os.stat(path).st_ino != os.fstat(fd).st_ino:
                os.close(fds.pop(path))
                fd = None
            if fd is None:
                # Non-blocking: opening a FIFO left under that name must not hang the import.
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                fds[path] = fd
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    log.warning("write-behind: %s is not a regular file; leaving it alone", path)
                    return False
            self._sync(fd)
        except FileNotFoundError:
            return True  # not there yet, or between a delete and a create: the next tick
        except OSError as exc:
            level = logging.WARNING if exc.errno in _IO_ERRORS else logging.DEBUG
            log.log(level, "write-behind: leaving %s alone: %s", path, exc)
            return False
        return True
