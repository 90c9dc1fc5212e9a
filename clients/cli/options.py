"""Options every ``gmai-eval`` command shares: where the data is, how to reach the evaluator.

Each option that the help or the docs name reads one environment variable, the same for
every command (``ENV``); a flag on the command line beats its variable. A command reads
either a database file (``--db``) or the evaluator's API (``--server``); naming both on
the command line is a usage error. Only ``import`` and ``serve`` may create a database
file: every other command refuses a missing one in one line (``existing_db``).

This module is part of the base install: it imports nothing of the evaluator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from ..connection import Connection

F = TypeVar("F", bound=Callable[..., Any])

ENV: dict[str, str] = {
    "db": "GMAI_EVAL_DB",
    "server": "GMAI_EVAL_SERVER",
    "token": "GMAI_EVAL_TOKEN",
    "ca": "GMAI_EVAL_CA",
    "cert": "GMAI_EVAL_CERT",
    "key": "GMAI_EVAL_KEY",
    "server_name": "GMAI_EVAL_SERVER_NAME",
}
"""The client options' environment variables (``serve`` also reads GMAI_EVAL_ADMIN_TOKEN and
GMAI_EVAL_READ_TOKEN)."""

DEFAULT_SERVER = "localhost:50050"
"""Where the evaluator is when neither ``--server`` nor GMAI_EVAL_SERVER says."""

EXIT_OK = 0
"""Done; for ``run --wait``, ``watch`` and ``resume --wait``: succeeded, no question in error."""
EXIT_ERROR = 1
"""An error, said in one line on stderr."""
EXIT_USAGE = 2
"""A usage error (bad or missing option)."""
EXIT_NOT_SUCCEEDED = 3
"""The run ended failed, cancelled or interrupted, or a release gate failed."""
EXIT_SOME_ERRORS = 4
"""The run succeeded, but some questions ended in error."""
EXIT_INTERRUPTED = 130
"""Ctrl-C; a run being followed goes on at the server."""

EXIT_CODES_EPILOG = (
    "\b\nExit codes:\n"
    "  0    done (run --wait, watch, resume --wait: the run succeeded, no question in error)\n"
    "  1    an error, said in one line on stderr\n"
    "  2    a usage error\n"
    "  3    the run failed, was cancelled or interrupted, or a gate failed\n"
    "  4    the run succeeded, but some questions ended in error\n"
    "  130  interrupted by Ctrl-C (a run goes on at the server)"
)
"""The exit-code table, as printed at the end of ``--help`` (docs/cli.md has the same)."""

DB_HELP = "SQLite database file of the evaluator."
"""The one wording of ``--db`` (its variable and whether it may be created are appended)."""


def db_option(*, create: bool = False, required: bool = True) -> Callable[[F], F]:
    """The ``--db FILE`` option (env GMAI_EVAL_DB), passed as ``db_path``.

    Args:
        create: the command may create the file (``import`` and ``serve`` only).
        required: the command cannot run without a database.
    """
    made = "Created if missing." if create else "Must exist."
    return click.option(
        "--db", "db_path", envvar=ENV["db"], show_envvar=True, required=required, default=None,
        type=click.Path(dir_okay=False, path_type=Path), help=f"{DB_HELP} {made}",
    )


def existing_db(path: Path) -> Path:
    """``path`` if it is a file; otherwise a one-line error (no command but import creates one)."""
    if path.is_file():
        return path
    if path.exists():
        raise click.ClickException(f"--db {path}: not a file")
    raise click.ClickException(
        f"--db {path}: no such database file (only `gmai-eval import` creates one; check the path)"
    )


def _connection_params(fn: F) -> F:
    for option in reversed(
        [
            click.option("--server", envvar=ENV["server"], show_envvar=True, default=None,
                         help=f"Evaluator address HOST:PORT [default: {DEFAULT_SERVER}]."),
            click.option("--token", envvar=ENV["token"], show_envvar=True, default="",
                         help="Bearer token of the evaluator (admin or read-only)."),
            click.option("--ca", "ca_file", envvar=ENV["ca"], show_envvar=True, default="",
                         help="PEM CA of the evaluator's certificate; turns TLS on."),
            click.option("--cert", "cert_file", envvar=ENV["cert"], show_envvar=True, default="",
                         help="PEM client certificate (mutual TLS)."),
            click.option("--key", "key_file", envvar=ENV["key"], show_envvar=True, default="",
                         help="PEM client key (mutual TLS)."),
            click.option("--server-name", envvar=ENV["server_name"], show_envvar=True, default="",
                         help="Name to check in the evaluator's certificate (default: the host of --server)."),
        ]
    ):
        fn = option(fn)
    return fn


def _connection(server: str | None, token: str, ca_file: str, cert_file: str, key_file: str, server_name: str) -> Connection:
    return Connection(
        target=server or DEFAULT_SERVER, token=token, ca_file=ca_file, cert_file=cert_file,
        key_file=key_file, server_name=server_name,
    )


def connection_options(fn: F) -> F:
    """Add --server/--token/--ca/--cert/--key/--server-name; pass a Connection as ``conn``."""

    @_connection_params
    @functools.wraps(fn)
    def wrapper(
        server: str | None, token: str, ca_file: str, cert_file: str, key_file: str, server_name: str, **kw: Any
    ) -> Any:
        return fn(conn=_connection(server, token, ca_file, cert_file, key_file, server_name), **kw)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Target:
    """Where a command that works both ways reads: a database file, or the evaluator's API."""

    db: Path | None
    """The database file (it exists, unless the command is `import`), or None to go through ``conn``."""
    conn: Connection
    """How to reach the evaluator (used when ``db`` is None)."""


