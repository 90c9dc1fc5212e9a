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

TOP_LEVEL: tuple[str, ...] = ("overall", "task", "department", "granularity", "modality")
"""What ``scores`` shows by default: the paper's columns (``--tree`` adds labels and the lexical tree)."""

SCREEN_LINES = 40
"""Most lines of ``compare``'s default table/markdown output."""


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


def _dims(by: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if by is None:
        return None
    return ("overall", by) if isinstance(by, str) else ("overall", *by)


def _info(run: pb.Run, key: str) -> str:
    return str(run.model_info[key]) if key in run.model_info else ""


def _when(run: pb.Run, field: str) -> str:
    if not run.HasField(field):
        return "-"
    return str(getattr(run, field).ToJsonString())[:19] + "Z"


def provenance_lines(run: pb.Run, era: str, judge: str = "") -> list[str]:
    """Where a run's numbers come from: model, weights, benchmark, filter, era, evaluator, dates."""
    name = _info(run, "name") or run.model
    version = _info(run, "version") or "unknown"
    weights = _info(run, "weights_digest") or "no weights digest"
    return [
        f"run {run.id}: model {run.model} ({name} version {version}, weights {weights})",
        f"benchmark {run.benchmark} ({run.benchmark_digest or 'no digest'}), "
        f"filter {run.parameters.filter or 'none (all questions)'}",
        f"era {era}, judge {judge or 'none (exact matching)'}, evaluator {run.evaluator_version or 'unknown'}, "
        f"created {_when(run, 'created_time')}, finished {_when(run, 'finished_time')}",
    ]


# --- scores ---------------------------------------------------------------------------------


def node_dict(n: pb.NodeScore) -> dict[str, object]:
    """A node as a JSON-ready dict (``multi_answer`` on a multi-choice benchmark, ``circular`` for a circular run)."""
    doc: dict[str, object] = {
        "dimension": n.dimension, "path": list(n.path), "abbreviation": n.abbreviation, "n": n.n,
        "correct": n.correct, "accuracy": n.accuracy, "ci_low": n.ci_low, "ci_high": n.ci_high,
        "incorrect": n.incorrect, "unparsed": n.unparsed, "refused": n.refused, "errors": n.errors,
    }
    if n.HasField("multi_answer"):
        doc["multi_answer"] = {name: getattr(n.multi_answer, name) for name in _MULTI_FIELDS}
    if n.HasField("circular"):
        c = n.circular
        doc["circular"] = {"n": c.n, "correct": c.correct, "accuracy": c.accuracy, "ci_low": c.ci_low,
                           "ci_high": c.ci_high}
    return doc


_MULTI_FIELDS = (
    "acc_mcls", "acc_mcls_ci_low", "acc_mcls_ci_high", "recall_mcls", "recall_mcls_ci_low", "recall_mcls_ci_high",
)
"""The fields of MultiAnswerScore, in order (JSON keys and CSV columns)."""


def _multi_cells(n: pb.NodeScore) -> list[str]:
    """ACC_mcls and Recall_mcls of a node for the table: percent with their interval."""
    m = n.multi_answer
    return [
        f"{100 * m.acc_mcls:.2f}", f"{100 * m.acc_mcls_ci_low:.2f}-{100 * m.acc_mcls_ci_high:.2f}",
        f"{100 * m.recall_mcls:.2f}", f"{100 * m.recall_mcls_ci_low:.2f}-{100 * m.recall_mcls_ci_high:.2f}",
    ]


def render_scores(resp: pb.GetRunScoresResponse, by: str | Sequence[str] | None = None, fmt: str = "table") -> str:
    """Render a run's scores.

    Args:
        resp: the scores (the nodes of the dimensions asked for).
        by: the dimension(s) to show (the overall node is always included), or None for all in ``resp``.
        fmt: ``table``, ``json``, ``csv`` or ``markdown``; the last two begin with the run's provenance.
    """
    dims = _dims(by)
    nodes = [n for n in resp.nodes if dims is None or n.dimension in dims]
    circular = any(n.HasField("circular") for n in resp.nodes)
    macro = {
        d: resp.macro_accuracy[d]
        for d in _dimension_order(list(resp.macro_accuracy))
        if dims is None or (d in dims and d != "overall")
    }
    if fmt == "json":
        doc: dict[str, object] = {
            "run_id": resp.run_id, "era": resp.extraction_era, "judge": resp.judge_model,
            "unscored": resp.unscored, "ungraded": resp.ungraded,
            "macro_accuracy": macro, "nodes": [node_dict(n) for n in nodes],
        }
        if resp.multi_choice:
            doc["multi_choice"] = True
        if circular:
            doc["circular_incomplete"] = resp.circular_incomplete
        if resp.HasField("position_bias"):
            doc["position_bias"] = position_bias_dict(resp.position_bias)
        return json.dumps(doc, indent=2) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["dimension", "path", "abbreviation", "n", "correct", "accuracy", "ci_low", "ci_high",
                    "unparsed", "refused", "errors", *(_MULTI_FIELDS if resp.multi_choice else ())]
                   + (["circular_n", "circular_correct", "circular_accuracy", "circular_ci_low",
                       "circular_ci_high"] if circular else []))
        for n in nodes:
            c = n.circular
            multi = [repr(getattr(n.multi_answer, f)) for f in _MULTI_FIELDS] if resp.multi_choice else []
            w.writerow([n.dimension, "/".join(n.path), n.abbreviation, n.n, n.correct, repr(n.accuracy),
                        repr(n.ci_low), repr(n.ci_high), n.unparsed, n.refused, n.errors, *multi]
                       + ([c.n, c.correct, repr(c.accuracy), repr(c.ci_low), repr(c.ci_high)] if circular else []))
        return buf.getvalue()
    headers = ["node", "abbr", "n", "correct", "acc %", "95% CI", "unparsed", "refused", "errors"]
    if resp.multi_choice:
        headers[3:6] = ["exact", "exact %", "95% CI"]
        headers += ["ACC_mcls %", "95% CI", "Recall_mcls %", "95% CI"]
    if circular:
        headers[4:6] = ["vanilla %", "95% CI", "circular %", "95% CI"]
    rows = []
    for n in nodes:
        label = _name(n.path)
        if (dims is None or len(dims) > 2) and n.dimension != "overall":
            label = f"{n.dimension}: {label}"
        row = [label, n.abbreviation, str(n.n), str(n.correct), f"{100 * n.accuracy:.2f}",
               f"{100 * n.ci_low:.2f}-{100 * n.ci_high:.2f}", str(n.unparsed), str(n.refused), str(n.errors),
               *(_multi_cells(n) if resp.multi_choice else [])]
        if circular:
            c = n.circular
            row[6:6] = [f"{100 * c.accuracy:.2f}", f"{100 * c.ci_low:.2f}-{100 * c.ci_high:.2f}"]
        rows.append(row)
    if resp.HasField("run"):
        prov = provenance_lines(resp.run, resp.extraction_era, resp.judge_model)
        head = "\n".join(f"- {p}" for p in prov) if fmt == "markdown" else "\n".join(prov)
    else:
        head = f"run {resp.run_id}  era {resp.extraction_era}  judge {resp.judge_model or 'none (exact matching)'}"
    tail = [f"macro accuracy ({dim}): {100 * acc:.2f}" for dim, acc in macro.items()]
    if resp.multi_choice:
        tail.insert(0, "multi-answer questions: accuracy counts exact sets; ACC_mcls and Recall_mcls as in the paper")
    if resp.unscored:
        tail.append(f"unscored (no answer key): {resp.unscored}")
    if resp.ungraded:
        tail.append(f"not answered yet: {resp.ungraded}")
    if circular:
        tail.append("circular: a question counts only if every rotation of its options is answered correctly;"
                    " vanilla is rotation 0 (the original order)")
        if resp.circular_incomplete:
            tail.append(f"left out of circular (a rotation not answered yet): {resp.circular_incomplete}")
    if resp.HasField("position_bias"):
        tail += position_bias_lines(resp.position_bias, fmt)
    return f"{head}\n\n{_grid(fmt, headers, rows)}" + ("\n" + "\n".join(tail) + "\n" if tail else "")


