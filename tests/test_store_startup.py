"""The store's start-up imports neither sqlite-utils, pandas nor numpy.

The store talks to ``sqlite3`` directly (docs/dependencies.md); before, sqlite-utils imported
pandas and numpy whenever they were installed, and loaded its plugins' entry points, on every
``--db`` command and every ``serve`` (docs/benchmarks.md, "sqlite-utils removed"). Each case
runs in a fresh interpreter, since the module cache of the test process already holds
whatever other tests imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _fresh(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned here."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_opening_a_database_imports_no_third_party_store_library(tmp_path: Path) -> None:
    got = _fresh(
        "import json, sys\n"
        "from gmai_eval.server.store import Database\n"
        f"db = Database({str(tmp_path / 'x.db')!r})\n"
        "n = db.read(lambda c: c.execute('SELECT COUNT(*) FROM sqlite_master').fetchone()[0])\n"
        "db.close()\n"
        "heavy = ('sqlite_utils', 'pandas', 'numpy', 'pluggy', 'dateutil', 'importlib.metadata')\n"
        "print(json.dumps({'tables': n > 20, 'loaded': [m for m in heavy if m in sys.modules]}))"
    )
    assert got == {"tables": True, "loaded": []}


def test_the_connections_keep_the_pragmas_sqlite_utils_set(tmp_path: Path) -> None:
    got = _fresh(
        "import json\n"
        "from gmai_eval.server.store import Database\n"
        f"db = Database({str(tmp_path / 'x.db')!r})\n"
        "r = db.read(lambda c: [c.execute(f'PRAGMA {p}').fetchone()[0] for p in\n"
        "    ('recursive_triggers', 'foreign_keys', 'journal_mode')])\n"
        "w = db.write(lambda c: c.execute('PRAGMA recursive_triggers').fetchone()[0])\n"
        "db.close()\n"
        "print(json.dumps({'read': r, 'write': w}))"
    )
    assert got == {"read": [1, 1, "wal"], "write": 1}
