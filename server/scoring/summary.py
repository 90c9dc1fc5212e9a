"""A run's summary: what the metrics collector exports for it, computed when the run ends.

Grading writes it (``grading.finish_grading``) from the same scores and calibration as
``gmai-eval scores`` and ``gmai-eval calibration``, so Grafana and the reports agree; a
Prometheus scrape then only reads it back. Pure: building, encoding and decoding only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gmai_eval.server.scoring.aggregate import RunScores
from gmai_eval.server.scoring.calibration import Calibration

EXPORTED_DIMENSIONS = ("overall", "task", "department", "granularity", "modality")
"""Dimensions of the exported nodes (values of the metrics' ``dimension`` label)."""


@dataclass(frozen=True)
class NodeCount:
    """Questions and correct answers of one top-level node of one run."""

    dimension: str
    """``overall``, ``task``, ``department``, ``granularity`` or ``modality``."""
    node: str
    """``all``, a task or department abbreviation, a granularity short form or a modality."""
    n: int
    """Questions scored."""
    correct: int
    """Correct answers."""


@dataclass(frozen=True)
class RunSummary:
    """What the collector exports for one finished run."""

    nodes: tuple[NodeCount, ...]
    """Overall first, then each dimension in paper order."""
    n: int
    """Questions scored in the run."""
    refused: int
    """Refusals."""
    unparsed: int
    """Answers no option could be extracted from."""
    error: int
    """Questions whose final attempt failed."""
    ece: float | None
    """Expected calibration error, or None when no option scores were returned."""
    circular_nodes: tuple[NodeCount, ...] = ()
    """A circular run's top-level nodes counted by circular verdicts; empty otherwise."""


def top_level_nodes(scores: RunScores) -> tuple[NodeCount, ...]:
    """The top-level nodes of ``scores`` as exported.

    Args:
        scores: a run's scores.

    Returns:
        The overall node named ``all``, then tasks and departments by paper abbreviation,
        granularities by short form (``Box``) and modalities by name.
    """
    out: list[NodeCount] = []
    for ns in scores.nodes:
        if ns.dimension not in EXPORTED_DIMENSIONS:
            continue
        name = "all" if ns.dimension == "overall" else ns.abbreviation or ns.path[0]
        out.append(NodeCount(ns.dimension, name, ns.n, ns.correct))
    return tuple(out)


def summarise(scores: RunScores, calibration: Calibration, circular: RunScores | None = None) -> RunSummary:
    """The summary of a run from its (vanilla) scores, its calibration and, for a circular
    run, its circular scores."""
    overall = scores.overall
    return RunSummary(
        nodes=top_level_nodes(scores),
        n=overall.n,
        refused=overall.refused,
        unparsed=overall.unparsed,
        error=overall.errors,
        ece=calibration.ece if calibration.n else None,
        circular_nodes=top_level_nodes(circular) if circular is not None else (),
    )


def to_json(summary: RunSummary) -> str:
    """Encode a summary for the store (``circular_nodes`` only when there are some)."""
    doc: dict[str, object] = {
        "nodes": [[c.dimension, c.node, c.n, c.correct] for c in summary.nodes],
        "n": summary.n,
        "refused": summary.refused,
        "unparsed": summary.unparsed,
        "error": summary.error,
        "ece": summary.ece,
    }
    if summary.circular_nodes:
        doc["circular_nodes"] = [[c.dimension, c.node, c.n, c.correct] for c in summary.circular_nodes]
    return json.dumps(doc, separators=(",", ":"))


def from_json(text: str) -> RunSummary:
    """Decode a summary written by :func:`to_json`.

    Raises:
        ValueError: not a summary (bad JSON or a missing field).
    """
    try:
        doc = json.loads(text)
        return RunSummary(
            nodes=tuple(NodeCount(str(d), str(node), int(n), int(c)) for d, node, n, c in doc["nodes"]),
            n=int(doc["n"]),
            refused=int(doc["refused"]),
            unparsed=int(doc["unparsed"]),
            error=int(doc["error"]),
            ece=None if doc["ece"] is None else float(doc["ece"]),
            circular_nodes=tuple(
                NodeCount(str(d), str(node), int(n), int(c)) for d, node, n, c in doc.get("circular_nodes", [])
            ),
        )
    except (KeyError, TypeError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"not a run summary: {exc}") from exc
