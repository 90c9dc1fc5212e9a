"""The ``gmai-eval`` CLI without the evaluator's dependencies (``gmai-eval[server]``).

The base install (``pip install gmai-eval``) is the model side: the SDK, ``gmai-model``
and the ``gmai-eval`` commands that talk to a running evaluator over gRPC. ``serve``, the
offline commands and the ``--db`` paths of the commands that work both ways open the
SQLite file themselves, import the evaluator, and it needs the ``server`` extra. Without it, those commands stay listed in ``--help`` and fail
with one line saying what to install, never with a traceback.

The check is explicit (:func:`missing_server_module`, before anything is opened or written)
rather than left to the first failing import: most of the evaluator imports with the
standard library alone, so without it ``scores --db`` would run and ``score-file --db`` fail
half-way on openpyxl, and a command could open (create) the database file before reaching
a module it imports later.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

import click

SERVER_EXTRA_MODULES = frozenset(
    {"openpyxl", "xlsxwriter", "numpy", "grpc_status", "pybase64", "aiohttp"}
)
"""Modules only the ``server`` extra installs (google.rpc is in the base: the SDK sends RetryInfo)."""

OFFLINE_COMMANDS: dict[str, tuple[str, ...]] = {
    "data": ("synth",),
    "reports": ("report", "history", "leaderboard"),
}
"""The commands of each offline module (``main.COMMANDS`` names them too; tests/test_packaging.py checks both agree)."""

INSTALL_HINT = "install gmai-eval[server] for this command (pip install 'gmai-eval[server]')"
"""What a command that needs the evaluator says when its dependencies are missing."""


def is_server_module(exc: ModuleNotFoundError) -> bool:
    """True when ``exc`` is about a module of the ``server`` extra."""
    name = exc.name or ""
    return any(name == m or name.startswith(m + ".") for m in SERVER_EXTRA_MODULES)


def missing_server_module() -> str | None:
    """The first module of the ``server`` extra that is not installed, or None; imports nothing."""
    for name in sorted(SERVER_EXTRA_MODULES):
        try:
            if importlib.util.find_spec(name) is None:
                return name
        except (ImportError, ValueError):  # a broken install, or a module blocked in sys.modules
            return name
    return None


def needs_server(command: str, module: str | None) -> click.ClickException:
    """The one-line error of ``gmai-eval COMMAND`` when the server extra is missing."""
    return click.ClickException(f"`gmai-eval {command}` needs the evaluator: {INSTALL_HINT}; no module {module!r}")


@contextmanager
def server_extra(command: str) -> Iterator[None]:
    """Refuse ``command`` unless the ``server`` extra is installed, then run the block.

    A missing ``server``-extra module inside the block still becomes :func:`needs_server`.
    """
    missing = missing_server_module()
    if missing is not None:
        raise needs_server(command, missing)
    try:
        yield
    except ModuleNotFoundError as exc:
        if not is_server_module(exc):
            raise
        raise needs_server(command, exc.name) from None


def placeholder(name: str, module: str | None) -> click.Command:
    """A command that stands in for an offline one and fails with :func:`needs_server`."""

    @click.command(
        name,
        help=f"Not available: this command needs the evaluator; {INSTALL_HINT}.",
        short_help="(needs gmai-eval[server], not installed)",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
    )
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def command(args: tuple[str, ...]) -> None:
        raise needs_server(name, module)

    return command
