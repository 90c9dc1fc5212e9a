"""The architecture rules of docs/architecture.md, checked on the source."""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SERVER = ROOT / "server"
CLIENTS = ROOT / "clients"



def _py_files(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


# The layer, import and purity rules are import-linter contracts ([tool.importlinter] in
# pyproject.toml), checked by `.ci/lint-imports` in `make test`.


def test_every_stage_package_says_its_role() -> None:
    """Each package of server/ has a docstring saying what it does."""
    for init in SERVER.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and len(doc.split()) >= 12, f"{init.relative_to(ROOT)} has no role docstring"


def test_the_tree_shows_the_stages() -> None:
    stages = {p.name for p in SERVER.iterdir() if (p / "__init__.py").exists()}
    assert stages == {"api", "data", "metrics", "reports", "runs", "scoring", "store", "viewer"}
    flat = {p.stem for p in SERVER.glob("*.py")}
    assert flat == {"__init__", "app", "errors", "names", "records", "taxonomy", "tls"}


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
