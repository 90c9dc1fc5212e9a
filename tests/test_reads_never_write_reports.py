"""Reads never write, for the results commands: ``report``, ``history`` and ``leaderboard``
leave the database file byte for byte as they found it (same check as
tests/test_reads_never_write.py, on the same database)."""

from __future__ import annotations

from pathlib import Path

from tests.test_reads_never_write import _build, _checkpoint, _cli, _fingerprint, settled

__all__ = ["settled"]  # the fixture, shared


def test_report_history_and_leaderboard_leave_the_database_unchanged(settled: Path, tmp_path: Path) -> None:
    db = str(settled)
    _checkpoint(settled)
    before = _fingerprint(settled)
    _cli("report", "--db", db, "r-b", "--baseline", "r-a", "--out", str(tmp_path / "r.html"))
    _cli("report", "--db", db, "r-a", "--no-images", "--out", str(tmp_path / "a.html"))
    assert "r-a" in _cli("history", "--db", db, "--model", "m", "--format", "json")
    assert "leader" in _cli("leaderboard", "--db", db, "--benchmark", "bench", "--with-paper")
    assert _fingerprint(settled) == before
    _cli("rescore", "--db", db, "r-a", "--era", "2025-08")  # the check can fail: a write changes the file
    assert _fingerprint(settled) != before


def test_a_report_on_an_ungraded_run_counts_it_ungraded_instead_of_grading(tmp_path: Path) -> None:
    path = _build(tmp_path / "e.db")  # r-b: finished, never graded
    _checkpoint(path)
    before = _fingerprint(path)
    out = tmp_path / "b.html"
    _cli("report", "--db", str(path), "r-b", "--out", str(out))
    assert 'data-key="ungraded"><b>40</b>' in out.read_text()
    assert _fingerprint(path) == before
