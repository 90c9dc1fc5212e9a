"""What a run's report holds, read from the store without writing anything.

:func:`build_report` gathers a run's provenance, its scores per node (``grading``'s own
read path: stored grades, ``ungraded`` for answers without one), its calibration, the
comparison with a baseline run and a gate verdict when asked, the failure gallery of its
weakest nodes with downscaled thumbnails, the paper's published rows when the run covers a
whole official split, the model's release history and, for a circular run, its circular
accuracy per node and what its answers follow (:mod:`.circular`). :mod:`.html` renders it.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from gmai_eval import __version__
from gmai_eval.server.errors import FailedPrecondition
from gmai_eval.server.reports.circular import CircularPart, circular_part
from gmai_eval.server.reports.history import HistoryEntry, model_history
from gmai_eval.server.reports.paper import (
    REFERENCE_MODELS,
    PaperRow,
    official_split,
    published_rows,
)
from gmai_eval.server.reports.provenance import Provenance, provenance
from gmai_eval.server.reports.thumbnails import thumbnail_data_uri
from gmai_eval.server.scoring.aggregate import NA_DEPARTMENT, Item, NodeScore, RunScores, node_keys
from gmai_eval.server.scoring.calibration import Calibration, Scored, summarise
from gmai_eval.server.scoring.compare import Comparison, GatePolicy, apply_gate, compare_runs
from gmai_eval.server.scoring.grading import (
    calibration_items,
    compute_scores,
    graded_rows,
    scores_with_position_bias,
)
from gmai_eval.server.scoring.position_bias import PositionBias
from gmai_eval.server.scoring.stats import Z95
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as grade_reads
from gmai_eval.server.store import report_reads as reads
from gmai_eval.server.store.benchmarks import get_benchmark_by_id

PLOTTED_DIMENSIONS: tuple[str, ...] = ("task", "department", "granularity", "modality")
"""Dimensions with a forest plot, in report order."""

GALLERY_NODES = 6
"""Weakest nodes shown in the failure gallery."""
GALLERY_PER_NODE = 4
"""Failed questions shown per gallery node."""
GALLERY_MIN_N = 5
"""Nodes with fewer scored questions are too noisy to be called weakest."""
CALIBRATION_BINS = 10
"""Bins of the reliability diagram (the ECE's own bins)."""


@dataclass(frozen=True)
class ReliabilityBin:
    """One confidence bin of the reliability diagram."""

    low: float
    """Lower edge (exclusive, but 0 is in the first bin)."""
    high: float
    """Upper edge."""
    count: int
    """Answers in the bin."""
    confidence: float
    """Mean confidence of those answers."""
    accuracy: float
    """Share of them that were right."""


@dataclass(frozen=True)
class GateVerdict:
    """A release gate applied in the report."""

    passed: bool
    """No rule failed."""
    failures: tuple[str, ...]
    """One message per failed rule."""
    notes: tuple[str, ...]
    """Rules that could not be checked, and why."""


@dataclass(frozen=True)
class GalleryItem:
    """One failed question in the gallery."""

    row: reads.GalleryRow
    """The question, the model's final answer and its grade."""
    thumbnail: str | None
    """``data:`` URI of the downscaled image; None when images are left out or undecodable."""


@dataclass(frozen=True)
class GalleryNode:
    """A weak node and a few of its failed questions."""

    node: NodeScore
    """The node."""
    items: tuple[GalleryItem, ...]
    """Failed questions, lowest index first."""


@dataclass(frozen=True)
class RunReport:
    """Everything the HTML report shows."""

    run: Provenance
    """Where the numbers come from."""
    scores: RunScores
    """Scores per node (the run's own era, exact matching)."""
    generated_at: str
    """When the report was built (ISO-8601 UTC)."""
    calibration: Calibration | None = None
    """Calibration of returned option probabilities; None when the model returned none."""
    reliability: tuple[ReliabilityBin, ...] = ()
    """The reliability diagram's bins."""
    baseline: Provenance | None = None
    """The baseline run, with ``--baseline``."""
    comparison: Comparison | None = None
    """The comparison against the baseline."""
    delta_ci: dict[tuple[str, tuple[str, ...]], tuple[float, float]] = field(default_factory=dict)
    """Per compared node: the 95 % interval of the paired difference, in points."""
    gate: GateVerdict | None = None
    """The gate verdict, with ``--policy``."""
    gallery: tuple[GalleryNode, ...] = ()
    """The weakest nodes with failed questions."""
    images: bool = True
    """Whether benchmark images are embedded."""
    split: str | None = None
    """``VAL`` or ``TEST`` when the run covers a whole official split (published rows shown)."""
    published: dict[str, list[PaperRow]] = field(default_factory=dict)
    """Dimension -> the reference models' published rows (empty unless ``split``)."""
    history: tuple[HistoryEntry, ...] = ()
    """The model's runs on this benchmark, oldest first (the trend chart)."""
    position_bias: PositionBias | None = None
    """Chosen letters against key letters per number of options, with the chi-square test."""
    circular: CircularPart | None = None
    """A circular run's circular accuracy per node and what its answers follow; None otherwise."""
    report_version: str = __version__
    """gmai-eval version that built the report."""


def paired_delta_ci(n: int, a_only: int, b_only: int, z: float = Z95) -> tuple[float, float]:
    """95 % Wald interval of ``accuracy_b - accuracy_a`` on paired questions, in points.

    The difference of paired proportions is ``(b_only - a_only) / n``; its variance is
    ``(a_only + b_only - (b_only - a_only)**2 / n) / n**2`` (the discordant counts carry
    all the information). (0, 0) for no pairs.
    """
    if n <= 0:
        return 0.0, 0.0
    d = (b_only - a_only) / n
    var = max(0.0, (a_only + b_only - (b_only - a_only) ** 2 / n) / n**2)
    half = z * math.sqrt(var)
    return 100 * max(-1.0, d - half), 100 * min(1.0, d + half)


def reliability_bins(items: Sequence[Scored], bins: int = CALIBRATION_BINS) -> tuple[ReliabilityBin, ...]:
    """Per-bin counts, mean confidence and accuracy, with the ECE's binning (empty bins kept)."""
    sums = [[0, 0.0, 0] for _ in range(bins)]
    for it in items:
        b = min(bins - 1, max(0, math.ceil(round(it.confidence * bins, 9)) - 1))
        sums[b][0] += 1
        sums[b][1] += it.confidence
        sums[b][2] += int(it.correct)
    return tuple(
        ReliabilityBin(k / bins, (k + 1) / bins, int(c), s / c if c else 0.0, ok / c if c else 0.0)
        for k, (c, s, ok) in enumerate(sums)
    )


def _gate(policy: GatePolicy, scores: RunScores, cmp: Comparison | None, circular: CircularPart | None) -> GateVerdict:
    """The verdict on ``cmp`` (circular verdicts when the policy asks for circular accuracy),
    else on the run's own overall accuracy (circular accuracy for such a policy)."""
    on_circular = policy.accuracy == "circular"
    notes = ['gated on circular accuracy (policy accuracy = "circular")'] if on_circular else []
    if cmp is not None:
        failures = apply_gate(cmp, policy)
        return GateVerdict(not failures, tuple(failures), tuple(notes))
    failures = []
    if on_circular and circular is None:
        raise FailedPrecondition(f"run {scores.run_id} is not a circular run (gmai-eval run --circular); the gate "
                                 'policy asks for accuracy = "circular"')
    acc = circular.node(scores.overall).accuracy if circular is not None and on_circular else scores.overall.accuracy
    if policy.min_overall_accuracy is not None and acc < policy.min_overall_accuracy:
        failures.append(f"overall {'circular ' if on_circular else ''}accuracy {acc:.4f} is below "
                        f"min_overall_accuracy {policy.min_overall_accuracy:.4f}")
    if policy.max_significant_drop is not None:
        notes.append("max_significant_drop not checked: it needs a baseline run (--baseline)")
    return GateVerdict(not failures, tuple(failures), tuple(notes))


def _weakest(scores: RunScores) -> list[NodeScore]:
    nodes = [n for d in PLOTTED_DIMENSIONS for n in scores.dimension(d) if n.n >= GALLERY_MIN_N]
    return sorted(nodes, key=lambda n: (n.accuracy, -n.n, n.dimension, n.path))[:GALLERY_NODES]


def _gallery(
    db: Database, info: grade_reads.RunInfo, scores: RunScores, images: bool
) -> tuple[GalleryNode, ...]:
    weak = _weakest(scores)
    if not weak:
        return ()
    wanted = {(n.dimension, n.path) for n in weak}
    failed: dict[tuple[str, tuple[str, ...]], list[int]] = defaultdict(list)
    for r in graded_rows(db, info, scores.era, scores.judge):
        if r.verdict in ("correct", "unscored"):
            continue
        item = Item(r.verdict, r.task, r.department, r.granularity, r.modality, r.category)
        for key in node_keys(item):
            if key in wanted and len(failed[key]) < GALLERY_PER_NODE:
                failed[key].append(r.idx)
    idxs = sorted({i for v in failed.values() for i in v})
    rows = {g.idx: g for g in db.read(lambda s: reads.gallery_rows(s, info.id, scores.era, scores.judge, idxs))}
    thumbs: dict[str, str | None] = {}
    out = []
    for node in weak:
        items = []
        for idx in failed.get((node.dimension, node.path), []):
            row = rows[idx]
            thumb = None
            if images:
                if row.image_sha256 not in thumbs:
                    data = db.read(functools.partial(reads.image_data, sha256=row.image_sha256))
                    thumbs[row.image_sha256] = thumbnail_data_uri(data[1]) if data else None
                thumb = thumbs[row.image_sha256]
            items.append(GalleryItem(row, thumb))
        out.append(GalleryNode(node, tuple(items)))
    return tuple(out)


def gallery(db: Database, run_id: str, images: bool = True) -> tuple[GalleryNode, ...]:
    """The failure gallery of run ``run_id`` under its own era (what ``GetRunGallery`` sends).

    Raises:
        NotFound: unknown run.
    """
    info = db.read(lambda s: grade_reads.run_info(s, run_id))
    return _gallery(db, info, compute_scores(db, run_id), images)


def build_report(
    db: Database,
    run_id: str,
    *,
    now: str,
    baseline: str | None = None,
    policy: GatePolicy | None = None,
    images: bool = True,
) -> RunReport:
    """Read everything a run's report shows (nothing is written).

    Args:
        db: the database.
        run_id: the run.
        now: the report's date (ISO-8601 UTC), passed in so a report is reproducible.
        baseline: a run to compare with (same benchmark digest).
        policy: a release gate to apply.
        images: embed downscaled benchmark images in the failure gallery.

    Raises:
        NotFound: unknown run.
        FailedPrecondition: the baseline was made on another benchmark digest.
    """
    info = db.read(lambda s: grade_reads.run_info(s, run_id))
    run = provenance(db, run_id)
    scores, bias, circ = scores_with_position_bias(db, run_id)
    cal_items = calibration_items(db, run_id)
    cmp = gate_cmp = base = None
    if baseline is not None:
        base = provenance(db, baseline)
        cmp = gate_cmp = compare_runs(db, baseline, run_id, comparison_alpha(policy), info.era)
        if policy is not None and policy.accuracy == "circular":
            gate_cmp = compare_runs(db, baseline, run_id, comparison_alpha(policy), info.era, circular=True)
    split = official_split(get_benchmark_by_id(db, info.benchmark_id)) if run.whole else None
    return assemble_report(
        run=run, scores=scores, now=now, calibration=summarise(cal_items) if cal_items else None,
        reliability=reliability_bins(cal_items) if cal_items else (), baseline=base, comparison=cmp, policy=policy,
        gallery=_gallery(db, info, scores, images), images=images, split=split,
        history=tuple(model_history(db, run.model, run.benchmark)), position_bias=bias,
        circular=None if circ is None else circular_part(scores, circ.scores, circ.following, circ.incomplete),
        gate_comparison=gate_cmp,
    )


def comparison_alpha(policy: GatePolicy | None) -> float:
    """The significance level of the report's comparison: the policy's alpha, else 0.05."""
    return policy.alpha if policy is not None and policy.alpha else 0.05


def assemble_report(
    *,
    run: Provenance,
    scores: RunScores,
    now: str,
    calibration: Calibration | None,
    reliability: tuple[ReliabilityBin, ...],
    baseline: Provenance | None,
    comparison: Comparison | None,
    policy: GatePolicy | None,
    gallery: tuple[GalleryNode, ...],
    images: bool,
    split: str | None,
    history: tuple[HistoryEntry, ...],
    position_bias: PositionBias | None,
    circular: CircularPart | None = None,
    gate_comparison: Comparison | None = None,
) -> RunReport:
    """A report from its parts, read from the file (:func:`build_report`) or through the API.

    Derives what both ways share: the comparison's delta intervals, the gate verdict and
    the paper's published rows of a whole official split. ``gate_comparison`` is what the
    gate checks with a baseline: the circular comparison when the policy asks for circular
    accuracy (``comparison``, shown in the report, stays vanilla).

    Raises:
        FailedPrecondition: the policy asks for circular accuracy and the run is not circular.
    """
    delta_ci = {} if comparison is None else {
        (c.dimension, c.path): paired_delta_ci(c.n, c.a_only, c.b_only) for c in comparison.nodes}
    published = {d: published_rows(d, REFERENCE_MODELS) for d in ("task", "department", "granularity")} if split else {}
    return RunReport(
        run=run, scores=scores, generated_at=now, calibration=calibration, reliability=reliability,
        baseline=baseline, comparison=comparison, delta_ci=delta_ci,
        gate=_gate(policy, scores, gate_comparison or comparison, circular) if policy is not None else None, gallery=gallery, images=images,
        split=split, published=published, history=history, position_bias=position_bias, circular=circular,
    )


def node_label(node: NodeScore) -> str:
    """``ABBR name`` for a node with a paper abbreviation, else its name."""
    name = node.name
    if node.dimension == "department" and name == NA_DEPARTMENT:
        return "N/A (no department)"
    return f"{node.abbreviation} · {name}" if node.abbreviation and node.abbreviation != name else name
