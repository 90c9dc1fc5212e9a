"""Helpers for the metrics and deployment tests: a populated database, a metrics server,
promtool, and a Prometheus server on loopback.

Rows are written with plain SQL through ``Database.write`` (the real schema and
migrations), so the metrics tests do not depend on the importer or scheduler.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from gmai_eval.server.scoring.grading import store_summary
from gmai_eval.server.store import Database
from prometheus_client import CollectorRegistry, start_http_server

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"

TASKS = ("Disease Diagnosis", "Organ Recognition - Abdomen", "Counting")
DEPARTMENTS = ("Dermatology", "Urology", "")
GRANULARITIES = ("Image level", "Box level")
MODALITIES = ("CT", "X-ray", "Dermoscopy")


@dataclass(frozen=True)
class Answer:
    """One graded question of a synthetic run."""

    task: str
    department: str
    granularity: str
    modality: str
    verdict: str
    option_scores: dict[str, float] | None = None


def require_tool(name: str) -> str:
    """Path of a Prometheus tool; fail (never skip) with the install hint when missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found on PATH: install Debian's 'prometheus' package "
            "(make promtool, or: sudo apt-get install prometheus)"
        )
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def synthetic_answers(n: int, correct_every: int = 2, seed: int = 0) -> list[Answer]:
    """``n`` answers spread over a few tasks, departments, granularities and modalities;
    one in ``correct_every`` is correct, and some are refused or unparsed."""
    out = []
    for i in range(n):
        k = i + seed
        if i % correct_every == 0:
            verdict = "correct"
        elif i % 7 == 3:
            verdict = "refused"
        elif i % 11 == 5:
            verdict = "unparsed"
        else:
            verdict = "incorrect"
        out.append(
            Answer(
                task=TASKS[k % len(TASKS)],
                department=DEPARTMENTS[(k // 2) % len(DEPARTMENTS)],
                granularity=GRANULARITIES[k % len(GRANULARITIES)],
                modality=MODALITIES[(k // 3) % len(MODALITIES)],
                verdict=verdict,
            )
        )
    return out


def add_benchmark(db: Database, name: str, questions: Sequence[Answer]) -> int:
    """Insert a ready benchmark with one question per answer (correct label 'A')."""

    def w(d) -> int:  # type: ignore[no-untyped-def]
        d.execute(
            "INSERT OR IGNORE INTO images (sha256, media_type, width, height, mode, size_bytes, data) "
            "VALUES ('0' , 'image/png', 1, 1, 'L', 1, x'00')"
        )
        cur = d.execute(
            "INSERT INTO benchmarks (name, digest, layout, state, question_count, created_at) "
            "VALUES (?, ?, 'VAL', 'ready', ?, '2026-11-01T00:00:00+00:00')",
            [name, f"sha256:{name.encode().hex():0<64}", len(questions)],
        )
        bid = int(cur.lastrowid)
        for i, q in enumerate(questions):
            d.execute(
                "INSERT INTO questions (benchmark_id, idx, question, option_a, option_b, answer, "
                "answer_source, category, clinical_task, department, granularity, modality, "
                "original_task, image_path, image_sha256, source_file, source_row) "
                "VALUES (?, ?, 'q?', 'yes', 'no', 'A', 'answer', 'yes', ?, ?, ?, ?, '', '', '0', 'x.tsv', ?)",
                [bid, i, q.task, q.department, q.granularity, q.modality, i + 1],
            )
        return bid

    return db.write(w)


def add_run(
    db: Database,
    *,
    run_id: str,
    model: str,
    version: str,
    benchmark_id: int,
    answers: Sequence[Answer],
    finished_at: str,
    state: str = "succeeded",
    era: str = "2024",
    weights_digest: str = "sha256:ab",
    summarise: bool = True,
) -> None:
    """Insert a run over questions 0..len(answers)-1 with one final attempt and grade each.

    A run in a final state then gets its summary stored, as the run manager's end-of-run
    grading does (``summarise=False`` leaves it out: a run whose final grading never ran).
    """

    def w(d) -> None:  # type: ignore[no-untyped-def]
        d.execute(
            "INSERT INTO runs (id, model, benchmark_id, benchmark_digest, state, params, model_spec, "
            "model_info, evaluator_version, salt, total, created_at, started_at, finished_at) "
            "VALUES (?, ?, ?, 'sha256:x', ?, ?, '{}', ?, '0.1.0', 's', ?, ?, ?, ?)",
            [
                run_id, model, benchmark_id, state, json.dumps({"extraction_era": era}),
                json.dumps({"name": model, "version": version, "weights_digest": weights_digest}),
                len(answers), finished_at, finished_at,
                finished_at if state in ("succeeded", "failed", "cancelled") else None,
            ],
        )
        for i, a in enumerate(answers):
            d.execute(
                "INSERT INTO run_questions (run_id, idx, qid, position) VALUES (?, ?, ?, ?)",
                [run_id, i, f"{run_id}-{i}", i],
            )
            label = "A" if a.verdict == "correct" else "B"
            d.execute(
                "INSERT INTO attempts (run_id, idx, attempt, request_id, outcome, final, status, "
                "labels, option_scores, created_at) VALUES (?, ?, 1, ?, ?, 1, 'answered', ?, ?, ?)",
                [
                    run_id, i, f"{run_id}-{i}-1", "error" if a.verdict == "error" else "answered",
                    json.dumps([label]), json.dumps(a.option_scores or {}), finished_at,
                ],
            )
            d.execute(
                "INSERT INTO grades (run_id, idx, era, extracted, method, verdict) VALUES (?, ?, ?, ?, 'label', ?)",
                [run_id, i, era, label, a.verdict],
            )

    db.write(w)
    if summarise and state in ("succeeded", "failed", "cancelled"):
        store_summary(db, run_id)


@contextlib.contextmanager
def serve_registry(registry: CollectorRegistry) -> Iterator[str]:
    """Serve ``registry`` on 127.0.0.1 port 0; yield the /metrics URL."""
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def fetch(url: str, timeout: float = 10) -> str:
    """GET ``url`` and return the body as text."""
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return str(resp.read().decode("utf-8"))


def promtool_check_metrics(exposition: str) -> subprocess.CompletedProcess[str]:
    """Run ``promtool check metrics`` on an exposition text."""
    return subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=exposition, capture_output=True, text=True, timeout=60,
    )