def _source(ctx: click.Context, name: str) -> ParameterSource | None:
    return ctx.get_parameter_source(name)


def choose_target(
    ctx: click.Context, db_path: Path | None, conn: Connection, server_given: bool, create: bool = False
) -> Target:
    """Pick the file or the API: a flag beats a variable; both flags are a usage error.

    With ``create`` (``import``) the file need not exist yet.

    Raises:
        click.UsageError: ``--db`` and ``--server`` both on the command line, or
            GMAI_EVAL_DB and GMAI_EVAL_SERVER both set with neither flag.
        click.ClickException: the database file does not exist.
    """
    db_src, server_src = _source(ctx, "db_path"), _source(ctx, "server")
    flag = ParameterSource.COMMANDLINE
    if db_path is not None and server_given:
        if db_src is flag and server_src is flag:
            raise click.UsageError("--db and --server exclude each other: read the file, or ask the evaluator")
        if db_src is not flag and server_src is not flag:
            raise click.UsageError(
                f"both {ENV['db']} and {ENV['server']} are set: pass --db or --server to choose"
            )
        if server_src is flag:
            db_path = None
    if db_path is not None and not create:
        db_path = existing_db(db_path)
    return Target(db_path, conn)


def _refuse_group_level(ctx: click.Context) -> None:
    """``runs --db FILE show RUN`` would drop ``--db``: say where it goes instead."""
    for option, name in (("--db", "db_path"), ("--server", "server")):
        if _source(ctx, name) is ParameterSource.COMMANDLINE:
            raise click.UsageError(
                f"{option} goes after the subcommand: gmai-eval {ctx.info_name} {ctx.invoked_subcommand} ... {option} ..."
            )


def _target_options(fn: F, create: bool) -> F:
    @db_option(create=create, required=False)
    @_connection_params
    @functools.wraps(fn)
    def wrapper(
        db_path: Path | None, server: str | None, token: str, ca_file: str, cert_file: str, key_file: str,
        server_name: str, **kw: Any,
    ) -> Any:
        ctx = click.get_current_context()
        if getattr(ctx, "invoked_subcommand", None) is not None:
            _refuse_group_level(ctx)
            return fn(target=None, **kw)
        conn = _connection(server, token, ca_file, cert_file, key_file, server_name)
        return fn(target=choose_target(ctx, db_path, conn, server is not None, create), **kw)

    return wrapper  # type: ignore[return-value]


def target_options(fn: F) -> F:
    """``--db`` or the connection options; pass a :class:`Target` as ``target``.

    On a group invoked with a subcommand (``runs show``...), ``target`` is None: the
    subcommand has its own options and chooses for itself.
    """
    return _target_options(fn, create=False)


def creating_target_options(fn: F) -> F:
    """Like :func:`target_options`, but ``--db`` may name a file that does not exist yet (``import``)."""
    return _target_options(fn, create=True)
