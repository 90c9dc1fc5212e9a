"""Scoring operations behind the evaluator's RPCs and the CLI (thin glue).

Each read builds its response message from the database in a plain function
(``scores_response``, ``comparison_response``, ``calibration_response``,
``export_files``): the evaluator's RPCs run them on a worker thread, and the CLI's
``--db`` path calls them in process, so both ways render the same messages.
``GetRunScores``, ``CompareRuns``, ``GetRunCalibration`` and ``ExportRun`` only read (the
read-only token may call them); ``RescoreRun`` writes grades and ``ScoreFile``
(``score_file_response``) a run.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api import convert
from gmai_eval.server.errors import InvalidArgument, PreflightFailed
from gmai_eval.server.reports.content import reliability_bins
from gmai_eval.server.runs.progress import run_record
from gmai_eval.server.scoring.aggregate import DIMENSIONS, NodeScore, RunScores
from gmai_eval.server.scoring.calibration import summarise
from gmai_eval.server.scoring.circular_scores import CircularResult
from gmai_eval.server.scoring.compare import apply_gate, parse_policy
from gmai_eval.server.scoring.compare import compare_runs as _compare
from gmai_eval.server.scoring.grading import (
    RescoreResult,
    calibration_items,
    rescore,
    scores_with_position_bias,
)
from gmai_eval.server.scoring.judge import JudgeClient, ModelJudge
from gmai_eval.server.scoring.multi_scores import MclsFigures, MclsScore
from gmai_eval.server.scoring.position_bias import FLAG_EFFECT, FLAG_P, PositionBias
from gmai_eval.server.scoring.vlmeval_export import export_run
from gmai_eval.server.scoring.vlmeval_files import score_file
from gmai_eval.server.store import Database
from gmai_eval.server.store import runs as run_store
from gmai_eval.server.store.attempts import run_counts

EXPORT_CHUNK_BYTES = 512 * 1024
"""Size of the FileChunks of ExportRun (the proto asks for under 1 MiB)."""

DEFAULT_ALPHA = 0.05
"""Significance level when neither the request nor the gate policy sets one."""


def node_to_proto(n: NodeScore, mcls: MclsScore | MclsFigures | None = None) -> pb.NodeScore:
    """A node score as its proto message (with the paper's multi-answer metrics when given)."""
    lo, hi = n.ci
    msg = pb.NodeScore(
        dimension=n.dimension, path=list(n.path), abbreviation=n.abbreviation, n=n.n, correct=n.correct,
        accuracy=n.accuracy, ci_low=lo, ci_high=hi, unparsed=n.unparsed, refused=n.refused, errors=n.errors,
        incorrect=n.incorrect,
    )
    if mcls is not None:
        (acc_lo, acc_hi), (rec_lo, rec_hi) = mcls.acc_ci, mcls.recall_ci
        msg.multi_answer.CopyFrom(pb.MultiAnswerScore(
            acc_mcls=mcls.acc_mcls, acc_mcls_ci_low=acc_lo, acc_mcls_ci_high=acc_hi,
            recall_mcls=mcls.recall_mcls, recall_mcls_ci_low=rec_lo, recall_mcls_ci_high=rec_hi,
        ))
    return msg


def stored_run(db: Database, run_id: str) -> pb.Run:
    """The run as stored (no live rate), for a response's provenance.

    Raises:
        NotFound: no such run.
    """
    row = run_store.get_run(db, run_id)
    return convert.run_to_proto(run_record(row, run_counts(db, run_id, row.params.extraction_era)))


def scores_to_proto(scores: RunScores, dimensions: list[str] | None = None) -> pb.GetRunScoresResponse:
    """Scores as a ``GetRunScoresResponse``, limited to ``dimensions`` (all when empty).

    Raises:
        InvalidArgument: an unknown dimension.
    """
    dims = list(dimensions or [])
    for d in dims:
        if d not in DIMENSIONS:
            raise InvalidArgument(f"unknown dimension {d!r}; expected one of {', '.join(DIMENSIONS)}")
    nodes = [n for n in scores.nodes if not dims or n.dimension in dims]
    macro = {k: v for k, v in scores.macro.items() if not dims or k in dims}
    return pb.GetRunScoresResponse(
        nodes=[node_to_proto(n, scores.mcls.get((n.dimension, n.path))) for n in nodes], macro_accuracy=macro,
        extraction_era=scores.era, run_id=scores.run_id, judge_model=scores.judge, unscored=scores.unscored,
        ungraded=scores.ungraded, multi_choice=scores.multi_choice,
    )


def scores_response(db: Database, request: pb.GetRunScoresRequest) -> pb.GetRunScoresResponse:
    """``GetRunScores``'s answer, with the run for provenance.

    Raises:
        NotFound: unknown run, or no grading by ``judge_model``.
        InvalidArgument: unknown era or dimension.
    """
    scores, bias, circular = scores_with_position_bias(
        db, request.id, request.extraction_era or None, request.judge_model
    )
    resp = scores_to_proto(scores, list(request.dimensions))
    resp.position_bias.CopyFrom(position_bias_to_proto(bias))
    if circular is not None:
        add_circular(resp, circular)
    resp.run.CopyFrom(stored_run(db, request.id))
    return resp


def add_circular(resp: pb.GetRunScoresResponse, circular: CircularResult) -> None:
    """Set each node's circular score (n = 0 where no question is complete) and the
    following counts of a circular run on a scores response."""
    by_key = {(n.dimension, n.path): n for n in circular.scores.nodes}
    for node in resp.nodes:
        c = by_key.get((node.dimension, tuple(node.path)))
        if c is None:
            node.circular.SetInParent()
            continue
        lo, hi = c.ci
        node.circular.CopyFrom(pb.CircularScore(n=c.n, correct=c.correct, accuracy=c.accuracy, ci_low=lo, ci_high=hi))
    f = circular.following
    resp.position_bias.following.CopyFrom(pb.CircularFollowing(
        eligible=f.eligible, position=f.position, text=f.text, position_share=f.position_share,
        text_share=f.text_share,
    ))
    resp.circular_incomplete = circular.incomplete


def position_bias_to_proto(bias: PositionBias) -> pb.PositionBias:
    """A run's position bias as its proto message."""
    return pb.PositionBias(
        groups=[
            pb.PositionBiasGroup(
                options=g.options, n=g.n, letters=list(g.letters), chosen=list(g.chosen), key=list(g.key),
                chi_square=g.chi_square, df=g.df, p_value=g.p_value, effect=g.effect, flagged=g.flagged,
            )
            for g in bias.groups
        ],
        excluded=bias.excluded, flagged=bias.flagged, flag_p_value=FLAG_P, flag_effect=FLAG_EFFECT,
    )


def comparison_response(db: Database, request: pb.CompareRunsRequest) -> pb.CompareRunsResponse:
    """``CompareRuns``'s answer; with a gate policy, the gate's outcome too.

    Raises:
        NotFound: unknown run.
        FailedPrecondition: different benchmark digests.
        InvalidArgument: bad alpha, era or gate policy.
    """
    policy = parse_policy(request.gate.text, request.gate.name) if request.HasField("gate") else None
    alpha = request.alpha or (policy.alpha if policy is not None and policy.alpha else DEFAULT_ALPHA)
    circular = request.circular or (policy is not None and policy.accuracy == "circular")
    cmp = _compare(db, request.run_a, request.run_b, alpha, request.extraction_era or None, circular)
    resp = pb.CompareRunsResponse(
        nodes=[
            pb.NodeComparison(
                dimension=n.dimension, path=list(n.path), n=n.n, accuracy_a=n.accuracy_a, accuracy_b=n.accuracy_b,
                a_only=n.a_only, b_only=n.b_only, p_value=n.p_value, significant=n.significant,
            )
            for n in cmp.nodes
        ],
        flipped_to_wrong=[str(i) for i in cmp.flipped_to_wrong],
        flipped_to_right=[str(i) for i in cmp.flipped_to_right],
        run_a=stored_run(db, request.run_a), run_b=stored_run(db, request.run_b),
        extraction_era=cmp.era, alpha=cmp.alpha, unpaired_a=cmp.only_a, unpaired_b=cmp.only_b, circular=circular,
    )
    if policy is not None:
        resp.gate.CopyFrom(pb.GateResult(failures=apply_gate(cmp, policy)))
    return resp


def calibration_response(db: Database, request: pb.GetRunCalibrationRequest) -> pb.GetRunCalibrationResponse:
    """``GetRunCalibration``'s answer.

    Raises:
        NotFound: unknown run.
    """
    items = calibration_items(db, request.id)
    cal = summarise(items)
    bins = reliability_bins(items) if items else ()
    return pb.GetRunCalibrationResponse(
        n=cal.n, accuracy=cal.accuracy, ece=cal.ece, brier=cal.brier, nll=cal.nll,
        coverage=[pb.CoveragePoint(coverage=c, accuracy=a) for c, a in cal.coverage],
        run=stored_run(db, request.id),
        reliability=[pb.ReliabilityBin(low=b.low, high=b.high, count=b.count, confidence=b.confidence,
                                       accuracy=b.accuracy) for b in bins],
    )


def score_file_response(
    db: Database, benchmark: str, path: Path, era: str, evaluator_version: str, shown: str | None = None
) -> pb.ScoreFileResponse:
    """``ScoreFile``'s answer: the prediction file at ``path`` made a graded run, with its overall score.

    Raises:
        NotFound: unknown benchmark.
        InvalidArgument: unknown era, or a bad file (the message names the row and column).
    """
    run_id = score_file(db, benchmark, path, era, evaluator_version, shown)
    scores = scores_response(db, pb.GetRunScoresRequest(id=run_id, dimensions=["overall"], extraction_era=era))
    return pb.ScoreFileResponse(run_id=run_id, scores=scores)


def export_files(db: Database, request: pb.ExportRunRequest, directory: Path) -> tuple[int, list[Path]]:
    """Write ``ExportRun``'s files into ``directory``: the prediction file first, then its CSVs.

    Returns:
        The prediction rows and the files' paths, in the order they are sent.

    Raises:
        NotFound: unknown run.
        InvalidArgument: unknown format or era, or a file_name with a directory in it.
    """
    fmt = request.format or "tsv"
    name = request.file_name or f"{request.id}.{fmt}"
    if Path(name).name != name or name in (".", "..") or "\\" in name:
        raise InvalidArgument(f"ExportRun: file_name must be a bare file name, got {name!r}")
    res = export_run(db, request.id, directory / name, fmt, request.extraction_era or None, request.judge_model)
    return res.rows, res.files


async def export_stream(db: Database, request: pb.ExportRunRequest) -> AsyncIterator[pb.ExportRunResponse]:
    """``ExportRun``: the files written to a temporary directory, streamed in chunks."""
    tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=".gmai-export-"))
    try:
        rows, paths = await asyncio.to_thread(export_files, db, request, tmp)
        for path in paths:
            with path.open("rb") as fh:
                first = True
                while (data := await asyncio.to_thread(fh.read, EXPORT_CHUNK_BYTES)) or first:
                    first = False
                    yield pb.ExportRunResponse(chunk=pb.FileChunk(file_name=path.name, data=data), rows=rows)
    finally:
        await asyncio.to_thread(shutil.rmtree, tmp, True)


