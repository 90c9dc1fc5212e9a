"""Damaged database files: refused at start by a real `gmai-eval serve`, DATA_LOSS at run time."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import grpc
import pytest
from gmai_eval.server.api.error_mapping import status_for
from gmai_eval.server.errors import StoreCorrupted, StoreError, StoreFull
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmarks as bench_store
from gmai_eval.server.store.database import store_error
from gmai_eval.server.store.integrity import quick_check

from tests._runs_helpers import build_benchmark
from tests._service_helpers import running_server, serve_command


def _good_db(path: Path) -> Path:
    db = Database(path)
    build_benchmark(db, "bench", 30, image_bytes=20_000)
    db.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def _page_of(path: Path, table: str) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    conn.close()
    return page_size, root


def _roots_of(path: Path, table: str) -> tuple[int, list[int]]:
    """Page size and the root pages of ``table`` and of its indexes."""
    conn = sqlite3.connect(path)
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    roots = [r[0] for r in conn.execute("SELECT rootpage FROM sqlite_master WHERE tbl_name = ? AND rootpage > 0", (table,))]
    conn.close()
    return page_size, roots


def _serve_refuses(db: Path) -> str:
    result = subprocess.run(serve_command(db), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_garbage_over_a_table_is_refused_at_start(tmp_path: Path) -> None:
    db = _good_db(tmp_path / "eval.db")
    page_size, root = _page_of(db, "questions")
    with db.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)
    line = _serve_refuses(db)
    assert "is damaged" in line and str(db.resolve()) in line


def test_a_truncated_copy_is_refused_at_start(tmp_path: Path) -> None:
    db = _good_db(tmp_path / "eval.db")
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    assert "is damaged" in _serve_refuses(db)


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    db.write_bytes(b"this is a TSV file, not SQLite\n" * 400)
    line = _serve_refuses(db)
    assert "is damaged" in line and "not a database" in line


def test_a_sound_file_passes_and_the_check_is_logged(tmp_path: Path) -> None:
    db = _good_db(tmp_path / "eval.db")
    assert quick_check(db).complete
    with running_server(db) as proc:
        pass
    assert f"database {db.resolve()} (opened); quick_check ok in" in proc.log.read_text()


def test_the_check_stops_at_its_budget_without_blocking(tmp_path: Path) -> None:
    db = _good_db(tmp_path / "eval.db")
    ticks = iter(range(1_000_000))
    result = quick_check(db, budget_s=5.0, clock=lambda: float(next(ticks)) * 10)  # 10 s a look
    assert not result.complete and result.ok


def test_damage_found_at_run_time_is_data_loss(tmp_path: Path) -> None:
    db_path = _good_db(tmp_path / "eval.db")
    page_size, roots = _roots_of(db_path, "questions")
    db = Database(db_path)
    try:
        with db_path.open("r+b") as f:
            for root in roots:
                f.seek((root - 1) * page_size)
                f.write(b"\x00\xff" * (page_size // 2))
        with pytest.raises(StoreCorrupted, match="is damaged") as err:
            bench_store.select_question_indexes(db, bench_store.get_benchmark(db, "bench").id, None)
    finally:
        db.close()
    assert status_for(err.value) is grpc.StatusCode.DATA_LOSS


def test_sqlite_error_classes_map_to_the_tree() -> None:
    def raised(sql: str, path: str = ":memory:") -> sqlite3.Error:
        try:
            sqlite3.connect(path).execute(sql)
        except sqlite3.Error as exc:
            return exc
        raise AssertionError("no error")

    plain = store_error(raised("SELECT * FROM nowhere"), "x.db", "read")
    assert type(plain) is StoreError and status_for(plain) is grpc.StatusCode.UNAVAILABLE
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
    assert isinstance(store_error(full, "x.db", "write to"), StoreFull)
