"""The wheel as pip installs it, and the model side without the evaluator's dependencies.

- The wheel built from a copy of the sources installs into a fresh virtual environment,
  and every module of the source tree imports from there (pyproject lists packages one by
  one, so a forgotten sub-package fails here), with its package data.
- The base install (what ``pip install gmai-eval`` gives a model team) requires none of the
  evaluator's libraries; they are the ``server`` extra.
- With the modules of the ``server`` extra made unimportable, the model side (SDK,
  ``gmai-model``, the random baseline) imports and serves, and the ``gmai-eval`` commands
  that need the evaluator say in one line what to install.

Which modules to block comes from the installed distributions' metadata, not from the
code under test: every module of a distribution that the ``server`` extra pulls in and
the base install does not.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import click
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
EVALUATOR_ONLY = {"openpyxl", "xlsxwriter", "numpy", "torch", "grpcio-status", "aiohttp"}
"""Distributions a model team's install must not pull (issue 9, item 8)."""

# Source folder -> import name, as [tool.setuptools] package-dir maps them.
SOURCES = {"protos/gmai_eval": "gmai_eval", "server": "gmai_eval.server", "clients": "gmai_eval.clients"}

pytestmark = pytest.mark.slow


# --- the wheel ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the sources (the shared tree gets no build/ files)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in ("protos", "server", "clients"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(root / "dist"), str(src)],
        check=True, capture_output=True, timeout=300,
    )
    (built,) = (root / "dist").glob("gmai_eval-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel (no dependencies); the dev venv's libraries behind it."""
    env = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True, timeout=120)
    python = env / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    # After the venv's own site-packages: grpc, click, torch... from the dev venv, but not its
    # editable gmai_eval (a plain path line does not run the .pth files found there).
    Path(purelib, "dev-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
         str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    return env


def _source_modules() -> list[str]:
    """Every module of the source tree, by the import name it has once installed."""
    modules = []
    for folder, package in SOURCES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if "__pycache__" not in parts and parts[-1] != "__main__":
                modules.append(".".join((package, *parts)).removesuffix(".__init__"))
    return modules


def test_every_source_module_imports_from_the_installed_wheel(venv: Path) -> None:
    modules = _source_modules()
    assert {"gmai_eval.tls", "gmai_eval.server.store.database", "gmai_eval.clients.sdk.serve"} <= set(modules)
    code = (
        "import importlib, json, sys\n"
        "files = {m: importlib.import_module(m).__file__ for m in json.loads(sys.argv[1])}\n"
        "print(json.dumps(files))\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code, json.dumps(modules)],
        capture_output=True, text=True, timeout=300, cwd=venv,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    files = json.loads(result.stdout)
    outside = {m: f for m, f in files.items() if not Path(f).resolve().is_relative_to(venv.resolve())}
    assert not outside, f"imported from outside the fresh venv: {outside}"


def test_console_scripts_run_from_the_wheel(venv: Path) -> None:
    version = PYPROJECT["project"]["version"]
    for script in PYPROJECT["project"]["scripts"]:
        result = subprocess.run([str(venv / "bin" / script), "--version"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert version in result.stdout


def test_the_wheel_carries_the_package_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "gmai_eval/py.typed", "gmai_eval/server/py.typed", "gmai_eval/clients/py.typed",
        *(f"gmai_eval/{p.relative_to(ROOT / 'protos/gmai_eval')}" for p in (ROOT / "protos/gmai_eval").rglob("*.proto")),
        *(f"gmai_eval/{p.relative_to(ROOT / 'protos/gmai_eval')}" for p in (ROOT / "protos/gmai_eval").rglob("*.pyi")),
        *(f"gmai_eval/server/data/{p.name}" for p in (ROOT / "server/data").glob("*.json")),
        "gmai_eval/server/reports/paper_results.json",
        *(f"gmai_eval/server/viewer/{p.relative_to(ROOT / 'server/viewer')}"
          for folder in ("templates", "static") for p in (ROOT / "server/viewer" / folder).iterdir()),
    }
    assert len(expected) > 5
    assert expected <= names, sorted(expected - names)


def test_setuptools_reads_the_project_without_a_warning() -> None:
    """A quiet install: setuptools >= 77 warns about the old license table (pip >= 25 shows it)."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "from setuptools.config.pyprojecttoml import apply_configuration\n"
        "from setuptools.dist import Distribution\n"
        "apply_configuration(Distribution(), 'pyproject.toml')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


# --- what the base install requires -------------------------------------------------------


def _requirements(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as zf:
        (meta,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        text = zf.read(meta).decode()
    return [Requirement(line.split(":", 1)[1].strip()) for line in text.splitlines() if line.startswith("Requires-Dist:")]


def test_the_base_install_requires_none_of_the_evaluator_libraries(wheel: Path) -> None:
    requirements = _requirements(wheel)
    base = {canonicalize_name(r.name) for r in requirements if r.marker is None or "extra" not in str(r.marker)}
    assert {"grpcio", "grpcio-health-checking", "protobuf"} <= base
    assert not base & EVALUATOR_ONLY, sorted(base & EVALUATOR_ONLY)
    server = {canonicalize_name(r.name) for r in requirements if r.marker is not None and r.marker.evaluate({"extra": "server"})}
    assert {"openpyxl", "xlsxwriter", "numpy", "grpcio-status"} <= server
    assert "torch" not in server


def test_the_images_install_what_they_run() -> None:
    evaluator = (ROOT / "deploy" / "Dockerfile.evaluator").read_text()
    assert "'.[server]'" in evaluator and "'gmai-eval[server]'" in evaluator
    model = (ROOT / "deploy" / "Dockerfile.model").read_text()
    assert "'.[torch]'" in model
    assert "[server" not in model and ",server" not in model


# --- the model side without the server extra ---------------------------------------------


def _closure(requirements: Iterable[str], extras: tuple[str, ...] = ("",)) -> set[str]:
    """Installed distributions reached from ``requirements`` (markers evaluated here)."""
    seen: set[str] = set()
    todo = [(Requirement(r), e) for r in requirements for e in extras]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        seen.add(name)
        for sub in md.requires(name) or []:
            todo.extend((Requirement(sub), e) for e in ("", *req.extras))
    return seen


def _modules_of(dist: str) -> set[str]:
    """Top-level modules of a distribution ('google.rpc' style inside a shared namespace)."""
    modules = set()
    for f in md.distribution(dist).files or []:
        parts = f.parts
        if len(parts) < 2 and not parts[0].endswith(".py"):
            continue
        if parts[0].endswith((".dist-info", ".data")) or parts[0] in {"..", "__pycache__", "bin"}:
            continue
        top = parts[0].removesuffix(".py")
        if not top.isidentifier():  # numpy.libs and the like
            continue
        if top == "google" and len(parts) > 2:  # the namespace protobuf shares
            top = f"google.{parts[1]}"
        modules.add(top)
    return modules


def server_only_modules() -> list[str]:
    """Modules only the server extra installs: the ones a model team's venv lacks."""
    project = PYPROJECT["project"]
    base = _closure(project["dependencies"])
    server = _closure(project["optional-dependencies"]["server"])
    modules = set().union(*(_modules_of(d) for d in server - base))
    modules -= {"google"}
    return sorted(modules | {"torch"})


def _blocked(*lines: str) -> list[str]:
    """argv of a Python that cannot import the server extra's modules, then runs ``lines``."""
    code = f"import sys\nfor m in {server_only_modules()!r}:\n    sys.modules[m] = None\n" + "\n".join(lines)
    return [sys.executable, "-c", code]


def test_the_blocked_modules_are_the_server_extra() -> None:
    blocked = set(server_only_modules())
    assert {"openpyxl", "xlsxwriter", "numpy", "grpc_status"} <= blocked
    assert not blocked & {"grpc", "google", "google.rpc", "click", "PIL", "prometheus_client", "grpc_health", "grpc_reflection"}


def test_the_model_side_imports_without_the_server_extra() -> None:
    modules = [
        "gmai_eval.tls", "gmai_eval.clients.sdk", "gmai_eval.clients.reference.cli",
        "gmai_eval.clients.reference.random", "gmai_eval.clients.adapters.openai_chat",
        "gmai_eval.clients.evaluator_client", "gmai_eval.clients.cli.main",
    ]
    result = subprocess.run(
        _blocked("import importlib", f"for m in {modules!r}:", "    importlib.import_module(m)",
                 "assert not [m for m in sys.modules if m.startswith('gmai_eval.server')], 'the evaluator was imported'"),
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture
def random_model_without_server_extra(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    argv = _blocked(
        "from gmai_eval.clients.reference.cli import main",
        "sys.argv = ['gmai-model', 'serve', 'random', '--host', '127.0.0.1', '--port', '0']",
        "main()",
    )
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def test_gmai_model_serves_the_random_baseline_without_the_server_extra(
    random_model_without_server_extra: subprocess.Popen[str],
) -> None:
    proc = random_model_without_server_extra
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the ready line, or "" if it died
    if not line:
        proc.wait(timeout=30)
        pytest.fail(proc.stderr.read() if proc.stderr else "no output")
    assert re.match(r"gmai-model serving on 127\.0\.0\.1:\d+", line)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--port", "0"],
        ["import", "--db", "x.db", "--name", "b", "b.tsv"],
        ["synth", "--help"],
        ["scores", "--db", "x.db", "r-1"],
        ["score-file", "--db", "x.db", "--benchmark", "b", "predictions.xlsx"],
    ],
)
def test_evaluator_commands_without_the_server_extra_say_what_to_install(argv: list[str], tmp_path: Path) -> None:
    # The commands that work both ways reach the evaluator's code only for an existing file.
    (tmp_path / "x.db").touch()
    (tmp_path / "b.tsv").touch()
    (tmp_path / "predictions.xlsx").touch()
    code = _blocked("from gmai_eval.clients.cli.main import main", f"sys.argv = ['gmai-eval', *{argv!r}]", "main()")
    result = subprocess.run(code, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"`gmai-eval {argv[0]}` needs the evaluator" in lines[0]
    assert "install gmai-eval[server] for this command" in lines[0]


def test_import_without_the_server_extra_creates_no_database(tmp_path: Path) -> None:
    """The extra is checked before anything is opened: no empty database file is left behind."""
    (tmp_path / "b.tsv").touch()
    argv = ["import", "--db", "new.db", "--name", "b", "b.tsv"]
    code = _blocked("from gmai_eval.clients.cli.main import main", f"sys.argv = ['gmai-eval', *{argv!r}]", "main()")
    result = subprocess.run(code, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1
    assert "`gmai-eval import` needs the evaluator" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.tsv"]


def test_help_lists_every_command_without_the_server_extra(tmp_path: Path) -> None:
    blocked = subprocess.run(
        _blocked("from gmai_eval.clients.cli.main import main", "sys.argv = ['gmai-eval', '--help']", "main()"),
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert blocked.returncode == 0, blocked.stderr
    from gmai_eval.clients.cli.main import cli

    assert isinstance(cli, click.Group)
    listed = set(re.findall(r"^  ([a-z][\w-]*)\s", blocked.stdout, re.M))
    assert listed == set(cli.list_commands(click.Context(cli)))


def test_the_placeholders_name_the_offline_commands() -> None:
    from gmai_eval.clients.cli.extras import OFFLINE_COMMANDS, SERVER_EXTRA_MODULES
    from gmai_eval.clients.cli.main import COMMANDS

    by_module: dict[str, set[str]] = {}
    for name, where in COMMANDS.items():
        by_module.setdefault(where.split(":")[0], set()).add(name)
    # Each offline module's commands, and only those: the scoring and writing commands work
    # both ways, and the base install loads them, for --server.
    assert {area: set(names) for area, names in OFFLINE_COMMANDS.items()} == {area: by_module[area] for area in OFFLINE_COMMANDS}
    direct = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["optional-dependencies"]["server"]}
    provided = set().union(*(_modules_of(d) for d in direct)) - {"google"}
    assert provided <= SERVER_EXTRA_MODULES, sorted(provided - SERVER_EXTRA_MODULES)
