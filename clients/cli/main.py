"""The ``gmai-eval`` command group.

Each area registers its commands from its own module: ``data`` (synth, import,
taxonomy), ``runs`` (serve, models, run, runs, watch, cancel, resume) and ``scoring``
(scores, compare, rescore, export, score-file). Options fall back to environment
variables named ``GMAI_EVAL_<OPTION>`` (for example ``GMAI_EVAL_SERVER``).
"""

from __future__ import annotations

import click
from gmai_eval import __version__

from . import data, runs, scoring


@click.group(context_settings={"auto_envvar_prefix": "GMAI_EVAL", "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gmai-eval")
def cli() -> None:
    """Evaluate medical vision-language models on GMAI-MMBench."""


for _module in (data, runs, scoring):
    _module.register(cli)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
