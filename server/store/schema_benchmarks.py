"""Schema of benchmarks, their source files, questions and images (written by import)."""

from __future__ import annotations

import sqlite3

from gmai_eval.server.store.sql_script import execute_script


def _initial(db: sqlite3.Connection) -> None:
    execute_script(
        db,
        """
        CREATE TABLE benchmarks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,  -- ids of deleted (failed) imports are never reused
            name TEXT NOT NULL UNIQUE,
            digest TEXT NOT NULL,
            layout TEXT NOT NULL,              -- VAL | TEST
            state TEXT NOT NULL,               -- importing | ready
            question_count INTEGER NOT NULL DEFAULT 0,
            flagged_count INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );
        CREATE TABLE source_files (
            benchmark_id INTEGER NOT NULL REFERENCES benchmarks(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            rows INTEGER NOT NULL,
            size_bytes INTEGER NOT NULL,
            PRIMARY KEY (benchmark_id, position)
        );
        CREATE TABLE images (
            sha256 TEXT PRIMARY KEY,
            media_type TEXT NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            mode TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            data BLOB NOT NULL
        );
        CREATE TABLE questions (
            benchmark_id INTEGER NOT NULL REFERENCES benchmarks(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,              -- the TSV index column
            question TEXT NOT NULL,
            option_a TEXT, option_b TEXT, option_c TEXT, option_d TEXT, option_e TEXT,
            answer TEXT,                       -- NULL when not derivable (flagged)
            answer_source TEXT NOT NULL,       -- answer | category | none
            category TEXT NOT NULL,
            clinical_task TEXT NOT NULL,
            department TEXT NOT NULL,          -- '' = the N/A node
            granularity TEXT NOT NULL,
            modality TEXT NOT NULL,
            original_task TEXT NOT NULL,
            image_path TEXT NOT NULL,
            image_sha256 TEXT NOT NULL REFERENCES images(sha256),
            source_file TEXT NOT NULL,
            source_row INTEGER NOT NULL,
            extra TEXT NOT NULL DEFAULT '{}',  -- JSON of non-standard columns
            PRIMARY KEY (benchmark_id, idx)
        );
        CREATE INDEX questions_task ON questions (benchmark_id, clinical_task);
        CREATE INDEX questions_department ON questions (benchmark_id, department);
        CREATE INDEX questions_granularity ON questions (benchmark_id, granularity);
        CREATE INDEX questions_modality ON questions (benchmark_id, modality);
        CREATE INDEX questions_image ON questions (image_sha256);
        CREATE TABLE import_defects (
            benchmark_id INTEGER NOT NULL REFERENCES benchmarks(id) ON DELETE CASCADE,
            file TEXT NOT NULL,
            row INTEGER NOT NULL,
            column_name TEXT NOT NULL,
            message TEXT NOT NULL,
            skipped INTEGER NOT NULL           -- 1: row not imported; 0: imported, flagged
        );
        CREATE INDEX import_defects_benchmark ON import_defects (benchmark_id);
        """,
    )


def _multi_choice(db: sqlite3.Connection) -> None:
    """Benchmarks of multi-answer questions (import --multi-choice): keys like ``A,C``."""
    db.execute("ALTER TABLE benchmarks ADD COLUMN multi_choice INTEGER NOT NULL DEFAULT 0")


MIGRATIONS = [("benchmarks_0001_initial", _initial), ("benchmarks_0002_multi_choice", _multi_choice)]
