"""Compare two runs on the same benchmark, and gate a release on the comparison.

Pairing is by benchmark row index over the questions scored in both runs (``unscored``
and unanswered ones drop out). For every node of every flat dimension (and the tree) the
comparison gives both accuracies, the discordant counts and the exact McNemar p-value;
globally it lists the indexes that flipped each way.

A gate policy (JSON or TOML) has these keys, all optional::

    min_overall_accuracy = 0.40      # candidate's overall accuracy, a fraction in [0, 1]
    max_significant_drop = 2.0       # accuracy points: a node may not drop more, significantly
    min_n = 30                       # nodes with fewer paired questions are not gated
    alpha = 0.05                     # significance level (the --alpha option overrides it)
    dimensions = ["overall", "task", "department", "granularity", "modality"]
    accuracy = "vanilla"             # or "circular": gate on circular verdicts (circular runs)

Comparisons and gates use vanilla verdicts (a circular run's rotation 0) unless asked for
``circular``; both runs must then be circular runs, and a question pairs when it is
complete (every rotation answered) in both.
"""

from __future__ import annotations

import json
import tomllib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from gmai_eval.server.errors import FailedPrecondition, InvalidArgument
from gmai_eval.server.scoring.aggregate import DIMENSIONS, Item, node_keys, node_sort_key
from gmai_eval.server.scoring.circular_scores import circular_result
from gmai_eval.server.scoring.extraction import check_era
from gmai_eval.server.scoring.grading import graded_rows
from gmai_eval.server.scoring.stats import mcnemar_exact
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as store


@dataclass(frozen=True)
class NodeComparison:
    """One node of a comparison."""

    dimension: str
    """Dimension."""
    path: tuple[str, ...]
    """Node path."""
    n: int
    """Paired questions."""
    correct_a: int
    """Correct in A."""
    correct_b: int
    """Correct in B."""
    a_only: int
    """Right in A, wrong in B."""
    b_only: int
    """Wrong in A, right in B."""
    p_value: float
    """Exact two-sided McNemar p-value."""
    significant: bool
    """p_value < alpha."""

    @property
    def accuracy_a(self) -> float:
        """Accuracy of A on the paired questions."""
        return self.correct_a / self.n if self.n else 0.0

    @property
    def accuracy_b(self) -> float:
        """Accuracy of B on the paired questions."""
        return self.correct_b / self.n if self.n else 0.0

    @property
    def delta_points(self) -> float:
        """B minus A, in accuracy points."""
        return 100.0 * (self.accuracy_b - self.accuracy_a)


@dataclass(frozen=True)
class Comparison:
    """Comparison of run B (candidate) against run A (baseline)."""

    run_a: str
    """Baseline run."""
    run_b: str
    """Candidate run."""
    era: str
    """Extraction era of both gradings."""
    alpha: float
    """Significance level."""
    nodes: tuple[NodeComparison, ...]
    """Every node, overall first."""
    flipped_to_wrong: tuple[int, ...]
    """Indexes right in A and wrong in B."""
    flipped_to_right: tuple[int, ...]
    """Indexes wrong in A and right in B."""
    only_a: int = 0
    """Questions scored in A only (not paired)."""
    only_b: int = 0
    """Questions scored in B only (not paired)."""

    @property
    def overall(self) -> NodeComparison:
        """The overall node."""
        return self.nodes[0]


def compare_runs(
    db: Database, run_a: str, run_b: str, alpha: float = 0.05, era: str | None = None, circular: bool = False
) -> Comparison:
    """Compare two runs.

    Args:
        db: the database.
        run_a: baseline run id.
        run_b: candidate run id.
        alpha: significance level, in (0, 1).
        era: extraction era for both runs; None for run A's own era.
        circular: compare circular verdicts instead of vanilla ones.

    Raises:
        NotFound: unknown run.
        FailedPrecondition: the runs were made on different benchmark digests, or
            ``circular`` and a run is not a circular run.
        InvalidArgument: bad alpha or era.
    """
    if not 0 < alpha < 1:
        raise InvalidArgument(f"alpha must be in (0, 1), got {alpha}")
    info_a = db.read(lambda s: store.run_info(s, run_a))
    info_b = db.read(lambda s: store.run_info(s, run_b))
    if info_a.benchmark_digest != info_b.benchmark_digest:
        raise FailedPrecondition(
            f"runs {run_a} and {run_b} were made on different benchmarks "
            f"({info_a.benchmark} {info_a.benchmark_digest} vs {info_b.benchmark} {info_b.benchmark_digest}); "
            "only runs on the same benchmark digest can be compared"
        )
    era = check_era(era or info_a.era)
    if circular:
        for info in (info_a, info_b):
            if not info.circular:
                raise FailedPrecondition(
                    f"run {info.id} is not a circular run; a circular comparison needs two (gmai-eval run --circular)"
                )
    rows_a = {r.idx: r for r in _rows(db, info_a, era, circular) if r.verdict != "unscored"}
    rows_b = {r.idx: r for r in _rows(db, info_b, era, circular) if r.verdict != "unscored"}
    paired = sorted(set(rows_a) & set(rows_b))
    counts: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    counts[("overall", ())] = [0, 0, 0, 0, 0]
    to_wrong: list[int] = []
    to_right: list[int] = []
    for idx in paired:
        ra = rows_a[idx]
        ok_a = ra.verdict == "correct"
        ok_b = rows_b[idx].verdict == "correct"
        if ok_a and not ok_b:
            to_wrong.append(idx)
        elif ok_b and not ok_a:
            to_right.append(idx)
        item = Item("x", ra.task, ra.department, ra.granularity, ra.modality, ra.category)
        for key in node_keys(item):
            c = counts[key]
            c[0] += 1
            c[1] += ok_a
            c[2] += ok_b
            c[3] += ok_a and not ok_b
            c[4] += ok_b and not ok_a
    nodes = []
    for key in sorted(counts, key=node_sort_key):
        n, ca, cb, a_only, b_only = counts[key]
        p = mcnemar_exact(a_only, b_only)
        nodes.append(NodeComparison(key[0], key[1], n, ca, cb, a_only, b_only, p, p < alpha))
    return Comparison(
        run_a, run_b, era, alpha, tuple(nodes), tuple(to_wrong), tuple(to_right),
        only_a=len(set(rows_a) - set(rows_b)), only_b=len(set(rows_b) - set(rows_a)),
    )


