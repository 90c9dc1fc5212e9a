"""Fixtures shared by several test modules (helpers that are plain functions live in ``tests/_<area>_helpers.py``)."""

from __future__ import annotations

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
