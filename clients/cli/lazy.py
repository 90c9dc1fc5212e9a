"""A click group that imports a subcommand's module only when the subcommand is used.

Each area of the CLI is a module of this package, and some import the evaluator, grpc or
rich; ``gmai-eval --version`` needs none of them and ``gmai-eval runs`` only its own. A
:class:`LazyGroup` names its subcommands in a table, ``{"name": "module:attribute"}`` (a
module of this package, the attribute a ``click.Command``), and imports the module the
first time click asks for the command: to run it, to complete it, or to list it in
``--help`` (which loads every one, for its short help). This is click's documented
pattern for lazy loading (``list_commands``/``get_command``); the parsing stays click's.

A sub-group whose subcommands live in other modules (``runs show`` in ``diagnose``,
``runs delete`` in ``run_admin``) is a :class:`LazyGroup` too, so it is complete whenever
it is invoked and each module is imported once, by whoever asks first.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

_NO_SUCH_COMMAND: type[click.exceptions.NoSuchCommand] | None = getattr(click.exceptions, "NoSuchCommand", None)
"""click 8.2 and later suggest close names for a mistyped command (8.1 says only that it is unknown)."""


class LazyGroup(click.Group):
    """A ``click.Group`` whose table of subcommands is imported on demand."""

    def __init__(self, *args: Any, lazy_subcommands: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        """Like ``click.Group``, plus ``lazy_subcommands``: ``{"name": "module:attribute"}``."""
        super().__init__(*args, **kwargs)
        self.lazy_subcommands: dict[str, str] = dict(lazy_subcommands or {})
        """The subcommands not loaded yet, by name; a loaded one moves to ``commands``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every subcommand's name, loaded or not, sorted (as click lists them)."""
        return sorted({*super().list_commands(ctx), *self.lazy_subcommands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The subcommand ``cmd_name``, imported now if it was not yet."""
        if cmd_name in self.lazy_subcommands:
            self.add_command(self.load(cmd_name), cmd_name)
            del self.lazy_subcommands[cmd_name]
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """Click's, but a mistyped name is matched against every subcommand, loaded or not."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            if _NO_SUCH_COMMAND is None or not isinstance(exc, _NO_SUCH_COMMAND):
                raise
            raise _NO_SUCH_COMMAND(exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx) from None

    def load(self, cmd_name: str) -> click.Command:
        """Import the module of ``cmd_name`` and return its command object."""
        module_name, attribute = self.lazy_subcommands[cmd_name].split(":")
        command = getattr(importlib.import_module(f".{module_name}", __package__), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{module_name}:{attribute} is not a click command (for {cmd_name!r})")
        return command
