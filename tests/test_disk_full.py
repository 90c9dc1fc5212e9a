"""A full disk, for real: the database on a small tmpfs that the test mounts (root only).

- An import that runs out of space fails with "disk full", the database path and the size
  of the files, and leaves no partial benchmark; once there is room, the same import works
  and nothing imported before is lost.
- A run that hits a full disk ends ``interrupted``; after the space is back the next
  ``gmai-eval serve`` resumes it by itself, and every question ends answered exactly once.

Real processes throughout: the ``gmai-eval`` CLI, ``gmai-eval serve`` and a model service.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gmai_eval.clients.connection import Connection
from gmai_eval.clients.evaluator_client import EvaluatorClient
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from tests._data_helpers import image_b64, make_row, write_tsv
from tests._model_process import start_model_process
from tests._service_helpers import run_cli, start_server, write_benchmark_tsv


class Tmpfs:
    """A tmpfs mounted at ``path``; its size can be changed while mounted."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def resize(self, megabytes: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={megabytes}m", str(self.path)], check=True)

    def free_bytes(self) -> int:
        st = os.statvfs(self.path)
        return st.f_bavail * st.f_frsize


def _mount(path: Path, megabytes: int) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the disk-full tests run as root in CI)")
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): a container without CAP_SYS_ADMIN?")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Tmpfs]]:
    mounted: list[Path] = []

    def mount(megabytes: int) -> Tmpfs:
        path = tmp_path / f"tmpfs{len(mounted)}"
        _mount(path, megabytes)
        mounted.append(path)
        return Tmpfs(path)

    yield mount
    for path in mounted:
        if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=True)  # a process still holds a file


def gmai_eval(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout=300)


def benchmarks(db: Path) -> list[tuple[str, str, int]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        rows = c.execute(
            "SELECT b.name, b.state, (SELECT COUNT(*) FROM questions q WHERE q.benchmark_id = b.id)"
            " FROM benchmarks b ORDER BY b.name"
        ).fetchall()
    c.close()
    return [(str(n), str(s), int(k)) for n, s, k in rows]


def test_an_import_that_runs_out_of_space_says_disk_full_and_leaves_nothing(
    small_disk: Callable[[int], Tmpfs], tmp_path: Path
) -> None:
    disk = small_disk(8)
    db = disk.path / "e.db"
    small = write_tsv(tmp_path / "small.tsv", [make_row(i) for i in range(5)])
    assert gmai_eval("import", "--db", str(db), "--name", "small", str(small)).returncode == 0
    # 200 rows of 128x128 random PNGs (~50 KB each, incompressible): ~13 MB for an 8 MB disk
    big = write_tsv(tmp_path / "big.tsv", [make_row(i, image=image_b64(i, size=128)) for i in range(200)])
    size_mb = f"{big.stat().st_size / 1e6:.1f} MB"

    failed = gmai_eval("import", "--db", str(db), "--name", "big", str(big))

    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith(f"Error: disk full: cannot write to {db} ")
    assert f"nothing was imported. The benchmark needs about {size_mb} (the size of its files)" in failed.stderr
    assert "savepoint" not in failed.stderr
    assert benchmarks(db) == [("small", "ready", 5)]  # no "importing" leftover

    disk.resize(64)
    again = gmai_eval("import", "--db", str(db), "--name", "big", str(big))
    assert again.returncode == 0, again.stderr
    assert benchmarks(db) == [("big", "ready", 200), ("small", "ready", 5)]


N = 150


def _until(c: EvaluatorClient, run_id: str, ok: Callable[[pb.Run], bool], timeout: float) -> pb.Run:
    deadline = time.monotonic() + timeout
    while True:
        run = c.get_run(run_id)
        if ok(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} never got there: {run}"
        time.sleep(0.05)


def _fill(path: Path, size: int) -> None:
    """Allocate ``size`` bytes at ``path``, or 64 KiB less each time the disk refuses (the
    evaluator keeps writing answers meanwhile, so the free space shrinks under us)."""
    with open(path, "wb") as f:
        while size > 0:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
                return
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                size -= 64 * 1024


@pytest.mark.parametrize("leave_kib", [256, 16])
def test_a_run_that_hits_a_full_disk_is_interrupted_and_resumes_once_there_is_room(
    small_disk: Callable[[int], Tmpfs], tmp_path: Path, leave_kib: int
) -> None:
    # 256 KiB left: a few commits of answers, then the interrupted state is written.
    # 16 KiB, less than one 64 KiB page: the state write fails too; the file still says
    # "running", and the evaluator must still report the run interrupted, with its
    # reason, until it restarts.
    # Room for the database and a WAL at its autocheckpoint size (1000 pages of 16 KiB):
    # freed, a smaller disk could fill again with the WAL alone before its first checkpoint.
    disk = small_disk(40)
    db = disk.path / "e.db"
    filler = disk.path / "filler"
    model = start_model_process(delay_s=0.02)
    try:
        first = start_server(db, log_dir=tmp_path)
        try:
            with EvaluatorClient(Connection(target=first.target)) as c:
                c.upload("bench", [write_benchmark_tsv(tmp_path / "b.tsv", N)])
                c.register_model(pb.Model(name="det", endpoints=[model.endpoint]))
                run_id = c.create_run("det", "bench", pb.RunParameters(concurrency=2)).id
                _until(c, run_id, lambda r: r.progress.done >= 5, 30)
                _fill(filler, disk.free_bytes() - leave_kib * 1024)
                stopped = _until(c, run_id, lambda r: r.state != pb.RUN_STATE_RUNNING, 60)
        finally:
            first.stop()
        assert stopped.state == pb.RUN_STATE_INTERRUPTED, stopped.error_message
        assert stopped.error_message.startswith(f"disk full: cannot write to {db} ")
        assert stopped.progress.done < N
        assert f"run {run_id} interrupted: disk full" in first.log_text()
        filler.unlink()
        second = start_server(db, log_dir=tmp_path)
        try:
            with EvaluatorClient(Connection(target=second.target)) as c:
                final = _until(c, run_id, lambda r: r.state not in (pb.RUN_STATE_RUNNING, pb.RUN_STATE_INTERRUPTED), 120)
        finally:
            second.stop()
    finally:
        model.kill()
    assert final.state == pb.RUN_STATE_SUCCEEDED, final.error_message
    assert final.progress.done == N and final.progress.errors == 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        answered = conn.execute(
            "SELECT idx, COUNT(*) FROM attempts WHERE run_id = ? AND outcome = 'answered' GROUP BY idx", (run_id,)
        ).fetchall()
        finals = conn.execute("SELECT COUNT(*) FROM attempts WHERE run_id = ? AND final = 1", (run_id,)).fetchone()[0]
    conn.close()
    assert sorted(idx for idx, _ in answered) == list(range(N))  # write_benchmark_tsv numbers rows 0..N-1
    assert {n for _, n in answered} == {1}
    assert finals == N
