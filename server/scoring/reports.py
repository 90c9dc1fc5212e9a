"""Render scores and comparisons as a text table, JSON, CSV or Markdown (pure).

Accuracies are shown as percentages with two decimals in ``table`` and ``markdown`` (as
the paper prints them) and as fractions in ``json`` and ``csv`` (as VLMEvalKit writes
them).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.scoring.aggregate import DIMENSIONS, NodeScore, RunScores
from gmai_eval.server.scoring.calibration import Calibration
from gmai_eval.server.scoring.compare import Comparison, NodeComparison

FORMATS: tuple[str, ...] = ("table", "json", "csv", "markdown")
"""Output formats."""

BY_CHOICES: tuple[str, ...] = DIMENSIONS
"""Values of ``--by``."""


def _check(fmt: str) -> None:
    if fmt not in FORMATS:
        raise InvalidArgument(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _name(dimension: str, path: Sequence[str]) -> str:
    if not path:
        return "Overall"
    return " / ".join(path)


def node_dict(n: NodeScore) -> dict[str, object]:
    """A node as a JSON-ready dict."""
    lo, hi = n.ci
    return {
        "dimension": n.dimension, "path": list(n.path), "abbreviation": n.abbreviation, "n": n.n,
        "correct": n.correct, "accuracy": n.accuracy, "ci_low": lo, "ci_high": hi,
        "incorrect": n.incorrect, "unparsed": n.unparsed, "refused": n.refused, "errors": n.errors,
    }


def _select(scores: RunScores, by: str | None) -> list[NodeScore]:
    if by is None:
        return list(scores.nodes)
    if by not in DIMENSIONS:
        raise InvalidArgument(f"unknown dimension {by!r}; expected one of {', '.join(DIMENSIONS)}")
    return [scores.overall] + ([] if by == "overall" else list(scores.dimension(by)))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    for r in rows:
        out.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))).rstrip())
    return "\n".join(out) + "\n"


def _markdown(headers: list[str], rows: list[list[str]]) -> str:
    out = ["|" + "|".join(headers) + "|", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["|" + "|".join(c.replace("|", "\\|") for c in r) + "|" for r in rows]
    return "\n".join(out) + "\n"


def render_scores(scores: RunScores, by: str | None = None, fmt: str = "table") -> str:
    """Render a run's scores.

    Args:
        scores: the scores.
        by: one dimension (the overall node is always included), or None for all.
        fmt: ``table``, ``json``, ``csv`` or ``markdown``.
    """
    _check(fmt)
    nodes = _select(scores, by)
    if fmt == "json":
        return json.dumps(
            {
                "run_id": scores.run_id, "era": scores.era, "judge": scores.judge,
                "unscored": scores.unscored, "ungraded": scores.ungraded,
                "macro_accuracy": dict(scores.macro), "nodes": [node_dict(n) for n in nodes],
            },
            indent=2,
        ) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["dimension", "path", "abbreviation", "n", "correct", "accuracy", "ci_low", "ci_high",
                    "unparsed", "refused", "errors"])
        for n in nodes:
            lo, hi = n.ci
            w.writerow([n.dimension, "/".join(n.path), n.abbreviation, n.n, n.correct, repr(n.accuracy),
                        repr(lo), repr(hi), n.unparsed, n.refused, n.errors])
        return buf.getvalue()
    headers = ["node", "abbr", "n", "correct", "acc %", "95% CI", "unparsed", "refused", "errors"]
    rows = []
    for n in nodes:
        lo, hi = n.ci
        label = _name(n.dimension, n.path)
        if by is None and n.dimension != "overall":
            label = f"{n.dimension}: {label}"
        rows.append([label, n.abbreviation, str(n.n), str(n.correct), f"{100 * n.accuracy:.2f}",
                     f"{100 * lo:.2f}-{100 * hi:.2f}", str(n.unparsed), str(n.refused), str(n.errors)])
    head = f"run {scores.run_id}  era {scores.era}  judge {scores.judge or 'none (exact matching)'}"
    tail = []
    for dim in ([by] if by else list(scores.macro)):
        if dim in scores.macro:
            tail.append(f"macro accuracy ({dim}): {100 * scores.macro[dim]:.2f}")
    if scores.unscored:
        tail.append(f"unscored (no answer key): {scores.unscored}")
    if scores.ungraded:
        tail.append(f"not answered yet: {scores.ungraded}")
    body = _markdown(headers, rows) if fmt == "markdown" else _table(headers, rows)
    return f"{head}\n\n{body}" + ("\n" + "\n".join(tail) + "\n" if tail else "")


def comparison_dict(c: NodeComparison) -> dict[str, object]:
    """A node comparison as a JSON-ready dict."""
    return {
        "dimension": c.dimension, "path": list(c.path), "n": c.n, "accuracy_a": c.accuracy_a,
        "accuracy_b": c.accuracy_b, "delta_points": c.delta_points, "a_only": c.a_only, "b_only": c.b_only,
        "p_value": c.p_value, "significant": c.significant,
    }


def render_comparison(cmp: Comparison, fmt: str = "table", failures: Sequence[str] | None = None,
                      by: str | None = None) -> str:
    """Render a comparison (and gate failures, if a gate was applied)."""
    _check(fmt)
    nodes = [n for n in cmp.nodes if by is None or n.dimension in ("overall", by)]
    if fmt == "json":
        doc: dict[str, object] = {
            "run_a": cmp.run_a, "run_b": cmp.run_b, "era": cmp.era, "alpha": cmp.alpha,
            "nodes": [comparison_dict(n) for n in nodes],
            "flipped_to_wrong": list(cmp.flipped_to_wrong), "flipped_to_right": list(cmp.flipped_to_right),
            "unpaired_a": cmp.only_a, "unpaired_b": cmp.only_b,
        }
        if failures is not None:
            doc["gate"] = {"passed": not failures, "failures": list(failures)}
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["dimension", "path", "n", "accuracy_a", "accuracy_b", "delta_points", "a_only", "b_only",
                    "p_value", "significant"])
        for n in nodes:
            w.writerow([n.dimension, "/".join(n.path), n.n, repr(n.accuracy_a), repr(n.accuracy_b),
                        repr(n.delta_points), n.a_only, n.b_only, repr(n.p_value), int(n.significant)])
        return buf.getvalue()
    headers = ["node", "n", "A %", "B %", "delta", "A only", "B only", "p", "sig"]
    rows = [
        [(f"{n.dimension}: " if n.dimension != "overall" else "") + _name(n.dimension, n.path), str(n.n),
         f"{100 * n.accuracy_a:.2f}", f"{100 * n.accuracy_b:.2f}", f"{n.delta_points:+.2f}", str(n.a_only),
         str(n.b_only), f"{n.p_value:.3g}", "*" if n.significant else ""]
        for n in nodes
    ]
    body = _markdown(headers, rows) if fmt == "markdown" else _table(headers, rows)
    lines = [f"A = {cmp.run_a}  B = {cmp.run_b}  era {cmp.era}  alpha {cmp.alpha:g}", "", body.rstrip("\n"), ""]
    lines.append(f"flipped to wrong ({len(cmp.flipped_to_wrong)}): {_ids(cmp.flipped_to_wrong)}")
    lines.append(f"flipped to right ({len(cmp.flipped_to_right)}): {_ids(cmp.flipped_to_right)}")
    if cmp.only_a or cmp.only_b:
        lines.append(f"not paired: {cmp.only_a} only in A, {cmp.only_b} only in B")
    if failures is not None:
        lines.append("gate: PASSED" if not failures else "gate: FAILED")
        lines += [f"  - {f}" for f in failures]
    return "\n".join(lines) + "\n"


def _ids(ids: Sequence[int], limit: int = 50) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def render_calibration(cal: Calibration, fmt: str = "table") -> str:
    """Render a calibration summary."""
    _check(fmt)
    if fmt == "json":
        return json.dumps({"n": cal.n, "accuracy": cal.accuracy, "ece": cal.ece, "brier": cal.brier,
                           "nll": cal.nll, "coverage": [list(x) for x in cal.coverage]}, indent=2) + "\n"
    rows = [[f"{100 * c:.0f}%", f"{100 * a:.2f}"] for c, a in cal.coverage]
    head = (f"calibration over {cal.n} answers with option probabilities: accuracy {100 * cal.accuracy:.2f}%, "
            f"ECE {cal.ece:.4f}, Brier {cal.brier:.4f}, NLL {cal.nll:.4f}\n\n")
    if fmt == "csv":
        return "coverage,accuracy\n" + "".join(f"{c!r},{a!r}\n" for c, a in cal.coverage)
    return head + (_markdown if fmt == "markdown" else _table)(["coverage", "acc %"], rows)
