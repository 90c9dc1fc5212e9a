"""CLI command of the data area: ``synth`` (writes a TSV file, in process).

``import`` works both ways and lives in ``writes``; ``benchmarks`` and ``taxonomy`` read
both ways and live in ``catalog``.
"""

from __future__ import annotations

from pathlib import Path

import click

# The server extra's marker: without it this module does not load and `synth` is a
# placeholder that says what to install (``extras``).
from gmai_eval.server.store import Database  # noqa: F401

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
def synth_cmd(out: Path, questions: int, seed: int, layout: str, image_size: int) -> None:
    """Write a synthetic benchmark TSV in the official GMAI-MMBench layout."""
    from gmai_eval.server.data.synth import write_synthetic_tsv

    with evaluator_errors():
        write_synthetic_tsv(out, questions, seed, layout=layout.lower(), image_size=image_size)
    click.echo(f"wrote {questions} {layout.upper()} questions to {out}")


def register(cli: click.Group) -> None:
    """Add this area's commands to ``cli``."""
    for cmd in (synth_cmd,):
        cli.add_command(cmd)
