"""A small typed client of the evaluator's API (gmai_eval.evaluator.v1.EvaluatorService).

Used by the ``gmai-eval`` CLI. One :class:`EvaluatorClient` holds one channel, built from a
target, optional TLS files and an optional bearer token. Every failed call raises
:class:`EvaluatorError` with the status code name and the server's message, so callers
print one clean line instead of a traceback. :class:`Connection` and
:class:`EvaluatorError` are defined in :mod:`.connection` (without gRPC) and importable here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.tls import channel_credentials

from .connection import Connection as Connection  # re-exported: callers may import them from here
from .connection import EvaluatorError as EvaluatorError

CHUNK_BYTES = 512 * 1024
"""Size of the upload chunks (the proto asks for under 1 MiB)."""

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""The channel's receive limit, as the evaluator's."""

SHORT_DEADLINE_S = 30.0
"""Deadline of quick calls (Get*, List*, Cancel)."""

PREFLIGHT_DEADLINE_S = 120.0
"""Deadline of calls that include a model pre-flight (CreateRun, ResumeRun)."""

EXPORT_DEADLINE_S = 600.0
"""Deadline of ExportRun (the proto allows 60 s per 10,000 questions)."""

REPORT_DEADLINE_S = 300.0
"""Deadline of GetModelHistory and GetLeaderboard (the proto allows 30 s plus about 1 s per run)."""


def make_channel(conn: Connection) -> grpc.Channel:
    """A channel to the evaluator (TLS when a CA or client certificate is given).

    Raises:
        TlsFileError: a TLS file is missing or malformed, the client key does not match its
            certificate, or only one of them is given (the message names the file).
    """
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 60_000),
    ]
    if not conn.tls:
        return grpc.insecure_channel(conn.target, options=options)
    creds = channel_credentials(conn.ca_file, conn.cert_file, conn.key_file)
    if conn.server_name:
        options.append(("grpc.ssl_target_name_override", conn.server_name))
    return grpc.secure_channel(conn.target, creds, options=options)


def _error(exc: grpc.RpcError) -> EvaluatorError:
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    name = code.name if code is not None else "UNKNOWN"
    if code is grpc.StatusCode.UNAVAILABLE and details and "connect" in details.lower():
        details = f"cannot reach the evaluator ({details})"
    return EvaluatorError(name, details or "")