def position_bias_dict(b: pb.PositionBias) -> dict[str, object]:
    """A run's position bias as a JSON-ready dict (``following`` for a circular run)."""
    doc: dict[str, object] = {
        "flagged": b.flagged, "flag_p_value": b.flag_p_value, "flag_effect": b.flag_effect, "excluded": b.excluded,
        "groups": [
            {"options": g.options, "n": g.n, "letters": list(g.letters), "chosen": list(g.chosen),
             "key": list(g.key), "chi_square": g.chi_square, "df": g.df, "p_value": g.p_value,
             "effect": g.effect, "flagged": g.flagged}
            for g in b.groups
        ],
    }
    if b.HasField("following"):
        f = b.following
        doc["following"] = {"eligible": f.eligible, "position": f.position, "text": f.text,
                            "position_share": f.position_share, "text_share": f.text_share}
    return doc


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
    if b.HasField("following"):
        f = b.following
        out.append(f"{'- ' if fmt == 'markdown' else '  '}circular: of {f.eligible} questions answered with a letter in"
                   f" every rotation, {100 * f.position_share:.1f}% follow a position (same letter each time),"
                   f" {100 * f.text_share:.1f}% follow the text (same option each time)")
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


def _verdict(overall: pb.NodeComparison | None, alpha: float, failures: list[str] | None) -> str:
    if failures is not None:
        return "verdict: gate PASSED" if not failures else f"verdict: gate FAILED ({len(failures)} failure(s))"
    if overall is None:
        return "verdict: no overall node to judge"
    if not overall.significant:
        return f"verdict: no significant difference overall (p {overall.p_value:.3g} >= alpha {alpha:g})"
    side = "better" if overall.accuracy_b > overall.accuracy_a else "worse"
    return f"verdict: B is significantly {side} than A overall (p {overall.p_value:.3g} < alpha {alpha:g})"


