"""One evaluator per database: an OS lock on a file beside it.

``gmai-eval serve`` drives runs, and two evaluators driving the same runs would overwrite
each other's attempts. The evaluator therefore holds an exclusive ``flock`` on
``<database>.owner`` for as long as it serves; a second one is refused with the pid, host
and start time of the first. The lock is the kernel's, so it vanishes with the process,
even after SIGKILL: nothing to clean up, no heartbeat row, and the database file itself is
never written to claim it. Offline commands that write (``import``, ``score-file``,
``rescore``) do not take the lock: SQLite's own locking serialises their writes with the
evaluator's. ``runs delete --db`` and ``benchmarks remove --db`` do take it while they
delete: an evaluator serving the file may be driving or finishing the run, so they are
refused and told to go through it (``--server``), which knows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path
from types import TracebackType

from gmai_eval.server.errors import StoreError


class DatabaseInUse(StoreError):
    """Another live evaluator serves this database file."""


def owner_path(db_path: str | Path) -> Path:
    """The lock file of ``db_path``: the same name with ``.owner`` appended."""
    path = Path(db_path)
    return path.with_name(path.name + ".owner")


class DatabaseOwner:
    """Holds the owner lock of a database file while the evaluator serves it.

    Use as a context manager, or call :meth:`acquire` and :meth:`release`.

    Args:
        db_path: the database file (it need not exist yet).
        command: what owns it, shown to a second evaluator (for example "gmai-eval serve").
        busy_hint: what the refusal tells to do when another process holds the lock.
    """

    def __init__(
        self, db_path: str | Path, command: str = "gmai-eval serve", busy_hint: str = "stop it first, or serve another --db"
    ) -> None:
        self.db_path = Path(db_path)
        self.path = owner_path(db_path)
        self.command = command
        self.busy_hint = busy_hint
        """What the refusal tells to do when another process holds the lock."""
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise at once.

        Raises:
            DatabaseInUse: another process holds it; the message names that process.
            StoreError: the lock file cannot be created (directory missing or read-only).
        """
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the owner lock {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DatabaseInUse(
                f"database {self.db_path.resolve()} is already served by another evaluator "
                f"({holder}); {self.busy_hint}"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.path}: {exc.strerror or exc}") from exc
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": self.command,
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (the file stays; an unlocked file means no owner)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the descriptor releases the flock
        self._fd = None

    def __enter__(self) -> DatabaseOwner:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """Who holds the lock, from what it wrote in the file, in words."""
    try:
        data = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict) or "pid" not in data:
        return "a process that has not written its name yet"
    return f"pid {data['pid']} on {data.get('host', '?')}, {data.get('command', '?')}, started {data.get('started', '?')}"
