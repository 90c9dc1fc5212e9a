"""Files the CLI cannot write end as one line, never a traceback (the real CLI, as typed)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests._service_helpers import run_cli as gmai_eval


@pytest.fixture(scope="module")
def run_db(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("files")
    assert gmai_eval("synth", "--out", "b.tsv", "--questions", "12", "--seed", "1", cwd=root).returncode == 0
    assert gmai_eval("import", "--db", "e.db", "--name", "b", "b.tsv", cwd=root).returncode == 0
    with open(root / "b.tsv") as f, open(root / "pred.tsv", "w") as out:
        out.write("index\tprediction\n")
        for row in csv.DictReader(f, delimiter="\t"):
            out.write(f"{row['index']}\tA\n")
    scored = gmai_eval("score-file", "--db", "e.db", "--benchmark", "b", "pred.tsv", "--format", "json", cwd=root)
    assert scored.returncode == 0, scored.stderr
    run_id = next(line for line in scored.stdout.splitlines() if '"run_id"' in line).split('"')[3]
    return root, run_id


@pytest.mark.parametrize("out", ["/proc/no-such-dir/x.tsv", "/proc/version/x.tsv"])
def test_export_to_a_path_that_cannot_be_written_is_one_line(run_db: tuple[Path, str], out: str) -> None:
    root, run_id = run_db
    result = gmai_eval("export", "--db", "e.db", run_id, "--format", "tsv", "--out", out, cwd=root)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "/proc/" in lines[0], result.stderr
