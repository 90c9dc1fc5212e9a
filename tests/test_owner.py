"""One evaluator per database file: real `gmai-eval serve` processes on one SQLite file."""

from __future__ import annotations

import hashlib
import signal
import subprocess
from pathlib import Path

import pytest
from gmai_eval.server.store.owner import DatabaseInUse, DatabaseOwner, owner_path

from tests._service_helpers import running_server, serve_command, start_server, write_benchmark_tsv


def _second_serve(db: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(serve_command(db), capture_output=True, text=True, timeout=60)


def test_a_second_evaluator_on_the_same_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    with running_server(db) as first:
        second = _second_serve(db)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
        assert "already served by another evaluator" in lines[0]
        assert f"pid {first.proc.pid}" in lines[0] and str(db.resolve()) in lines[0]


def test_offline_writes_still_work_next_to_a_live_evaluator(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    tsv = write_benchmark_tsv(tmp_path / "b.tsv", 6)
    with running_server(db):
        imported = subprocess.run(
            [*serve_command(db)[:3], "import", "--db", str(db), "--name", "next-door", str(tsv)],
            capture_output=True, text=True, timeout=120,
        )
        assert imported.returncode == 0, imported.stderr


def test_the_lock_dies_with_a_killed_evaluator(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    first = start_server(db)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(timeout=20)
    with running_server(db) as again:  # no stale lock to clean up by hand
        assert again.proc.poll() is None


def test_an_idle_owner_leaves_the_database_file_unchanged(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    with running_server(db):
        pass
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with DatabaseOwner(db):
        assert owner_path(db).read_text().startswith("{")
        with pytest.raises(DatabaseInUse, match="already served"):
            DatabaseOwner(db).acquire()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    with DatabaseOwner(db):  # released: free again
        pass
