"""Import of multi-answer benchmarks (--multi-choice), and the strict single-choice default,
with the real importer, a real SQLite file and the real CLI as a subprocess."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from gmai_eval.server.data.synth_multi import CATEGORY_SEPARATOR, SOURCES, write_multi_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import AlreadyExists
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmarks as store

from tests._data_helpers import make_row, read_tsv, write_tsv
from tests._service_helpers import run_cli


def _rows(answers: list[str]) -> list[dict[str, str]]:
    return [make_row(i, answer=a) for i, a in enumerate(answers)]


@pytest.mark.parametrize(
    "spelled,stored",
    [("A", "A"), ("A,C", "A,C"), ("A, C", "A,C"), (" C,A ", "A,C"), ("B , A , C", "A,B,C"), ("C,B", "B,C")],
)
def test_accepted_spellings_are_stored_sorted(tmp_path: Path, db: Database, spelled: str, stored: str) -> None:
    tsv = write_tsv(tmp_path / "m.tsv", [make_row(0, answer=spelled)])
    report = import_tsv_files(db, "m", [tsv], multi_choice=True)
    assert report.defects == ()
    assert report.benchmark.multi_choice is True
    assert [q.answer for q in store.load_questions(db, report.benchmark.id)] == [stored]


@pytest.mark.parametrize(
    "spelled,why",
    [
        ("AC", "is not upper-case option letters separated by commas (like A,C)"),
        ("A;C", "is not upper-case option letters separated by commas (like A,C)"),
        ("a,c", "is not upper-case option letters separated by commas (like A,C)"),
        ("A,", "is not upper-case option letters separated by commas (like A,C)"),
        ("", "is not upper-case option letters separated by commas (like A,C)"),
        ("A,A", "names an option twice"),
        ("A,D", "is not among the non-empty options (ABC)"),
    ],
)
def test_bad_spellings_are_defects(tmp_path: Path, db: Database, spelled: str, why: str) -> None:
    tsv = write_tsv(tmp_path / "m.tsv", _rows(["A,B", spelled]))
    report = import_tsv_files(db, "m", [tsv], multi_choice=True)
    assert report.imported_rows == 1 and report.skipped_rows == 1
    (d,) = report.defects
    assert (d.row, d.column) == (2, "answer")
    assert d.message == f"answer {spelled!r} {why}"


def test_without_the_flag_two_letters_stay_a_defect(tmp_path: Path, db: Database) -> None:
    tsv = write_tsv(tmp_path / "v.tsv", _rows(["A", "A,C", "B"]))
    report = import_tsv_files(db, "v", [tsv])
    assert report.benchmark.multi_choice is False
    assert report.imported_rows == 2
    (d,) = report.defects
    assert (d.row, d.column, d.message) == (2, "answer", "answer 'A,C' is not among the non-empty options (ABC)")


def test_same_files_with_the_other_flag_are_refused(tmp_path: Path, db: Database) -> None:
    tsv = write_tsv(tmp_path / "m.tsv", _rows(["A", "B"]))
    import_tsv_files(db, "m", [tsv])
    with pytest.raises(AlreadyExists, match="imported as single-choice"):
        import_tsv_files(db, "m", [tsv], multi_choice=True)
    assert import_tsv_files(db, "m", [tsv]).already_imported


def test_cli_import_strict_by_default_and_multi_with_the_flag(tmp_path: Path) -> None:
    tsv = write_tsv(tmp_path / "m.tsv", _rows(["A,C", "B"]))
    dbf = str(tmp_path / "cli.db")
    plain = run_cli("import", "--db", dbf, "--name", "single", str(tsv))
    assert plain.returncode == 0, plain.stderr
    assert f"defect: {tsv}, row 1, column 'answer': answer 'A,C' is not among the non-empty options (ABC)" in plain.stderr
    assert "imported single: 1 questions" in plain.stdout
    strict = run_cli("import", "--db", dbf, "--name", "strict", "--strict", str(tsv))
    assert strict.returncode == 1
    multi = run_cli("import", "--db", dbf, "--name", "multi", "--multi-choice", str(tsv))
    assert multi.returncode == 0, multi.stderr
    assert "imported multi: 2 multi-answer questions (VAL layout" in multi.stdout
    assert "defect" not in multi.stderr


def test_synth_multi_is_deterministic_and_imports_cleanly(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.tsv", tmp_path / "b.tsv", tmp_path / "c.tsv"
    write_multi_tsv(a, 60, seed=3, image_size=48)
    write_multi_tsv(b, 60, seed=3, image_size=48)
    write_multi_tsv(c, 60, seed=4, image_size=48)
    digest = [hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b, c)]
    assert digest[0] == digest[1] != digest[2]
    rows = read_tsv(a)
    sizes = set()
    for r in rows:
        keys = r["answer"].split(",")
        options = [lab for lab in "ABCDE" if r[lab]]
        assert 3 <= len(options) <= 5 and 1 <= len(keys) < len(options)
        assert keys == sorted(keys) and set(keys) <= set(options)
        assert sorted(r["category"].split(CATEGORY_SEPARATOR)) == sorted(r[k] for k in keys)
        assert (r["clinical VQA task"], r["modality"]) in {(t, m) for _, t, m in SOURCES}
        sizes.add(len(keys))
    assert sizes == {1, 2, 3}
    with Database(tmp_path / "s.db") as db:
        report = import_tsv_files(db, "syn-multi", [a], multi_choice=True)
        assert (report.imported_rows, report.defects) == (60, ())
        with pytest.raises(AlreadyExists):
            import_tsv_files(db, "syn-multi", [a])


def test_cli_synth_multi(tmp_path: Path) -> None:
    out = tmp_path / "m.tsv"
    res = run_cli("synth", "--out", str(out), "--questions", "5", "--multi-choice", "--image-size", "32")
    assert res.returncode == 0, res.stderr
    assert "wrote 5 VAL multi-answer questions" in res.stdout
    assert len(read_tsv(out)) == 5
    bad = run_cli("synth", "--out", str(out), "--multi-choice", "--layout", "test")
    assert bad.returncode == 2 and "VAL layout only" in bad.stderr
