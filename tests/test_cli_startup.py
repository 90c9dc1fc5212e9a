"""``gmai-eval`` imports only what the invoked command needs (``clients/cli/lazy.py``).

Each case runs the real CLI in a fresh interpreter, as ``python -m gmai_eval.clients.cli``
does, and then reads ``sys.modules``: a behaviour test (what got imported), not a timing one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from gmai_eval.clients.cli.lazy import LazyGroup
from gmai_eval.clients.cli.main import COMMANDS, cli

from tests._service_helpers import run_cli

HEAVY = ("grpc", "google.protobuf", "rich", "numpy", "sqlite3", "PIL", "gmai_eval.server", "gmai_eval.evaluator")
"""Packages a command may need but ``--version`` never does."""

AREAS = sorted({where.split(":")[0] for where in COMMANDS.values()} | {"diagnose", "run_admin"})
"""The modules that hold commands (``diagnose`` and ``run_admin`` fill sub-groups)."""


def _imported(tmp_path: Path, *argv: str, exit_code: int = 0) -> tuple[str, str, set[str]]:
    """Run ``gmai-eval ARGV``, which must exit with ``exit_code``; its stdout, its stderr and
    the modules it imported."""
    dump = tmp_path / "modules.json"
    code = (
        "import json, runpy, sys\n"
        f"sys.argv = ['gmai-eval', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('gmai_eval.clients.cli', run_name='__main__')\n"
        "except SystemExit as exc:\n"
        f"    assert (exc.code or 0) == {exit_code}, exc.code\n"
        f"open({str(dump)!r}, 'w').write(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr, set(json.loads(dump.read_text()))


def _loaded(modules: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(p for p in prefixes if any(m == p or m.startswith(p + ".") for m in modules))


def _areas(modules: set[str]) -> list[str]:
    return sorted(a for a in AREAS if f"gmai_eval.clients.cli.{a}" in modules)


def test_version_imports_no_command_and_nothing_heavy(tmp_path: Path) -> None:
    out, _, modules = _imported(tmp_path, "--version")
    assert out.startswith("gmai-eval, version ")
    assert _loaded(modules, HEAVY) == []
    assert _areas(modules) == []


@pytest.mark.parametrize(
    ("argv", "areas"),
    [
        (["scores", "--help"], ["runs", "scoring"]),  # scoring uses runs' client()
        (["watch", "--help"], ["runs"]),
        # A group's help lists its subcommands, so it loads the modules that hold them.
        (["runs", "--help"], ["catalog", "diagnose", "run_admin", "runs"]),
        (["benchmarks", "--help"], ["catalog", "run_admin", "runs"]),
    ],
)
def test_a_command_imports_its_own_area_only(tmp_path: Path, argv: list[str], areas: list[str]) -> None:
    out, _, modules = _imported(tmp_path, *argv)
    assert out.startswith(f"Usage: gmai-eval {argv[0]} ")
    assert _areas(modules) == areas
    assert _loaded(modules, ("rich", "numpy", "sqlite3", "PIL")) == []


def test_help_loads_every_command(tmp_path: Path) -> None:
    out, _, modules = _imported(tmp_path, "--help")
    listed = [line.split()[0] for line in out.split("\nCommands:\n")[1].splitlines() if line.startswith("  ") and not line.startswith("   ")]
    assert listed[: len(COMMANDS)] == sorted(COMMANDS)
    assert _areas(modules) == sorted({where.split(":")[0] for where in COMMANDS.values()})


def test_sub_groups_hold_the_subcommands_of_every_module() -> None:
    ctx = click.Context(cli)
    subcommands = {}
    for name in ("runs", "models", "benchmarks"):
        group = cli.get_command(ctx, name)
        assert isinstance(group, click.Group)
        subcommands[name] = group.list_commands(click.Context(group))
    assert subcommands == {"runs": ["delete", "show"], "models": ["add", "check", "list", "remove"], "benchmarks": ["remove"]}


def test_a_table_entry_that_is_not_a_command_is_an_error() -> None:
    group = LazyGroup("g", lazy_subcommands={"hint": "extras:INSTALL_HINT"})
    with pytest.raises(TypeError, match="extras:INSTALL_HINT is not a click command"):
        group.get_command(click.Context(group), "hint")
    assert group.list_commands(click.Context(group)) == ["hint"]


@pytest.mark.parametrize(("argv", "meant"), [(["wach"], "watch"), (["runs", "sho"], "show"), (["benchmarks", "remov"], "remove")])
def test_a_mistyped_command_is_matched_against_the_commands_not_loaded_yet(argv: list[str], meant: str) -> None:
    result = run_cli(*argv)
    assert result.returncode == 2
    assert f"Error: No such command {argv[-1]!r}. Did you mean {meant!r}?" in result.stderr


def test_the_evaluator_imports_the_viewer_only_when_it_serves_one() -> None:
    """``serve`` without ``--ui-port`` loads neither aiohttp nor the viewer's pages."""
    code = (
        "import json, sys\n"
        "import gmai_eval.server.app\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('aiohttp', 'gmai_eval.server.viewer')))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize(
    "argv",
    [["runs", "--db", "x.db"], ["benchmarks", "--db", "x.db"], ["runs", "show", "--db", "x.db", "r-000000000001"]],
)
def test_a_command_on_the_file_never_loads_grpc(tmp_path: Path, argv: list[str]) -> None:
    """``--db`` reads the file in process: no channel, so neither gRPC nor the TLS loader."""
    from gmai_eval.server.store import Database

    Database(tmp_path / "x.db").close()
    unknown = argv[1] == "show"  # an unknown run: the one-line error, still without gRPC
    out, err, modules = _imported(tmp_path, *argv, exit_code=1 if unknown else 0)
    if unknown:
        assert "no run 'r-000000000001'" in err
    else:
        assert out  # the table's header at least
    assert _loaded(modules, ("grpc", "gmai_eval.tls", "gmai_eval.clients.evaluator_client")) == []
    assert "gmai_eval.server.store" in modules  # it did read the file
