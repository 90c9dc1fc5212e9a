"""What ``gmai-eval import`` says about a file's header, run as a user types it.

A misspelt ``answer``, a column nobody knows, a comma- or semicolon-separated file, a
misspelt required column: each is said once, in plain words, and the layout comes with
its reason. The expected lines are written out by hand from docs/data.md.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmarks as store

from tests._data_helpers import VAL_COLUMNS, make_row, write_tsv

GMAI_EVAL = str(Path(sys.executable).parent / "gmai-eval")


def gmai_eval(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``gmai-eval`` console script."""
    result = subprocess.run([GMAI_EVAL, *args], capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr
    return result


def _renamed(tmp_path: Path, old: str, new: str, rows: int = 3) -> Path:
    cols = [new if c == old else c for c in VAL_COLUMNS]
    data = [{**make_row(i), new: make_row(i)[old]} for i in range(rows)]
    return write_tsv(tmp_path / f"{new}.tsv", data, cols)


def test_misspelt_answer_is_named_and_the_layout_says_why(tmp_path: Path) -> None:
    tsv = _renamed(tmp_path, "answer", "answr")
    db = tmp_path / "eval.db"
    result = gmai_eval("import", "--db", str(db), "--name", "typo", str(tsv))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"defect: {tsv}, column 'answr': unknown column 'answr': did you mean 'answer'? Without an "
        "'answer' column the file is read as the TEST layout. Its values are kept in the question's extra"
    ]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("imported typo: 3 questions (TEST layout, 0 without answer), 0 rows skipped, 1 defect(s)")
    assert lines[1] == "layout: no `answer` column: TEST layout, answers derived from `category`"
    with Database(db) as opened:
        b = store.get_benchmark(opened, "typo")
        assert b.layout == "TEST"
        assert [q.extra for q in store.load_questions(opened, b.id)] == [{"answr": "A"}] * 3


def test_strict_refuses_an_unknown_column(tmp_path: Path) -> None:
    tsv = _renamed(tmp_path, "answer", "answr")
    db = tmp_path / "eval.db"
    result = gmai_eval("import", "--db", str(db), "--name", "typo", "--strict", str(tsv))
    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == "Error: strict import of 'typo': 1 defect(s); nothing imported"
    assert "unknown column 'answr': did you mean 'answer'?" in result.stderr
    with Database(db) as opened:
        assert store.list_benchmarks(opened) == []


def test_a_column_close_to_nothing_is_listed_and_kept(tmp_path: Path) -> None:
    data = [{**make_row(i), "reviewer": f"r{i}"} for i in range(2)]
    tsv = write_tsv(tmp_path / "extra.tsv", data, [*VAL_COLUMNS, "reviewer"])
    result = gmai_eval("import", "--db", str(tmp_path / "eval.db"), "--name", "x", str(tsv))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        f"defect: {tsv}, column 'reviewer': unknown column 'reviewer': not a GMAI-MMBench column. "
        "Its values are kept in the question's extra"
    ]
    assert result.stdout.splitlines()[1] == "layout: an `answer` column: VAL layout, answers read from `answer`"


def test_a_misspelt_required_column_names_the_closest(tmp_path: Path) -> None:
    tsv = _renamed(tmp_path, "category", "categroy")
    result = gmai_eval("import", "--db", str(tmp_path / "eval.db"), "--name", "x", str(tsv))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: import of 'x': no valid rows; nothing imported"
    assert len(lines) == 2, result.stderr  # one defect: the missing column, not also the unknown one
    assert lines[1].startswith(
        f"  {tsv}, column 'category': missing column 'category'; the header has 'categroy': "
        "did you mean 'category'?"
    )


@pytest.mark.parametrize(("delimiter", "word"), [(",", "comma"), (";", "semicolon")])
def test_another_delimiter_is_one_defect(tmp_path: Path, delimiter: str, word: str) -> None:
    path = tmp_path / "bench.csv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(VAL_COLUMNS)
        for i in range(2):
            w.writerow([make_row(i)[c] for c in VAL_COLUMNS])
    result = gmai_eval("import", "--db", str(tmp_path / "eval.db"), "--name", "x", str(path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "Error: import of 'x': no valid rows; nothing imported",
        f"  {path}: this is not tab-separated: the header looks {word}-separated ('{delimiter}' between "
        "the column names); save the file with tabs between columns",
    ]
