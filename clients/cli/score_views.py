"""Render scores, comparisons and calibrations from the API's messages (pure).

The scoring commands get the same messages both ways: from the evaluator at ``--server``
(GetRunScores, CompareRuns, GetRunCalibration) or built from the file with ``--db`` by the
functions behind those RPCs. One renderer prints them, so every ``--format`` is the same
document either way. Accuracies are percentages with two decimals in ``table`` and
``markdown`` (as the paper prints them) and fractions in ``json`` and ``csv`` (as
VLMEvalKit writes them).

This module is part of the base install: it imports nothing of the evaluator.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

FORMATS: tuple[str, ...] = ("table", "json", "csv", "markdown")
"""Output formats of the scoring commands."""

DIMENSIONS: tuple[str, ...] = ("overall", "task", "department", "granularity", "modality", "label", "tree")
"""Every dimension, in report order (the evaluator's ``scoring.aggregate.DIMENSIONS``)."""


def _name(path: Sequence[str]) -> str:
    return " / ".join(path) if path else "Overall"


def _dimension_order(names: Sequence[str]) -> list[str]:
    return sorted(names, key=lambda d: (DIMENSIONS.index(d) if d in DIMENSIONS else len(DIMENSIONS), d))


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    for r in rows:
        cells = (c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def _markdown(headers: list[str], rows: list[list[str]]) -> str:
    out = ["|" + "|".join(headers) + "|", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["|" + "|".join(c.replace("|", "\\|") for c in r) + "|" for r in rows]
    return "\n".join(out) + "\n"


def _grid(fmt: str, headers: list[str], rows: list[list[str]]) -> str:
    return _markdown(headers, rows) if fmt == "markdown" else _table(headers, rows)


# --- scores ---------------------------------------------------------------------------------


def node_dict(n: pb.NodeScore) -> dict[str, object]:
    """A node as a JSON-ready dict."""
    return {
        "dimension": n.dimension, "path": list(n.path), "abbreviation": n.abbreviation, "n": n.n,
        "correct": n.correct, "accuracy": n.accuracy, "ci_low": n.ci_low, "ci_high": n.ci_high,
        "incorrect": n.incorrect, "unparsed": n.unparsed, "refused": n.refused, "errors": n.errors,
    }


def render_scores(resp: pb.GetRunScoresResponse, by: str | None = None, fmt: str = "table") -> str:
    """Render a run's scores.

    Args:
        resp: the scores (the nodes of the dimensions asked for).
        by: the one dimension asked for (the overall node is always included), or None for all.
        fmt: ``table``, ``json``, ``csv`` or ``markdown``.
    """
    nodes = [n for n in resp.nodes if by is None or n.dimension in ("overall", by)]
    macro = {
        d: resp.macro_accuracy[d] for d in _dimension_order(list(resp.macro_accuracy)) if by is None or d == by
    }
    if fmt == "json":
        doc: dict[str, object] = {
            "run_id": resp.run_id, "era": resp.extraction_era, "judge": resp.judge_model,
            "unscored": resp.unscored, "ungraded": resp.ungraded,
            "macro_accuracy": macro, "nodes": [node_dict(n) for n in nodes],
        }
        if resp.HasField("position_bias"):
            doc["position_bias"] = position_bias_dict(resp.position_bias)
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["dimension", "path", "abbreviation", "n", "correct", "accuracy", "ci_low", "ci_high",
                    "unparsed", "refused", "errors"])
        for n in nodes:
            w.writerow([n.dimension, "/".join(n.path), n.abbreviation, n.n, n.correct, repr(n.accuracy),
                        repr(n.ci_low), repr(n.ci_high), n.unparsed, n.refused, n.errors])
        return buf.getvalue()
    headers = ["node", "abbr", "n", "correct", "acc %", "95% CI", "unparsed", "refused", "errors"]
    rows = []
    for n in nodes:
        label = _name(n.path)
        if by is None and n.dimension != "overall":
            label = f"{n.dimension}: {label}"
        rows.append([label, n.abbreviation, str(n.n), str(n.correct), f"{100 * n.accuracy:.2f}",
                     f"{100 * n.ci_low:.2f}-{100 * n.ci_high:.2f}", str(n.unparsed), str(n.refused),
                     str(n.errors)])
    head = f"run {resp.run_id}  era {resp.extraction_era}  judge {resp.judge_model or 'none (exact matching)'}"
    tail = [f"macro accuracy ({dim}): {100 * acc:.2f}" for dim, acc in macro.items()]
    if resp.unscored:
        tail.append(f"unscored (no answer key): {resp.unscored}")
    if resp.ungraded:
        tail.append(f"not answered yet: {resp.ungraded}")
    if resp.HasField("position_bias"):
        tail += position_bias_lines(resp.position_bias, fmt)
    return f"{head}\n\n{_grid(fmt, headers, rows)}" + ("\n" + "\n".join(tail) + "\n" if tail else "")


def position_bias_dict(b: pb.PositionBias) -> dict[str, object]:
    """A run's position bias as a JSON-ready dict."""
    return {
        "flagged": b.flagged, "flag_p_value": b.flag_p_value, "flag_effect": b.flag_effect, "excluded": b.excluded,
        "groups": [
            {"options": g.options, "n": g.n, "letters": list(g.letters), "chosen": list(g.chosen),
             "key": list(g.key), "chi_square": g.chi_square, "df": g.df, "p_value": g.p_value,
             "effect": g.effect, "flagged": g.flagged}
            for g in b.groups
        ],
    }


def position_bias_lines(b: pb.PositionBias, fmt: str = "table") -> list[str]:
    """The short position-bias block under the scores: one line per number of options."""
    head = (f"position bias: {'FLAGGED' if b.flagged else 'not flagged'} (flag: p < {b.flag_p_value:g} and "
            f"effect >= {b.flag_effect:g}; chosen/key % per letter; {b.excluded} left out: no option or no key)")
    out = ["", head]
    for g in b.groups:
        shares = " ".join(f"{lab} {100 * c / g.n:.0f}/{100 * k / g.n:.0f}%"
                          for lab, c, k in zip(g.letters, g.chosen, g.key, strict=True))
        test = f"chi2 {g.chi_square:.2f} df {g.df} p {g.p_value:.3g}" if g.df else "not tested (one key letter)"
        out.append(f"{'- ' if fmt == 'markdown' else '  '}{g.options} options, n {g.n}: {shares}; {test}; "
                   f"effect {g.effect:.3f}; flagged {'yes' if g.flagged else 'no'}")
    if not b.groups:
        out.append("  no answered question with a key to test")
    return out


# --- comparisons ----------------------------------------------------------------------------


def delta_points(c: pb.NodeComparison) -> float:
    """B minus A, in accuracy points."""
    return 100.0 * (c.accuracy_b - c.accuracy_a)


def comparison_dict(c: pb.NodeComparison) -> dict[str, object]:
    """A node comparison as a JSON-ready dict."""
    return {
        "dimension": c.dimension, "path": list(c.path), "n": c.n, "accuracy_a": c.accuracy_a,
        "accuracy_b": c.accuracy_b, "delta_points": delta_points(c), "a_only": c.a_only, "b_only": c.b_only,
        "p_value": c.p_value, "significant": c.significant,
    }


def _ids(ids: Sequence[int], limit: int = 50) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids) - limit} more)" if len(ids) > limit else "")


