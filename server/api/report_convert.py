"""Translation between the report records and their v1 proto messages, both ways (pure).

The evaluator sends a run's provenance, failure gallery, history and leaderboard as
messages (``report_service``); the CLI's ``--server`` path turns them, and the messages
of ``GetRunScores``, ``CompareRuns`` and ``GetRunCalibration``, back into the records
``server.reports`` renders, so a report, a history or a leaderboard reads the same
whichever way it was fetched. Every ``*_to_proto`` has its ``*_from_proto`` inverse;
doubles travel as IEEE doubles, so the numbers come back bit for bit.
"""

from __future__ import annotations

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api.scoring_service import node_to_proto
from gmai_eval.server.reports.circular import CircularNode, CircularPart
from gmai_eval.server.reports.content import GalleryItem, GalleryNode, ReliabilityBin
from gmai_eval.server.reports.history import Change, HistoryEntry
from gmai_eval.server.reports.leaderboard import LeaderRow
from gmai_eval.server.reports.provenance import Provenance
from gmai_eval.server.reports.thumbnails import jpeg_data_uri, jpeg_of_data_uri
from gmai_eval.server.scoring.aggregate import DIMENSIONS, NodeScore, RunScores
from gmai_eval.server.scoring.calibration import Calibration
from gmai_eval.server.scoring.circular import Following
from gmai_eval.server.scoring.compare import Comparison, NodeComparison
from gmai_eval.server.scoring.multi_scores import MclsFigures
from gmai_eval.server.scoring.position_bias import GroupBias, PositionBias
from gmai_eval.server.store.report_reads import GalleryRow


def provenance_to_proto(p: Provenance) -> pb.RunProvenance:
    """A run's provenance as its message."""
    return pb.RunProvenance(
        run_id=p.run_id, model=p.model, model_version=p.model_version, weights_digest=p.weights_digest,
        benchmark=p.benchmark, benchmark_digest=p.benchmark_digest, filter=p.filter, limit=p.limit, seed=p.seed,
        extraction_era=p.era, evaluator_version=p.evaluator_version, state=p.state, total=p.total,
        created_at=p.created_at, started_at=p.started_at, finished_at=p.finished_at,
    )


def provenance_from_proto(m: pb.RunProvenance) -> Provenance:
    """The inverse of :func:`provenance_to_proto`."""
    return Provenance(
        run_id=m.run_id, model=m.model, model_version=m.model_version, weights_digest=m.weights_digest,
        benchmark=m.benchmark, benchmark_digest=m.benchmark_digest, filter=m.filter, limit=m.limit, seed=m.seed,
        era=m.extraction_era, evaluator_version=m.evaluator_version, state=m.state, total=m.total,
        created_at=m.created_at, started_at=m.started_at, finished_at=m.finished_at,
    )


def node_from_proto(m: pb.NodeScore) -> NodeScore:
    """A node score from its message (accuracy and interval are recomputed from the counts)."""
    return NodeScore(m.dimension, tuple(m.path), m.abbreviation, m.n, m.correct, m.unparsed, m.refused, m.errors)


def scores_from_proto(m: pb.GetRunScoresResponse) -> RunScores:
    """The scores of a ``GetRunScores`` answer (macro averages in the evaluator's dimension
    order; a multi-answer run's ACC_mcls and Recall_mcls with their intervals)."""
    macro = {d: m.macro_accuracy[d] for d in DIMENSIONS if d in m.macro_accuracy}
    mcls = {
        (n.dimension, tuple(n.path)): MclsFigures(
            n.multi_answer.acc_mcls, (n.multi_answer.acc_mcls_ci_low, n.multi_answer.acc_mcls_ci_high),
            n.multi_answer.recall_mcls, (n.multi_answer.recall_mcls_ci_low, n.multi_answer.recall_mcls_ci_high),
        )
        for n in m.nodes if n.HasField("multi_answer")
    }
    return RunScores(m.run_id, m.extraction_era, m.judge_model, tuple(node_from_proto(n) for n in m.nodes), macro,
                     m.unscored, m.ungraded, m.multi_choice, mcls)


def position_bias_from_proto(m: pb.PositionBias) -> PositionBias:
    """The position bias of a ``GetRunScores`` answer."""
    groups = tuple(
        GroupBias(options=g.options, letters=tuple(g.letters), chosen=tuple(g.chosen), key=tuple(g.key), n=g.n,
                  chi_square=g.chi_square, df=g.df, p_value=g.p_value, effect=g.effect, flagged=g.flagged)
        for g in m.groups
    )
    return PositionBias(groups, m.excluded, m.flagged)


def circular_from_proto(m: pb.GetRunScoresResponse) -> CircularPart | None:
    """The circular part of a ``GetRunScores`` answer; None unless the run is circular
    (its position bias then carries ``following``)."""
    if not m.position_bias.HasField("following"):
        return None
    f = m.position_bias.following
    nodes = {(n.dimension, tuple(n.path)): CircularNode(n.circular.n, n.circular.correct) for n in m.nodes}
    return CircularPart(nodes, Following(f.eligible, f.position, f.text), m.circular_incomplete)


