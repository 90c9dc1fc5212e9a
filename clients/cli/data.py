"""CLI commands of the data area: ``synth`` and ``import``.

These commands work on files directly, in process (``import`` creates the database file).
``benchmarks`` and ``taxonomy`` read both ways and live in ``catalog``.
"""

from __future__ import annotations

from pathlib import Path

import click
from gmai_eval.server.store import Database

from .common import evaluator_errors
from .options import db_option


@click.command("synth")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="TSV file to write.")
@click.option("--questions", default=1000, show_default=True, type=click.IntRange(min=1), help="Rows to write.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed (same seed, same bytes).")
@click.option(
    "--layout",
    default="val",
    show_default=True,
    type=click.Choice(["val", "test"], case_sensitive=False),
    help="VAL has the answer column; TEST drops it.",
)
@click.option("--image-size", default=128, show_default=True, type=click.IntRange(min=32), help="Image side in pixels.")
@click.option(
    "--multi-choice",
    is_flag=True,
    help="Multi-answer questions (several findings per image, answers like A,C); VAL layout only.",
)
def synth_cmd(out: Path, questions: int, seed: int, layout: str, image_size: int, multi_choice: bool) -> None:
    """Write a synthetic benchmark TSV in the official GMAI-MMBench layout."""
    from gmai_eval.server.data.synth import write_synthetic_tsv
    from gmai_eval.server.data.synth_multi import write_multi_tsv

    if multi_choice and layout.lower() != "val":
        raise click.UsageError("--multi-choice writes the VAL layout only (a TEST file cannot carry several keys)")
    with evaluator_errors():
        if multi_choice:
            write_multi_tsv(out, questions, seed, image_size=image_size)
        else:
            write_synthetic_tsv(out, questions, seed, layout=layout.lower(), image_size=image_size)
    kind = "multi-answer " if multi_choice else ""
    click.echo(f"wrote {questions} {layout.upper()} {kind}questions to {out}")


@click.command("import")
@db_option(create=True)
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
def import_cmd(db_path: Path, name: str, strict: bool, multi_choice: bool, files: tuple[Path, ...]) -> None:
    """Import GMAI-MMBench TSV FILES (several TEST parts, in order) as benchmark NAME."""
    from gmai_eval.server.data.tsv_import import import_tsv_files

    with evaluator_errors(), Database(db_path) as db:
        report = import_tsv_files(db, name, list(files), strict=strict, multi_choice=multi_choice)
    b = report.benchmark
    if report.already_imported:
        click.echo(f"already imported: {b.name} ({b.question_count} questions, {b.layout} layout, {b.digest})")
        return
    for d in report.defects:
        click.echo(f"defect: {d}", err=True)
    click.echo(
        f"imported {b.name}: {report.imported_rows} {'multi-answer ' if b.multi_choice else ''}questions ({b.layout} layout, "
        f"{b.flagged_count} without answer), {report.skipped_rows} rows skipped, "
        f"{len(report.defects)} defect(s); digest {b.digest}"
    )
    click.echo(f"layout: {report.layout_reason}")


def register(cli: click.Group) -> None:
    """Add this area's commands to ``cli``."""
    for cmd in (synth_cmd, import_cmd):
        cli.add_command(cmd)
