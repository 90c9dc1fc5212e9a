"""CLI commands of the results area: ``report``, ``history`` and ``leaderboard``.

They work both ways: on the database file with ``--db`` (or GMAI_EVAL_DB), in process,
and otherwise through the evaluator at ``--server`` with its read-only RPCs
(docs/report.md). ``history`` and ``leaderboard`` get the same response message either way
(the ``--db`` path calls the functions behind GetModelHistory and GetLeaderboard) and
render it alike; ``report`` builds the same report from the file or from the RPCs
(``report_remote``). They never write to the database: grading happens on the write path
(when a run ends), and an answer without a grade is counted as ``ungraded``. ``report``
writes one self-contained HTML file; its generation time is ``SOURCE_DATE_EPOCH`` when
that is set (reproducible reports), else now. Rendering needs the evaluator's code, so
these commands need ``gmai-eval[server]`` either way.

Exit codes: 0 success, 1 an error (unknown run, bad policy...), 2 a usage error.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb
from gmai_eval.server.reports.text import FORMATS
from gmai_eval.server.store import Database

from .common import evaluator_errors
from .options import Target, target_options
from .runs import client

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")

SOURCE_DATE_EPOCH = "SOURCE_DATE_EPOCH"
"""The reproducible-builds variable: seconds since 1970 used as the report's generation time."""


def _format_option(f: F) -> F:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="Output format.")(f)


def _ask(target: Target, local: Callable[[Database], R], remote: Callable[[Any], R]) -> R:
    """``local(db)`` on the file, or ``remote(client)`` through the evaluator."""
    if target.db is None:
        with evaluator_errors(), client(target.conn) as c:  # evaluator_errors: what the client checks itself
            return remote(c)
    with evaluator_errors(), Database(target.db) as db:
        return local(db)


def generated_at() -> str:
    """The report's generation time (ISO-8601 UTC, seconds): SOURCE_DATE_EPOCH, else now."""
    epoch = os.environ.get(SOURCE_DATE_EPOCH, "").strip()
    if not epoch:
        return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    try:
        return dt.datetime.fromtimestamp(int(epoch), dt.UTC).isoformat()
    except (ValueError, OverflowError, OSError):
        raise click.ClickException(
            f"{SOURCE_DATE_EPOCH}={epoch!r}: expected whole seconds since 1970-01-01 UTC") from None


@click.command("report")
@target_options
@click.argument("run")
@click.option("--baseline", default=None, metavar="RUN_A",
              help="Compare with this run (same benchmark): per-node delta, McNemar p, flips.")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Release gate policy (.toml or .json); its verdict goes in the header.")
@click.option("--no-images", is_flag=True, help="Leave benchmark images out (for reports that leave the site).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write.")
def report_cmd(target: Target, run: str, baseline: str | None, policy: Path | None, no_images: bool,
               out: Path) -> None:
    """Write RUN's report as one self-contained HTML file (opens offline, prints to PDF).

    The generation time it prints is SOURCE_DATE_EPOCH (seconds since 1970) when set, else now.
    """
    from gmai_eval.server.reports.content import build_report
    from gmai_eval.server.reports.html import render_html
    from gmai_eval.server.scoring.compare import load_policy

    from .report_remote import remote_report

    started = time.monotonic()
    with evaluator_errors():
        gate = load_policy(policy) if policy is not None else None
    now = generated_at()
    kw: dict[str, Any] = {"now": now, "baseline": baseline, "policy": gate, "images": not no_images}
    rep = _ask(target, lambda db: build_report(db, run, **kw), lambda c: remote_report(c, run, **kw))
    page = render_html(rep)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, "utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror or exc}") from None
    size = out.stat().st_size
    verdict = "" if rep.gate is None else (", gate PASSED" if rep.gate.passed else ", gate FAILED")
    click.echo(f"wrote {out} ({size / 1e6:.2f} MB, {time.monotonic() - started:.1f} s){verdict}")


@click.command("history")
@target_options
@click.option("--model", required=True, help="Registered model name.")
@click.option("--benchmark", default=None, help="Only runs on this benchmark.")
@_format_option
def history_cmd(target: Target, model: str, benchmark: str | None, fmt: str) -> None:
    """List every succeeded run of a model, version by version, with the change between versions."""
    from gmai_eval.server.api.report_convert import history_from_proto
    from gmai_eval.server.api.report_service import history_response
    from gmai_eval.server.reports.history import render_history

    req = pb.GetModelHistoryRequest(model=model, benchmark=benchmark or "")
    resp = _ask(target, lambda db: history_response(db, req), lambda c: c.get_model_history(req))
    click.echo(render_history(history_from_proto(resp), model, fmt), nl=False)


@click.command("leaderboard")
@target_options
@click.option("--benchmark", required=True, help="Benchmark to rank the models on.")
@click.option("--by", "by", multiple=True, type=click.Choice(("task", "department", "granularity")),
              help="Per-node columns, in the paper's order (repeatable) [default: task].")
@click.option("--with-paper", is_flag=True, help="Interleave the paper's published rows, labelled as published.")
@click.option("--circular", is_flag=True,
              help="Rank circular runs by circular accuracy (default: every run by vanilla accuracy).")
@_format_option
def leaderboard_cmd(
    target: Target, benchmark: str, by: tuple[str, ...], with_paper: bool, circular: bool, fmt: str
) -> None:
    """Rank each model's latest whole run on a benchmark; mark those tied with the leader (McNemar)."""
    from gmai_eval.server.api.report_convert import leaderboard_from_proto
    from gmai_eval.server.api.report_service import leaderboard_response
    from gmai_eval.server.reports.leaderboard import render_leaderboard

    req = pb.GetLeaderboardRequest(benchmark=benchmark, by=list(by), with_paper=with_paper, circular=circular)
    resp = _ask(target, lambda db: leaderboard_response(db, req), lambda c: c.get_leaderboard(req))
    click.echo(
        render_leaderboard(leaderboard_from_proto(resp), resp.benchmark, list(resp.by), fmt, resp.circular), nl=False
    )
