"""CLI commands of the scoring area: ``scores``, ``rescore``, ``compare``, ``export``,
``score-file`` and ``calibration``.

They work on the database file directly (``--db``), in process; no server is needed
(``rescore --judge`` calls the judge model, never the evaluated one). ``scores``,
``compare``, ``export`` and ``calibration`` only read: answers a run has not graded yet are
reported as ``ungraded``. ``rescore`` and ``score-file`` write grades.

Exit codes: 0 success, 1 an error (unknown run, bad file...), 2 a usage error, 3 a
release gate that failed (``compare --gate``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from gmai_eval import __version__
from gmai_eval.server.scoring.extraction import ERAS
from gmai_eval.server.scoring.reports import BY_CHOICES, FORMATS
from gmai_eval.server.store import Database

from .common import evaluator_errors
from .options import db_option, existing_db

F = TypeVar("F", bound=Callable[..., Any])

GATE_FAILED = 3
"""Exit code of ``compare --gate`` when the candidate fails the policy."""


def _era_option(f: F) -> F:
    return click.option(
        "--era", type=click.Choice(ERAS), default=None,
        help="Extraction era for free-text answers (default: the run's own; 2024 = paper parity).",
    )(f)


def _format_option(f: F) -> F:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="Output format.")(f)


@click.command("scores")
@db_option()
@click.argument("run")
@click.option("--by", type=click.Choice(BY_CHOICES), default=None,
              help="One dimension (overall is always shown); default: every dimension.")
@_format_option
@_era_option
@click.option("--judge", default="", help="Show the grading of an earlier `rescore --judge MODEL`.")
def scores_cmd(db_path: Path, run: str, by: str | None, fmt: str, era: str | None, judge: str) -> None:
    """Print RUN's accuracy per taxonomy node (n, Wilson 95% CI, unparsed/refused/errors)."""
    from gmai_eval.server.scoring.grading import compute_scores
    from gmai_eval.server.scoring.reports import render_scores

    with evaluator_errors(), Database(existing_db(db_path)) as db:
        click.echo(render_scores(compute_scores(db, run, era, judge), by, fmt), nl=False)


@click.command("rescore")
@db_option()
@click.argument("run")
@_era_option
@click.option("--judge", default="", help="Registered model used as judge for unparsed answers.")
@click.option("--by", type=click.Choice(BY_CHOICES), default="overall", show_default=True)
@_format_option
def rescore_cmd(db_path: Path, run: str, era: str | None, judge: str, by: str, fmt: str) -> None:
    """Regrade RUN from its stored answers (no call to the evaluated model)."""
    from gmai_eval.server.api.scoring_service import rescore_with
    from gmai_eval.server.scoring.grading import compute_scores
    from gmai_eval.server.scoring.reports import render_scores

    with evaluator_errors(), Database(existing_db(db_path)) as db:
        res = asyncio.run(rescore_with(db, run, era, judge))
        out = render_scores(compute_scores(db, run, res.era, res.judge), by, fmt)
    if fmt in ("table", "markdown"):
        extra = f", judged {res.judged} (resolved {res.judge_resolved})" if res.judge else ""
        click.echo(f"regraded {res.graded} answers with era {res.era}; {res.changed} verdicts changed{extra}")
    click.echo(out, nl=False)


@click.command("compare")
@db_option()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Significance level (default 0.05, or the policy's alpha).")
@click.option("--gate", "gate", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Release gate policy (.json or .toml); exit code 3 when it fails.")
@click.option("--by", type=click.Choice(BY_CHOICES), default=None, help="Only one dimension.")
@_era_option
@_format_option
def compare_cmd(db_path: Path, run_a: str, run_b: str, alpha: float | None, gate: Path | None, by: str | None,
                era: str | None, fmt: str) -> None:
    """Compare baseline RUN_A with candidate RUN_B (paired exact McNemar per node)."""
    from gmai_eval.server.scoring.compare import apply_gate, compare_runs, load_policy
    from gmai_eval.server.scoring.reports import render_comparison

    with evaluator_errors():
        policy = load_policy(gate) if gate is not None else None
        level = alpha if alpha is not None else (policy.alpha if policy and policy.alpha else 0.05)
        with Database(existing_db(db_path)) as db:
            cmp = compare_runs(db, run_a, run_b, level, era)
        failures = apply_gate(cmp, policy) if policy is not None else None
    click.echo(render_comparison(cmp, fmt, failures, by), nl=False)
    if failures:
        for f in failures:
            click.echo(f"gate failed: {f}", err=True)
        sys.exit(GATE_FAILED)


@click.command("export")
@db_option()
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["tsv", "xlsx"]), default="tsv", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Prediction file to write; group accuracy CSVs are written next to it.")
@_era_option
@click.option("--judge", default="", help="Grading (judge) behind the group CSVs.")
def export_cmd(db_path: Path, run: str, fmt: str, out: Path, era: str | None, judge: str) -> None:
    """Write RUN as a VLMEvalKit prediction file plus its group accuracy CSVs."""
    from gmai_eval.server.scoring.vlmeval_files import export_run

    with evaluator_errors(), Database(existing_db(db_path)) as db:
        res = export_run(db, run, out, fmt, era, judge)
    click.echo(f"wrote {res.rows} predictions to {res.predictions}")
    for p in res.group_csvs:
        click.echo(f"wrote {p}")


@click.command("score-file")
@db_option()
@click.option("--benchmark", required=True, help="Benchmark the predictions were made on.")
@click.argument("predictions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--era", type=click.Choice(ERAS), default="2024", show_default=True, help="Extraction era.")
@_format_option
def score_file_cmd(db_path: Path, benchmark: str, predictions: Path, era: str, fmt: str) -> None:
    """Turn a VLMEvalKit PREDICTIONS file (.tsv/.xlsx) into a graded run."""
    from gmai_eval.server.scoring.grading import compute_scores
    from gmai_eval.server.scoring.reports import render_scores
    from gmai_eval.server.scoring.vlmeval_files import score_file

    with evaluator_errors(), Database(existing_db(db_path)) as db:
        run_id = score_file(db, benchmark, predictions, era, __version__)
        out = render_scores(compute_scores(db, run_id, era), "overall", fmt)
    if fmt in ("table", "markdown"):
        click.echo(f"created run {run_id} (model file:{predictions.stem})")
    click.echo(out, nl=False)


@click.command("calibration")
@db_option()
@click.argument("run")
@_format_option
def calibration_cmd(db_path: Path, run: str, fmt: str) -> None:
    """Calibration of RUN's option probabilities (ECE, Brier, NLL, accuracy vs coverage)."""
    from gmai_eval.server.scoring.grading import run_calibration
    from gmai_eval.server.scoring.reports import render_calibration

    with evaluator_errors(), Database(existing_db(db_path)) as db:
        click.echo(render_calibration(run_calibration(db, run), fmt), nl=False)


def register(cli: click.Group) -> None:
    """Add this area's commands to ``cli``."""
    for cmd in (scores_cmd, rescore_cmd, compare_cmd, export_cmd, score_file_cmd, calibration_cmd):
        cli.add_command(cmd)
