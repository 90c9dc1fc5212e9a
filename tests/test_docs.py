"""The docs agree with the programs: every command a doc shows exists, with its options.

Every doc a user reads (README.md, docs/*.md, deploy/**/*.md) is scanned: each line of its
fenced code blocks and each inline code span. Every `gmai-eval ...` / `gmai-model ...` call
names existing commands and options, and every `gmai-...` program named is a console script
of the package.
"""

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
        sub = cmd.get_command(click.Context(cmd), word)
        assert sub is not None, f"{cmd.name} has no command {word!r}"
        cmd = sub
    return cmd


DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").rglob("*.md")])
"""Every doc a user reads (CHANGELOG.md records history, old names included, and is left out)."""

_FENCE = re.compile(r"^(`{3,}|~{3,})[^\n]*\n(.*?)^\1\s*$", re.M | re.S)
_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_AT_COMMAND = r"(?:^|[|;&(\[]|--|\bexec|\bsudo)\s*(?:\$\s+)?\"?"
"""Where a shell or an image runs a program: first on a line, after a pipe, ``--``, ``exec``..."""
_CALL = re.compile(_AT_COMMAND + r"(gmai-eval|gmai-model)(?![\w.:\[/@-])((?:[ \t]+[^\s`|&;)#>…]+)*)", re.M)
_PROGRAM = re.compile(_AT_COMMAND + r"(gmai-[a-z]+(?:-[a-z]+)*)(?![\w.:\[/@-])", re.M)


def code_in(path: pathlib.Path) -> list[str]:
    """The code a doc shows: each line of its fenced blocks (continuations joined) and each inline span."""
    text = path.read_text()
    lines = []
    for block in _FENCE.finditer(text):
        lines += block.group(2).replace("\\\n", " ").splitlines()
    prose = _FENCE.sub("", text)
    return lines + _SPAN.findall(prose)


def command_lines(path: pathlib.Path) -> list[tuple[str, list[str]]]:
    """Every ``gmai-eval ...`` / ``gmai-model ...`` call in a doc's code, as (program, words)."""
    calls = []
    for line in code_in(path):
        if line.lstrip().startswith(("gmai-eval serving on", "gmai-model serving on")):
            continue  # a ready line the program prints, not a command
        for prog, rest in _CALL.findall(line):
            words = rest.split()
            calls.append((prog, words[: words.index("...")] if "..." in words else words))
    return calls


def problems(path: pathlib.Path) -> tuple[int, list[str]]:
    """The calls a doc shows and what is wrong with them (an unknown command or option)."""
    calls, found = command_lines(path), []
    for prog, words in calls:
        group = eval_cli if prog == "gmai-eval" else model_cli
        shown = f"{path.name}: `{prog} {' '.join(words)}`"
        try:
            cmd = _resolve(group, words)
        except AssertionError as exc:
            found.append(f"{shown}: {str(exc).splitlines()[0]}")
            continue
        known = {opt for p in cmd.params for opt in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]}
        known |= {"--help", "-h"}
        for word in words:
            if word.startswith("--") and word.endswith("*"):  # a family: --tls-*
                if not any(k.startswith(word[:-1]) for k in known):
                    found.append(f"{shown}: {cmd.name} has no {word}")
            elif word.startswith("--") and word.split("=", 1)[0] not in known:
                found.append(f"{shown}: {cmd.name} has no option {word}")
    return len(calls), found


def test_every_docs_commands_exist_with_their_options() -> None:
    checked, found = 0, []
    for path in DOCS:
        n, wrong = problems(path)
        checked += n
        found += wrong
    assert found == []
    assert checked > 100


def test_the_check_finds_a_wrong_command_or_option(tmp_path: pathlib.Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Run `gmai-eval frobnicate RUN` or:\n\n```sh\n$ gmai-eval scores --db x.db RUN --by-dimension task \\\n"
        "    --format json\nkubectl -n gmai-eval get pods\nRUN=$(gmai-eval run --model m --benchmark b)\n"
        "gmai-model serve random --port 0   # gmai-eval nothing here\n```\n"
    )
    n, found = problems(doc)
    assert n == 4
    assert found == [
        "doc.md: `gmai-eval scores --db x.db RUN --by-dimension task --format json`: scores has no option --by-dimension",
        "doc.md: `gmai-eval frobnicate RUN`: cli has no command 'frobnicate'",
    ]


def test_the_readme_is_among_the_docs_checked() -> None:
    readme = command_lines(ROOT / "README.md")
    assert len(readme) > 10
    assert any(prog == "gmai-model" for prog, _ in readme)


def test_every_program_the_docs_name_is_installed() -> None:
    """gmai-health-check and gmai-eval-backup are console scripts, like gmai-eval and gmai-model."""
    import tomllib

    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    assert {"gmai-eval", "gmai-model", "gmai-health-check", "gmai-eval-backup"} <= scripts
    named = {(p, path.relative_to(ROOT)) for path in DOCS for line in code_in(path) for p in _PROGRAM.findall(line)}
    assert {"gmai-health-check", "gmai-eval-backup"} <= {p for p, _ in named}
    for program, path in sorted(named):
        assert program in scripts, f"{path} names `{program}`, which no install provides"


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
