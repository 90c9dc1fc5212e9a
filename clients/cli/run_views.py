"""Render the runs list (``runs``), a run's report (``runs show``) and ``models list`` in every format (pure).

Both commands get the same messages from the file (``--db``) and from the evaluator
(``--server``): ``ListRunsResponse`` and ``GetRunReportResponse``. This module prints them
as ``table`` (for people), ``json`` (the messages, field names as in the proto), ``csv``
(one header row, parsed by any CSV reader) or ``markdown`` (a header and a separator line
per table).

``runs show --format csv`` is one long table, ``section,key,value,count,examples``: the
``run`` section has one row per field, ``history`` one per event (key the time, value
the kind and message), ``errors`` and ``retries`` one per group (key the code, value the
message, with the count and example row indexes).

This module is part of the base install: it imports nothing of the evaluator.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from google.protobuf import json_format
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from .catalog import render_table
from .follow import state_name
from .reasons import group_line, sub_state_text

RUNS_HEADERS = ["RUN", "STATE", "MODEL", "BENCHMARK", "DONE", "ERRORS", "CREATED"]
"""Columns of ``runs`` as a table or Markdown."""

RUNS_CSV_HEADERS = [
    "id", "state", "waiting", "model", "benchmark", "done", "total", "errors", "retries", "created", "finished",
]
"""Columns of ``runs --format csv``."""

REPORT_CSV_HEADERS = ["section", "key", "value", "count", "examples"]
"""Columns of ``runs show --format csv``."""


def _time(ts: Timestamp) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")


def _when(run: pb.Run, field: str) -> str:
    return _time(getattr(run, field)) if run.HasField(field) else ""


def _state(run: pb.Run) -> str:
    waiting = sub_state_text(run)
    return f"{state_name(run.state)} ({waiting})" if waiting else state_name(run.state)


def message_dict(msg: Message) -> dict[str, object]:
    """A message as a JSON-ready dict, with the proto's field names and every field (zeros too)."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


# --- runs ----------------------------------------------------------------------------------


def render_runs(runs: Sequence[pb.Run], fmt: str) -> str:
    """The runs list in ``fmt`` (``table`` says ``no runs`` when there is none)."""
    if fmt == "json":
        return json.dumps([message_dict(r) for r in runs], indent=2) + "\n"
    if fmt == "csv":
        rows = [
            [r.id, state_name(r.state), sub_state_text(r), r.model, r.benchmark, str(r.progress.done),
             str(r.progress.total), str(r.progress.errors), str(r.progress.retries), _when(r, "created_time"),
             _when(r, "finished_time")]
            for r in runs
        ]
        return render_table(RUNS_CSV_HEADERS, rows, "csv")
    if not runs and fmt == "table":
        return "no runs\n"
    rows = [
        [r.id, _state(r), r.model, r.benchmark, f"{r.progress.done}/{r.progress.total}", str(r.progress.errors),
         _when(r, "created_time")]
        for r in runs
    ]
    return render_table(RUNS_HEADERS, rows, fmt)


def render_models(models: Sequence[pb.Model], fmt: str) -> str:
    """The registered models in ``fmt`` (``table`` says ``no models`` when there is none)."""
    if fmt == "json":
        return json.dumps([message_dict(m) for m in models], indent=2) + "\n"
    if not models and fmt == "table":
        return "no models\n"
    rows = [[m.name, ",".join(m.endpoints), m.version, "yes" if m.tls.ca_file or m.tls.cert_file else "no"]
            for m in models]
    return render_table(["NAME", "ENDPOINTS", "VERSION", "TLS"], rows, fmt)


# --- runs show -----------------------------------------------------------------------------


def _model_identity(run: pb.Run) -> str:
    info = json_format.MessageToDict(run.model_info) if run.HasField("model_info") else {}
    parts = [str(info[k]) for k in ("name", "version") if info.get(k)]
    digest = info.get("weights_digest") or info.get("weightsDigest")
    who = " ".join(parts) or "no model info recorded"
    return f"{run.model} ({who}, weights {digest})" if digest else f"{run.model} ({who}, no weights digest)"


