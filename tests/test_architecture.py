"""The architecture rules of docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SERVER = ROOT / "server"
CLIENTS = ROOT / "clients"

PURE_STAGES = ("taxonomy", "extraction", "verdicts", "aggregate", "stats", "calibration", "prompt")
IO_MODULES = ("grpc", "sqlite3", "sqlite_utils", "socket", "subprocess", "urllib", "http", "asyncio")


def _imports(path: pathlib.Path) -> set[str]:
    """Absolute module names imported by a file (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if path.is_relative_to(SERVER):
        pkg_parts = ["gmai_eval", "server", *path.relative_to(SERVER).parent.parts]
    elif path.is_relative_to(CLIENTS):
        pkg_parts = ["gmai_eval", "clients", *path.relative_to(CLIENTS).parent.parts]
    else:
        pkg_parts = []
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - node.level + 1]
                mod = ".".join([*base, node.module] if node.module else base)
            else:
                mod = node.module or ""
            names.add(mod)
            names.update(f"{mod}.{alias.name}" for alias in node.names)
    return names


def _py_files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def test_server_never_imports_clients() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _py_files(SERVER)
        if any(m.startswith("gmai_eval.clients") for m in _imports(p))
    ]
    assert not offenders


def test_sdk_and_reference_models_do_not_import_the_evaluator() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for sub in ("sdk", "reference", "adapters")
        for p in _py_files(CLIENTS / sub)
        if any(m.startswith("gmai_eval.server") for m in _imports(p))
    ]
    assert not offenders


def test_only_the_store_imports_sqlite_utils() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in _py_files(SERVER)
        if "store" not in p.relative_to(SERVER).parts
        and any(m == "sqlite_utils" or m.startswith("sqlite_utils.") for m in _imports(p))
    ]
    assert not offenders


def test_pure_stages_do_no_io() -> None:
    for stage in PURE_STAGES:
        path = SERVER / f"{stage}.py"
        if not path.exists():
            continue
        bad = {
            m
            for m in _imports(path)
            if m.split(".")[0] in IO_MODULES or m.startswith("gmai_eval.server.store")
        }
        assert not bad, f"{stage}.py imports {sorted(bad)}"


def test_evaluator_imports_without_torch() -> None:
    """Every evaluator module imports with torch made unimportable."""
    modules = [
        "gmai_eval.server." + ".".join(p.relative_to(SERVER).with_suffix("").parts)
        for p in _py_files(SERVER)
        if p.name != "__main__.py"
    ]
    code = (
        "import sys, importlib\n"
        "sys.modules['torch'] = None\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m.removesuffix('.__init__'))\n"
        "import gmai_eval.clients.cli.main\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_package_exports_are_sorted_lists() -> None:
    for init in [*SERVER.rglob("__init__.py"), *CLIENTS.rglob("__init__.py")]:
        tree = ast.parse(init.read_text())
        exported = [
            node
            for node in tree.body
            if isinstance(node, (ast.Assign, ast.AnnAssign))
            and any(getattr(t, "id", None) == "__all__" for t in (getattr(node, "targets", None) or [node.target]))  # type: ignore[attr-defined]
        ]
        if not exported:
            continue
        value = ast.literal_eval(exported[0].value)  # type: ignore[arg-type]
        assert list(value) == sorted(value), f"{init.relative_to(ROOT)}: __all__ not sorted"
