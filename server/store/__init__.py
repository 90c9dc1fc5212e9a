"""The SQLite store: the only package that imports sqlite_utils.

``database`` owns the file: one writer thread with group commit, thread-local readers,
and the named migrations of each area (``schema_*``). One repository module per area
(``benchmarks``, ``runs``, ``attempts``, ``grades``, ``metrics_reads``) holds its SQL;
each table has exactly one writing stage. The store returns typed records and plain rows
and knows nothing about grading, runs or gRPC.

``sqlite_utils`` is imported here first, with ``pandas`` hidden: sqlite-utils imports
pandas at import time whenever it is installed, only to map pandas types to columns,
which the store never writes. pandas is not in ``gmai-eval[server]``, but where it is
installed (a development venv, through statsmodels) that import was most of every
command's start-up: 0.4 s of CPU and 35 MB of RSS of ``gmai-eval import`` on 2 cores
(docs/benchmarks.md). pandas itself stays importable by anything else.
"""

import sys


def _import_sqlite_utils_without_pandas() -> None:
    """Import ``sqlite_utils`` so that it finds no pandas (``sys.modules`` entry ``None``)."""
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        return
    sys.modules["pandas"] = None  # type: ignore[assignment]  # import pandas -> ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        del sys.modules["pandas"]


_import_sqlite_utils_without_pandas()

from gmai_eval.server.store.database import Database  # noqa: E402

__all__ = ["Database"]
