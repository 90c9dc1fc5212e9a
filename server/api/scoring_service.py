"""Scoring operations behind the evaluator's RPCs and the CLI (thin glue).

``get_run_scores``, ``compare_runs`` and ``rescore_run`` take the database and the request
message and return the response message; the servicer binds them (see ``app.py``). The
blocking store work runs on a worker thread. ``GetRunScores`` and ``CompareRuns`` only read
(the read-only token may call them); ``RescoreRun`` writes grades. The plain functions below them are what the
CLI calls directly on a database file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.errors import InvalidArgument, PreflightFailed
from gmai_eval.server.scoring.aggregate import DIMENSIONS, NodeScore, RunScores
from gmai_eval.server.scoring.compare import compare_runs as _compare
from gmai_eval.server.scoring.grading import RescoreResult, compute_scores, rescore
from gmai_eval.server.scoring.judge import JudgeClient, ModelJudge
from gmai_eval.server.store import Database


def node_to_proto(n: NodeScore) -> pb.NodeScore:
    """A node score as its proto message."""
    lo, hi = n.ci
    return pb.NodeScore(
        dimension=n.dimension, path=list(n.path), abbreviation=n.abbreviation, n=n.n, correct=n.correct,
        accuracy=n.accuracy, ci_low=lo, ci_high=hi, unparsed=n.unparsed, refused=n.refused, errors=n.errors,
    )


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
        nodes=[node_to_proto(n) for n in nodes], macro_accuracy=macro, extraction_era=scores.era
    )


async def get_run_scores(db: Database, request: pb.GetRunScoresRequest) -> pb.GetRunScoresResponse:
    """``GetRunScores``: NOT_FOUND for an unknown run, INVALID_ARGUMENT for a bad era/dimension."""
    scores = await asyncio.to_thread(compute_scores, db, request.id, request.extraction_era or None)
    return scores_to_proto(scores, list(request.dimensions))


async def compare_runs(db: Database, request: pb.CompareRunsRequest) -> pb.CompareRunsResponse:
    """``CompareRuns``: FAILED_PRECONDITION when the benchmark digests differ."""
    cmp = await asyncio.to_thread(_compare, db, request.run_a, request.run_b, request.alpha or 0.05)
    return pb.CompareRunsResponse(
        nodes=[
            pb.NodeComparison(
                dimension=n.dimension, path=list(n.path), n=n.n, accuracy_a=n.accuracy_a, accuracy_b=n.accuracy_b,
                a_only=n.a_only, b_only=n.b_only, p_value=n.p_value, significant=n.significant,
            )
            for n in cmp.nodes
        ],
        flipped_to_wrong=[str(i) for i in cmp.flipped_to_wrong],
        flipped_to_right=[str(i) for i in cmp.flipped_to_right],
    )


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
    scores = await asyncio.to_thread(compute_scores, db, request.id, res.era, res.judge)
    return pb.RescoreRunResponse(scores=scores_to_proto(scores), changed=res.changed)

