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
from gmai_eval.server.data.synth import write_synthetic_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import ImportDefects
from gmai_eval.server.store import Database, write_behind
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


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs /proc (Linux)")
def test_the_wal_is_synced_until_the_end_and_sqlites_locks_are_kept(db: Database) -> None:
    db.write(lambda d: d.execute("CREATE TABLE t (x)"))
    wal = wal_file(db.path)
    wal_ino = os.stat(wal).st_ino
    before = _open_fds_on([db.path, wal])
    locks = _posix_locks_on(db.path)
    assert locks, "SQLite holds a lock on the database file while connected (WAL mode)"
    rec = Recorder(lambda calls: calls[wal_ino] >= 3)
    with WriteBehind([wal], interval_s=0.001, sync=rec) as wb:
        assert rec.event.wait(WAIT_S), f"the WAL was not synced three times: {dict(rec.calls)}"
    assert set(rec.calls) == {wal_ino}
    assert not wb.running
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


def _spy_on_write_behind(monkeypatch: pytest.MonkeyPatch) -> list[tuple[list[str], str, bool]]:
    """Record each write-behind the importer starts: (paths, how its block ended, whether
    its thread was still alive after the block)."""
    spans: list[tuple[list[str], str, bool]] = []

    class Spy(WriteBehind):
        def __init__(self, paths: list[str]) -> None:
            super().__init__(paths)
            self.paths = list(paths)

        def __exit__(
            self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
        ) -> None:
            super().__exit__(exc_type, exc, tb)
            spans.append((self.paths, "failed" if exc_type else "ok", self.running))

    monkeypatch.setattr(write_behind, "WriteBehind", Spy)
    return spans


def test_an_import_writes_behind_on_its_wal_only_and_stops_whether_it_succeeds_or_fails(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = _spy_on_write_behind(monkeypatch)
    monkeypatch.setattr(write_behind, "MIN_BYTES", 0)
    locks = _posix_locks_on(db.path)
    tsv = tmp_path / "ok.tsv"
    write_synthetic_tsv(tsv, questions=20, seed=3)
    assert import_tsv_files(db, "ok", [tsv]).imported_rows == 20
    header_only = tmp_path / "empty.tsv"
    header_only.write_text(tsv.read_text().splitlines()[0] + "\n")
    with pytest.raises(ImportDefects):
        import_tsv_files(db, "empty", [header_only])

    wal = [os.path.realpath(db.path) + "-wal"]
    assert spans == [(wal, "ok", False), (wal, "failed", False)]
    assert _posix_locks_on(db.path) == locks


def test_files_smaller_than_a_wal_checkpoint_are_imported_without_write_behind(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans = _spy_on_write_behind(monkeypatch)
    tsv = tmp_path / "ok.tsv"
    write_synthetic_tsv(tsv, questions=20, seed=3)
    assert tsv.stat().st_size < write_behind.MIN_BYTES
    assert import_tsv_files(db, "ok", [tsv]).imported_rows == 20
    assert spans == []


def test_the_wal_beside_a_linked_database_is_the_one_synced(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "real" / "eval.db")
    with Database(link) as db:
        db.write(lambda d: d.execute("CREATE TABLE t (x)"))
        assert Path(wal_file(str(link))).exists()
        assert wal_file(str(link)) == str(tmp_path / "real" / "eval.db-wal")


def test_a_wal_replaced_by_a_new_file_is_opened_again(tmp_path: Path) -> None:
    wal = tmp_path / "x.db-wal"
    wal.write_bytes(b"old")
    old_ino = os.stat(wal).st_ino
    replaced = threading.Event()

    def done(calls: Counter[int]) -> bool:
        if calls[old_ino] >= 2 and not replaced.is_set():
            wal.unlink()
            wal.write_bytes(b"new")
            replaced.set()
        return replaced.is_set() and any(ino != old_ino for ino in calls)

    rec = Recorder(done)
    with WriteBehind([str(wal)], interval_s=0.001, sync=rec):
        assert rec.event.wait(WAIT_S), f"the new WAL was never synced: {dict(rec.calls)}"
    assert rec.calls[os.stat(wal).st_ino] >= 1


def test_a_path_that_is_not_a_regular_file_is_left_alone_without_blocking(tmp_path: Path) -> None:
    fifo, main = tmp_path / "x.db-wal", tmp_path / "x.db"
    os.mkfifo(fifo)
    main.write_bytes(b"m")
    main_ino = os.stat(main).st_ino
    rec = Recorder(lambda calls: calls[main_ino] >= 5)
    with WriteBehind([str(fifo), str(main)], interval_s=0.001, sync=rec):
        assert rec.event.wait(WAIT_S), f"a FIFO stopped the syncs: {dict(rec.calls)}"
    assert set(rec.calls) == {main_ino}
