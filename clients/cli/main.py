"""The ``gmai-eval`` command group.

Each area registers its commands from its own module: ``data`` (synth), ``writes``
(import, score-file: the file or the evaluator),
``catalog`` (benchmarks, taxonomy: the file or the evaluator), ``runs`` (serve, models,
run, runs, watch, cancel, resume), ``diagnose`` (runs show, models check, models remove),
``run_admin`` (runs delete, benchmarks remove)
and ``scoring`` (scores, compare, rescore, export, calibration: the file or the
evaluator). The options every command shares and
their environment variables (GMAI_EVAL_DB, GMAI_EVAL_SERVER, GMAI_EVAL_TOKEN, the TLS
ones) are in ``options``; no other option reads the environment. The offline
areas import the evaluator; without ``gmai-eval[server]`` their commands are placeholders
that say what to install (``extras``).
"""

from __future__ import annotations

import importlib
import sys

import click
from gmai_eval import __version__

from . import catalog, diagnose, run_admin, runs, scoring, writes
from .extras import OFFLINE_COMMANDS, is_server_module, placeholder
from .options import EXIT_CODES_EPILOG


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_EPILOG)
@click.version_option(__version__, prog_name="gmai-eval")
def cli() -> None:
    """Evaluate medical vision-language models on GMAI-MMBench."""


runs.register(cli)
diagnose.register(cli)
catalog.register(cli)
run_admin.register(cli)
scoring.register(cli)
writes.register(cli)
for _area, _names in OFFLINE_COMMANDS.items():
    try:
        importlib.import_module(f"{__package__}.{_area}").register(cli)
    except ModuleNotFoundError as _exc:
        if not is_server_module(_exc):
            raise
        for _name in _names:
            cli.add_command(placeholder(_name, _exc))


def main() -> None:
    """Console-script entry point.

    The last line of defence for "no traceback reaches a user": a file that cannot be read
    or written anywhere below (an ``--out`` in a missing or read-only folder, a full disk)
    ends as one ``Error:`` line and exit 1, like every error a command reports itself.
    """
    try:
        cli()
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"Error: {exc.strerror or exc}{where}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
