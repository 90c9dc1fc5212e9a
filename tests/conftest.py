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