async def get_run_scores(db: Database, request: pb.GetRunScoresRequest) -> pb.GetRunScoresResponse:
    """``GetRunScores``: NOT_FOUND for an unknown run, INVALID_ARGUMENT for a bad era/dimension."""
    return await asyncio.to_thread(scores_response, db, request)


async def compare_runs(db: Database, request: pb.CompareRunsRequest) -> pb.CompareRunsResponse:
    """``CompareRuns``: FAILED_PRECONDITION when the benchmark digests differ."""
    return await asyncio.to_thread(comparison_response, db, request)


async def get_run_calibration(db: Database, request: pb.GetRunCalibrationRequest) -> pb.GetRunCalibrationResponse:
    """``GetRunCalibration``: NOT_FOUND for an unknown run."""
    return await asyncio.to_thread(calibration_response, db, request)


@asynccontextmanager
async def open_judge(db: Database, name: str, deadline_s: float = 60.0) -> AsyncIterator[JudgeClient]:
    """A judge over the registered model ``name``, checked healthy first.

    Raises:
        NotFound: no such model.
        PreflightFailed: the model is not serving.
    """
    from gmai_eval.server.runs.model_client import GrpcModelClient
    from gmai_eval.server.store.runs import get_model

    spec = await asyncio.to_thread(get_model, db, name)
    client = GrpcModelClient(spec)
    try:
        if not await client.health():
            raise PreflightFailed(f"judge model {name!r} is not serving at {', '.join(spec.endpoints)}")
        yield ModelJudge(client, name, deadline_s)
    finally:
        await client.close()


async def rescore_with(db: Database, run_id: str, era: str | None, judge_model: str = "") -> RescoreResult:
    """Rescore a run, with the registered model ``judge_model`` as judge when given."""
    if not judge_model:
        return await rescore(db, run_id, era)
    async with open_judge(db, judge_model) as judge:
        return await rescore(db, run_id, era, judge)


async def rescore_run(db: Database, request: pb.RescoreRunRequest) -> pb.RescoreRunResponse:
    """``RescoreRun``: regrade without calling the evaluated model."""
    res = await rescore_with(db, request.id, request.extraction_era or None, request.judge_model)
    ask = pb.GetRunScoresRequest(id=request.id, extraction_era=res.era, judge_model=res.judge)
    scores = await asyncio.to_thread(scores_response, db, ask)
    return pb.RescoreRunResponse(
        scores=scores, changed=res.changed, graded=res.graded, judged=res.judged, judge_resolved=res.judge_resolved
    )

