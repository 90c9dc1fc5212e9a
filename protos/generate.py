"""Regenerate the Python code and .pyi stubs for the protos in this folder.

Run ``python protos/generate.py`` after editing a .proto file; the generated files are
committed and a test fails when they are stale. ``--out DIR`` writes elsewhere (the test
uses it to compare).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from grpc_tools import protoc  # type: ignore[import-untyped]

HERE = pathlib.Path(__file__).resolve().parent
PROTOS = sorted(p.relative_to(HERE).as_posix() for p in HERE.glob("gmai_eval/**/*.proto"))


def generate(out: pathlib.Path) -> None:
    """Run protoc for every proto under gmai_eval/ into ``out``."""
    import grpc_tools

    include = pathlib.Path(grpc_tools.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{HERE}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *PROTOS,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=pathlib.Path, default=HERE)
    ns = parser.parse_args()
    ns.out.mkdir(parents=True, exist_ok=True)
    generate(ns.out)


if __name__ == "__main__":
    sys.exit(main())
