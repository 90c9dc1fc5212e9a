"""Schema of grading: extracted labels and verdicts, judge calls (written by grading)."""

from __future__ import annotations

import sqlite3

from gmai_eval.server.store.sql_script import execute_script


def _initial(db: sqlite3.Connection) -> None:
    execute_script(
        db,
        """
        CREATE TABLE grades (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            era TEXT NOT NULL,                 -- 2024 | 2025-08 | 2026-06
            judge TEXT NOT NULL DEFAULT '',    -- registered judge model, '' for none
            extracted TEXT NOT NULL DEFAULT '',-- label(s), 'Z', or '' (none)
            method TEXT NOT NULL,              -- label|option|regex|text|refusal|api_failure|judge|judge_failed|status|none|error
            verdict TEXT NOT NULL,             -- correct|incorrect|unparsed|refused|error|unscored
            log TEXT NOT NULL DEFAULT '',
            attempt INTEGER NOT NULL DEFAULT 0,-- attempt graded; 0 = unknown (taken as current)
            PRIMARY KEY (run_id, idx, era, judge)
        );
        CREATE INDEX grades_run ON grades (run_id, era, judge, verdict);
        CREATE TABLE judge_calls (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            judge TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            reply TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, idx, judge, attempt)
        );
        """,
    )


def _run_summaries(db: sqlite3.Connection) -> None:
    """What the metrics collector exports for a run, computed once when the run ends."""
    execute_script(
        db,
        """
        CREATE TABLE run_summaries (
            run_id TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            era TEXT NOT NULL,                 -- the run's own era; judge '' (exact matching)
            summary TEXT NOT NULL,             -- JSON: top-level nodes (n, correct), ratios, ECE
            computed_at TEXT NOT NULL
        );
        """,
    )


MIGRATIONS = [("grades_0001_initial", _initial), ("grades_0002_run_summaries", _run_summaries)]
