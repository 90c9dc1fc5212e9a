"""AttemptWriter: attempts recorded together are committed in one write, each caller waiting."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any

import pytest
from gmai_eval.server.errors import StoreError
from gmai_eval.server.runs.attempt_writer import AttemptWriter
from gmai_eval.server.store.attempts import Attempt, list_attempts
from gmai_eval.server.store.database import Database

from tests._runs_helpers import build_benchmark


class CountingDatabase(Database):
    """A real database that counts the writes queued to its writer thread."""

    writes = 0

    def submit(self, fn: Callable[[Any], Any]) -> concurrent.futures.Future[Any]:
        self.writes += 1
        return super().submit(fn)


def attempt(idx: int) -> Attempt:
    return Attempt(run_id="r-1", idx=idx, attempt=1, request_id=f"q-{idx}-1", outcome="answered", final=True, labels=("A",), option_scores={"A": 0.75})


def insert_run(db: Database) -> None:
    idxs = build_benchmark(db, "bench", 40)

    def fn(d: Any) -> None:
        d.execute(
            "INSERT INTO runs (id, model, benchmark_id, benchmark_digest, state, params, model_spec,"
            " model_info, evaluator_version, request_id, salt, total, error_message, created_at)"
            " VALUES ('r-1', 'm', 1, 'd', 'running', '{}', '{}', '{}', 'v', NULL, 's', 40, '', 't')"
        )
        d.executemany(
            "INSERT INTO run_questions (run_id, idx, qid, position) VALUES ('r-1', ?, ?, ?)",
            [(i, f"q-{i}", p) for p, i in enumerate(idxs)],
        )

    db.write(fn)


async def test_concurrent_attempts_share_writes_and_each_waits_for_its_commit(tmp_path: Any) -> None:
    db = CountingDatabase(tmp_path / "eval.db")
    try:
        insert_run(db)
        before = db.writes
        writer = AttemptWriter(db)
        attempts = [attempt(1000 + i) for i in range(40)]
        await asyncio.gather(*(writer.record(a) for a in attempts))
        # Every caller returned, so every attempt is committed: readable from another connection.
        stored = list_attempts(db, "r-1")
        assert [a.idx for a in stored] == [a.idx for a in attempts]
        assert stored == attempts
        assert db.writes - before < len(attempts) / 4  # grouped, not one write each
    finally:
        db.close()


async def test_a_failed_write_reaches_every_caller(tmp_path: Any) -> None:
    db = Database(tmp_path / "eval.db")
    writer = AttemptWriter(db)
    db.close()
    with pytest.raises(StoreError):
        await asyncio.gather(*(writer.record(attempt(1000 + i)) for i in range(3)))
