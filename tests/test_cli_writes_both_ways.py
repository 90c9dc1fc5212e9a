"""import and score-file give the same output with --db and with --server.

A real ``gmai-eval serve`` (with an admin and a read-only token) owns one database file;
the real CLI, in a pipe, imports the same files into a second file with ``--db`` and
uploads them to the evaluator with ``--server``. Stdout and stderr must be the same: the
summary, the layout with its reason, every defect by file, row and column. The expected
lines are written out by hand (docs/data.md). A second evaluator with a tiny
``--max-upload-gb`` shows the cap.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests._data_helpers import VAL_COLUMNS, make_row, write_tsv
from tests._service_helpers import run_cli as gmai_eval
from tests._service_helpers import running_server, write_benchmark_tsv

ADMIN = "admin-token-0123456789"
READ = "read-token-0123456789ab"


@dataclass(frozen=True)
class Served:
    target: str
    served_db: Path
    local_db: Path
    root: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("writes-both")
    env = {"GMAI_EVAL_ADMIN_TOKEN": ADMIN, "GMAI_EVAL_READ_TOKEN": READ}
    with running_server(root / "served.db", env=env) as proc:
        yield Served(proc.target, root / "served.db", root / "local.db", root)


def both(s: Served, *args: str, code: int = 0) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    local = gmai_eval(*args, "--db", str(s.local_db), cwd=s.root)
    remote = gmai_eval(*args, "--server", s.target, "--token", ADMIN, cwd=s.root)
    for result in (local, remote):
        assert result.returncode == code, result.stderr
        assert "Traceback" not in result.stderr
    return local, remote


def test_a_clean_import_says_the_same_both_ways(served: Served) -> None:
    tsv = write_benchmark_tsv(served.root / "GMAI_mm_bench_VAL.tsv", n=12)
    local, remote = both(served, "import", "--name", "clean", "GMAI_mm_bench_VAL.tsv")
    assert (local.stdout, local.stderr) == (remote.stdout, remote.stderr)
    lines = local.stdout.splitlines()
    assert re.fullmatch(
        r"imported clean: 12 questions \(VAL layout, 0 without answer\), 0 rows skipped, 0 defect\(s\); "
        r"digest sha256:[0-9a-f]{64}", lines[0]
    )
    assert lines[1:] == ["layout: an `answer` column: VAL layout, answers read from `answer`"]
    assert local.stderr == ""
    # The same files again: nothing is written, both ways say so alike.
    again_local, again_remote = both(served, "import", "--name", "clean", str(tsv))
    assert again_local.stdout == again_remote.stdout
    assert again_local.stdout.startswith("already imported: clean (12 questions, VAL layout, sha256:")


def test_defects_and_the_layout_reason_travel_through_the_evaluator(served: Served) -> None:
    cols = ["answr" if c == "answer" else c for c in VAL_COLUMNS]
    rows = [{**make_row(i), "answr": "A"} for i in range(4)]
    rows[2]["category"] = "none of the options"  # row 3: no option matches: imported flagged
    write_tsv(served.root / "typo.tsv", rows, cols)
    local, remote = both(served, "import", "--name", "typo", "typo.tsv")
    assert (local.stdout, local.stderr) == (remote.stdout, remote.stderr)
    defects = local.stderr.splitlines()
    assert defects[0].startswith(
        "defect: typo.tsv, column 'answr': unknown column 'answr': did you mean 'answer'?"
    )
    assert any(d.startswith("defect: typo.tsv, row 3") for d in defects[1:]), defects
    lines = local.stdout.splitlines()
    assert lines[0].startswith(f"imported typo: 4 questions (TEST layout, 1 without answer), 0 rows skipped, "
                               f"{len(defects)} defect(s)")
    assert lines[1] == "layout: no `answer` column: TEST layout, answers derived from `category`"


def test_a_strict_import_fails_alike_and_writes_nothing(served: Served) -> None:
    cols = [*VAL_COLUMNS, "reviewer"]
    write_tsv(served.root / "extra.tsv", [{**make_row(i), "reviewer": "x"} for i in range(2)], cols)
    local, remote = both(served, "import", "--name", "strict", "--strict", "extra.tsv", code=1)
    head = "strict import of 'strict': 1 defect(s); nothing imported"
    assert local.stderr.splitlines()[0] == f"Error: {head}"
    assert remote.stderr.splitlines()[0] == f"Error: INVALID_ARGUMENT: {head}"
    assert local.stderr.splitlines()[1:] == remote.stderr.splitlines()[1:]
    assert "extra.tsv, column 'reviewer': unknown column 'reviewer'" in local.stderr
    listed = gmai_eval("benchmarks", "--server", served.target, "--token", READ, "--format", "json")
    assert "strict" not in [b["name"] for b in json.loads(listed.stdout)]


def test_writes_need_the_admin_token(served: Served) -> None:
    tsv = write_benchmark_tsv(served.root / "denied.tsv", n=3)
    pred = served.root / "denied_preds.tsv"
    pred.write_text("index\tprediction\n0\tA\n")
    for argv in (["import", "--name", "denied", str(tsv)], ["score-file", "--benchmark", "clean", str(pred)]):
        result = gmai_eval(*argv, "--server", served.target, "--token", READ)
        assert result.returncode == 1
        assert result.stderr.startswith("Error: PERMISSION_DENIED")
        assert len(result.stderr.strip().splitlines()) == 1


def _predictions(path: Path, answers: dict[int, str]) -> Path:
    path.write_text("index\tprediction\n" + "".join(f"{i}\t{a}\n" for i, a in answers.items()))
    return path


def test_score_file_says_the_same_both_ways(served: Served) -> None:
    gmai_eval("import", "--name", "clean", "GMAI_mm_bench_VAL.tsv", "--db", str(served.local_db), cwd=served.root)
    gmai_eval("import", "--name", "clean", "GMAI_mm_bench_VAL.tsv", "--server", served.target, "--token", ADMIN,
              cwd=served.root)
    # write_benchmark_tsv: even indexes have key B, odd ones key A. 9 of 12 right: 0, 2, 4 are wrong.
    answers = {i: ("B" if i % 2 == 0 else "A") for i in range(12)}
    answers.update({0: "C", 2: "A", 4: "Option C"})
    _predictions(served.root / "mymodel.tsv", answers)
    local, remote = both(served, "score-file", "--benchmark", "clean", "mymodel.tsv", "--format", "json")
    doc_local, doc_remote = json.loads(local.stdout), json.loads(remote.stdout)
    assert doc_local["run_id"] != doc_remote["run_id"]  # two databases, two runs
    run_id = re.compile(r"r-[0-9a-f]{12}|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")  # and the dates
    assert run_id.sub("X", local.stdout) == run_id.sub("X", remote.stdout)
    (overall,) = doc_local["nodes"]
    assert (overall["n"], overall["correct"]) == (12, 9)
    table_local, table_remote = both(served, "score-file", "--benchmark", "clean", "mymodel.tsv")
    assert run_id.sub("X", table_local.stdout) == run_id.sub("X", table_remote.stdout)
    assert re.fullmatch(r"created run r-[0-9a-f]{12} \(model file:mymodel\)", table_remote.stdout.splitlines()[0])


def test_a_bad_prediction_file_is_named_alike(served: Served) -> None:
    _predictions(served.root / "wrong.tsv", {0: "A", 999: "B"})
    local, remote = both(served, "score-file", "--benchmark", "clean", "wrong.tsv", code=1)
    message = "wrong.tsv, row 2, column 'index': index 999 is not in benchmark 'clean'"
    assert local.stderr == f"Error: {message}\n"
    assert remote.stderr == f"Error: INVALID_ARGUMENT: {message}\n"


def test_an_upload_over_the_cap_is_refused_before_it_is_sent(tmp_path: Path) -> None:
    tsv = write_benchmark_tsv(tmp_path / "big.tsv", n=12)
    size = tsv.stat().st_size
    cap_gb = (size - 1) / 1e9
    with running_server(tmp_path / "capped.db", "--max-upload-gb", repr(cap_gb)) as proc:
        result = gmai_eval("import", "--name", "big", str(tsv), "--server", proc.target)
        small = write_benchmark_tsv(tmp_path / "small.tsv", n=1)
        fits = gmai_eval("import", "--name", "small", str(small), "--server", proc.target)
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: INVALID_ARGUMENT: ImportBenchmark: the upload is {size:,} bytes, over this evaluator's "
        f"cap of {size - 1:,} bytes (gmai-eval serve --max-upload-gb)\n"
    )
    assert fits.returncode == 0, fits.stderr
    assert list(tmp_path.glob(".gmai-upload-*")) == []


def test_a_multi_answer_import_says_the_same_both_ways(served: Served) -> None:
    # A VAL file with keys "A,C" and "B": a multi-answer benchmark only with --multi-choice.
    rows = [make_row(i) for i in range(3)]
    rows[0]["answer"] = "A,C"
    write_tsv(served.root / "multi.tsv", rows, VAL_COLUMNS)
    local, remote = both(served, "import", "--name", "multi", "--multi-choice", "multi.tsv")
    assert (local.stdout, local.stderr) == (remote.stdout, remote.stderr)
    assert local.stdout.startswith("imported multi: 3 multi-answer questions (VAL layout, 0 without answer), 0 rows skipped")
    # Without the flag the two-letter key (data row 1) is a defect both ways: the row is skipped.
    strict_local, strict_remote = both(served, "import", "--name", "single", "multi.tsv")
    assert (strict_local.stdout, strict_local.stderr) == (strict_remote.stdout, strict_remote.stderr)
    assert strict_local.stdout.startswith("imported single: 2 questions (VAL layout, 0 without answer), 1 rows skipped")
    assert strict_local.stderr.startswith("defect: multi.tsv, row 1, column 'answer': answer 'A,C'")