def _parameters(p: pb.RunParameters) -> str:
    fields = [
        f"concurrency {p.concurrency}", f"deadline {p.deadline_seconds:g} s", f"max_attempts {p.max_attempts}",
        f"max_error_fraction {p.max_error_fraction:g}", f"max_outage {p.max_outage_seconds:g} s",
        f"era {p.extraction_era or 'default'}",
    ]
    if p.filter:
        fields.insert(0, f"filter {p.filter!r}")
    if p.limit:
        fields.append(f"limit {p.limit} seed {p.seed}")
    if p.circular:
        fields.append("circular")
    if p.HasField("model_parameters") and p.model_parameters.fields:
        fields.append("model_parameters " + json.dumps(json_format.MessageToDict(p.model_parameters), sort_keys=True))
    return ", ".join(fields)


def _run_fields(run: pb.Run) -> list[tuple[str, str]]:
    p = run.progress
    fields = [
        ("state", _state(run)), ("model", _model_identity(run)),
        ("benchmark", f"{run.benchmark} (digest {run.benchmark_digest})"),
        ("parameters", _parameters(run.parameters)), ("evaluator", run.evaluator_version or "unknown"),
        ("progress", f"{p.done}/{p.total} questions, {p.errors} in error, {p.retries} retries"),
    ]
    if run.HasField("created_time"):
        ended = f", finished {_time(run.finished_time)}" if run.HasField("finished_time") else ""
        fields.append(("time", f"created {_time(run.created_time)}{ended}"))
    if run.error_message:
        fields.append(("reason", run.error_message))
    return fields


def _groups(title: str, groups: Sequence[pb.ErrorGroup], unit: str) -> list[str]:
    total = sum(g.count for g in groups)
    if not groups:
        return [f"{title}: none"]
    return [f"{title} ({total} {unit}):", *(f"  {group_line(g)}" for g in groups)]


def report_lines(report: pb.GetRunReportResponse) -> list[str]:
    """``runs show`` as text: provenance, history, errors, retries."""
    run = report.run
    fields = _run_fields(run)
    lines = [f"run {run.id} {fields[0][1]}"]
    lines += [f"  {key:<11} {value}" for key, value in fields[1:]]
    lines.append("history:")
    lines += [f"  {_time(e.time)}  {e.kind}" + (f": {e.message}" if e.message else "") for e in report.events]
    if not report.events:
        lines.append("  (no event recorded)")
    lines += _groups("errors", report.errors, "questions")
    lines += _groups("retries", report.retries, "attempts")
    return lines


def _event(e: pb.RunEvent) -> str:
    return e.kind + (f": {e.message}" if e.message else "")


def _group_rows(groups: Sequence[pb.ErrorGroup]) -> list[list[str]]:
    return [[str(g.count), g.code, g.message, " ".join(str(i) for i in g.example_indexes)] for g in groups]


def render_report(report: pb.GetRunReportResponse, fmt: str) -> str:
    """``runs show`` in ``fmt``."""
    if fmt == "json":
        return json.dumps(message_dict(report), indent=2) + "\n"
    if fmt == "table":
        return "\n".join(report_lines(report)) + "\n"
    fields = [("id", report.run.id), *_run_fields(report.run)]
    if fmt == "csv":
        rows = [["run", key, value, "", ""] for key, value in fields]
        rows += [["history", _time(e.time), _event(e), "", ""] for e in report.events]
        for section, groups in (("errors", report.errors), ("retries", report.retries)):
            rows += [[section, code, message, count, examples] for count, code, message, examples in _group_rows(groups)]
        return render_table(REPORT_CSV_HEADERS, rows, "csv")
    parts = [f"## run {report.run.id}\n", render_table(["field", "value"], fields, "markdown"),
             "\n## history\n", render_table(["time", "event"], [[_time(e.time), _event(e)] for e in report.events],
                                            "markdown")]
    for section, groups in (("errors", report.errors), ("retries", report.retries)):
        parts += [f"\n## {section}\n", render_table(["count", "code", "message", "examples"], _group_rows(groups),
                                                   "markdown")]
    return "".join(parts)
