"""CLI commands that tell what went wrong: ``runs show``, ``models check``, ``models remove``.

``runs show RUN`` prints a run's provenance (model identity and digest, benchmark digest,
parameters, evaluator version), its state history and its errors and retries grouped by
code and message, with counts and example row indexes (GetRunReport, read-only; with
``--db`` from the file, the same output, rendered by ``run_views``).
``models check NAME`` runs the pre-flight handshake on demand (CheckModel) and prints
every step; it exits 1 with the failed step's reason when the model would be refused.
``models remove NAME`` removes a registration (RemoveModel); the evaluator refuses while a
run of the model is live, and the CLI prints its reason in one line.

The ``runs`` and ``models`` groups (``runs``) load ``show``, ``check`` and ``remove`` from
here when they are used (``lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from .options import Target, connection_options, target_options
from .run_admin import ask
from .run_views import render_report
from .runs import client
from .score_views import FORMATS as TABLE_FORMATS

if TYPE_CHECKING:
    from ..connection import Connection


def _show_command() -> click.Command:
    @click.command("show")
    @target_options
    @click.argument("run_id")
    @click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table", show_default=True,
                  help="Output format (csv: one row per field, event and error group).")
    def show(target: Target, run_id: str, fmt: str) -> None:
        """Show RUN_ID's provenance, state history and errors grouped by reason (reads only)."""
        req = pb.GetRunReportRequest(id=run_id)
        report = ask(target, "runs show", lambda s, db: s.run_report_response(db, req),
                     lambda c: c.get_run_report(run_id))
        click.echo(render_report(report, fmt), nl=False)

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


show_cmd = _show_command()
check_cmd = _check_command()
remove_cmd = _remove_command()
