"""The ``gmai-eval`` command group.

Each area registers its commands from its own module: ``data`` (synth, import,
taxonomy), ``runs`` (serve, models, run, runs, watch, cancel, resume) and ``scoring``
(scores, compare, rescore, export, score-file). Options fall back to environment
variables named ``GMAI_EVAL_<OPTION>`` (for example ``GMAI_EVAL_SERVER``). The offline
areas import the evaluator; without ``gmai-eval[server]`` their commands are placeholders
that say what to install (``extras``).
"""

from __future__ import annotations

import importlib

import click
from gmai_eval import __version__

from . import runs
from .extras import OFFLINE_COMMANDS, is_server_module, placeholder


@click.group(context_settings={"auto_envvar_prefix": "GMAI_EVAL", "help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gmai-eval")
def cli() -> None:
    """Evaluate medical vision-language models on GMAI-MMBench."""


runs.register(cli)
for _area, _names in OFFLINE_COMMANDS.items():
    try:
        importlib.import_module(f"{__package__}.{_area}").register(cli)
    except ModuleNotFoundError as _exc:
        if not is_server_module(_exc):
            raise
        for _name in _names:
            cli.add_command(placeholder(_name, _exc))


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
