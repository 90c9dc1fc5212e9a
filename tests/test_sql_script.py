"""The migrations' script runner against sqlite-utils' own statement splitter (the oracle)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from gmai_eval.server.store import schema_benchmarks, schema_grades, schema_runs
from gmai_eval.server.store.migrations import apply_migrations
from gmai_eval.server.store.sql_script import execute_script
from sqlite_utils.db import _iter_complete_sql_statements

TRICKY = """
    CREATE TABLE t (a TEXT, b INTEGER);  -- a comment; with a semicolon
    CREATE TABLE log (msg TEXT);
    CREATE TRIGGER t_log AFTER INSERT ON t BEGIN
        INSERT INTO log (msg) VALUES ('one; two');
        INSERT INTO log (msg) VALUES (NEW.a);
    END;
    INSERT INTO t (a, b) VALUES ('x;y', 1)
"""


class Recorder:
    """A connection that records each statement it is given."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[str] = []

    def execute(self, sql: str) -> sqlite3.Cursor:
        self.statements.append(sql)
        return self.conn.execute(sql)


def test_the_statements_are_those_sqlite_utils_splits() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    recorder = Recorder(conn)
    conn.execute("BEGIN")
    execute_script(recorder, TRICKY)  # type: ignore[arg-type]
    assert conn.in_transaction  # nothing committed behind the caller's back
    conn.execute("COMMIT")
    assert recorder.statements == list(_iter_complete_sql_statements(TRICKY))
    assert len(recorder.statements) == 4
    assert conn.execute("SELECT a, b FROM t").fetchall() == [("x;y", 1)]
    assert conn.execute("SELECT msg FROM log ORDER BY rowid").fetchall() == [("one; two",), ("x;y",)]


def test_a_failing_statement_raises_and_the_caller_can_roll_back() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        execute_script(conn, "CREATE TABLE a (x); INSERT INTO missing VALUES (1);")
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_the_migrations_make_the_schema_sqlite_utils_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def schema(path: Path) -> list[tuple[str, str, str, str]]:
        db = sqlite_utils.Database(path)
        apply_migrations(db)
        rows = db.conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        db.close()
        return rows

    ours = schema(tmp_path / "ours.db")

    def the_librarys(conn: sqlite3.Connection, script: str) -> None:
        for statement in _iter_complete_sql_statements(script):
            conn.execute(statement)

    for module in (schema_benchmarks, schema_runs, schema_grades):
        monkeypatch.setattr(module, "execute_script", the_librarys)
    theirs = schema(tmp_path / "theirs.db")
    assert len(ours) > 20
    assert ours == theirs
