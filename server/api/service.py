"""The EvaluatorService servicer: proto <-> records translation, delegating everything.

Each method converts its request with :mod:`~gmai_eval.server.api.convert`, calls the
stage that owns the operation (import, the benchmark store, the run manager, scoring)
and converts the result back. Errors are raised from the tree in ``errors.py`` and
mapped to status codes by ``service_errors.py``; nothing here picks a status code.
Blocking store calls run in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import grpc
from gmai_eval import __version__
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.server.api import convert, stored_runs, uploads
from gmai_eval.server.api.scoring_service import score_file_response
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import InvalidArgument, ShuttingDown
from gmai_eval.server.names import MAX_FILTER_BYTES, MAX_REQUEST_ID_BYTES, check_size
from gmai_eval.server.records import FINAL_RUN_STATES, RunParams, RunRecord
from gmai_eval.server.runs.model_check import ModelCheck
from gmai_eval.server.runs.progress import RunReport
from gmai_eval.server.store import benchmarks as bench_store
from gmai_eval.server.store import models as model_store
from gmai_eval.server.store.database import Database
from gmai_eval.server.taxonomy import parse_filter


class RunService(Protocol):
    """What the servicer needs from the run manager (``runs.RunManager``)."""

    async def create_run(
        self, model: str, benchmark: str, params: RunParams, request_id: str | None = None
    ) -> RunRecord: ...

    async def resume_run(self, run_id: str) -> RunRecord: ...

    async def cancel_run(self, run_id: str) -> RunRecord: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def list_runs(
        self, model: str = "", benchmark: str = "", limit: int = 100, after: tuple[str, str] | None = None
    ) -> list[RunRecord]: ...

    def watch(self, run_id: str) -> AsyncIterator[RunRecord]: ...

    def get_report(self, run_id: str) -> RunReport: ...

    async def check_model(self, name: str, benchmark: str = "") -> ModelCheck: ...

    def in_use(self, run_id: str) -> bool: ...


ScoringHandler = Callable[[Any], Awaitable[Any]]
"""An async function from a scoring request message to its response message."""

StreamHandler = Callable[[Any], AsyncIterator[Any]]
"""An async generator from a request message to its stream of response messages."""


class EvaluatorService(pb_grpc.EvaluatorServiceServicer):
    """Implements gmai_eval.evaluator.v1.EvaluatorService.

    Args:
        db: the evaluator database.
        runs: the run manager.
        scoring: async handlers for ``GetRunScores``, ``CompareRuns``, ``RescoreRun``,
            ``GetRunCalibration`` and the report reads (``GetRunProvenance``, ``GetRunGallery``,
            ``GetModelHistory``, ``GetLeaderboard``) keyed by RPC name; a missing one answers
            UNIMPLEMENTED.
        streams: async generators for the server-streaming scoring RPCs (``ExportRun``),
            keyed by RPC name; a missing one answers UNIMPLEMENTED.
        upload_dir: where uploads are spooled (a temporary directory is made inside).
        max_upload_bytes: the cap on one ImportBenchmark upload (all files together).
    """

    def __init__(
        self,
        db: Database,
        runs: RunService,
        *,
        scoring: dict[str, ScoringHandler] | None = None,
        streams: dict[str, StreamHandler] | None = None,
        upload_dir: str | Path,
        max_upload_bytes: int = uploads.DEFAULT_MAX_UPLOAD_BYTES,
    ) -> None:
        self._db = db
        self._runs = runs
        self._scoring = scoring or {}
        self._streams = streams or {}
        self._upload_dir = Path(upload_dir)
        self._max_upload_bytes = max_upload_bytes
        self.draining = False
        """Set by the app on shutdown: new runs and resumes are refused (UNAVAILABLE)."""

    # --- benchmarks -------------------------------------------------------------------

    async def ImportBenchmark(
        self, request_iterator: AsyncIterator[pb.ImportBenchmarkRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ImportBenchmarkResponse:
        async with uploads.spooled(self._upload_dir) as spool:
            header, paths = await uploads.receive_import(request_iterator, spool, self._max_upload_bytes)
            result = await asyncio.to_thread(
                import_tsv_files,
                self._db,
                header.name,
                paths,
                strict=header.strict,
                multi_choice=header.multi_choice,
                display_names=list(header.file_names),
            )
        return convert.import_report_to_proto(result)

    async def ListBenchmarks(
        self, request: pb.ListBenchmarksRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListBenchmarksResponse:
        found = await asyncio.to_thread(bench_store.list_benchmarks, self._db)
        return pb.ListBenchmarksResponse(benchmarks=[convert.benchmark_to_proto(b) for b in found])

    async def GetBenchmark(
        self, request: pb.GetBenchmarkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetBenchmarkResponse:
        check_size(request.filter, MAX_FILTER_BYTES, "filter")
        flt = parse_filter(request.filter) if request.filter.strip() else None
        benchmark = await asyncio.to_thread(bench_store.get_benchmark, self._db, request.name)
        nodes = await asyncio.to_thread(bench_store.taxonomy_nodes, self._db, benchmark.id, flt)
        # The overall node () counts the filtered questions (absent when none match).
        selected = benchmark.question_count if flt is None else dict(nodes).get((), 0)
        return pb.GetBenchmarkResponse(
            benchmark=convert.benchmark_to_proto(benchmark),
            nodes=[convert.taxonomy_node_to_proto(n) for n in nodes],
            selected_count=selected,
        )

    async def RemoveBenchmark(
        self, request: pb.RemoveBenchmarkRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RemoveBenchmarkResponse:
        return await asyncio.to_thread(stored_runs.remove_benchmark_response, self._db, request, self._runs.in_use)

    # --- models -----------------------------------------------------------------------

    async def RegisterModel(
        self, request: pb.RegisterModelRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RegisterModelResponse:
        spec = convert.model_from_proto(request.model)
        stored = await asyncio.to_thread(model_store.register_model, self._db, spec)
        return pb.RegisterModelResponse(model=convert.model_to_proto(stored))

    async def ListModels(
        self, request: pb.ListModelsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListModelsResponse:
        found = await asyncio.to_thread(model_store.list_models, self._db)
        return pb.ListModelsResponse(models=[convert.model_to_proto(m) for m in found])

    async def CheckModel(
        self, request: pb.CheckModelRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CheckModelResponse:
        check = await self._runs.check_model(request.name, request.benchmark)
        return convert.model_check_to_proto(check)

    async def RemoveModel(
        self, request: pb.RemoveModelRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RemoveModelResponse:
        removed = await asyncio.to_thread(model_store.remove_model, self._db, request.name)
        return pb.RemoveModelResponse(model=convert.model_to_proto(removed))

    # --- runs -------------------------------------------------------------------------

    def _refuse_when_draining(self) -> None:
        if self.draining:
            raise ShuttingDown("the evaluator is shutting down; retry after it restarts")

    async def CreateRun(
        self, request: pb.CreateRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CreateRunResponse:
        self._refuse_when_draining()
        if not request.model or not request.benchmark:
            raise InvalidArgument("CreateRun needs both model and benchmark")
        check_size(request.request_id, MAX_REQUEST_ID_BYTES, "request_id")
        params = convert.run_params_from_proto(request.parameters)
        run = await self._runs.create_run(
            request.model, request.benchmark, params, request_id=request.request_id or None
        )
        return pb.CreateRunResponse(run=convert.run_to_proto(run))

    async def GetRun(self, request: pb.GetRunRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.GetRunResponse:
        run = await asyncio.to_thread(self._runs.get_run, request.id)
        return pb.GetRunResponse(run=convert.run_to_proto(run))

    async def GetRunReport(
        self, request: pb.GetRunReportRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetRunReportResponse:
        report = await asyncio.to_thread(self._runs.get_report, request.id)
        return convert.run_report_to_proto(report)

    async def ListRuns(
        self, request: pb.ListRunsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ListRunsResponse:
        return await asyncio.to_thread(stored_runs.list_runs_response, request, self._runs.list_runs)

    async def WatchRun(
        self, request: pb.WatchRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.WatchRunResponse]:
        last: RunRecord | None = None
        async for run in self._runs.watch(request.id):
            last = run
            yield pb.WatchRunResponse(run=convert.run_to_proto(run))
        if self.draining and (last is None or last.state not in FINAL_RUN_STATES):
            raise ShuttingDown(f"run {request.id} was interrupted by an evaluator shutdown; watch again")

    async def CancelRun(
        self, request: pb.CancelRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CancelRunResponse:
        run = await self._runs.cancel_run(request.id)
        return pb.CancelRunResponse(run=convert.run_to_proto(run))

    async def DeleteRun(
        self, request: pb.DeleteRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.DeleteRunResponse:
        return await asyncio.to_thread(stored_runs.delete_run_response, self._db, request, self._runs.in_use)

    async def ResumeRun(
        self, request: pb.ResumeRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ResumeRunResponse:
        self._refuse_when_draining()
        run = await self._runs.resume_run(request.id)
        return pb.ResumeRunResponse(run=convert.run_to_proto(run))

    # --- scores -----------------------------------------------------------------------

    async def _score(self, name: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        handler = self._scoring.get(name)
        if handler is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, f"{name} is not available in this evaluator build"
            )
        return await handler(request)

    async def GetRunScores(
        self, request: pb.GetRunScoresRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetRunScoresResponse:
        scores: pb.GetRunScoresResponse = await self._score("GetRunScores", request, context)
        return scores

    async def CompareRuns(
        self, request: pb.CompareRunsRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.CompareRunsResponse:
        comparison: pb.CompareRunsResponse = await self._score("CompareRuns", request, context)
        return comparison

    async def RescoreRun(
        self, request: pb.RescoreRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.RescoreRunResponse:
        rescored: pb.RescoreRunResponse = await self._score("RescoreRun", request, context)
        return rescored

    async def GetRunCalibration(
        self, request: pb.GetRunCalibrationRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetRunCalibrationResponse:
        calibration: pb.GetRunCalibrationResponse = await self._score("GetRunCalibration", request, context)
        return calibration

    async def ExportRun(
        self, request: pb.ExportRunRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.ExportRunResponse]:
        handler = self._streams.get("ExportRun")
        if handler is None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "ExportRun is not available in this evaluator build")
            return
        async for message in handler(request):
            yield message

    async def ScoreFile(
        self, request_iterator: AsyncIterator[pb.ScoreFileRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.ScoreFileResponse:
        async with uploads.spooled(self._upload_dir) as spool:
            header, path = await uploads.receive_prediction_file(request_iterator, spool)
            return await asyncio.to_thread(
                score_file_response, self._db, header.benchmark, path, header.extraction_era or "2024",
                __version__, header.file_name,
            )

    # --- reports (handlers keyed like the scoring ones) ---------------------------------

    async def GetRunProvenance(
        self, request: pb.GetRunProvenanceRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetRunProvenanceResponse:
        provenance: pb.GetRunProvenanceResponse = await self._score("GetRunProvenance", request, context)
        return provenance

    async def GetRunGallery(
        self, request: pb.GetRunGalleryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetRunGalleryResponse:
        gallery: pb.GetRunGalleryResponse = await self._score("GetRunGallery", request, context)
        return gallery

    async def GetModelHistory(
        self, request: pb.GetModelHistoryRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetModelHistoryResponse:
        history: pb.GetModelHistoryResponse = await self._score("GetModelHistory", request, context)
        return history

    async def GetLeaderboard(
        self, request: pb.GetLeaderboardRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> pb.GetLeaderboardResponse:
        board: pb.GetLeaderboardResponse = await self._score("GetLeaderboard", request, context)
        return board