def _rows(db: Database, info: store.RunInfo, era: str, circular: bool) -> list[store.GradedRow]:
    vanilla = graded_rows(db, info, era, "")
    return list(circular_result(db, info, era, "", vanilla).rows) if circular else vanilla


@dataclass(frozen=True)
class GatePolicy:
    """Release gate rules (see the module docstring)."""

    min_overall_accuracy: float | None = None
    """Candidate's overall accuracy must reach this fraction."""
    max_significant_drop: float | None = None
    """Largest significant drop of a node, in accuracy points."""
    min_n: int = 0
    """Nodes with fewer paired questions are not gated."""
    alpha: float | None = None
    """Significance level, if the policy sets one."""
    dimensions: tuple[str, ...] = ("overall", "task", "department", "granularity", "modality")
    """Dimensions whose nodes are gated."""
    accuracy: str = "vanilla"
    """``vanilla`` or ``circular``: which verdicts the gate compares."""


_POLICY_KEYS = {"min_overall_accuracy", "max_significant_drop", "min_n", "alpha", "dimensions", "accuracy"}


def load_policy(path: str | Path) -> GatePolicy:
    """Read a gate policy from a ``.json`` or ``.toml`` file.

    Raises:
        InvalidArgument: unreadable file, unknown key or bad value (the message names the file).
    """
    try:
        text = Path(path).read_text("utf-8")
    except OSError as exc:
        raise InvalidArgument(f"cannot read gate policy {path}: {exc}") from exc
    return parse_policy(text, str(path))


def parse_policy(text: str, name: str) -> GatePolicy:
    """Parse a gate policy's text; ``name`` (a file name) picks TOML (``.toml``) or JSON.

    Raises:
        InvalidArgument: bad syntax, unknown key or bad value (the message names ``name``).
    """
    p = name
    try:
        raw = tomllib.loads(text) if Path(name).suffix.lower() == ".toml" else json.loads(text)
    except ValueError as exc:
        raise InvalidArgument(f"cannot read gate policy {p}: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidArgument(f"gate policy {p}: expected a table/object at the top level")
    unknown = set(raw) - _POLICY_KEYS
    if unknown:
        raise InvalidArgument(f"gate policy {p}: unknown key(s) {sorted(unknown)}; expected {sorted(_POLICY_KEYS)}")

    def num(key: str, lo: float, hi: float) -> float | None:
        if key not in raw:
            return None
        v = raw[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise InvalidArgument(f"gate policy {p}: {key} must be a number in [{lo}, {hi}], got {v!r}")
        return float(v)

    min_acc = num("min_overall_accuracy", 0.0, 1.0)
    drop = num("max_significant_drop", 0.0, 100.0)
    alpha = num("alpha", 0.0, 1.0)
    min_n = num("min_n", 0, 10**9)
    if min_n is not None and min_n != int(min_n):
        raise InvalidArgument(f"gate policy {p}: min_n must be an integer")
    dims = raw.get("dimensions", list(GatePolicy.dimensions))
    if not isinstance(dims, list) or any(d not in DIMENSIONS for d in dims):
        raise InvalidArgument(f"gate policy {p}: dimensions must be a list of {', '.join(DIMENSIONS)}")
    accuracy = raw.get("accuracy", "vanilla")
    if accuracy not in ("vanilla", "circular"):
        raise InvalidArgument(f"gate policy {p}: accuracy must be \"vanilla\" or \"circular\", got {accuracy!r}")
    return GatePolicy(min_acc, drop, int(min_n or 0), alpha, tuple(dims), accuracy)


def apply_gate(cmp: Comparison, policy: GatePolicy) -> list[str]:
    """Check a comparison against a policy.

    Returns:
        One message per failed rule; empty when the candidate passes.
    """
    failures = []
    overall = cmp.overall
    if policy.min_overall_accuracy is not None and overall.accuracy_b < policy.min_overall_accuracy:
        failures.append(
            f"overall accuracy of {cmp.run_b} is {overall.accuracy_b:.4f}, below min_overall_accuracy "
            f"{policy.min_overall_accuracy:.4f}"
        )
    if policy.max_significant_drop is not None:
        for node in cmp.nodes:
            if node.dimension not in policy.dimensions or node.n < policy.min_n:
                continue
            drop = -node.delta_points
            if node.significant and drop > policy.max_significant_drop:
                name = "/".join(node.path) or "Overall"
                failures.append(
                    f"{node.dimension} {name}: accuracy dropped {drop:.2f} points "
                    f"({100 * node.accuracy_a:.2f} -> {100 * node.accuracy_b:.2f}, n={node.n}, "
                    f"p={node.p_value:.3g}), more than max_significant_drop {policy.max_significant_drop:g}"
                )
    return failures
