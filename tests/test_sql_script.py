"""The migrations' script runner, against hand-split statements and ``sqlite3``'s own ``executescript``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from gmai_eval.server.store import schema_benchmarks, schema_grades, schema_runs
from gmai_eval.server.store.migrations import apply_migrations
from gmai_eval.server.store.sql_script import execute_script

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


HAND_SPLIT = [
    "CREATE TABLE t (a TEXT, b INTEGER);",
    "CREATE TABLE log (msg TEXT);",
    "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log (msg) VALUES ('one; two'); "
    "INSERT INTO log (msg) VALUES (NEW.a); END;",
    "INSERT INTO t (a, b) VALUES ('x;y', 1)",
]
"""TRICKY's four statements, split by hand (whitespace and comments aside)."""


def _bare(sql: str) -> str:
    """``sql`` without its ``--`` comments and with its whitespace collapsed."""
    return " ".join(" ".join(line.split("--")[0].split()) for line in sql.splitlines()).strip()


def test_the_statements_are_those_split_by_hand() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    recorder = Recorder(conn)
    conn.execute("BEGIN")
    execute_script(recorder, TRICKY)  # type: ignore[arg-type]
    assert conn.in_transaction  # nothing committed behind the caller's back
    conn.execute("COMMIT")
    assert [_bare(s) for s in recorder.statements] == HAND_SPLIT
    assert conn.execute("SELECT a, b FROM t").fetchall() == [("x;y", 1)]
    assert conn.execute("SELECT msg FROM log ORDER BY rowid").fetchall() == [("one; two",), ("x;y",)]


def test_a_failing_statement_raises_and_the_caller_can_roll_back() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        execute_script(conn, "CREATE TABLE a (x); INSERT INTO missing VALUES (1);")
    conn.execute("ROLLBACK")
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_the_migrations_make_the_schema_sqlite3_executescript_makes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def schema(path: Path) -> list[tuple[str, str, str, str]]:
        conn = sqlite3.connect(path, isolation_level=None)
        apply_migrations(conn)
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        conn.close()
        return rows

    ours = schema(tmp_path / "ours.db")

    def the_librarys(conn: sqlite3.Connection, script: str) -> None:
        # executescript commits the migration's transaction first and runs in autocommit:
        # fine for an oracle on a fresh file, not for the store. A new transaction is opened
        # for the rest of the migration.
        conn.executescript(script)
        conn.execute("BEGIN")

    for module in (schema_benchmarks, schema_runs, schema_grades):
        monkeypatch.setattr(module, "execute_script", the_librarys)
    theirs = schema(tmp_path / "theirs.db")
    assert len(ours) > 20
    assert ours == theirs
