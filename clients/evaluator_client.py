"""A small typed client of the evaluator's API (gmai_eval.evaluator.v1.EvaluatorService).

Used by the ``gmai-eval`` CLI. One :class:`EvaluatorClient` holds one channel, built from a
target, optional TLS files and an optional bearer token. Every failed call raises
:class:`EvaluatorError` with the status code name and the server's message, so callers
print one clean line instead of a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.evaluator.v1 import evaluator_pb2_grpc as pb_grpc
from gmai_eval.tls import channel_credentials

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


class EvaluatorError(Exception):
    """A call to the evaluator failed.

    Attributes:
        code: the gRPC status code name, e.g. ``"NOT_FOUND"``.
        message: the server's message.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Connection:
    """Where the evaluator is and how to reach it."""

    target: str = "localhost:50050"
    """HOST:PORT."""
    token: str = ""
    """Bearer token, empty for none."""
    ca_file: str = ""
    """PEM CA of the evaluator's certificate; any of the TLS files turns TLS on."""
    cert_file: str = ""
    """PEM client certificate for mutual TLS."""
    key_file: str = ""
    """PEM client key."""
    server_name: str = ""
    """Override of the name checked in the server certificate."""

    @property
    def tls(self) -> bool:
        """True when the channel uses TLS."""
        return bool(self.ca_file or self.cert_file or self.key_file)


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
        self, name: str, files: Iterable[str | Path], *, strict: bool = False, multi_choice: bool = False
    ) -> pb.ImportBenchmarkResponse:
        """Import a benchmark from TSV files via ImportBenchmark (streamed in chunks)."""
        paths = [Path(f) for f in files]
        names = [p.name for p in paths]
        if len(set(names)) != len(names):
            raise EvaluatorError("INVALID_ARGUMENT", "the files must have distinct names")
        for p in paths:
            if not p.is_file():
                raise EvaluatorError("INVALID_ARGUMENT", f"no such file: {p}")
        size = sum(p.stat().st_size for p in paths)

        def messages() -> Iterator[pb.ImportBenchmarkRequest]:
            yield pb.ImportBenchmarkRequest(
                header=pb.ImportHeader(name=name, strict=strict, file_names=names, multi_choice=multi_choice)
            )
            for p, n in zip(paths, names, strict=True):
                with p.open("rb") as fh:
                    while chunk := fh.read(CHUNK_BYTES):
                        yield pb.ImportBenchmarkRequest(chunk=pb.FileChunk(file_name=n, data=chunk))

        timeout = 60.0 + size / 1e9 * 60.0
        try:
            done: pb.ImportBenchmarkResponse = self._stub.ImportBenchmark(
                messages(), timeout=timeout, metadata=self._metadata
            )
            return done
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
        return list(self._call("ListRuns", req, SHORT_DEADLINE_S).runs)

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
        gate: pb.GatePolicyFile | None = None,
    ) -> pb.CompareRunsResponse:
        """Compare two runs on the same benchmark digest (and check a gate policy, if given)."""
        req = pb.CompareRunsRequest(run_a=run_a, run_b=run_b, alpha=alpha, extraction_era=extraction_era, gate=gate)
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

    def rescore_run(self, run_id: str, extraction_era: str, judge_model: str = "") -> pb.RescoreRunResponse:
        """Re-grade a finished run with another extraction era."""
        req = pb.RescoreRunRequest(id=run_id, extraction_era=extraction_era, judge_model=judge_model)
        rescored: pb.RescoreRunResponse = self._call("RescoreRun", req, 600.0)
        return rescored
