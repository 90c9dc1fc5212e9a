"""CLI command of the data area: ``synth`` (writes a TSV file, in process).

``import`` works both ways and lives in ``writes``; ``benchmarks`` and ``taxonomy`` read
both ways and live in ``catalog``.
"""

from __future__ import annotations

from pathlib import Path

import click

from .common import evaluator_errors


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
