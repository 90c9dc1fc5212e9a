"""Named, ordered schema migrations.

Each area of the store declares its migrations as ``(name, function)`` pairs in its own
module (``schema_benchmarks``, ``schema_runs``, ``schema_grades``). A migration runs once;
its name is recorded in ``_migrations``. Never edit a released migration: append a new one.
The resulting schema is documented in docs/schema.md.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable

from gmai_eval.server.store import schema_benchmarks, schema_grades, schema_runs

Migration = tuple[str, Callable[[sqlite3.Connection], None]]

MIGRATIONS: list[Migration] = [
    *schema_benchmarks.MIGRATIONS,
    *schema_runs.MIGRATIONS,
    *schema_grades.MIGRATIONS,
]


def apply_migrations(db: sqlite3.Connection) -> list[str]:
    """Apply every migration not yet recorded; return the names applied."""
    names = [name for name, _ in MIGRATIONS]
    if len(set(names)) != len(names):
        raise RuntimeError("duplicate migration names")
    db.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
    applied = []
    for name, fn in MIGRATIONS:
        if name in done:
            continue
        db.execute("BEGIN IMMEDIATE")
        try:
            fn(db)
            db.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (name, dt.datetime.now(dt.UTC).isoformat()),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        applied.append(name)
    return applied
