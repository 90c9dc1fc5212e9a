"""Fixtures shared by several test modules (helpers that are plain functions live in ``tests/_<area>_helpers.py``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from gmai_eval.server.store.database import Database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh evaluator database in ``tmp_path``, closed after the test."""
    with Database(tmp_path / "eval.db") as database:
        yield database


SLOWEST_FIRST = (
    "test_demo.py",
    "test_reference_models.py",
    "test_cli_reports_both_ways.py",
    "test_cli_scoring_both_ways.py",
    "test_cli_diagnose.py",
    "test_cli_env.py",
    "test_cli_follow.py",
    "test_circular_reference.py",
    "test_multi_reference.py",
    "test_disk_full.py",
    "test_outages.py",
    "test_cli_writes_both_ways.py",
    "test_circular_scores.py",
    "test_viewer_browser.py",
    "test_cli_runs_both_ways.py",
    "test_packaging.py",
)
"""The modules that take longest (summed ``--durations=0``, docs/benchmarks.md), longest first.

``make test`` hands whole modules to its workers in collection order
(``--dist loadscope --no-loadscope-reorder``); starting with these keeps a long module from
being the last one left, with the other workers idle. The order only moves work."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the modules of :data:`SLOWEST_FIRST` first; everything else keeps its order."""
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


HEAVY_MODULES = ("torch", "scipy", "statsmodels", "pandas", "kubernetes_validate")
"""Oracles and tools that cost 0.1 to 1.3 s each to import. The tests that use them import
them in their own body: pytest-xdist collects every module in every worker, and importing
these at collection took each worker's collection from about 3.6 to 7.9 s
(docs/benchmarks.md, "The test suite")."""

IMPORTED_AT_COLLECTION = pytest.StashKey[tuple[str, ...]]()
"""Which of :data:`HEAVY_MODULES` were imported once collection finished (see
``tests/test_collection.py``)."""


def pytest_collection_finish(session: pytest.Session) -> None:
    """Note which of :data:`HEAVY_MODULES` collecting the tests imported."""
    session.config.stash[IMPORTED_AT_COLLECTION] = tuple(m for m in HEAVY_MODULES if m in sys.modules)
