"""Translation between the evaluator's records and its v1 proto messages.

Pure functions, no I/O. Proto zero values mean "the evaluator's default" (see
evaluator.proto), so :func:`run_params_from_proto` fills them from
:class:`~gmai_eval.server.records.RunParams`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.errors import Defect, InvalidArgument
from gmai_eval.server.names import MAX_FILTER_BYTES, check_endpoints, check_name, check_size
from gmai_eval.server.records import (
    Benchmark,
    Era,
    ModelSpec,
    RunParams,
    RunProgress,
    RunRecord,
    RunState,
    TlsSettings,
)
from gmai_eval.server.runs.progress import RunReport
from gmai_eval.server.store.error_groups import ErrorGroup
from gmai_eval.server.taxonomy import NodePath
from google.protobuf import json_format, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

if TYPE_CHECKING:  # annotations only: a --db read need not import the TSV import (Pillow) or the model check
    from gmai_eval.server.data.tsv_import import ImportReport
    from gmai_eval.server.runs.model_check import ModelCheck

_STATES: dict[RunState, pb.RunState] = {
    RunState.QUEUED: pb.RUN_STATE_QUEUED,
    RunState.RUNNING: pb.RUN_STATE_RUNNING,
    RunState.SUCCEEDED: pb.RUN_STATE_SUCCEEDED,
    RunState.FAILED: pb.RUN_STATE_FAILED,
    RunState.CANCELLED: pb.RUN_STATE_CANCELLED,
    RunState.INTERRUPTED: pb.RUN_STATE_INTERRUPTED,
}
"""The one mapping from run states to the proto enum (a test checks it is total and one-to-one)."""


def timestamp(iso: str) -> Timestamp | None:
    """A Timestamp from an ISO-8601 string (naive means UTC); None for an empty string."""
    if not iso:
        return None
    moment = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ts = Timestamp()
    ts.FromDatetime(moment.astimezone(UTC))
    return ts


def _set_time(msg: Any, field: str, iso: str) -> None:
    """Set the Timestamp field ``field`` of ``msg`` from ``iso``; leave it unset when empty."""
    ts = timestamp(iso)
    if ts is not None:
        getattr(msg, field).CopyFrom(ts)


def run_state(state: RunState) -> pb.RunState:
    """The proto RunState of a run state."""
    return _STATES[state]


def era_from_proto(value: str) -> Era:
    """The extraction era named in a request (empty: the default).

    Raises:
        InvalidArgument: an era this evaluator does not know; the message lists the known ones.
    """
    if not value:
        return RunParams().extraction_era
    try:
        return Era(value)
    except ValueError:
        known = ", ".join(e.value for e in Era)
        raise InvalidArgument(f"unknown extraction era {value!r}; expected one of {known}") from None


# --- benchmarks -----------------------------------------------------------------------


def benchmark_to_proto(b: Benchmark) -> pb.Benchmark:
    """A Benchmark message from a record."""
    msg = pb.Benchmark(
        name=b.name,
        digest=b.digest,
        question_count=b.question_count,
        flagged_count=b.flagged_count,
        layout=b.layout,
        multi_choice=b.multi_choice,
        source_files=[
            pb.SourceFile(name=f.name, sha256=f.sha256, rows=f.rows, size_bytes=f.size_bytes)
            for f in b.source_files
        ],
    )
    _set_time(msg, "created_time", b.created_at)
    return msg


def defect_to_proto(d: Defect) -> pb.ImportDefect:
    """An ImportDefect message from a Defect."""
    return pb.ImportDefect(file=d.file, row=max(d.row, 0), column=d.column, message=d.message)


def import_report_to_proto(report: ImportReport) -> pb.ImportBenchmarkResponse:
    """ImportBenchmark's answer from an import's report (the CLI's ``import --db`` prints it too)."""
    return pb.ImportBenchmarkResponse(
        benchmark=benchmark_to_proto(report.benchmark),
        already_imported=report.already_imported,
        imported_rows=report.imported_rows,
        skipped_rows=report.skipped_rows,
        defects=[defect_to_proto(d) for d in report.defects],
        layout_reason=report.layout_reason,
    )


def taxonomy_node_to_proto(node: tuple[NodePath, int]) -> pb.TaxonomyNode:
    """A TaxonomyNode message from a (path, count) pair of the taxonomy counts."""
    path, count = node
    return pb.TaxonomyNode(path=list(path), count=count)


# --- models ---------------------------------------------------------------------------


def model_to_proto(m: ModelSpec) -> pb.Model:
    """A Model message from a record."""
    msg = pb.Model(name=m.name, endpoints=list(m.endpoints), version=m.version)
    if m.tls.enabled or m.tls.server_name:
        msg.tls.CopyFrom(
            pb.TlsConfig(
                ca_file=m.tls.ca_file,
                cert_file=m.tls.cert_file,
                key_file=m.tls.key_file,
                server_name=m.tls.server_name,
            )
        )
    _set_time(msg, "updated_time", m.updated_at)
    return msg


def model_from_proto(msg: pb.Model) -> ModelSpec:
    """A ModelSpec from a RegisterModel request's model (validated for shape only).

    Raises:
        InvalidArgument: a name outside :data:`~gmai_eval.server.names.NAME_PATTERN`, no
            endpoint, or one that is not ``host:port`` / ``dns:///host:port``.
    """
    name = check_name(msg.name.strip(), "model")
    endpoints = check_endpoints(tuple(e.strip() for e in msg.endpoints), name)
    tls = TlsSettings(
        ca_file=msg.tls.ca_file,
        cert_file=msg.tls.cert_file,
        key_file=msg.tls.key_file,
        server_name=msg.tls.server_name,
    )
    return ModelSpec(name=name, endpoints=endpoints, version=msg.version, tls=tls)


# --- runs -----------------------------------------------------------------------------


def struct_to_dict(msg: struct_pb2.Struct) -> dict[str, object]:
    """A Struct as plain Python values; numbers with no fraction become ints.

    A Struct carries every number as a double, so ``{"max_tokens": 16}`` arrives as 16.0;
    turning integral values back into ints keeps stored parameters as the user wrote them.
    """

    def plain(value: object) -> object:
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    raw = json_format.MessageToDict(msg)
    return {str(k): plain(v) for k, v in raw.items()}


def run_params_from_proto(msg: pb.RunParameters) -> RunParams:
    """RunParams from a request, zero values replaced by the defaults.

    The model parameters come from the typed ``model_parameters`` Struct or from the
    deprecated ``model_parameters_json`` string; when both are set they must agree.

    Raises:
        InvalidArgument: ``model_parameters_json`` is not a JSON object, or disagrees with
            ``model_parameters``.
    """
    default = RunParams()
    check_size(msg.filter, MAX_FILTER_BYTES, "parameters.filter")
    from_json: dict[str, object] | None = None
    if msg.model_parameters_json.strip():
        try:
            parsed = json.loads(msg.model_parameters_json)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"parameters.model_parameters_json is not valid JSON: {exc}") from exc
        if not isinstance(parsed, dict):
            raise InvalidArgument("parameters.model_parameters_json must be a JSON object")
        from_json = parsed
    from_struct = struct_to_dict(msg.model_parameters) if msg.HasField("model_parameters") else None
    if from_json is not None and from_struct is not None and from_json != from_struct:
        raise InvalidArgument(
            "parameters.model_parameters and the deprecated parameters.model_parameters_json "
            "disagree; set only model_parameters"
        )
    model_parameters = from_struct if from_struct is not None else (from_json or {})
    return RunParams(
        filter=msg.filter,
        concurrency=msg.concurrency or default.concurrency,
        deadline_s=msg.deadline_seconds or default.deadline_s,
        max_attempts=msg.max_attempts or default.max_attempts,
        max_error_fraction=_error_fraction(msg),
        extraction_era=era_from_proto(msg.extraction_era),
        model_parameters=model_parameters,
        limit=msg.limit,
        seed=msg.seed,
        max_outage_s=msg.max_outage_seconds or default.max_outage_s,
        circular=msg.circular,
    )