class EvaluatorClient:
    """Typed calls to the evaluator; use as a context manager to close the channel.

    Args:
        conn: target, TLS files and token.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._channel = make_channel(conn)
        self._stub = pb_grpc.EvaluatorServiceStub(self._channel)
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {conn.token}"),) if conn.token else ()
        )

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> EvaluatorClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, method: str, request: Any, timeout: float) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    # --- benchmarks ---------------------------------------------------------------------

    def upload(
        self, name: str, files: Iterable[str | Path], *, strict: bool = False, as_given: bool = False,
        multi_choice: bool = False,
    ) -> pb.ImportBenchmarkResponse:
        """Import a benchmark from TSV files via ImportBenchmark (streamed in chunks).

        The header states the total size, so an evaluator refuses an upload over its cap or
        without room before any byte is sent. The files are named by their base names, or
        with ``as_given`` by the paths as given (what ``gmai-eval import --db`` records and
        prints).
        """
        paths = [Path(f) for f in files]
        names = [str(f) for f in files] if as_given else [p.name for p in paths]
        if len(set(names)) != len(names):
            raise EvaluatorError("INVALID_ARGUMENT", "the files must have distinct names")
        for p in paths:
            if not p.is_file():
                raise EvaluatorError("INVALID_ARGUMENT", f"no such file: {p}")
        size = sum(p.stat().st_size for p in paths)
        header = pb.ImportHeader(
            name=name, strict=strict, file_names=names, size_bytes=size, multi_choice=multi_choice
        )

        def messages() -> Iterator[pb.ImportBenchmarkRequest]:
            yield pb.ImportBenchmarkRequest(header=header)
            for p, n in zip(paths, names, strict=True):
                with p.open("rb") as fh:
                    while chunk := fh.read(CHUNK_BYTES):
                        yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name=n, data=chunk))

        return self._upload("ImportBenchmark", messages(), size)  # type: ignore[no-any-return]

    def score_file(self, benchmark: str, path: str | Path, extraction_era: str = "") -> pb.ScoreFileResponse:
        """Make a graded run from a VLMEvalKit prediction file via ScoreFile (streamed in chunks).

        The file is named as given (its base name makes the run's model ``file:<stem>``).
        """
        p = Path(path)
        if not p.is_file():
            raise EvaluatorError("INVALID_ARGUMENT", f"no such file: {p}")
        size = p.stat().st_size
        header = pb.ScoreFileHeader(benchmark=benchmark, file_name=str(path), extraction_era=extraction_era,
                                    size_bytes=size)

        def messages() -> Iterator[pb.ScoreFileRequest]:
            yield pb.ScoreFileRequest(header=header)
            with p.open("rb") as fh:
                while chunk := fh.read(CHUNK_BYTES):
                    yield pb.ScoreFileRequest(data=chunk)

        return self._upload("ScoreFile", messages(), size)  # type: ignore[no-any-return]

    def _upload(self, method: str, messages: Iterator[Any], size: int) -> Any:
        """A client-streaming call, with a deadline of 60 s plus 60 s per GB."""
        try:
            return getattr(self._stub, method)(messages, timeout=60.0 + size / 1e9 * 60.0, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    def list_benchmarks(self) -> list[pb.Benchmark]:
        """The imported benchmarks, oldest first."""
        return list(self._call("ListBenchmarks", pb.ListBenchmarksRequest(), SHORT_DEADLINE_S).benchmarks)

    def get_benchmark(self, name: str, filter: str = "") -> pb.GetBenchmarkResponse:
        """A benchmark with its taxonomy counts."""
        found: pb.GetBenchmarkResponse = self._call(
            "GetBenchmark", pb.GetBenchmarkRequest(name=name, filter=filter), SHORT_DEADLINE_S
        )
        return found

    # --- models -------------------------------------------------------------------------

    def remove_benchmark(self, name: str, *, with_runs: bool = False) -> pb.RemoveBenchmarkResponse:
        """Remove a benchmark (admin; refused while it has runs, unless ``with_runs``)."""
        req = pb.RemoveBenchmarkRequest(name=name, with_runs=with_runs)
        removed: pb.RemoveBenchmarkResponse = self._call("RemoveBenchmark", req, SHORT_DEADLINE_S)
        return removed

    def register_model(self, model: pb.Model) -> pb.Model:
        """Register or replace a model."""
        stored: pb.Model = self._call("RegisterModel", pb.RegisterModelRequest(model=model), SHORT_DEADLINE_S).model
        return stored

    def list_models(self) -> list[pb.Model]:
        """The registered models."""
        return list(self._call("ListModels", pb.ListModelsRequest(), SHORT_DEADLINE_S).models)

    def check_model(self, name: str, benchmark: str = "") -> pb.CheckModelResponse:
        """Run the pre-flight handshake against a registered model; every step reported."""
        req = pb.CheckModelRequest(name=name, benchmark=benchmark)
        checked: pb.CheckModelResponse = self._call("CheckModel", req, PREFLIGHT_DEADLINE_S)
        return checked

    def remove_model(self, name: str) -> pb.Model:
        """Remove a registered model (refused while a run of it is live)."""
        removed: pb.Model = self._call("RemoveModel", pb.RemoveModelRequest(name=name), SHORT_DEADLINE_S).model
        return removed

    # --- runs ---------------------------------------------------------------------------

    def create_run(
        self, model: str, benchmark: str, parameters: pb.RunParameters, request_id: str = ""
    ) -> pb.Run:
        """Create and start a run (includes the model pre-flight)."""
        req = pb.CreateRunRequest(model=model, benchmark=benchmark, parameters=parameters, request_id=request_id)
        run: pb.Run = self._call("CreateRun", req, PREFLIGHT_DEADLINE_S).run
        return run

    def get_run(self, run_id: str) -> pb.Run:
        """One run."""
        run: pb.Run = self._call("GetRun", pb.GetRunRequest(id=run_id), SHORT_DEADLINE_S).run
        return run

    def get_run_report(self, run_id: str) -> pb.GetRunReportResponse:
        """A run with its state history and its errors and retries grouped."""
        report: pb.GetRunReportResponse = self._call("GetRunReport", pb.GetRunReportRequest(id=run_id), SHORT_DEADLINE_S)
        return report

    def list_runs(self, model: str = "", benchmark: str = "", page_size: int = 0) -> list[pb.Run]:
        """Runs, newest first."""
        req = pb.ListRunsRequest(model=model, benchmark=benchmark, page_size=page_size)
        return list(self.list_runs_page(req).runs)

    def list_runs_page(self, request: pb.ListRunsRequest) -> pb.ListRunsResponse:
        """One page of ListRuns, with the token of the next."""
        page: pb.ListRunsResponse = self._call("ListRuns", request, SHORT_DEADLINE_S)
        return page

    def watch_run(self, run_id: str) -> Iterator[pb.Run]:
        """Progress events of a run until it ends."""
        try:
            for event in self._stub.WatchRun(pb.WatchRunRequest(id=run_id), metadata=self._metadata):
                yield event.run
        except grpc.RpcError as exc:
            raise _error(exc) from None

    def cancel_run(self, run_id: str) -> pb.Run:
        """Cancel a queued or running run."""
        run: pb.Run = self._call("CancelRun", pb.CancelRunRequest(id=run_id), SHORT_DEADLINE_S).run
        return run

    def delete_run(self, run_id: str) -> pb.DeleteRunResponse:
        """Delete a finished run and everything it recorded (admin)."""
        deleted: pb.DeleteRunResponse = self._call("DeleteRun", pb.DeleteRunRequest(id=run_id), SHORT_DEADLINE_S)
        return deleted

    def resume_run(self, run_id: str) -> pb.Run:
        """Resume a cancelled, failed or interrupted run."""
        run: pb.Run = self._call("ResumeRun", pb.ResumeRunRequest(id=run_id), PREFLIGHT_DEADLINE_S).run
        return run

    # --- scores -------------------------------------------------------------------------

    def get_run_scores(
        self, run_id: str, dimensions: Iterable[str] = (), extraction_era: str = "", judge_model: str = ""
    ) -> pb.GetRunScoresResponse:
        """A run's scores per taxonomy node, with the run for provenance."""
        req = pb.GetRunScoresRequest(
            id=run_id, dimensions=list(dimensions), extraction_era=extraction_era, judge_model=judge_model
        )
        scores: pb.GetRunScoresResponse = self._call("GetRunScores", req, SHORT_DEADLINE_S)
        return scores

    def compare_runs(
        self, run_a: str, run_b: str, alpha: float = 0.0, extraction_era: str = "",
        gate: pb.GatePolicyFile | None = None, circular: bool = False,
    ) -> pb.CompareRunsResponse:
        """Compare two runs on the same benchmark digest (and check a gate policy, if given)."""
        req = pb.CompareRunsRequest(
            run_a=run_a, run_b=run_b, alpha=alpha, extraction_era=extraction_era, gate=gate, circular=circular
        )
        comparison: pb.CompareRunsResponse = self._call("CompareRuns", req, SHORT_DEADLINE_S)
        return comparison

    def get_run_calibration(self, run_id: str) -> pb.GetRunCalibrationResponse:
        """The calibration of a run's option probabilities."""
        req = pb.GetRunCalibrationRequest(id=run_id)
        calibration: pb.GetRunCalibrationResponse = self._call("GetRunCalibration", req, SHORT_DEADLINE_S)
        return calibration

    def export_run(self, request: pb.ExportRunRequest) -> Iterator[pb.ExportRunResponse]:
        """A run's VLMEvalKit files as a stream of chunks (the prediction file first)."""
        try:
            yield from self._stub.ExportRun(request, timeout=EXPORT_DEADLINE_S, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    # --- reports ------------------------------------------------------------------------

    def get_run_provenance(self, run_id: str) -> pb.GetRunProvenanceResponse:
        """Where a run's numbers come from, as the report's header prints it."""
        req = pb.GetRunProvenanceRequest(id=run_id)
        provenance: pb.GetRunProvenanceResponse = self._call("GetRunProvenance", req, SHORT_DEADLINE_S)
        return provenance

    def get_run_gallery(self, run_id: str, no_images: bool = False) -> pb.GetRunGalleryResponse:
        """The failure gallery of a run's report (thumbnails unless ``no_images``)."""
        req = pb.GetRunGalleryRequest(id=run_id, no_images=no_images)
        gallery: pb.GetRunGalleryResponse = self._call("GetRunGallery", req, SHORT_DEADLINE_S)
        return gallery

    def get_model_history(self, request: pb.GetModelHistoryRequest) -> pb.GetModelHistoryResponse:
        """Every succeeded run of a model, with the change between versions."""
        history: pb.GetModelHistoryResponse = self._call("GetModelHistory", request, REPORT_DEADLINE_S)
        return history

    def get_leaderboard(self, request: pb.GetLeaderboardRequest) -> pb.GetLeaderboardResponse:
        """Each model's latest whole run on a benchmark, ranked."""
        board: pb.GetLeaderboardResponse = self._call("GetLeaderboard", request, REPORT_DEADLINE_S)
        return board

    def rescore_run(self, run_id: str, extraction_era: str, judge_model: str = "") -> pb.RescoreRunResponse:
        """Re-grade a finished run with another extraction era."""
        req = pb.RescoreRunRequest(id=run_id, extraction_era=extraction_era, judge_model=judge_model)
        rescored: pb.RescoreRunResponse = self._call("RescoreRun", req, 600.0)
        return rescored
