"""CLI commands of the results area: ``report``, ``history`` and ``leaderboard``.

They read the database file (``--db``) in process and never write to it: grading happens
on the write path (when a run ends), and an answer without a grade is counted as
``ungraded``. ``report`` writes one self-contained HTML file (docs/report.md).

Exit codes: 0 success, 1 an error (unknown run, bad policy...), 2 a usage error.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from gmai_eval.server.reports.text import FORMATS
from gmai_eval.server.store import Database

from .common import evaluator_errors
from .options import db_option, existing_db

F = TypeVar("F", bound=Callable[..., Any])


def _format_option(f: F) -> F:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="Output format.")(f)


@click.command("report")
@db_option()
@click.argument("run")
@click.option("--baseline", default=None, metavar="RUN_A",
              help="Compare with this run (same benchmark): per-node delta, McNemar p, flips.")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Release gate policy (.toml or .json); its verdict goes in the header.")
@click.option("--no-images", is_flag=True, help="Leave benchmark images out (for reports that leave the site).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write.")
def report_cmd(db_path: Path, run: str, baseline: str | None, policy: Path | None, no_images: bool,
               out: Path) -> None:
    """Write RUN's report as one self-contained HTML file (opens offline, prints to PDF)."""
    from gmai_eval.server.reports.content import build_report
    from gmai_eval.server.reports.html import render_html
    from gmai_eval.server.scoring.compare import load_policy

    started = time.monotonic()
    with evaluator_errors():
        gate = load_policy(policy) if policy is not None else None
        now = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        with Database(existing_db(db_path)) as db:
            rep = build_report(db, run, now=now, baseline=baseline, policy=gate, images=not no_images)
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
@db_option()
@click.option("--model", required=True, help="Registered model name.")
@click.option("--benchmark", default=None, help="Only runs on this benchmark.")
@_format_option
def history_cmd(db_path: Path, model: str, benchmark: str | None, fmt: str) -> None:
    """List every succeeded run of a model, version by version, with the change between versions."""
    from gmai_eval.server.reports.history import model_history, render_history

    with evaluator_errors(), Database(existing_db(db_path)) as db:
        click.echo(render_history(model_history(db, model, benchmark), model, fmt), nl=False)


@click.command("leaderboard")
@db_option()
@click.option("--benchmark", required=True, help="Benchmark to rank the models on.")
@click.option("--by", "by", multiple=True, type=click.Choice(("task", "department", "granularity")),
              help="Per-node columns, in the paper's order (repeatable) [default: task].")
@click.option("--with-paper", is_flag=True, help="Interleave the paper's published rows, labelled as published.")
@click.option("--circular", is_flag=True,
              help="Rank circular runs by circular accuracy (default: every run by vanilla accuracy).")
@_format_option
def leaderboard_cmd(db_path: Path, benchmark: str, by: tuple[str, ...], with_paper: bool, circular: bool,
                    fmt: str) -> None:
    """Rank each model's latest whole run on a benchmark; mark those tied with the leader (McNemar)."""
    from gmai_eval.server.reports.leaderboard import leaderboard, render_leaderboard

    dims = by or ("task",)
    with evaluator_errors(), Database(existing_db(db_path)) as db:
        rows = leaderboard(db, benchmark, dims, with_paper, circular)
    click.echo(render_leaderboard(rows, benchmark, dims, fmt, circular), nl=False)


def register(cli: click.Group) -> None:
    """Add this area's commands to ``cli``."""
    for cmd in (report_cmd, history_cmd, leaderboard_cmd):
        cli.add_command(cmd)
