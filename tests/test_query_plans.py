"""Reads that join questions to their attempts stay linear in the run size.

The plan of ``export_rows`` is checked with ``EXPLAIN QUERY PLAN``: the final attempt of a
question must be one index lookup on (run_id, final, idx) or the primary key, never a
search on (run_id, final) alone, which visits every final attempt of the run for each
question. Every read query of the grading store that touches ``attempts`` is then run on
runs of two sizes while SQLite counts its virtual-machine steps: four times the questions
must cost about four times the steps, not sixteen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as gstore
from gmai_eval.server.store import prediction_files as files

from tests._scoring_helpers import A, insert_benchmark, insert_run, make_questions

RUN = "r-000000000001"

READS: dict[str, Callable[[sqlite3.Connection], object]] = {
    "export_rows": lambda s: files.export_rows(s, RUN),
    "final_attempts": lambda s: gstore.final_attempts(s, RUN),
    "final_attempts ungraded": lambda s: gstore.final_attempts(s, RUN, ungraded_for=("2024", "")),
    "graded_rows": lambda s: gstore.graded_rows(s, RUN, "2024", ""),
    "run_info": lambda s: gstore.run_info(s, RUN),
    "question_fields": lambda s: gstore.question_fields(s, RUN),
    "scored_answers": lambda s: gstore.scored_answers(s, RUN),
}


def _database(path: Path, n: int) -> Path:
    """A file with one benchmark of ``n`` questions and one graded run over all of them."""
    qs = make_questions(n, seed=4)
    with Database(path) as db:
        bid = insert_benchmark(db, qs)
        # an earlier failed attempt on every third question, so attempts outnumber questions
        insert_run(db, bid, [A(q.idx, labels=["A"], outcome="error" if q.idx % 3 == 0 else "answered") for q in qs])
    return path


def _traced(path: Path, fn: Callable[[sqlite3.Connection], object]) -> list[str]:
    """The SQL statements ``fn`` runs (parameters expanded)."""
    conn = sqlite3.connect(path)
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        fn(conn)
    finally:
        conn.close()
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


def _steps(path: Path, fn: Callable[[sqlite3.Connection], object]) -> int:
    """Virtual-machine steps (in hundreds) SQLite spends on ``fn``."""
    conn = sqlite3.connect(path)
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    conn.set_progress_handler(tick, 100)
    try:
        fn(conn)
    finally:
        conn.close()
    return count


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _database(tmp_path_factory.mktemp("plans") / "small.db", 300)


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _database(tmp_path_factory.mktemp("plans") / "large.db", 1200)


def test_export_rows_looks_up_each_final_attempt(small: Path) -> None:
    (sql,) = _traced(small, READS["export_rows"])
    conn = sqlite3.connect(small)
    try:
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()
    lines = [p for p in plan if p.startswith(("SEARCH a ", "SCAN a"))]
    assert len(lines) == 1, plan
    assert lines[0].endswith("LEFT-JOIN"), plan
    lookup = lines[0].removesuffix(" LEFT-JOIN")
    assert lookup in (
        "SEARCH a USING INDEX attempts_final_question (run_id=? AND final=? AND idx=? AND rotation=?)",
        "SEARCH a USING INDEX sqlite_autoindex_attempts_1 (run_id=? AND idx=? AND rotation=?)",
    ), plan


def test_the_old_index_alone_still_looks_up_each_final_attempt(small: Path, tmp_path: Path) -> None:
    """With only the release 0.1.0 index, the 0.1.0 schema searched every final attempt of
    the run per question (``attempts_final (run_id=? AND final=?)``, quadratic). Since
    runs_0004_rotations the primary key leads with (run_id, idx, rotation), so even that
    index leaves a per-question lookup."""
    old = tmp_path / "old.db"
    old.write_bytes(small.read_bytes())
    conn = sqlite3.connect(old)
    try:
        conn.executescript(
            "DROP INDEX attempts_final_question; CREATE INDEX attempts_final ON attempts (run_id, final);"
        )
        (sql,) = _traced(old, READS["export_rows"])
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    finally:
        conn.close()
    assert "SEARCH a USING INDEX attempts_final (run_id=? AND final=?) LEFT-JOIN" not in plan
    assert "SEARCH a USING INDEX sqlite_autoindex_attempts_1 (run_id=? AND idx=? AND rotation=?) LEFT-JOIN" in plan


@pytest.mark.parametrize("name", sorted(READS))
def test_read_cost_grows_linearly(name: str, small: Path, large: Path) -> None:
    fn = READS[name]
    ratio = _steps(large, fn) / max(1, _steps(small, fn))
    # 4x the questions: about 4x the steps when linear, about 16x when quadratic
    assert ratio < 6, f"{name}: {ratio:.1f}x the steps for 4x the questions"
