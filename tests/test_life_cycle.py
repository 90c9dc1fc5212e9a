"""``runs delete`` and ``benchmarks remove``: admin only, refused while in use, nothing half deleted.

A real ``gmai-eval serve`` (with an admin and a read-only token) and the real CLI in a pipe;
then the same commands with ``--db`` on a file no evaluator serves. What is left is read
straight from SQLite: every table with a ``run_id`` (or ``benchmark_id``) column is found
from the schema itself, not from the code under test.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from gmai_eval.server.errors import FailedPrecondition
from gmai_eval.server.store import Database
from gmai_eval.server.store.lifecycle import delete_run, remove_benchmark

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions
from tests._service_helpers import run_cli as gmai_eval
from tests._service_helpers import running_server

ADMIN = "admin-token-0123456789"
READ = "read-token-0123456789ab"


def tables_with(db: Path, column: str) -> list[str]:
    """Every table of ``db`` that has ``column``, from the schema."""
    with sqlite3.connect(db) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return [t for t in names if any(c[1] == column for c in conn.execute(f"PRAGMA table_info({t})"))]


def rows_of(db: Path, column: str, value: object) -> dict[str, int]:
    """Rows per table whose ``column`` is ``value``."""
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t} WHERE {column} = ?", (value,)).fetchone()[0]
                for t in tables_with(db, column)}


def run_rows(db: Path, run_id: str) -> dict[str, int]:
    """Rows of a run in every table that refers to runs, and its own ``runs`` row."""
    with sqlite3.connect(db) as conn:
        own = conn.execute("SELECT COUNT(*) FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    return {**rows_of(db, "run_id", run_id), "runs": own}


def benchmark_id(db: Path, name: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT id FROM benchmarks WHERE name = ?", (name,)).fetchone()[0])


def fill(db: Path) -> None:
    """Benchmarks bench (runs of every kind), other (one finished run) and spare (none).

    Every run-referencing table gets rows for r-delete (a judge call and history included).
    """
    qs = make_questions(8, seed=9)
    with Database(db) as d:
        bench = insert_benchmark(d, qs)
        other = insert_benchmark(d, qs[:4], name="other", digest="sha256:11")
        insert_benchmark(d, qs[:2], name="spare", digest="sha256:22")
        insert_run(d, bench, [A(q.idx, labels=["A"]) for q in qs], run_id="r-keep00000001")
        errs = [A(q.idx, outcome="error") if q.idx < 2 else A(q.idx, labels=["B"]) for q in qs]
        insert_run(d, bench, errs, run_id="r-delete000001", state="failed")
        insert_run(d, bench, [A(0, labels=["A"])], run_id="r-queued000001", state="queued", extra_questions=[1, 2])
        # Resumed by an evaluator at start (its model never answers): running, waiting for model.
        insert_run(d, bench, [A(0, labels=["A"])], run_id="r-interr000001", state="interrupted", extra_questions=[1])
        insert_run(d, other, [A(q.idx, labels=["A"]) for q in qs[:4]], run_id="r-other0000001", digest="sha256:11")
        d.write(_extra_rows)


def _extra_rows(s: Any) -> None:
    for sql in EXTRA_ROWS:
        s.execute(sql)


EXTRA_ROWS = [
    "INSERT INTO run_events (run_id, at, kind, message) VALUES ('r-delete000001', '2026-01-01', 'created', '')",
    "INSERT INTO judge_calls (run_id, idx, judge, attempt, prompt, reply, created_at)"
    " VALUES ('r-delete000001', 3, 'j', 1, 'p', 'r', '2026-01-01')",
    "INSERT INTO import_defects (benchmark_id, file, row, column_name, message, skipped)"
    " SELECT id, 'f.tsv', 2, 'answer', 'bad', 1 FROM benchmarks WHERE name = 'other'",
    "INSERT INTO source_files (benchmark_id, position, name, sha256, rows, size_bytes)"
    " SELECT id, 0, 'f.tsv', 'x', 4, 10 FROM benchmarks WHERE name = 'other'",
]
"""Rows the helpers do not write: a run's history and judge call, a benchmark's defects and files."""


@dataclass(frozen=True)
class Served:
    target: str
    db: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = tmp_path_factory.mktemp("life-cycle") / "eval.db"
    fill(db)
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN, "GMAI_EVAL_READ_TOKEN": READ}
    with running_server(db, env=env) as proc:
        yield Served(proc.target, db)


def remote(s: Served, *args: str, token: str = ADMIN, code: int = 0) -> str:
    result = gmai_eval(*args, "--server", s.target, "--token", token)
    assert result.returncode == code, (args, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout if code == 0 else result.stderr


def test_the_read_only_token_may_not_delete(served: Served) -> None:
    err = remote(served, "runs", "delete", "r-delete000001", "--yes", token=READ, code=1)
    assert err.startswith("Error: PERMISSION_DENIED") and len(err.strip().splitlines()) == 1
    err = remote(served, "benchmarks", "remove", "spare", "--yes", token=READ, code=1)
    assert err.startswith("Error: PERMISSION_DENIED")
    assert run_rows(served.db, "r-delete000001")["runs"] == 1
    assert "spare" in remote(served, "benchmarks", token=READ)


def test_a_run_in_use_is_refused(served: Served) -> None:
    err = remote(served, "runs", "delete", "r-queued000001", "--yes", code=1)
    assert err.strip() == (
        "Error: FAILED_PRECONDITION: run r-queued000001 is queued: cancel it first "
        "(gmai-eval cancel r-queued000001) or let it end"
    )
    assert run_rows(served.db, "r-queued000001")["run_questions"] == 3
    err = remote(served, "runs", "delete", "r-interr000001", "--yes", code=1)
    assert err.startswith("Error: FAILED_PRECONDITION: run r-interr000001 is running: cancel it first")
    assert run_rows(served.db, "r-interr000001")["runs"] == 1


def test_an_unknown_run_names_the_closest(served: Served) -> None:
    err = remote(served, "runs", "delete", "r-delete00001", "--yes", code=1)
    assert err.startswith("Error: NOT_FOUND: no run 'r-delete00001'; known runs: ")
    assert "r-delete000001" in err and len(err.strip().splitlines()) == 1


def test_delete_through_the_evaluator_removes_every_row(served: Served) -> None:
    before = run_rows(served.db, "r-delete000001")
    assert {t for t, n in before.items() if n == 0} == set(), before  # every table has something to delete
    kept = run_rows(served.db, "r-keep00000001")
    out = remote(served, "runs", "delete", "r-delete000001", "--yes")
    assert out.startswith("deleted run r-delete000001 (m on bench, failed); rows: ")
    assert f"attempts {before['attempts']}," in out and f"judge_calls {before['judge_calls']}," in out
    assert set(run_rows(served.db, "r-delete000001").values()) == {0}
    assert run_rows(served.db, "r-keep00000001") == kept
    assert "r-delete000001" not in remote(served, "runs", "--format", "csv", token=READ)
    err = remote(served, "scores", "r-delete000001", token=READ, code=1)
    assert err.startswith("Error: NOT_FOUND: no run 'r-delete000001'")
    err = remote(served, "runs", "delete", "r-delete000001", "--yes", code=1)
    assert "NOT_FOUND" in err


def test_a_benchmark_with_runs_is_refused_unless_with_runs(served: Served) -> None:
    err = remote(served, "benchmarks", "remove", "bench", "--yes", "--with-runs", code=1)
    assert err.strip() == (
        "Error: FAILED_PRECONDITION: benchmark 'bench' has 2 run(s) going (r-queued000001, r-interr000001); "
        "cancel them or let them end first"
    )
    err = remote(served, "benchmarks", "remove", "other", "--yes", code=1)
    assert "benchmark 'other' has 1 run(s) (r-other0000001)" in err and "--with-runs" in err
    bid = benchmark_id(served.db, "other")
    assert all(rows_of(served.db, "benchmark_id", bid).values())  # questions, files, defects, runs exist
    out = remote(served, "benchmarks", "remove", "other", "--yes", "--with-runs")
    assert out.startswith("removed benchmark other (4 questions, sha256:11); deleted 1 run(s): r-other0000001; ")
    assert set(rows_of(served.db, "benchmark_id", bid).values()) == {0}
    assert set(run_rows(served.db, "r-other0000001").values()) == {0}
    assert "other" not in remote(served, "benchmarks", "--format", "csv", token=READ)


def test_removing_a_benchmark_keeps_images_another_one_uses(served: Served) -> None:
    out = remote(served, "benchmarks", "remove", "spare", "--yes")
    assert out.startswith("removed benchmark spare (2 questions, sha256:22); rows: ")
    assert "images" not in out  # bench still uses the same image
    with sqlite3.connect(served.db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 1
    err = remote(served, "benchmarks", "remove", "spare", "--yes", code=1)
    assert "NOT_FOUND: no benchmark named 'spare'; known benchmarks: bench" in err


def test_the_served_file_is_refused_with_db(served: Served) -> None:
    result = gmai_eval("runs", "delete", "r-keep00000001", "--yes", "--db", str(served.db))
    assert result.returncode == 1
    assert "is already served by another evaluator" in result.stderr
    assert "go through it: gmai-eval runs delete --server HOST:PORT" in result.stderr
    assert run_rows(served.db, "r-keep00000001")["runs"] == 1


def test_with_db_on_a_file_no_evaluator_serves(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    fill(db)
    result = gmai_eval("runs", "delete", "r-delete000001", "--db", str(db))  # no terminal, no --yes
    assert result.returncode == 2 and "nothing deleted: pass --yes" in result.stderr
    assert run_rows(db, "r-delete000001")["runs"] == 1
    result = gmai_eval("runs", "delete", "r-queued000001", "--yes", "--db", str(db))
    assert result.returncode == 1 and "run r-queued000001 is queued: cancel it first" in result.stderr
    result = gmai_eval("runs", "delete", "r-interr000001", "--yes", "--db", str(db))
    assert result.returncode == 1
    assert "run r-interr000001 is interrupted; it resumes at the evaluator's next start: cancel it" in result.stderr
    result = gmai_eval("runs", "delete", "r-delete000001", "--yes", env={"GMAI_EVAL_DB": str(db)})
    assert result.returncode == 0, result.stderr
    assert set(run_rows(db, "r-delete000001").values()) == {0}
    bid = benchmark_id(db, "bench")
    result = gmai_eval("benchmarks", "remove", "bench", "--yes", "--with-runs", "--db", str(db))
    assert result.returncode == 1 and "2 run(s) going (r-queued000001, r-interr000001)" in result.stderr
    with Database(db) as d:  # both end: now the benchmark may go with its runs
        d.write(lambda s: s.execute(
            "UPDATE runs SET state = 'cancelled' WHERE state IN ('queued', 'interrupted')"))
    result = gmai_eval("benchmarks", "remove", "bench", "--yes", "--with-runs", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "deleted 3 run(s): r-keep00000001, r-queued000001, r-interr000001" in result.stdout
    assert set(rows_of(db, "benchmark_id", bid).values()) == {0}
    with sqlite3.connect(db) as conn:  # the image stays while 'other' and 'spare' use it
        assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 1
    for name in ("spare", "other"):
        assert gmai_eval("benchmarks", "remove", name, "--yes", "--with-runs", "--db", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:  # the last user gone, the image goes too
        assert conn.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def answer_prompt(argv: list[str], answer: str) -> tuple[int, str]:
    """Run ``argv`` with stdin and stderr on a pseudo-terminal; type ``answer`` at the prompt."""
    master, slave = pty.openpty()
    base = {k: v for k, v in os.environ.items() if not k.startswith("GMAI_EVAL_")}
    proc = subprocess.Popen(argv, stdin=slave, stderr=slave, stdout=subprocess.PIPE, text=True, env=base)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            seen += os.read(master, 4096)
    os.write(master, answer.encode() + b"\n")
    out, _ = proc.communicate(timeout=60)
    with contextlib.suppress(OSError):
        while select.select([master], [], [], 0.2)[0]:
            chunk = os.read(master, 4096)
            if not chunk:
                break
            seen += chunk
    os.close(master)
    return proc.returncode, seen.decode(errors="replace") + out


def test_on_a_terminal_it_asks_first(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    fill(db)
    argv = [sys.executable, "-m", "gmai_eval.clients.cli", "runs", "delete", "r-delete000001", "--db", str(db)]
    rc, said = answer_prompt(argv, "n")
    assert rc == 1 and "Delete run r-delete000001 with its answers, grades and history?" in said
    assert "nothing deleted (not confirmed)" in said
    assert run_rows(db, "r-delete000001")["runs"] == 1
    rc, said = answer_prompt(argv, "y")
    assert rc == 0, said
    assert "deleted run r-delete000001" in said
    assert set(run_rows(db, "r-delete000001").values()) == {0}


def test_a_run_the_evaluator_still_finishes_is_refused_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "eval.db"
    fill(db)
    before = run_rows(db, "r-keep00000001")
    with Database(db) as d:
        with pytest.raises(FailedPrecondition, match="still finishing it"):
            delete_run(d, "r-keep00000001", busy=lambda run_id: run_id == "r-keep00000001")
        with pytest.raises(FailedPrecondition, match=r"has 1 run\(s\) going \(r-other0000001\)"):
            remove_benchmark(d, "other", with_runs=True, busy=lambda run_id: run_id == "r-other0000001")
    assert run_rows(db, "r-keep00000001") == before
    assert benchmark_id(db, "other")
