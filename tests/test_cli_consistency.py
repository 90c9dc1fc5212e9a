"""The command line is consistent: every option explains itself, and ``--by`` is repeatable everywhere."""

from __future__ import annotations

from collections.abc import Iterator

import click
from gmai_eval.clients.cli.main import cli


def _commands(cmd: click.Command, path: tuple[str, ...]) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), cmd
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            assert sub is not None, f"{' '.join(path)} lists {name!r} but has no such command"
            yield from _commands(sub, (*path, name))


def _options() -> Iterator[tuple[str, click.Option]]:
    for where, cmd in _commands(cli, ("gmai-eval",)):
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                yield where, param


def test_the_walk_reaches_nested_commands() -> None:
    found = {where for where, _ in _commands(cli, ("gmai-eval",))}
    assert {"gmai-eval", "gmai-eval import", "gmai-eval compare", "gmai-eval runs show"} <= found


def test_every_option_of_every_command_has_help() -> None:
    missing = [f"{where} {'/'.join(opt.opts)}" for where, opt in _options() if not (opt.help or "").strip()]
    assert missing == []


def test_by_is_repeatable_wherever_it_exists() -> None:
    by = [(where, opt.multiple) for where, opt in _options() if "--by" in opt.opts]
    assert {where for where, _ in by} >= {"gmai-eval scores", "gmai-eval compare", "gmai-eval leaderboard"}
    assert [where for where, multiple in by if not multiple] == []


OWN_FORMATS = {"gmai-eval taxonomy": {"tree", "json"}, "gmai-eval export": {"tsv", "xlsx"}}
"""Commands whose output is not a table keep their own formats."""


def test_every_table_command_offers_the_four_formats() -> None:
    formats = {where: set(opt.type.choices) for where, opt in _options()  # type: ignore[attr-defined]
               if "--format" in opt.opts}
    assert {"gmai-eval runs", "gmai-eval runs show", "gmai-eval models list", "gmai-eval benchmarks",
            "gmai-eval history", "gmai-eval leaderboard", "gmai-eval scores", "gmai-eval compare"} <= set(formats)
    tables = {"table", "json", "csv", "markdown"}
    assert {w: f for w, f in formats.items() if f != OWN_FORMATS.get(w, tables)} == {}