def _comparison_row(n: pb.NodeComparison) -> list[str]:
    return [(f"{n.dimension}: " if n.dimension != "overall" else "") + _name(n.path), str(n.n),
            f"{100 * n.accuracy_a:.2f}", f"{100 * n.accuracy_b:.2f}", f"{delta_points(n):+.2f}", str(n.a_only),
            str(n.b_only), f"{n.p_value:.3g}", "*" if n.significant else ""]


def render_comparison(
    resp: pb.CompareRunsResponse, fmt: str = "table", by: str | Sequence[str] | None = None, details: bool = False
) -> str:
    """Render a comparison (with the gate's outcome when the request carried a policy).

    ``table`` and ``markdown`` lead with the answer: the verdict (the gate's when a policy was
    given), the overall delta with its p-value, then the nodes that changed significantly,
    within :data:`SCREEN_LINES` lines; ``details`` adds every node and the flipped questions.
    """
    dims = _dims(by)
    nodes = [n for n in resp.nodes if dims is None or n.dimension in dims]
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
        if resp.circular:
            doc["accuracy"] = "circular"
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
    bullet = "- " if fmt == "markdown" else "  "
    overall = next((n for n in resp.nodes if n.dimension == "overall"), None)
    lines = [_verdict(overall, resp.alpha, failures)]
    shown_failures = (failures or []) if details else (failures or [])[:10]
    lines += [f"{bullet}{f}" for f in shown_failures]
    if failures and len(failures) > len(shown_failures):
        lines.append(f"{bullet}... and {len(failures) - len(shown_failures)} more failure(s) (--details lists them)")
    if overall is not None:
        lines.append(
            f"{'circular ' if resp.circular else ''}overall: A {100 * overall.accuracy_a:.2f}%"
            f" -> B {100 * overall.accuracy_b:.2f}% "
            f"({delta_points(overall):+.2f} points), p {overall.p_value:.3g}, n {overall.n}; "
            f"{len(to_wrong)} flipped to wrong, {len(to_right)} to right"
        )
    headers = ["node", "n", "A %", "B %", "delta", "A only", "B only", "p", "sig"]
    changed = sorted(
        (n for n in nodes if n.significant and n.dimension != "overall"),
        key=lambda n: (n.p_value, DIMENSIONS.index(n.dimension) if n.dimension in DIMENSIONS else len(DIMENSIONS)),
    )
    tail = [f"A = {resp.run_a.id}  B = {resp.run_b.id}  era {resp.extraction_era}  alpha {resp.alpha:g}"]
    if resp.unpaired_a or resp.unpaired_b:
        tail.append(f"not paired: {resp.unpaired_a} only in A, {resp.unpaired_b} only in B")
    if details:
        lines += ["", f"every node ({len(nodes)}; * = significant at alpha {resp.alpha:g}):",
                  _grid(fmt, headers, [_comparison_row(n) for n in nodes]).rstrip("\n"), "",
                  f"flipped to wrong ({len(to_wrong)}): {_ids(to_wrong)}",
                  f"flipped to right ({len(to_right)}): {_ids(to_right)}", *tail]
        return "\n".join(lines) + "\n"
    lines.append("")
    if not changed:
        lines.append(f"no node changed significantly (alpha {resp.alpha:g}, {len(nodes)} nodes compared)")
    else:
        lines.append(f"nodes that changed significantly (alpha {resp.alpha:g}): {len(changed)} of {len(nodes)}")
        room = max(1, SCREEN_LINES - len(lines) - len(tail) - 5)
        lines.append(_grid(fmt, headers, [_comparison_row(n) for n in changed[:room]]).rstrip("\n"))
        if len(changed) > room:
            lines.append(f"... and {len(changed) - room} more (--details lists every node)")
    lines += ["", *tail, "--details: every node and the flipped questions"]
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
