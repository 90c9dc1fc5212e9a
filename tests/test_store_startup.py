"""The store's start-up: sqlite-utils is imported without pandas and numpy, which stay importable.

sqlite-utils imports pandas and numpy at import time whenever they are installed (the development venv
has it through statsmodels); the store hides it for that one import (docs/benchmarks.md,
"Import at official row size"). Each case runs in a fresh interpreter, since the module
cache of the test process already holds whatever other tests imported.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest


def _fresh(code: str) -> dict[str, object]:
    """Run ``code`` in a fresh interpreter; it prints one JSON object, returned here."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_store_does_not_import_pandas() -> None:
    got = _fresh(
        "import json, sys\n"
        "import gmai_eval.server.store\n"
        "import sqlite_utils.db\n"
        "print(json.dumps({'pandas': 'pandas' in sys.modules, 'pd': sqlite_utils.db.pd is None,\n"
        "                  'entry': sys.modules.get('pandas', 'absent') is None,\n"
        "                  'numpy': 'numpy' in sys.modules, 'np': sqlite_utils.db.np is None}))"
    )
    assert got == {"pandas": False, "pd": True, "entry": False, "numpy": False, "np": True}


def test_numpy_stays_importable_and_one_imported_first_is_left_to_sqlite_utils() -> None:
    got = _fresh(
        "import json\n"
        "import gmai_eval.server.store\n"
        "import numpy\n"
        "print(json.dumps({'sum': int(numpy.arange(4).sum())}))"
    )
    assert got == {"sum": 6}
    got = _fresh(
        "import json, numpy\n"
        "import gmai_eval.server.store\n"
        "import sqlite_utils.db\n"
        "print(json.dumps({'same': sqlite_utils.db.np is numpy}))"
    )
    assert got == {"same": True}


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed")
def test_pandas_stays_importable_after_the_store() -> None:
    got = _fresh(
        "import json\n"
        "import gmai_eval.server.store\n"
        "import pandas\n"
        "print(json.dumps({'frame': int(pandas.DataFrame({'a': [1, 2, 3]})['a'].sum())}))"
    )
    assert got == {"frame": 6}


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas is not installed")
def test_pandas_imported_first_is_left_to_sqlite_utils() -> None:
    got = _fresh(
        "import json, pandas\n"
        "import gmai_eval.server.store\n"
        "import sqlite_utils.db\n"
        "print(json.dumps({'same': sqlite_utils.db.pd is pandas}))"
    )
    assert got == {"same": True}
