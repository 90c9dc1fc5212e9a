"""One SQLite file with one writer thread and thread-local readers.

All writes go through :meth:`Database.write` (or :meth:`Database.awrite` from asyncio):
the callable runs on the single writer thread inside a SAVEPOINT, so it is atomic on its
own. Writes queued while another is running are committed together (group commit), so a
burst of answers costs one fsync, and each caller is woken only after its write is
committed. Reads run on the calling thread (or an executor, from asyncio) with a
thread-local connection and never block the writer (WAL).

Only the ``store`` package of the evaluator imports ``sqlite3``: the callables given to
:meth:`Database.write` and :meth:`Database.read` get a plain :class:`sqlite3.Connection`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from gmai_eval.server.errors import StoreCorrupted, StoreError, StoreFull
from gmai_eval.server.store.migrations import apply_migrations

T = TypeVar("T")

_MAX_GROUP = 512
"""Most queued writes committed in one transaction."""


_CORRUPT = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})
_FULL = frozenset({"SQLITE_FULL"})


def store_error(exc: sqlite3.Error, path: str, doing: str) -> StoreError:
    """The error tree's class for a SQLite error: corrupt, full, or plainly unusable.

    Args:
        exc: what sqlite3 raised.
        path: the database file, for the message.
        doing: what was being done ("open", "read", "write"), for the message.
    """
    base = "_".join(getattr(exc, "sqlite_errorname", "").split("_")[:2])  # SQLITE_CORRUPT_VTAB -> SQLITE_CORRUPT
    if base in _CORRUPT:
        return StoreCorrupted(
            f"database {path} is damaged ({exc}); {doing} refused. Restore it from a backup "
            "(docs/deploy.md) or check it with: sqlite3 FILE 'PRAGMA integrity_check'"
        )
    if base in _FULL:
        return StoreFull(f"disk full: cannot {doing} {path} ({exc}); free space and retry")
    return StoreError(f"cannot {doing} database {path}: {exc}")


def _batch_error(exc: Exception, path: str) -> StoreError:
    """What every write of a batch fails with when the batch's transaction is lost."""
    if isinstance(exc, sqlite3.Error):
        return store_error(exc, path, "write to")
    if isinstance(exc, StoreError):
        return exc
    return StoreError(f"cannot write to database {path}: {type(exc).__name__}: {exc}")


PAGE_SIZE = 16384
"""SQLite page size of new database files. With the default WAL autocheckpoint (1000
pages) the WAL is checkpointed at about 16 MB."""


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    # Only takes effect on a new file; an existing database keeps its page size. Every
    # commit writes whole pages to the WAL, and a run commits a few answers at a time, so
    # the page size trades import speed (large blobs) against every run's commits; 16 KiB
    # is the balance measured in docs/benchmarks.md ("One serialization and 16 KiB pages").
    conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA recursive_triggers=ON")
    conn.execute("PRAGMA busy_timeout=30000")
    # Image blobs are read on the hot path of runs; memory-mapped reads avoid a copy.
    conn.execute("PRAGMA mmap_size=1073741824")
    return conn


class Database:
    """A gmai-eval database file.

    Args:
        path: the SQLite file; created (with its schema) if missing.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._queue: queue.Queue[tuple[Callable[[sqlite3.Connection], Any], concurrent.futures.Future[Any]] | None] = queue.Queue()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="gmai-read")
        self._closed = False
        try:
            self._wconn = _connect(self.path)
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, "open") from exc
        try:
            apply_migrations(self._wconn)
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, "migrate") from exc
        self._thread = threading.Thread(target=self._writer, name="gmai-writer", daemon=True)
        self._thread.start()

    # -- writes ----------------------------------------------------------------------------

    def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the writer thread, atomically, and return its result once committed.

        ``fn`` must not return a cursor or anything else tied to the connection: the result
        is handed to another thread.
        """
        return self.submit(fn).result()

    async def awrite(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Like :meth:`write`, awaitable."""
        return await asyncio.wrap_future(self.submit(fn))

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> concurrent.futures.Future[T]:
        """Queue ``fn`` for the writer thread; the future resolves after commit."""
        if self._closed:
            raise StoreError(f"database {self.path} is closed")
        fut: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._queue.put((fn, fut))
        return fut

    def _writer(self) -> None:
        conn = self._wconn
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < _MAX_GROUP:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            done: list[tuple[concurrent.futures.Future[Any], bool, Any]] = []
            try:
                conn.execute("BEGIN IMMEDIATE")
                for fn, fut in batch:
                    conn.execute("SAVEPOINT w")
                    try:
                        result = fn(conn)
                    except BaseException as exc:
                        if not conn.in_transaction:
                            # SQLite rolled the whole transaction back itself (SQLITE_FULL,
                            # SQLITE_IOERR...): the savepoint is gone, and so are the writes
                            # of the batch before this one. All of them fail with this error.
                            raise
                        conn.execute("ROLLBACK TO w")
                        conn.execute("RELEASE w")
                        if isinstance(exc, sqlite3.Error):
                            exc = store_error(exc, self.path, "write to")
                        done.append((fut, False, exc))
                    else:
                        conn.execute("RELEASE w")
                        done.append((fut, True, result))
                conn.execute("COMMIT")
            except Exception as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                err = _batch_error(exc, self.path)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            for fut, ok, value in done:
                if fut.cancelled():  # its awaiting task was cancelled (a shutdown): nobody waits
                    continue
                if ok:
                    fut.set_result(value)
                elif isinstance(value, Exception):
                    fut.set_exception(value)
                else:  # pragma: no cover - KeyboardInterrupt and friends
                    fut.set_exception(StoreError(repr(value)))
            if stop:
                return

    # -- reads -----------------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            with self._readers_lock:
                self._readers.append(conn)
            self._local.conn = conn
        return conn

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` with this thread's read connection, in one read transaction."""
        try:
            conn = self._reader()
            conn.execute("BEGIN")
            try:
                return fn(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise store_error(exc, self.path, "read") from exc

    async def aread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Like :meth:`read`, on a reader thread, awaitable."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.read, fn)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Finish queued writes, then close every connection."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._executor.shutdown(wait=True)
        self._wconn.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
