"""Report reads behind the evaluator's RPCs and the CLI (thin glue; docs/report.md).

``GetRunProvenance``, ``GetRunGallery``, ``GetModelHistory`` and ``GetLeaderboard`` give
what the HTML report, ``history`` and ``leaderboard`` need beyond ``GetRunScores``,
``CompareRuns`` and ``GetRunCalibration``. Each answer is built from the database by a
plain function (``*_response``): the RPCs run it on a worker thread, and the CLI's
``--db`` path of ``history`` and ``leaderboard`` calls it in process, so both ways render
the same message. All four only read (the read-only token may call them).
"""

from __future__ import annotations

import asyncio

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.api import report_convert as rc
from gmai_eval.server.reports.content import gallery
from gmai_eval.server.reports.history import model_history
from gmai_eval.server.reports.leaderboard import ALPHA, leaderboard
from gmai_eval.server.reports.paper import official_split
from gmai_eval.server.reports.provenance import provenance
from gmai_eval.server.store import Database
from gmai_eval.server.store.benchmarks import get_benchmark_by_id
from gmai_eval.server.store.grades import run_info

DEFAULT_BY: tuple[str, ...] = ("task",)
"""Leaderboard columns when the request names no dimension."""


def provenance_response(db: Database, request: pb.GetRunProvenanceRequest) -> pb.GetRunProvenanceResponse:
    """``GetRunProvenance``'s answer.

    Raises:
        NotFound: unknown run.
    """
    run = provenance(db, request.id)
    split = None
    if run.whole:
        info = db.read(lambda s: run_info(s, request.id))
        split = official_split(get_benchmark_by_id(db, info.benchmark_id))
    return pb.GetRunProvenanceResponse(provenance=rc.provenance_to_proto(run), official_split=split or "")


def gallery_response(db: Database, request: pb.GetRunGalleryRequest) -> pb.GetRunGalleryResponse:
    """``GetRunGallery``'s answer.

    Raises:
        NotFound: unknown run.
    """
    return rc.gallery_to_proto(gallery(db, request.id, images=not request.no_images))


def history_response(db: Database, request: pb.GetModelHistoryRequest) -> pb.GetModelHistoryResponse:
    """``GetModelHistory``'s answer.

    Raises:
        NotFound: a model never registered and never run, or an unknown benchmark.
    """
    return rc.history_to_proto(request.model, model_history(db, request.model, request.benchmark or None))


def leaderboard_response(db: Database, request: pb.GetLeaderboardRequest) -> pb.GetLeaderboardResponse:
    """``GetLeaderboard``'s answer.

    Raises:
        NotFound: unknown benchmark.
        InvalidArgument: a dimension other than task, department, granularity.
    """
    by = list(request.by) or list(DEFAULT_BY)
    rows = leaderboard(db, request.benchmark, by, request.with_paper, request.circular)
    return rc.leaderboard_to_proto(request.benchmark, by, ALPHA, rows, request.circular)


async def get_run_provenance(db: Database, request: pb.GetRunProvenanceRequest) -> pb.GetRunProvenanceResponse:
    """``GetRunProvenance``: NOT_FOUND for an unknown run."""
    return await asyncio.to_thread(provenance_response, db, request)


async def get_run_gallery(db: Database, request: pb.GetRunGalleryRequest) -> pb.GetRunGalleryResponse:
    """``GetRunGallery``: NOT_FOUND for an unknown run."""
    return await asyncio.to_thread(gallery_response, db, request)


async def get_model_history(db: Database, request: pb.GetModelHistoryRequest) -> pb.GetModelHistoryResponse:
    """``GetModelHistory``: NOT_FOUND for an unknown model or benchmark."""
    return await asyncio.to_thread(history_response, db, request)


async def get_leaderboard(db: Database, request: pb.GetLeaderboardRequest) -> pb.GetLeaderboardResponse:
    """``GetLeaderboard``: NOT_FOUND for an unknown benchmark, INVALID_ARGUMENT for a bad dimension."""
    return await asyncio.to_thread(leaderboard_response, db, request)
