"""``import`` and ``score-file``: commands that write from a file, both ways, the same output.

Each command works on the database file with ``--db`` (or GMAI_EVAL_DB), in process, and
otherwise uploads the file to the evaluator at ``--server`` (ImportBenchmark, ScoreFile;
both need the admin token). Both ways build the same response message (the ``--db`` path
calls the functions behind the RPCs) and one renderer prints it: the summary, the layout
with its reason, the defects by file, row and column. Files are named as given on the
command line both ways. ``import --db`` may create the database file; ``score-file
--db`` needs an existing one. The ``--server`` paths run on the base install.
"""

from __future__ import annotations

from pathlib import Path

import click
from gmai_eval import __version__
from gmai_eval.evaluator.v1 import evaluator_pb2 as pb

from .extras import server_extra
from .options import Target, creating_target_options, target_options
from .runs import client
from .score_views import FORMATS, render_scores
from .scoring import ERAS


def _local_import(
    db_path: Path, name: str, files: tuple[Path, ...], strict: bool, multi_choice: bool
) -> pb.ImportBenchmarkResponse:
    with server_extra("import"):
        from gmai_eval.server.api.convert import import_report_to_proto
        from gmai_eval.server.data.tsv_import import import_tsv_files
        from gmai_eval.server.store import Database

        from .common import evaluator_errors
    with evaluator_errors(), Database(db_path) as db:
        return import_report_to_proto(import_tsv_files(db, name, list(files), strict=strict, multi_choice=multi_choice))


def defect_line(d: pb.ImportDefect) -> str:
    """One defect as ``FILE, row N, column 'C': message`` (the row and column when known)."""
    where = f"{d.file}, row {d.row}" if d.row else d.file
    if d.column:
        where += f", column {d.column!r}"
    return f"{where}: {d.message}"


def render_import(resp: pb.ImportBenchmarkResponse) -> tuple[str, str]:
    """An import's outcome: (stdout: the summary and the layout's reason, stderr: one line per defect)."""
    b = resp.benchmark
    if resp.already_imported:
        return f"already imported: {b.name} ({b.question_count} questions, {b.layout} layout, {b.digest})\n", ""
    defects = "".join(f"defect: {defect_line(d)}\n" for d in resp.defects)
    summary = (
        f"imported {b.name}: {resp.imported_rows} {'multi-answer ' if b.multi_choice else ''}questions ({b.layout} layout, "
        f"{b.flagged_count} without answer), {resp.skipped_rows} rows skipped, "
        f"{len(resp.defects)} defect(s); digest {b.digest}\n"
        f"layout: {resp.layout_reason}\n"
    )
    return summary, defects


@click.command("import")
@creating_target_options
@click.option("--name", required=True, help="Benchmark name.")
@click.option(
    "--strict",
    is_flag=True,
    help="Import nothing if the files have any defect, an unknown column included.",
)
@click.option(
    "--multi-choice",
    is_flag=True,
    help="Multi-answer questions: an answer may name several letters (A,C). Without it such rows are defects.",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cmd(target: Target, name: str, strict: bool, multi_choice: bool, files: tuple[Path, ...]) -> None:
    """Import GMAI-MMBench TSV FILES (several TEST parts, in order) as benchmark NAME.

    With --db the file is imported in process (the database is created if missing);
    otherwise the files are uploaded to the evaluator at --server in chunks (admin token).
    """
    if target.db is not None:
        resp = _local_import(target.db, name, files, strict, multi_choice)
    else:
        with client(target.conn) as c:
            resp = c.upload(name, files, strict=strict, as_given=True, multi_choice=multi_choice)
    out, err = render_import(resp)
    click.echo(err, err=True, nl=False)
    click.echo(out, nl=False)


def _local_score_file(db_path: Path, benchmark: str, predictions: Path, era: str) -> pb.ScoreFileResponse:
    with server_extra("score-file"):
        from gmai_eval.server.api.scoring_service import score_file_response
        from gmai_eval.server.store import Database

        from .common import evaluator_errors
    with evaluator_errors(), Database(db_path) as db:
        return score_file_response(db, benchmark, predictions, era, __version__)


@click.command("score-file")
@target_options
@click.option("--benchmark", required=True, help="Benchmark the predictions were made on.")
@click.argument("predictions", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--era", type=click.Choice(ERAS), default="2024", show_default=True, help="Extraction era.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format.")
def score_file_cmd(target: Target, benchmark: str, predictions: Path, era: str, fmt: str) -> None:
    """Turn a VLMEvalKit PREDICTIONS file (.tsv/.xlsx) into a graded run.

    With --db in process; otherwise the file is uploaded to the evaluator at --server
    (admin token).
    """
    if target.db is not None:
        resp = _local_score_file(target.db, benchmark, predictions, era)
    else:
        with client(target.conn) as c:
            resp = c.score_file(benchmark, predictions, era)
    if fmt in ("table", "markdown"):
        click.echo(f"created run {resp.run_id} (model {resp.scores.run.model})")
    click.echo(render_scores(resp.scores, "overall", fmt), nl=False)
