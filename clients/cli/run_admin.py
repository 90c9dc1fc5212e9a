"""``runs delete`` and ``benchmarks remove`` (the end of the life cycle), and how the run
commands read both ways.

Both ways build the same messages: through the evaluator at ``--server`` the commands call
ListRuns, GetRunReport, DeleteRun and RemoveBenchmark; with ``--db`` (or GMAI_EVAL_DB) they
call the functions behind those RPCs (``server.api.stored_runs``) on the file, so the
output is the same. Deleting needs the admin token through the evaluator (the read-only
one gets PERMISSION_DENIED). With ``--db`` it takes the file's owner lock for the time of
the transaction: while an evaluator serves the file, the command is refused and told to go
through it, since only it knows whether it still drives the run.

Refused, in one line: a run that is queued, running or interrupted; a benchmark with such
a run; a benchmark that has runs at all, unless ``--with-runs`` (then its finished runs go
with it). Each asks for confirmation on a terminal; scripts pass ``--yes``, and without a
terminal and without ``--yes`` nothing is deleted (usage error, exit 2).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from .extras import server_extra
from .follow import state_name
from .options import Target, target_options
from .runs import client

if TYPE_CHECKING:
    from ..evaluator_client import EvaluatorClient

R = TypeVar("R")

SHOWN_RUNS = 10
"""Run ids ``benchmarks remove --with-runs`` names at most."""


def ask(
    target: Target, command: str, local: Callable[[Any, Any], R], remote: Callable[[EvaluatorClient], R],
    *, owning: bool = False,
) -> R:
    """``local(stored_runs, db)`` on the file, or ``remote(client)`` through the evaluator.

    Args:
        target: the file or the evaluator.
        command: the command's words, for messages.
        local: what to do on the file.
        remote: what to do through the evaluator.
        owning: hold the file's owner lock while ``local`` runs (writes that an evaluator
            serving the file must not race).
    """
    if target.db is None:
        with client(target.conn) as c:
            return remote(c)
    with server_extra(command):
        from gmai_eval.server.api import stored_runs
        from gmai_eval.server.store import Database
        from gmai_eval.server.store.owner import DatabaseOwner

        from .common import evaluator_errors
    with evaluator_errors():
        if not owning:
            with Database(target.db) as db:
                return local(stored_runs, db)
        hint = f"go through it: gmai-eval {command} --server HOST:PORT (admin token)"
        with DatabaseOwner(target.db, f"gmai-eval {command}", busy_hint=hint), Database(target.db) as db:
            return local(stored_runs, db)


def _confirm(yes: bool, question: str) -> None:
    """Go on with ``--yes``, or after a yes on a terminal; otherwise stop with nothing deleted."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise click.UsageError("nothing deleted: pass --yes to confirm (there is no terminal to ask on)")
    if not click.confirm(question, default=False, err=True):
        raise click.ClickException("nothing deleted (not confirmed)")


def rows_text(rows: Mapping[str, int]) -> str:
    """``"attempts 20, grades 20, runs 1"``: the non-empty tables, by name."""
    return ", ".join(f"{table} {n}" for table, n in sorted(rows.items()) if n) or "none"


_YES = click.option("--yes", is_flag=True, help="Delete without asking (for scripts).")


@click.command("delete")
@target_options
@click.argument("run_id")
@_YES
def delete_cmd(target: Target, run_id: str, yes: bool) -> None:
    """Delete RUN_ID and everything it recorded (admin; refused while it is queued, running or interrupted)."""
    _confirm(yes, f"Delete run {run_id} with its answers, grades and history? This cannot be undone.")
    req = pb.DeleteRunRequest(id=run_id)
    resp: pb.DeleteRunResponse = ask(
        target, "runs delete", lambda s, db: s.delete_run_response(db, req), lambda c: c.delete_run(run_id),
        owning=True,
    )
    r = resp.run
    click.echo(f"deleted run {r.id} ({r.model} on {r.benchmark}, {state_name(r.state)}); "
               f"rows: {rows_text(resp.deleted_rows)}")


@click.command("remove")
@target_options
@click.argument("name")
@click.option("--with-runs", is_flag=True,
              help="Also delete the benchmark's runs (all must be finished); without it, a benchmark with runs is refused.")
@_YES
def remove_cmd(target: Target, name: str, with_runs: bool, yes: bool) -> None:
    """Remove benchmark NAME with its questions and images (admin; refused while it has runs, unless --with-runs)."""
    runs = " and all its runs" if with_runs else ""
    _confirm(yes, f"Remove benchmark {name} with its questions and images{runs}? This cannot be undone.")
    req = pb.RemoveBenchmarkRequest(name=name, with_runs=with_runs)
    resp: pb.RemoveBenchmarkResponse = ask(
        target, "benchmarks remove", lambda s, db: s.remove_benchmark_response(db, req),
        lambda c: c.remove_benchmark(name, with_runs=with_runs), owning=True,
    )
    b = resp.benchmark
    ids = list(resp.deleted_runs)
    more = f" and {len(ids) - SHOWN_RUNS} more" if len(ids) > SHOWN_RUNS else ""
    gone = f"; deleted {len(ids)} run(s): {', '.join(ids[:SHOWN_RUNS])}{more}" if ids else ""
    click.echo(f"removed benchmark {b.name} ({b.question_count} questions, {b.digest}){gone}; "
               f"rows: {rows_text(resp.deleted_rows)}")
