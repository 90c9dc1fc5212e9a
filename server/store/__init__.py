"""The SQLite store: the only package of the evaluator that imports ``sqlite3``.

``database`` owns the file: one writer thread with group commit, thread-local readers,
and the named migrations of each area (``schema_*``). One repository module per area
(``benchmarks``, ``runs``, ``attempts``, ``grades``, ``metrics_reads``) holds its SQL;
each table has exactly one writing stage. The store returns typed records and plain rows
and knows nothing about grading, runs or gRPC.

The store talks to the standard library's ``sqlite3`` directly: every read and write is SQL
on a plain connection (docs/dependencies.md says why sqlite-utils left).
"""

from gmai_eval.server.store.database import Database

__all__ = ["Database"]
