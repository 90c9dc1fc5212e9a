"""CLI commands of the scoring area: ``scores``, ``rescore``, ``compare``, ``export`` and
``calibration`` (``score-file`` is in ``writes``).

``scores``, ``compare``, ``calibration``, ``export`` and ``rescore`` work both ways: on the
database file with ``--db`` (or GMAI_EVAL_DB), in process, and otherwise through the
evaluator at ``--server`` (GetRunScores, CompareRuns, GetRunCalibration, ExportRun,
RescoreRun). Both ways build the same request message and get the same response message
(the ``--db`` path calls the functions behind the RPCs), and ``score_views`` renders it,
so the output is the same. ``scores``, ``compare``, ``export`` and ``calibration`` only
read: answers a run has not graded yet are reported as ``ungraded``. ``rescore`` writes
grades (``rescore --judge`` calls the judge model, never the
evaluated one).

The ``--server`` paths run on the base install; the ``--db`` paths import the evaluator
(``gmai-eval[server]``) and say so in one line when it is missing.

Exit codes: 0 success, 1 an error (unknown run, bad file...), 2 a usage error, 3 a
release gate that failed (``compare --gate``).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from .extras import server_extra
from .options import Target, target_options
from .runs import client
from .score_views import (
    DIMENSIONS,
    FORMATS,
    TOP_LEVEL,
    render_calibration,
    render_comparison,
    render_scores,
)

if TYPE_CHECKING:
    from ..evaluator_client import EvaluatorClient

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")

GATE_FAILED = 3
"""Exit code of ``compare --gate`` when the candidate fails the policy."""

ERAS: tuple[str, ...] = ("2024", "2025-08", "2026-06")
"""Extraction eras (the evaluator's ``scoring.extraction.ERAS``; it refuses others)."""


def _era_option(f: F) -> F:
    return click.option(
        "--era", type=click.Choice(ERAS), default=None,
        help="Extraction era for free-text answers (default: the run's own; 2024 = paper parity).",
    )(f)


def _format_option(f: F) -> F:
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                        help="Output format.")(f)


def _ask(target: Target, command: str, local: Callable[[Any, Any], R], request: Any,
         remote: Callable[[EvaluatorClient], R]) -> R:
    """``local(scoring_service, db)`` on the file, or ``remote(client)`` through the evaluator."""
    if target.db is None:
        with client(target.conn) as c:
            return remote(c)
    with server_extra(command):
        from gmai_eval.server.api import scoring_service
        from gmai_eval.server.store import Database

        from .common import evaluator_errors
    with evaluator_errors(), Database(target.db) as db:
        return local(scoring_service, db)


def _dimensions(by: tuple[str, ...], tree: bool) -> list[str]:
    """The dimensions to ask for: ``--by``'s, every one with ``--tree`` (``[]``), else the top level."""
    if by:
        return list(dict.fromkeys(["overall", *by]))
    return [] if tree else list(TOP_LEVEL)


@click.command("scores")
@target_options
@click.argument("run")
@click.option("--by", type=click.Choice(DIMENSIONS), multiple=True,
              help="A dimension to show (repeatable; overall is always shown). "
                   "Default: the top level (overall, task, department, granularity, modality).")
@click.option("--tree", is_flag=True, help="Every dimension: the top level, the labels and the lexical tree.")
@_format_option
@_era_option
@click.option("--judge", default="", help="Show the grading of an earlier `rescore --judge MODEL`.")
def scores_cmd(
    target: Target, run: str, by: tuple[str, ...], tree: bool, fmt: str, era: str | None, judge: str
) -> None:
    """Print RUN's provenance and accuracy per taxonomy node (n, Wilson 95% CI, unparsed/refused/errors)."""
    req = pb.GetRunScoresRequest(
        id=run, dimensions=_dimensions(by, tree), extraction_era=era or "", judge_model=judge
    )
    resp = _ask(target, "scores", lambda s, db: s.scores_response(db, req), req,
                lambda c: c.get_run_scores(run, req.dimensions, req.extraction_era, judge))
    click.echo(render_scores(resp, by or None, fmt), nl=False)
    if not by and not tree and fmt in ("table", "markdown"):
        click.echo("\ntop level only: --tree adds the labels and the lexical tree, --by DIM shows one dimension")


@click.command("rescore")
@target_options
@click.argument("run")
@_era_option
@click.option("--judge", default="", help="Registered model used as judge for unparsed answers.")
@click.option("--by", type=click.Choice(DIMENSIONS), multiple=True, default=("overall",), show_default=True,
              help="A dimension to show (repeatable; overall is always shown).")
