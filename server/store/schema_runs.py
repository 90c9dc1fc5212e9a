"""Schema of models, runs, the questions of each run and every answer attempt."""

from __future__ import annotations

import sqlite3

from gmai_eval.server.store.sql_script import execute_script


def _initial(db: sqlite3.Connection) -> None:
    execute_script(
        db,
        """
        CREATE TABLE models (
            name TEXT PRIMARY KEY,
            endpoints TEXT NOT NULL,           -- JSON list
            version TEXT NOT NULL DEFAULT '',
            tls TEXT NOT NULL DEFAULT '{}',    -- JSON TlsSettings
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            model TEXT NOT NULL,
            benchmark_id INTEGER NOT NULL REFERENCES benchmarks(id),
            benchmark_digest TEXT NOT NULL,
            state TEXT NOT NULL,               -- queued|running|succeeded|failed|cancelled|interrupted
            params TEXT NOT NULL,              -- JSON RunParameters
            model_spec TEXT NOT NULL,          -- JSON of the registered model at creation
            model_info TEXT NOT NULL DEFAULT '{}',  -- JSON GetModelInfo from the pre-flight
            evaluator_version TEXT NOT NULL,
            request_id TEXT,
            salt TEXT NOT NULL,                -- per-run secret for opaque question ids
            total INTEGER NOT NULL,
            error_message TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        );
        CREATE UNIQUE INDEX runs_request_id ON runs (request_id) WHERE request_id IS NOT NULL;
        CREATE TABLE run_questions (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,              -- questions.idx
            qid TEXT NOT NULL,                 -- opaque id sent on the wire
            position INTEGER NOT NULL,         -- order of asking
            PRIMARY KEY (run_id, idx)
        );
        CREATE UNIQUE INDEX run_questions_qid ON run_questions (run_id, qid);
        CREATE TABLE attempts (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            attempt INTEGER NOT NULL,          -- 1-based
            request_id TEXT NOT NULL,
            outcome TEXT NOT NULL,             -- answered | error
            final INTEGER NOT NULL,            -- 1: the question's final attempt
            code TEXT NOT NULL DEFAULT 'OK',   -- gRPC status name or local reason
            error TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT '',   -- answered|abstained|refused|input_unsupported
            labels TEXT NOT NULL DEFAULT '[]', -- JSON list of selected labels
            text TEXT NOT NULL DEFAULT '',
            option_scores TEXT NOT NULL DEFAULT '{}',  -- JSON label -> probability
            model_version TEXT NOT NULL DEFAULT '',
            endpoint TEXT NOT NULL DEFAULT '',
            latency_s REAL NOT NULL DEFAULT 0,
            request_bytes INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, idx, attempt)
        );
        CREATE INDEX attempts_final ON attempts (run_id, final);
        """,
    )


def _final_attempt_by_question(db: sqlite3.Connection) -> None:
    """Index final attempts by question, so a join on (run_id, idx, final = 1) is one lookup.

    With only ``(run_id, final)`` SQLite answered that join by scanning every final attempt
    of the run for each question (reads quadratic in the run size; docs/benchmarks.md,
    "Reads at scale"). ``(run_id, final, idx)`` serves the same run-wide reads and makes the
    per-question lookup an equality on all three columns.
    """
    execute_script(
        db,
        """
        DROP INDEX IF EXISTS attempts_final;
        CREATE INDEX attempts_final_question ON attempts (run_id, final, idx);
        """,
    )


def _run_events(db: sqlite3.Connection) -> None:
    """A run's history: one row per life-cycle event (created, outage, end...), in order."""
    execute_script(
        db,
        """
        CREATE TABLE run_events (
            id INTEGER PRIMARY KEY,            -- order of recording
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            at TEXT NOT NULL,                  -- ISO-8601 UTC
            kind TEXT NOT NULL,                -- created|preflight_passed|resumed|outage_started|...
            message TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX run_events_run ON run_events (run_id, id);
        """,
    )


def _rotations(db: sqlite3.Connection) -> None:
    """Circular runs ask a question once per rotation of its options (issue 14).

    ``run_questions`` and ``attempts`` gain a ``rotation`` column in their keys: 0 is the
    original option order, the only one a run that is not circular asks, so every
    existing row becomes rotation 0 and reads as before. SQLite cannot change a primary
    key in place, so both tables are rebuilt (same columns, same indexes).
    """
    execute_script(
        db,
        """
        CREATE TABLE run_questions_new (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,              -- questions.idx
            rotation INTEGER NOT NULL DEFAULT 0,  -- 0 = original order; circular: 0..k-1
            qid TEXT NOT NULL,                 -- opaque id sent on the wire
            position INTEGER NOT NULL,         -- order of asking
            PRIMARY KEY (run_id, idx, rotation)
        );
        INSERT INTO run_questions_new (run_id, idx, rotation, qid, position)
            SELECT run_id, idx, 0, qid, position FROM run_questions;
        DROP TABLE run_questions;
        ALTER TABLE run_questions_new RENAME TO run_questions;
        CREATE UNIQUE INDEX run_questions_qid ON run_questions (run_id, qid);

        CREATE TABLE attempts_new (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            rotation INTEGER NOT NULL DEFAULT 0,  -- run_questions.rotation
            attempt INTEGER NOT NULL,          -- 1-based
            request_id TEXT NOT NULL,
            outcome TEXT NOT NULL,             -- answered | error
            final INTEGER NOT NULL,            -- 1: the question's final attempt
            code TEXT NOT NULL DEFAULT 'OK',   -- gRPC status name or local reason
            error TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL DEFAULT '',   -- answered|abstained|refused|input_unsupported
            labels TEXT NOT NULL DEFAULT '[]', -- JSON list of selected labels
            text TEXT NOT NULL DEFAULT '',
            option_scores TEXT NOT NULL DEFAULT '{}',  -- JSON label -> probability
            model_version TEXT NOT NULL DEFAULT '',
            endpoint TEXT NOT NULL DEFAULT '',
            latency_s REAL NOT NULL DEFAULT 0,
            request_bytes INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (run_id, idx, rotation, attempt)
        );
        INSERT INTO attempts_new (run_id, idx, rotation, attempt, request_id, outcome, final, code,
                error, status, labels, text, option_scores, model_version, endpoint, latency_s,
                request_bytes, created_at)
            SELECT run_id, idx, 0, attempt, request_id, outcome, final, code, error, status, labels,
                text, option_scores, model_version, endpoint, latency_s, request_bytes, created_at
            FROM attempts;
        DROP TABLE attempts;
        ALTER TABLE attempts_new RENAME TO attempts;
        CREATE INDEX attempts_final_question ON attempts (run_id, final, idx, rotation);
        """,
    )


MIGRATIONS = [
    ("runs_0001_initial", _initial),
    ("runs_0002_final_attempt_by_question", _final_attempt_by_question),
    ("runs_0003_run_events", _run_events),
    ("runs_0004_rotations", _rotations),
]

