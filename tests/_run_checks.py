"""Checks of a run against a real evaluator and its SQLite file, shared by the end-to-end
tests: wait for a run to reach a state, read each (question, rotation)'s final attempt, and
check that circular accuracy is never above vanilla at any node of ``scores``' JSON."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.store.attempts import list_attempts
from gmai_eval.server.store.database import Database


def wait_run(
    stub: pb_grpc.EvaluatorServiceStub, run_id: str, predicate: Callable[[pb.Run], bool], timeout: float = 60
) -> pb.Run:
    """Poll GetRun until ``predicate`` holds (AssertionError with the last state otherwise)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = stub.GetRun(pb.GetRunRequest(id=run_id), timeout=10).run
        if predicate(run):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached the expected state: {run}")


def final_by_rotation(db_path: Path, run_id: str) -> dict[tuple[int, int], tuple[str, ...]]:
    """Labels of each (question, rotation)'s final attempt; asserts one final attempt each."""
    with Database(db_path) as db:
        attempts = list_attempts(db, run_id)
    finals: dict[tuple[int, int], tuple[str, ...]] = {}
    for a in attempts:
        if a.final:
            assert (a.idx, a.rotation) not in finals, f"question {a.idx} rotation {a.rotation}: two final attempts"
            finals[(a.idx, a.rotation)] = a.labels
    return finals


def never_above_vanilla(doc: dict[str, object]) -> None:
    """Every node of a circular run's ``scores --tree --format json``: same n, circular
    correct at most vanilla correct, and the circular accuracy inside its interval."""
    nodes = doc["nodes"]
    assert isinstance(nodes, list) and len(nodes) > 10
    for n in nodes:
        c = n["circular"]
        assert c["n"] == n["n"]
        assert c["correct"] <= n["correct"], n
        assert c["ci_low"] <= c["accuracy"] <= c["ci_high"]
