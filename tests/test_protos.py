"""The protos: generated code is fresh, buf lint passes, the model contract is blind."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROTOS = ROOT / "protos"
BUF = ROOT / ".tools" / "node_modules" / ".bin" / "buf"


def test_generated_code_is_fresh(tmp_path: pathlib.Path) -> None:
    subprocess.run([sys.executable, str(PROTOS / "generate.py"), "--out", str(tmp_path)], check=True)
    generated = sorted(tmp_path.rglob("*_pb2*.py*"))
    assert generated, "protoc produced nothing"
    for new in generated:
        committed = PROTOS / new.relative_to(tmp_path)
        assert committed.exists(), f"{committed} is not committed"
        assert committed.read_text() == new.read_text(), (
            f"{committed.relative_to(ROOT)} is stale: run `make protos`"
        )


def _buf() -> str:
    if BUF.exists():
        return str(BUF)
    found = shutil.which("buf")
    if not found:
        pytest.fail("buf is missing: run `make tools`")
    return found


def test_buf_lint() -> None:
    result = subprocess.run([_buf(), "lint"], cwd=PROTOS, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_breaking_against_first_release(tmp_path: pathlib.Path) -> None:
    """The current protos stay wire-compatible with the v1 baseline image in protos/."""
    baseline = PROTOS / "v1-baseline.binpb"
    result = subprocess.run(
        [_buf(), "breaking", "--against", str(baseline)], cwd=PROTOS, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_model_request_carries_no_ground_truth() -> None:
    from gmai_eval.model.v1 import model_pb2

    fields = {f.name for f in model_pb2.AnswerVQARequest.DESCRIPTOR.fields}
    forbidden = {"answer", "category", "index", "clinical_task", "department", "modality", "label"}
    assert not fields & forbidden
    assert {"question_id", "images", "question", "options", "prompt", "parameters"} <= fields


def test_every_rpc_documents_status_codes() -> None:
    for proto in PROTOS.rglob("*.proto"):
        text = proto.read_text()
        blocks = text.split("  rpc ")[1:]
        assert blocks, proto
        for block in blocks:
            name = block.split("(")[0]
            # the comment precedes the rpc: look at the text just before it
            before = text.split(f"  rpc {name}(")[0].rsplit("\n\n", 1)[-1]
            assert "Codes" in before or "Status codes" in before, f"{proto.name}:{name} lacks status codes"
            assert "Deadline" in before, f"{proto.name}:{name} lacks a deadline note"
