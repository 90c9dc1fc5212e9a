"""Write-behind during bulk writes: which files it syncs, when it stops, what it leaves alone
(SQLite's own locks above all)."""

from __future__ import annotations

import errno
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import pytest
from gmai_eval.server.data import tsv_import
from gmai_eval.server.data.synth import write_synthetic_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import ImportDefects
from gmai_eval.server.store import Database
from gmai_eval.server.store.write_behind import WriteBehind, wal_file

WAIT_S = 30
"""Longest wait for the thread to reach a point (it is there within milliseconds)."""


class Recorder:
    """A sync call that counts calls per file (by inode) and signals when ``done`` says so."""

    def __init__(self, done: Callable[[Counter[int]], bool], refuse: int | None = None) -> None:
        self.calls: Counter[int] = Counter()
        self.fds: set[int] = set()
        self._done = done
        self._refuse = refuse
        self.event = threading.Event()

    def __call__(self, fd: int) -> None:
        ino = os.fstat(fd).st_ino
        self.calls[ino] += 1
        self.fds.add(fd)
        if self._done(self.calls):
            self.event.set()
        if ino == self._refuse:
            raise OSError(errno.EINVAL, "Invalid argument")


def _open_fds_on(paths: list[str]) -> int:
    targets = {os.path.realpath(p) for p in paths}
    fd_dir = Path("/proc/self/fd")
    count = 0
    for entry in fd_dir.iterdir():
        try:
            if os.path.realpath(os.readlink(entry)) in targets:
                count += 1
        except OSError:
            continue
    return count


def _posix_locks_on(path: str) -> list[str]:
    """This process's POSIX locks on ``path`` (type and range), from /proc/locks."""
    ino, pid = os.stat(path).st_ino, str(os.getpid())
    out = []
    for line in Path("/proc/locks").read_text().splitlines():
        f = line.split()
        if f[1] == "POSIX" and f[4] == pid and int(f[5].split(":")[2]) == ino:
            out.append(f"{f[3]} {f[6]}-{f[7]}")
    return sorted(out)


def _write_behind_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "gmai-write-behind"]


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc (Linux)")
def test_the_wal_is_synced_until_the_end_and_sqlites_locks_are_kept(db: Database) -> None:
    db.write(lambda d: d.execute("CREATE TABLE t (x)"))
    wal = wal_file(db.path)
    wal_ino = os.stat(wal).st_ino
    before = _open_fds_on([db.path, wal])
    locks = _posix_locks_on(db.path)
    assert locks, "SQLite holds a lock on the database file while connected (WAL mode)"
    rec = Recorder(lambda calls: calls[wal_ino] >= 3)
    with WriteBehind([wal], interval_s=0.001, sync=rec):
        assert rec.event.wait(WAIT_S), f"the WAL was not synced three times: {dict(rec.calls)}"
    assert set(rec.calls) == {wal_ino}
    assert not _write_behind_threads()
    assert _open_fds_on([db.path, wal]) == before
    assert _posix_locks_on(db.path) == locks


def test_a_wal_that_appears_later_is_synced_once_it_exists(tmp_path: Path) -> None:
    main, wal = tmp_path / "x.db", tmp_path / "x.db-wal"
    main.write_bytes(b"m")
    main_ino = os.stat(main).st_ino
    created = threading.Event()

    def done(calls: Counter[int]) -> bool:
        if calls[main_ino] >= 2 and not created.is_set():
            wal.write_bytes(b"w")  # between two rounds: the WAL did not exist in the first
            created.set()
        return created.is_set() and any(ino != main_ino for ino in calls)

    rec = Recorder(done)
    with WriteBehind([str(main), wal_file(str(main))], interval_s=0.001, sync=rec):
        assert rec.event.wait(WAIT_S), f"the WAL was never synced: {dict(rec.calls)}"
    assert rec.calls[os.stat(wal).st_ino] >= 1


def test_a_file_that_refuses_to_sync_is_left_alone_and_the_other_still_synced(tmp_path: Path) -> None:
    main, wal = tmp_path / "x.db", tmp_path / "x.db-wal"
    main.write_bytes(b"m")
    wal.write_bytes(b"w")
    main_ino, wal_ino = os.stat(main).st_ino, os.stat(wal).st_ino
    rec = Recorder(lambda calls: calls[main_ino] >= 10, refuse=wal_ino)
    with WriteBehind([str(main), wal_file(str(main))], interval_s=0.001, sync=rec) as wb:
        assert rec.event.wait(WAIT_S), f"the database file stopped being synced: {dict(rec.calls)}"
    assert rec.calls[wal_ino] == 1
    assert wb.rounds >= 10


def test_an_import_writes_behind_on_its_database_and_stops_whether_it_succeeds_or_fails(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans: list[tuple[list[str], str]] = []

    class Spy(WriteBehind):
        def __init__(self, paths: list[str]) -> None:
            super().__init__(paths)
            self.paths = list(paths)

        def __exit__(
            self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
        ) -> None:
            super().__exit__(exc_type, exc, tb)
            spans.append((self.paths, "failed" if exc_type else "ok"))

    monkeypatch.setattr(tsv_import, "WriteBehind", Spy)
    tsv = tmp_path / "ok.tsv"
    write_synthetic_tsv(tsv, questions=20, seed=3)
    assert import_tsv_files(db, "ok", [tsv]).imported_rows == 20
    header_only = tmp_path / "empty.tsv"
    header_only.write_text(tsv.read_text().splitlines()[0] + "\n")
    with pytest.raises(ImportDefects):
        import_tsv_files(db, "empty", [header_only])

    assert spans == [([db.path + "-wal"], "ok"), ([db.path + "-wal"], "failed")]
    assert not _write_behind_threads()
