"""Run a script of several SQL statements inside the caller's transaction (the migrations)."""

from __future__ import annotations

import sqlite3


def execute_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute each statement of ``script`` on ``conn``, in order, in its open transaction.

    ``sqlite3.Connection.executescript`` would commit first, and sqlite-utils' splitter (the
    store used that library then) rebuilds the script one character at a time, which made
    each new database cost 40-60 ms of CPU (docs/benchmarks.md). Here the script is cut at
    every ``;`` and the pieces are joined until SQLite says the statement is complete, so a
    ``;`` in a comment, a string or a trigger's body does not end it.
    """
    pieces = script.split(";")
    pending = ""
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1  # the text after the last ";": run as it is, if anything
        pending += piece if last else piece + ";"
        if last or sqlite3.complete_statement(pending):
            statement = pending.strip()
            pending = ""
            if statement and statement != ";":
                conn.execute(statement)
