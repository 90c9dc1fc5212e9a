"""The SQLite store: the only package that imports sqlite_utils.

``database`` owns the file: one writer thread with group commit, thread-local readers,
and the named migrations of each area (``schema_*``). One repository module per area
(``benchmarks``, ``runs``, ``attempts``, ``grades``, ``metrics_reads``) holds its SQL;
each table has exactly one writing stage. The store returns typed records and plain rows
and knows nothing about grading, runs or gRPC.
"""

from gmai_eval.server.store.database import Database

__all__ = ["Database"]
