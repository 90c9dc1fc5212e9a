"""The README's commands exist: every `gmai-eval X` / `gmai-model X Y` it shows is a real command."""

from __future__ import annotations

import pathlib
import re

import click
from gmai_eval.clients.cli.main import cli as eval_cli
from gmai_eval.clients.reference.cli import cli as model_cli

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _resolve(group: click.Group, words: list[str]) -> click.Command:
    cmd: click.Command = group
    for word in words:
        if not isinstance(cmd, click.Group) or word.startswith("-"):
            break
        sub = cmd.commands.get(word)
        assert sub is not None, f"{cmd.name} has no command {word!r}"
        cmd = sub
    return cmd


def test_readme_commands_exist_with_their_options() -> None:
    text = (ROOT / "README.md").read_text()
    calls = re.findall(r"(gmai-eval|gmai-model)((?: [^\s`|&;]+)+)", text)
    assert len(calls) > 10
    for prog, rest in calls:
        words = rest.split()
        group = eval_cli if prog == "gmai-eval" else model_cli
        cmd = _resolve(group, words)
        known = {opt for p in cmd.params for opt in getattr(p, "opts", [])}
        for word in words:
            if word.startswith("--"):
                assert word in known, f"`{prog}{rest}`: {cmd.name} has no option {word}"


def test_makefile_targets_named_in_readme_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in set(re.findall(r"`make (\w+)`", (ROOT / "README.md").read_text())):
        assert re.search(rf"^{target}:", makefile, re.M), f"make {target} is not a target"


def test_exit_codes_in_docs_and_help_agree() -> None:
    from gmai_eval.clients.cli.options import EXIT_CODES_EPILOG

    documented = re.findall(r"^\| (\d+) \| ", (ROOT / "docs" / "cli.md").read_text(), re.M)
    in_help = re.findall(r"^  (\d+) ", EXIT_CODES_EPILOG, re.M)
    assert documented == in_help == ["0", "1", "2", "3", "4", "130"]
    from click.testing import CliRunner

    shown = CliRunner().invoke(eval_cli, ["--help"]).output
    assert all(re.search(rf"^\s+{code}\s", shown, re.M) for code in in_help)


def test_every_client_variable_is_documented_and_shown_in_help() -> None:
    from gmai_eval.clients.cli.options import ENV

    table = (ROOT / "docs" / "cli.md").read_text()
    for variable in ENV.values():
        assert f"| `{variable}` |" in table, variable
    from click.testing import CliRunner

    help_text = CliRunner().invoke(eval_cli, ["scores", "--help"]).output + CliRunner().invoke(eval_cli, ["runs", "--help"]).output
    for variable in ENV.values():
        assert variable in help_text, variable