def _error_fraction(msg: pb.RunParameters) -> float:
    """The error fraction asked for: ``error_tolerance`` when set (0 = zero tolerance), else
    ``max_error_fraction`` (0 there = the default, as it always meant)."""
    if msg.HasField("error_tolerance"):
        return msg.error_tolerance
    return msg.max_error_fraction or RunParams().max_error_fraction


def run_params_to_proto(p: RunParams) -> pb.RunParameters:
    """A RunParameters message from a record (typed and deprecated JSON fields both set)."""
    msg = pb.RunParameters(
        filter=p.filter,
        concurrency=p.concurrency,
        deadline_seconds=p.deadline_s,
        max_attempts=p.max_attempts,
        max_error_fraction=p.max_error_fraction,
        extraction_era=p.extraction_era,
        model_parameters_json=json.dumps(p.model_parameters, sort_keys=True) if p.model_parameters else "",
        limit=p.limit,
        seed=p.seed,
        max_outage_seconds=p.max_outage_s,
        error_tolerance=p.max_error_fraction,
        circular=p.circular,
    )
    if p.model_parameters:
        json_format.ParseDict(p.model_parameters, msg.model_parameters)
    return msg


def progress_to_proto(p: RunProgress) -> pb.RunProgress:
    """A RunProgress message from a record."""
    return pb.RunProgress(
        total=p.total,
        done=p.done,
        errors=p.errors,
        retries=p.retries,
        correct=p.correct,
        rate_per_second=p.rate_per_s,
        eta_seconds=p.eta_s,
    )