def render_comparison(resp: pb.CompareRunsResponse, fmt: str = "table", by: str | None = None) -> str:
    """Render a comparison (with the gate's outcome when the request carried a policy)."""
    nodes = [n for n in resp.nodes if by is None or n.dimension in ("overall", by)]
    to_wrong = [int(i) for i in resp.flipped_to_wrong]
    to_right = [int(i) for i in resp.flipped_to_right]
    failures = list(resp.gate.failures) if resp.HasField("gate") else None
    if fmt == "json":
        doc: dict[str, object] = {
            "run_a": resp.run_a.id, "run_b": resp.run_b.id, "era": resp.extraction_era, "alpha": resp.alpha,
            "nodes": [comparison_dict(n) for n in nodes],
            "flipped_to_wrong": to_wrong, "flipped_to_right": to_right,
            "unpaired_a": resp.unpaired_a, "unpaired_b": resp.unpaired_b,
        }
        if failures is not None:
            doc["gate"] = {"passed": not failures, "failures": failures}
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["dimension", "path", "n", "accuracy_a", "accuracy_b", "delta_points", "a_only", "b_only",
                    "p_value", "significant"])
        for n in nodes:
            w.writerow([n.dimension, "/".join(n.path), n.n, repr(n.accuracy_a), repr(n.accuracy_b),
                        repr(delta_points(n)), n.a_only, n.b_only, repr(n.p_value), int(n.significant)])
        return buf.getvalue()
    headers = ["node", "n", "A %", "B %", "delta", "A only", "B only", "p", "sig"]
    rows = [
        [(f"{n.dimension}: " if n.dimension != "overall" else "") + _name(n.path), str(n.n),
         f"{100 * n.accuracy_a:.2f}", f"{100 * n.accuracy_b:.2f}", f"{delta_points(n):+.2f}", str(n.a_only),
         str(n.b_only), f"{n.p_value:.3g}", "*" if n.significant else ""]
        for n in nodes
    ]
    lines = [f"A = {resp.run_a.id}  B = {resp.run_b.id}  era {resp.extraction_era}  alpha {resp.alpha:g}", "",
             _grid(fmt, headers, rows).rstrip("\n"), ""]
    lines.append(f"flipped to wrong ({len(to_wrong)}): {_ids(to_wrong)}")
    lines.append(f"flipped to right ({len(to_right)}): {_ids(to_right)}")
    if resp.unpaired_a or resp.unpaired_b:
        lines.append(f"not paired: {resp.unpaired_a} only in A, {resp.unpaired_b} only in B")
    if failures is not None:
        lines.append("gate: PASSED" if not failures else "gate: FAILED")
        lines += [f"  - {f}" for f in failures]
    return "\n".join(lines) + "\n"


