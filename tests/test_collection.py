"""Collecting the tests stays cheap: no test module imports a heavy oracle at import time.

The check covers the modules this session collected: every one of them under ``make test``."""

from __future__ import annotations

import pytest

from tests.conftest import HEAVY_MODULES, IMPORTED_AT_COLLECTION


def test_collection_imports_none_of_the_heavy_modules(pytestconfig: pytest.Config) -> None:
    imported = pytestconfig.stash[IMPORTED_AT_COLLECTION]
    assert imported == (), (
        f"collecting the tests imported {', '.join(imported)}: import it inside the tests that use it"
        f" (every pytest-xdist worker collects every module; watched: {', '.join(HEAVY_MODULES)})"
    )