def comparison_from_proto(m: pb.CompareRunsResponse) -> Comparison:
    """The comparison of a ``CompareRuns`` answer (correct counts from the accuracies and n)."""
    nodes = tuple(
        NodeComparison(n.dimension, tuple(n.path), n.n, round(n.accuracy_a * n.n), round(n.accuracy_b * n.n),
                       n.a_only, n.b_only, n.p_value, n.significant)
        for n in m.nodes
    )
    return Comparison(m.run_a.id, m.run_b.id, m.extraction_era, m.alpha, nodes,
                      tuple(int(i) for i in m.flipped_to_wrong), tuple(int(i) for i in m.flipped_to_right),
                      m.unpaired_a, m.unpaired_b)


def calibration_from_proto(m: pb.GetRunCalibrationResponse) -> tuple[Calibration | None, tuple[ReliabilityBin, ...]]:
    """The calibration and reliability bins of a ``GetRunCalibration`` answer; None when n is 0."""
    if not m.n:
        return None, ()
    cal = Calibration(m.n, m.accuracy, m.ece, m.brier, m.nll, tuple((c.coverage, c.accuracy) for c in m.coverage))
    bins = tuple(ReliabilityBin(b.low, b.high, b.count, b.confidence, b.accuracy) for b in m.reliability)
    return cal, bins


def gallery_to_proto(nodes: tuple[GalleryNode, ...]) -> pb.GetRunGalleryResponse:
    """A failure gallery as ``GetRunGallery``'s answer (thumbnails as JPEG bytes)."""
    out = pb.GetRunGalleryResponse()
    for g in nodes:
        msg = out.nodes.add(node=node_to_proto(g.node))
        for it in g.items:
            r = it.row
            msg.questions.add(
                index=r.idx, question=r.question, option_labels=[lab for lab, _ in r.options],
                option_texts=[t for _, t in r.options], answer=r.answer or "", image_sha256=r.image_sha256,
                outcome=r.outcome, status=r.status, labels=list(r.labels), text=r.text, error=r.error,
                extracted=r.extracted, verdict=r.verdict,
                thumbnail_jpeg=jpeg_of_data_uri(it.thumbnail) if it.thumbnail else b"",
            )
    return out


def gallery_from_proto(m: pb.GetRunGalleryResponse) -> tuple[GalleryNode, ...]:
    """The inverse of :func:`gallery_to_proto`."""
    return tuple(
        GalleryNode(node_from_proto(g.node), tuple(
            GalleryItem(
                GalleryRow(
                    idx=q.index, question=q.question, options=tuple(zip(q.option_labels, q.option_texts, strict=True)),
                    answer=q.answer or None, image_sha256=q.image_sha256, outcome=q.outcome, status=q.status,
                    labels=tuple(q.labels), text=q.text, error=q.error, extracted=q.extracted, verdict=q.verdict,
                ),
                jpeg_data_uri(q.thumbnail_jpeg) if q.thumbnail_jpeg else None,
            )
            for q in g.questions
        ))
        for g in m.nodes
    )


def history_to_proto(model: str, entries: list[HistoryEntry]) -> pb.GetModelHistoryResponse:
    """A model's history as ``GetModelHistory``'s answer."""
    out = pb.GetModelHistoryResponse(model=model)
    for e in entries:
        msg = out.runs.add(run=provenance_to_proto(e.run), n=e.n, correct=e.correct, accuracy=e.accuracy,
                           ci_low=e.ci[0], ci_high=e.ci[1])
        if e.change is not None:
            c = e.change
            msg.change.CopyFrom(pb.HistoryChange(previous_run=c.previous_run, previous_version=c.previous_version,
                                                 delta_points=c.delta_points, paired=c.paired, p_value=c.p_value))
    return out


def history_from_proto(m: pb.GetModelHistoryResponse) -> list[HistoryEntry]:
    """The inverse of :func:`history_to_proto`."""
    out = []
    for r in m.runs:
        change = None
        if r.HasField("change"):
            c = r.change
            change = Change(c.previous_run, c.previous_version, c.delta_points, c.paired,
                            c.p_value if c.HasField("p_value") else None)
        out.append(HistoryEntry(provenance_from_proto(r.run), r.n, r.correct, r.accuracy, (r.ci_low, r.ci_high),
                                change))
    return out


def leaderboard_to_proto(
    benchmark: str, by: list[str], alpha: float, rows: list[LeaderRow], circular: bool = False
) -> pb.GetLeaderboardResponse:
    """A leaderboard as ``GetLeaderboard``'s answer."""
    return pb.GetLeaderboardResponse(benchmark=benchmark, by=by, alpha=alpha, circular=circular, rows=[
        pb.LeaderboardRow(
            model=r.model, published=r.published, accuracy=r.accuracy,
            values=[pb.LeaderboardValue(column=k, accuracy=v) for k, v in r.values.items()], rank=r.rank,
            run_id=r.run_id, model_version=r.version, n=r.n, ci_low=r.ci[0], ci_high=r.ci[1],
            vs_leader=r.vs_leader, p_value=r.p_value,
        )
        for r in rows
    ])


def leaderboard_from_proto(m: pb.GetLeaderboardResponse) -> list[LeaderRow]:
    """The rows of a ``GetLeaderboard`` answer."""
    return [
        LeaderRow(
            r.model, r.published, r.accuracy,
            {v.column: (v.accuracy if v.HasField("accuracy") else None) for v in r.values},
            r.rank, r.run_id, r.model_version, r.n, (r.ci_low, r.ci_high), r.vs_leader,
            r.p_value if r.HasField("p_value") else None,
        )
        for r in m.rows
    ]
