"""CLI commands of the data area: ``synth``, ``import``, ``benchmarks``, ``taxonomy``.

These commands work on the database file directly (``--db``), in process.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmarks as bench_store
from gmai_eval.server.taxonomy import abbreviation, parse_filter

from .common import evaluator_errors
from .options import db_option, existing_db

_DIMENSION_TITLES = {
    "task": "clinical VQA task",
    "department": "department",
    "granularity": "perceptual granularity",
    "modality": "modality",
    "label": "label",
}


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
def synth_cmd(out: Path, questions: int, seed: int, layout: str, image_size: int) -> None:
    """Write a synthetic benchmark TSV in the official GMAI-MMBench layout."""
    from gmai_eval.server.data.synth import write_synthetic_tsv

    with evaluator_errors():
        write_synthetic_tsv(out, questions, seed, layout=layout.lower(), image_size=image_size)
    click.echo(f"wrote {questions} {layout.upper()} questions to {out}")


@click.command("import")
@db_option(create=True)
@click.option("--name", required=True, help="Benchmark name.")
@click.option("--strict", is_flag=True, help="Import nothing if any row has a defect.")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_cmd(db_path: Path, name: str, strict: bool, files: tuple[Path, ...]) -> None:
    """Import GMAI-MMBench TSV FILES (several TEST parts, in order) as benchmark NAME."""
    from gmai_eval.server.data.tsv_import import import_tsv_files

    with evaluator_errors(), Database(db_path) as db:
        report = import_tsv_files(db, name, list(files), strict=strict)
    b = report.benchmark
    if report.already_imported:
        click.echo(f"already imported: {b.name} ({b.question_count} questions, {b.digest})")
        return
    for d in report.defects:
        click.echo(f"defect: {d}", err=True)
    click.echo(
        f"imported {b.name}: {report.imported_rows} questions ({b.layout} layout, "
        f"{b.flagged_count} without answer), {report.skipped_rows} rows skipped, "
        f"{len(report.defects)} defect(s); digest {b.digest}"
    )


@click.command("benchmarks")
@db_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def benchmarks_cmd(db_path: Path, as_json: bool) -> None:
    """List imported benchmarks."""
    with evaluator_errors(), Database(existing_db(db_path)) as db:
        items = bench_store.list_benchmarks(db)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": b.name,
                        "layout": b.layout,
                        "questions": b.question_count,
                        "flagged": b.flagged_count,
                        "digest": b.digest,
                        "created_at": b.created_at,
                        "files": [f.name for f in b.source_files],
                    }
                    for b in items
                ],
                indent=2,
            )
        )
        return
    if not items:
        click.echo("no benchmarks")
        return
    click.echo(f"{'NAME':24} {'LAYOUT':6} {'QUESTIONS':>9} {'FLAGGED':>7}  {'CREATED':25} DIGEST")
    for b in items:
        click.echo(
            f"{b.name:24} {b.layout:6} {b.question_count:>9} {b.flagged_count:>7}  {b.created_at:25} {b.digest[:19]}"
        )


def _label(path: tuple[str, ...]) -> str:
    name = path[-1]
    if len(path) == 2 and path[0] in ("task", "department", "granularity"):
        abbr = abbreviation(path[0], name)
        shown = name or "N/A"
        return shown if abbr in (shown, name) else f"{shown} ({abbr})"
    return name or "(empty)"


@click.command("taxonomy")
@db_option()
@click.argument("name")
@click.option("--where", "where", default="", help="Subset filter, e.g. 'department=O;task=DD'.")
@click.option(
    "--format", "fmt", default="tree", show_default=True, type=click.Choice(["tree", "json"]), help="Output format."
)
def taxonomy_cmd(db_path: Path, name: str, where: str, fmt: str) -> None:
    """Print benchmark NAME's lexical tree with question counts at every node."""
    with evaluator_errors(), Database(existing_db(db_path)) as db:
        flt = parse_filter(where)
        b = bench_store.get_benchmark(db, name)
        nodes = bench_store.taxonomy_nodes(db, b.id, flt)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "benchmark": b.name,
                    "filter": str(flt),
                    "nodes": [{"path": list(p), "count": n} for p, n in nodes],
                },
                indent=2,
            )
        )
        return
    total = nodes[0][1] if nodes and nodes[0][0] == () else 0
    head = f"{b.name}: {total} questions"
    click.echo(head + (f" where {flt}" if not flt.is_empty else ""))
    current = ""
    for path, n in nodes:
        if not path:
            continue
        if path[0] != current:
            current = path[0]
            click.echo(f"{_DIMENSION_TITLES[current]}:")
        indent = "  " * (len(path) - 1)
        click.echo(f"{indent}{_label(path)}  {n}")


def register(cli: click.Group) -> None:
    """Add this area's commands to ``cli``."""
    for cmd in (synth_cmd, import_cmd, benchmarks_cmd, taxonomy_cmd):
        cli.add_command(cmd)
