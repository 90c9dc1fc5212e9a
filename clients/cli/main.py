"""The ``gmai-eval`` command group.

Each area's commands live in its own module, imported only when a command of it is used
(``COMMANDS``, a lazily loaded group: ``lazy``): ``data`` (synth), ``writes``
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

import sys

import click
from gmai_eval import __version__

from .extras import OFFLINE_COMMANDS, is_server_module, missing_server_module, placeholder
from .lazy import LazyGroup
from .options import EXIT_CODES_EPILOG

COMMANDS: dict[str, str] = {
    "benchmarks": "catalog:benchmarks_cmd",
    "calibration": "scoring:calibration_cmd",
    "cancel": "runs:cancel_cmd",
    "compare": "scoring:compare_cmd",
    "export": "scoring:export_cmd",
    "history": "reports:history_cmd",
    "import": "writes:import_cmd",
    "leaderboard": "reports:leaderboard_cmd",
    "models": "runs:models_cmd",
    "report": "reports:report_cmd",
    "rescore": "scoring:rescore_cmd",
    "resume": "runs:resume_cmd",
    "run": "runs:run_cmd",
    "runs": "runs:runs_cmd",
    "score-file": "writes:score_file_cmd",
    "scores": "scoring:scores_cmd",
    "serve": "runs:serve_cmd",
    "synth": "data:synth_cmd",
    "taxonomy": "catalog:taxonomy_cmd",
    "upload": "runs:upload_cmd",
    "watch": "runs:watch_cmd",
}
"""Every command, by name: ``module:attribute`` in this package, imported when used (``lazy``)."""


class _Commands(LazyGroup):
    """The top-level group: an offline command whose module needs the missing server extra is a placeholder."""

    def load(self, cmd_name: str) -> click.Command:
        offline = any(cmd_name in names for names in OFFLINE_COMMANDS.values())
        if offline and (missing := missing_server_module()) is not None:
            return placeholder(cmd_name, missing)
        try:
            return super().load(cmd_name)
        except ModuleNotFoundError as exc:
            if not (is_server_module(exc) and offline):
                raise
            return placeholder(cmd_name, exc.name)


@click.group(
    cls=_Commands, lazy_subcommands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]}, epilog=EXIT_CODES_EPILOG,
)
@click.version_option(__version__, prog_name="gmai-eval")
def cli() -> None:
    """Evaluate medical vision-language models on GMAI-MMBench."""


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