# --- calibration ----------------------------------------------------------------------------


def render_calibration(resp: pb.GetRunCalibrationResponse, fmt: str = "table") -> str:
    """Render a calibration summary."""
    coverage = [(c.coverage, c.accuracy) for c in resp.coverage]
    if fmt == "json":
        doc = {"n": resp.n, "accuracy": resp.accuracy, "ece": resp.ece, "brier": resp.brier, "nll": resp.nll,
               "coverage": [list(x) for x in coverage]}
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        return "coverage,accuracy\n" + "".join(f"{c!r},{a!r}\n" for c, a in coverage)
    if resp.n == 0:
        answered = resp.run.progress.done - resp.run.progress.errors
        return (f"run {resp.run.id} has no option probabilities: none of its {answered} answered questions "
                "carries them (the model sent labels or text only), so there is nothing to calibrate\n")
    rows = [[f"{100 * c:.0f}%", f"{100 * a:.2f}"] for c, a in coverage]
    head = (f"calibration over {resp.n} answers with option probabilities and an answer key\n"
            f"accuracy of the argmax of the probabilities: {100 * resp.accuracy:.2f}% "
            "(not the run's score, which grades the answers it gave; see `gmai-eval scores`)\n"
            f"ECE {resp.ece:.4f}, Brier {resp.brier:.4f}, NLL {resp.nll:.4f}\n\n")
    return head + _grid(fmt, ["coverage", "acc %"], rows)
