"""The SQLite store: the only package that imports sqlite_utils.

``database`` owns the file: one writer thread with group commit, thread-local readers,
and the named migrations of each area (``schema_*``). One repository module per area
(``benchmarks``, ``runs``, ``attempts``, ``grades``, ``metrics_reads``) holds its SQL;
each table has exactly one writing stage. The store returns typed records and plain rows
and knows nothing about grading, runs or gRPC.

``sqlite_utils`` is imported here first, with ``pandas`` and ``numpy`` hidden:
sqlite-utils imports both at import time whenever they are installed, only to map their
types to columns in its ``insert``/``upsert`` helpers, which the store never calls (it
writes with SQL). pandas is not in ``gmai-eval[server]``, but where it is installed (a
development venv, through statsmodels) that import was most of every command's start-up:
0.4 s of CPU and 35 MB of RSS of ``gmai-eval import`` on 2 cores; numpy (in the extra,
for the synthetic benchmarks) cost every ``--db`` command about 0.1 s more
(docs/benchmarks.md). Both stay importable by anything else, and one imported before the
store is left to sqlite-utils.
"""

import sys

_HIDDEN = ("pandas", "numpy")
"""What sqlite-utils would import for nothing the store uses."""


def _import_sqlite_utils_alone() -> None:
    """Import ``sqlite_utils`` so that it finds none of :data:`_HIDDEN` not yet imported."""
    if "sqlite_utils" in sys.modules:
        return
    hidden = [name for name in _HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # import NAME -> ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            del sys.modules[name]


_import_sqlite_utils_alone()

from gmai_eval.server.store.database import Database  # noqa: E402

__all__ = ["Database"]
