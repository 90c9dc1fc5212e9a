"""CLI commands that tell what went wrong: ``runs show``, ``models check``, ``models remove``.

``runs show RUN`` prints a run's provenance (model identity and digest, benchmark digest,
parameters, evaluator version), its state history and its errors and retries grouped by
code and message, with counts and example row indexes (GetRunReport, read-only).
``models check NAME`` runs the pre-flight handshake on demand (CheckModel) and prints
every step; it exits 1 with the failed step's reason when the model would be refused.
``models remove NAME`` removes a registration (RemoveModel); the evaluator refuses while a
run of the model is live, and the CLI prints its reason in one line.

:func:`register` adds ``show`` to the ``runs`` group and ``check``/``remove`` to the
``models`` group that ``runs.register`` created.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from ..evaluator_client import Connection
from .follow import state_name
from .options import connection_options
from .reasons import group_line, sub_state_text
from .runs import client

SHOW_FORMATS = ("table", "json")
"""Output formats of ``runs show``."""


def _time(ts: Timestamp) -> str:
    return ts.ToDatetime().strftime("%Y-%m-%dT%H:%M:%SZ")


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


def _groups(title: str, groups: Sequence[pb.ErrorGroup], unit: str) -> list[str]:
    total = sum(g.count for g in groups)
    if not groups:
        return [f"{title}: none"]
    return [f"{title} ({total} {unit}):", *(f"  {group_line(g)}" for g in groups)]


def report_lines(report: pb.GetRunReportResponse) -> list[str]:
    """``runs show`` as text: provenance, history, errors, retries."""
    run = report.run
    p = run.progress
    state = state_name(run.state)
    waiting = sub_state_text(run)
    lines = [f"run {run.id} {state}" + (f" ({waiting})" if waiting else "")]
    lines.append(f"  model       {_model_identity(run)}")
    lines.append(f"  benchmark   {run.benchmark} (digest {run.benchmark_digest})")
    lines.append(f"  parameters  {_parameters(run.parameters)}")
    lines.append(f"  evaluator   {run.evaluator_version or 'unknown'}")
    lines.append(f"  progress    {p.done}/{p.total} questions, {p.errors} in error, {p.retries} retries")
    if run.HasField("created_time"):
        ended = f", finished {_time(run.finished_time)}" if run.HasField("finished_time") else ""
        lines.append(f"  time        created {_time(run.created_time)}{ended}")
    if run.error_message:
        lines.append(f"  reason      {run.error_message}")
    lines.append("history:")
    lines += [f"  {_time(e.time)}  {e.kind}" + (f": {e.message}" if e.message else "") for e in report.events]
    if not report.events:
        lines.append("  (no event recorded)")
    lines += _groups("errors", report.errors, "questions")
    lines += _groups("retries", report.retries, "attempts")
    return lines


def _show_command() -> click.Command:
    @click.command("show")
    @click.argument("run_id")
    @click.option("--format", "fmt", type=click.Choice(SHOW_FORMATS), default="table", show_default=True, help="Output format.")
    @connection_options
    def show(conn: Connection, run_id: str, fmt: str) -> None:
        """Show RUN_ID's provenance, state history and errors grouped by reason (reads only)."""
        with client(conn) as c:
            report = c.get_run_report(run_id)
        if fmt == "json":
            click.echo(json.dumps(json_format.MessageToDict(report, preserving_proto_field_name=True), indent=2))
            return
        for line in report_lines(report):
            click.echo(line)

    return show


def _check_command() -> click.Command:
    @click.command("check")
    @click.argument("name")
    @click.option("--benchmark", default="", help="Benchmark whose first question is the smoke question (default: the first one).")
    @connection_options
    def check(conn: Connection, name: str, benchmark: str) -> None:
        """Run the pre-flight (health, info, smoke question) against model NAME and print each step.

        Exits 1, with the failed step's reason, when a run of the model would be refused.
        """
        with client(conn) as c:
            found = c.check_model(name, benchmark)
        for s in found.steps:
            click.echo(f"{'ok' if s.ok else 'FAILED':<6}  {s.step}: {s.detail} ({s.seconds:.2f} s)")
        if not found.ok:
            failed = next((s for s in found.steps if not s.ok), None)
            why = f"{failed.step}: {failed.detail}" if failed is not None else "the check did not finish"
            raise click.ClickException(f"model {name} failed the check: {why}")
        click.echo(f"model {name} is ready: a run would be accepted")

    return check


def _remove_command() -> click.Command:
    @click.command("remove")
    @click.argument("name")
    @connection_options
    def remove(conn: Connection, name: str) -> None:
        """Remove model NAME; refused while a run of it is queued, running or interrupted.

        Runs of the model keep what they recorded.
        """
        with client(conn) as c:
            removed = c.remove_model(name)
        click.echo(f"removed {removed.name}: {', '.join(removed.endpoints)}")

    return remove


def register(cli: click.Group) -> None:
    """Add ``runs show``, ``models check`` and ``models remove`` to their groups in ``cli``."""
    runs_group = cli.commands["runs"]
    models_group = cli.commands["models"]
    assert isinstance(runs_group, click.Group) and isinstance(models_group, click.Group)
    runs_group.add_command(_show_command())
    models_group.add_command(_check_command())
    models_group.add_command(_remove_command())