@_format_option
def rescore_cmd(target: Target, run: str, era: str | None, judge: str, by: tuple[str, ...], fmt: str) -> None:
    """Regrade RUN from its stored answers (no call to the evaluated model)."""
    req = pb.RescoreRunRequest(id=run, extraction_era=era or "", judge_model=judge)
    res: pb.RescoreRunResponse = _ask(
        target, "rescore", lambda s, db: asyncio.run(s.rescore_run(db, req)), req,
        lambda c: c.rescore_run(run, req.extraction_era, judge),
    )
    if fmt in ("table", "markdown"):
        used = res.scores.judge_model
        extra = f", judged {res.judged} (resolved {res.judge_resolved})" if used else ""
        click.echo(f"regraded {res.graded} answers with era {res.scores.extraction_era}; "
                   f"{res.changed} verdicts changed{extra}")
    click.echo(render_scores(res.scores, by, fmt), nl=False)


@click.command("compare")
@target_options
@click.argument("run_a")
@click.argument("run_b")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=None,
              help="Significance level (default 0.05, or the policy's alpha).")
@click.option("--gate", "gate", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Release gate policy (.json or .toml); exit code 3 when it fails.")
@click.option("--by", type=click.Choice(DIMENSIONS), multiple=True,
              help="A dimension to compare (repeatable; overall is always kept). Default: every dimension.")
@click.option("--details", is_flag=True, help="Also list every node and the flipped questions (table/markdown).")
@click.option("--circular", is_flag=True,
              help="Compare circular accuracy (both runs made with run --circular) instead of vanilla.")
@_era_option
@_format_option
def compare_cmd(target: Target, run_a: str, run_b: str, alpha: float | None, gate: Path | None,
                by: tuple[str, ...], details: bool, circular: bool, era: str | None, fmt: str) -> None:
    """Compare baseline RUN_A with candidate RUN_B (paired exact McNemar per node).

    The table leads with the verdict (the gate's, with --gate), then the overall delta with
    its p-value, then the nodes that changed significantly, within a screen.
    """
    policy = None
    if gate is not None:
        try:
            policy = pb.GatePolicyFile(name=str(gate), text=gate.read_text("utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise click.ClickException(f"cannot read gate policy {gate}: {exc}") from None
    req = pb.CompareRunsRequest(run_a=run_a, run_b=run_b, alpha=alpha or 0.0, extraction_era=era or "", gate=policy,
                                circular=circular)
    resp = _ask(target, "compare", lambda s, db: s.comparison_response(db, req), req,
                lambda c: c.compare_runs(run_a, run_b, req.alpha, req.extraction_era, policy, circular))
    click.echo(render_comparison(resp, fmt, by or None, details), nl=False)
    failures = list(resp.gate.failures)
    if failures:
        if fmt == "csv":  # the only format without the gate's outcome
            for f in failures:
                click.echo(f"gate failed: {f}", err=True)
        sys.exit(GATE_FAILED)


def _write_export(c: EvaluatorClient, req: pb.ExportRunRequest, out: Path) -> tuple[int, list[Path]]:
    """Write ExportRun's stream next to ``out``; the rows and the files, in order."""
    out.parent.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    rows = 0
    handle = None
    try:
        for msg in c.export_run(req):
            rows = msg.rows
            name = msg.chunk.file_name
            if Path(name).name != name or name in ("", ".", ".."):
                raise click.ClickException(f"the evaluator sent a file name with a path: {name!r}")
            path = out.with_name(name)
            if not written or written[-1] != path:
                if handle is not None:
                    handle.close()
                handle = path.open("wb")
                written.append(path)
            assert handle is not None
            handle.write(msg.chunk.data)
    finally:
        if handle is not None:
            handle.close()
    return rows, written


@click.command("export")
@target_options
@click.argument("run")
@click.option("--format", "fmt", type=click.Choice(["tsv", "xlsx"]), default="tsv", show_default=True,
              help="Prediction file format (VLMEvalKit's TSV, or XLSX).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Prediction file to write; group accuracy CSVs are written next to it.")
@_era_option
@click.option("--judge", default="", help="Grading (judge) behind the group CSVs.")
def export_cmd(target: Target, run: str, fmt: str, out: Path, era: str | None, judge: str) -> None:
    """Write RUN as a VLMEvalKit prediction file plus its group accuracy CSVs."""
    req = pb.ExportRunRequest(id=run, format=fmt, extraction_era=era or "", judge_model=judge, file_name=out.name)

    def local(s: Any, db: Any) -> tuple[int, list[Path]]:
        from gmai_eval.server.scoring.vlmeval_export import export_run

        res = export_run(db, run, out, fmt, era, judge)
        return res.rows, res.files

    rows, files = _ask(target, "export", local, req, lambda c: _write_export(c, req, out))
    click.echo(f"wrote {rows} predictions to {files[0]}")
    for p in files[1:]:
        click.echo(f"wrote {p}")


@click.command("calibration")
@target_options
@click.argument("run")
@_format_option
def calibration_cmd(target: Target, run: str, fmt: str) -> None:
    """Calibration of RUN's option probabilities (ECE, Brier, NLL, accuracy vs coverage)."""
    req = pb.GetRunCalibrationRequest(id=run)
    resp = _ask(target, "calibration", lambda s, db: s.calibration_response(db, req), req,
                lambda c: c.get_run_calibration(run))
    click.echo(render_calibration(resp, fmt), nl=False)