def run_to_proto(r: RunRecord) -> pb.Run:
    """A Run message from a record."""
    msg = pb.Run(
        id=r.id,
        model=r.model,
        benchmark=r.benchmark,
        benchmark_digest=r.benchmark_digest,
        state=run_state(r.state),
        parameters=run_params_to_proto(r.params),
        progress=progress_to_proto(r.progress),
        model_info_json=json.dumps(r.model_info, sort_keys=True) if r.model_info else "",
        evaluator_version=r.evaluator_version,
        error_message=r.error_message,
        sub_state=r.sub_state,
        waiting_reason=r.waiting_reason,
    )
    _set_time(msg, "waiting_since", r.waiting_since)
    if r.model_info:
        json_format.ParseDict(r.model_info, msg.model_info)
    _set_time(msg, "created_time", r.created_at)
    _set_time(msg, "finished_time", r.finished_at)
    return msg


def runs_to_proto(runs: Iterable[RunRecord]) -> list[pb.Run]:
    """Run messages from records, in the same order."""
    return [run_to_proto(r) for r in runs]


def _error_group_to_proto(g: ErrorGroup) -> pb.ErrorGroup:
    return pb.ErrorGroup(code=g.code, message=g.message, count=g.count, example_indexes=list(g.examples))


def run_report_to_proto(r: RunReport) -> pb.GetRunReportResponse:
    """A GetRunReport response from a report."""
    msg = pb.GetRunReportResponse(
        run=run_to_proto(r.run),
        errors=[_error_group_to_proto(g) for g in r.errors],
        retries=[_error_group_to_proto(g) for g in r.retries],
    )
    for e in r.events:
        event = msg.events.add(kind=e.kind, message=e.message)
        _set_time(event, "time", e.at)
    return msg


def model_check_to_proto(c: ModelCheck) -> pb.CheckModelResponse:
    """A CheckModel response from a model check."""
    msg = pb.CheckModelResponse(
        model=model_to_proto(c.model),
        steps=[pb.ModelCheckStep(step=s.step, ok=s.ok, detail=s.detail, seconds=s.seconds) for s in c.steps],
        ok=c.ok,
    )
    if c.model_info:
        json_format.ParseDict(c.model_info, msg.model_info)
    return msg
