"""Import of GMAI-MMBench TSV files: layouts, defects, atomicity, idempotence."""

from __future__ import annotations

import base64
import hashlib
import io
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from gmai_eval.clients.cli.main import cli
from gmai_eval.server.data.synth import write_synthetic_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.errors import AlreadyExists, Defect, ImportDefects, InvalidArgument, NotFound
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmark_imports as imports
from gmai_eval.server.store import benchmarks as store
from gmai_eval.server.taxonomy import count_nodes
from PIL import Image

from tests._data_helpers import (
    TEST_COLUMNS,
    VAL_COLUMNS,
    image_b64,
    image_bytes,
    make_row,
    read_tsv,
    write_tsv,
)


def _count(db: Database, sql: str) -> int:
    conn = sqlite3.connect(db.path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def _one_defect(report_defects: tuple[Defect, ...] | list[Defect], file: str, row: int, column: str) -> Defect:
    found = [d for d in report_defects if (d.file, d.row, d.column) == (file, row, column)]
    assert len(found) == 1, report_defects
    text = str(found[0])
    assert file in text
    if row:
        assert f"row {row}" in text
    if column:
        assert repr(column) in text
    return found[0]


# -- round trip ------------------------------------------------------------------------------


def test_synth_round_trip_counts_and_values(tmp_path: Path, db: Database) -> None:
    tsv = tmp_path / "synth.tsv"
    write_synthetic_tsv(tsv, 120, seed=11, image_size=48)
    report = import_tsv_files(db, "synth", [tsv])
    assert not report.already_imported and report.imported_rows == 120 and report.defects == ()
    rows = read_tsv(tsv)
    expected = count_nodes(
        (r["clinical VQA task"], r["department"], r["perceptual granularity"], r["modality"], r["category"])
        for r in rows
    )
    assert store.taxonomy_nodes(db, report.benchmark.id) == expected
    b = store.get_benchmark(db, "synth")
    assert b.layout == "VAL" and b.question_count == 120 and b.flagged_count == 0
    assert b.digest == "sha256:" + hashlib.sha256(tsv.read_bytes()).hexdigest()
    questions = store.load_questions(db, b.id)
    assert [q.index for q in questions] == sorted(int(r["index"]) for r in rows)
    by_index = {int(r["index"]): r for r in rows}
    for q in questions[:30]:
        r = by_index[q.index]
        assert q.answer == r["answer"] and q.category == r["category"] and q.question == r["question"]
        assert q.options == tuple((c, r[c]) for c in "ABCDE" if r[c])
        assert (q.clinical_task, q.department, q.granularity, q.modality, q.original_task, q.image_path) == (
            r["clinical VQA task"], r["department"], r["perceptual granularity"], r["modality"],
            r["original task"], r["image_path"],
        )
        img = store.load_image(db, q.image_sha256)
        assert img.data == base64.b64decode(r["image"])
        assert (img.media_type, img.width, img.height) == ("image/png", 48, 48)
    assert [q.index for q in store.load_questions(db, b.id, [5, 1, 3, 999])] == [1, 3, 5]


def test_columns_by_name_extra_columns_and_image_dedupe(tmp_path: Path, db: Database) -> None:
    cols = ["image", "modality", *[c for c in VAL_COLUMNS if c not in ("image", "modality")], "hint"]
    img = image_b64(7)
    rows = [make_row(i, image=img, hint=f"h{i}") for i in range(3)]
    tsv = write_tsv(tmp_path / "shuffled.tsv", rows, cols)
    report = import_tsv_files(db, "s", [tsv])
    assert report.imported_rows == 3
    qs = store.load_questions(db, report.benchmark.id)
    assert [q.extra for q in qs] == [{"hint": "h0"}, {"hint": "h1"}, {"hint": "h2"}]
    assert qs[0].modality == "CT" and qs[0].answer == "A"
    assert len({q.image_sha256 for q in qs}) == 1
    assert _count(db, "SELECT COUNT(*) FROM images") == 1


@pytest.mark.parametrize(
    ("mode", "fmt", "media_type"),
    [("RGBA", "PNG", "image/png"), ("L", "PNG", "image/png"), ("RGB", "JPEG", "image/jpeg"), ("L", "JPEG", "image/jpeg")],
)
def test_image_kinds_accepted_and_stored_verbatim(
    tmp_path: Path, db: Database, mode: str, fmt: str, media_type: str
) -> None:
    data = image_bytes(3, mode=mode, fmt=fmt, size=20)
    tsv = write_tsv(tmp_path / "img.tsv", [make_row(0, image=base64.b64encode(data).decode())])
    report = import_tsv_files(db, "img", [tsv])
    assert report.defects == ()
    q = store.load_questions(db, report.benchmark.id)[0]
    img = store.load_image(db, q.image_sha256)
    assert img.data == data and img.media_type == media_type and (img.width, img.height) == (20, 20)
    assert img.sha256 == hashlib.sha256(data).hexdigest()
    assert _count(db, f"SELECT COUNT(*) FROM images WHERE mode = '{mode}'") == 1


def test_empty_department_is_na_and_absolute_image_path_is_metadata(tmp_path: Path, db: Database) -> None:
    tsv = write_tsv(tmp_path / "na.tsv", [make_row(0, department="", image_path="/mnt/petrelfs/abs/0.png")])
    report = import_tsv_files(db, "na", [tsv])
    q = store.load_questions(db, report.benchmark.id)[0]
    assert q.department == "" and q.image_path == "/mnt/petrelfs/abs/0.png"
    assert dict(store.taxonomy_nodes(db, report.benchmark.id))[("department", "")] == 1


# -- TEST layout -----------------------------------------------------------------------------


def test_test_layout_multi_part_with_derived_answers(tmp_path: Path, db: Database) -> None:
    part1 = write_tsv(
        tmp_path / "GMAI_mm_bench_TEST_part_1.tsv",
        [
            make_row(0, category="spleen"),                                    # exact: B
            make_row(1, A="liver.", category="liver"),                         # after stripping '.': A
            make_row(2, category="pancreas"),                                  # no option: flagged
        ],
        TEST_COLUMNS,
    )
    part2 = write_tsv(
        tmp_path / "GMAI_mm_bench_TEST_part_2.tsv",
        [
            make_row(3, A="kidney", B="kidney", C="liver", category="kidney"),  # two options: flagged
            make_row(4, category=" kidney "),                                   # C after stripping spaces
            make_row(2, category="liver"),                                      # duplicate index across parts
        ],
        TEST_COLUMNS,
    )
    names = [part1.name, part2.name]
    report = import_tsv_files(db, "test", [part1, part2], display_names=names)
    b = report.benchmark
    assert b.layout == "TEST" and b.question_count == 5 and b.flagged_count == 2
    assert b.digest == "sha256:" + hashlib.sha256(part1.read_bytes() + part2.read_bytes()).hexdigest()
    assert [f.name for f in b.source_files] == names and [f.rows for f in b.source_files] == [3, 3]
    answers = {q.index: q.answer for q in store.load_questions(db, b.id)}
    assert answers == {0: "B", 1: "A", 2: None, 3: None, 4: "C"}
    assert report.imported_rows == 5 and report.skipped_rows == 1
    _one_defect(report.defects, names[0], 3, "category")
    _one_defect(report.defects, names[1], 1, "category")
    dup = _one_defect(report.defects, names[1], 3, "index")
    assert "duplicate index 2" in dup.message
    stored = store.load_import_defects(db, b.id)
    assert [(d.file, d.row, skipped) for d, skipped in stored] == [
        (names[0], 3, False), (names[1], 1, False), (names[1], 3, True),
    ]


# -- defects ---------------------------------------------------------------------------------


def _import_with_bad_row(tmp_path: Path, db: Database, bad: dict[str, str], **kw: int) -> tuple[Path, Defect]:
    tsv = write_tsv(tmp_path / "bad.tsv", [make_row(0), bad, make_row(2)])
    report = import_tsv_files(db, "bad", [tsv], **kw)
    assert report.imported_rows == 2 and report.skipped_rows == 1
    assert [q.index for q in store.load_questions(db, report.benchmark.id)] == [0, 2]
    assert len(report.defects) == 1
    return tsv, report.defects[0]


@pytest.mark.parametrize(
    ("overrides", "column", "message"),
    [
        ({"image": "not*base64!"}, "image", "bad base64"),
        ({"image": base64.b64encode(b"hello, this is text").decode()}, "image", "not an image"),
        ({"image": ""}, "image", "empty image field"),
        ({"answer": "D"}, "answer", "answer 'D' is not among the non-empty options (ABC)"),
        ({"answer": ""}, "answer", "is not among the non-empty options"),
        ({"index": "12a"}, "index", "index '12a' is not an integer"),
        ({"index": "1_0"}, "index", "index '1_0' is not an integer"),
        ({"index": "99999999999999999999"}, "index", "is not an integer"),
        ({"index": "0"}, "index", "duplicate index 0"),
        ({"question": "   "}, "question", "empty question"),
        ({"B": "", "C": ""}, "A..E", "1 non-empty option(s)"),
    ],
)
def test_row_defects(tmp_path: Path, db: Database, overrides: dict[str, str], column: str, message: str) -> None:
    tsv, d = _import_with_bad_row(tmp_path, db, {**make_row(1), **overrides})
    assert (d.file, d.row, d.column) == (str(tsv), 2, column)
    assert message in d.message
    assert str(d).startswith(f"{tsv}, row 2, column {column!r}: ")


def test_corrupt_png_is_not_an_image(tmp_path: Path, db: Database) -> None:
    data = bytearray(image_bytes(1))
    data[60] ^= 0xFF  # inside the first IDAT chunk's data: CRC mismatch
    _, d = _import_with_bad_row(tmp_path, db, make_row(1, image=base64.b64encode(bytes(data)).decode()))
    assert d.column == "image" and "corrupt image" in d.message


def test_oversized_field(tmp_path: Path, db: Database) -> None:
    _, d = _import_with_bad_row(tmp_path, db, make_row(1, question="x" * 9000), max_field_chars=8000)
    assert (d.row, d.column) == (2, "question")
    assert "exceeds the maximum of 8000" in d.message


@pytest.mark.parametrize("column", ["question", "B"])
def test_a_text_field_over_64_kib_is_a_defect(tmp_path: Path, db: Database, column: str) -> None:
    # The limit is in UTF-8 bytes: 40,000 characters (under 65,536) are 80,000 bytes.
    text = "é" * 40_000
    _, d = _import_with_bad_row(tmp_path, db, make_row(1, **{column: text}))
    assert (d.row, d.column) == (2, column)
    assert d.message == "text of 80000 bytes exceeds the maximum of 65536 for a text field"


def test_a_text_field_of_exactly_64_kib_is_accepted(tmp_path: Path, db: Database) -> None:
    tsv = tmp_path / "ok.tsv"
    write_tsv(tsv, [make_row(1, question="q" * 65_536)])
    report = import_tsv_files(db, "ok", [tsv])
    assert report.imported_rows == 1 and not report.defects


def _raw_file(tmp_path: Path, lines: list[bytes]) -> Path:
    path = tmp_path / "raw.tsv"
    path.write_bytes(b"\t".join(c.encode() for c in VAL_COLUMNS) + b"\n" + b"".join(lines))
    return path


def _line(row: dict[str, str]) -> bytes:
    return "\t".join(row[c] for c in VAL_COLUMNS).encode() + b"\n"


def test_wrong_field_count(tmp_path: Path, db: Database) -> None:
    short = "\t".join(make_row(1)[c] for c in VAL_COLUMNS[:-2]).encode() + b"\n"
    path = _raw_file(tmp_path, [_line(make_row(0)), short, _line(make_row(2))])
    report = import_tsv_files(db, "wfc", [path])
    d = _one_defect(report.defects, str(path), 2, "")
    assert "wrong field count: expected 16, found 14" in d.message
    assert report.imported_rows == 2


def test_bad_encoding(tmp_path: Path, db: Database) -> None:
    bad = _line(make_row(1)).replace(b"This is a CT", b"This is a \xff\xfe CT")
    path = _raw_file(tmp_path, [_line(make_row(0)), bad, _line(make_row(2))])
    report = import_tsv_files(db, "enc", [path])
    d = _one_defect(report.defects, str(path), 2, "question")
    assert "not valid UTF-8" in d.message
    assert report.imported_rows == 2


def test_oversized_line_is_skipped_and_import_continues(tmp_path: Path, db: Database) -> None:
    huge = _line(make_row(1, question="y" * (4 * 1024 * 1024 + 5000)))
    path = _raw_file(tmp_path, [_line(make_row(0)), huge, _line(make_row(2))])
    report = import_tsv_files(db, "huge", [path], max_field_chars=2000)
    d = _one_defect(report.defects, str(path), 2, "")
    assert "line longer than" in d.message
    assert [q.index for q in store.load_questions(db, report.benchmark.id)] == [0, 2]


def test_missing_column_is_a_file_level_defect(tmp_path: Path, db: Database) -> None:
    cols = [c for c in VAL_COLUMNS if c != "modality"]
    bad = write_tsv(tmp_path / "nomod.tsv", [make_row(0), make_row(1)], cols)
    good = write_tsv(tmp_path / "good.tsv", [make_row(5)])
    report = import_tsv_files(db, "mc", [bad, good])
    d = _one_defect(report.defects, str(bad), 0, "modality")
    assert "missing column 'modality'" in d.message
    assert str(d).startswith(f"{bad}, column 'modality'")
    assert report.imported_rows == 1 and report.skipped_rows == 2
    with pytest.raises(ImportDefects, match="missing column 'modality'") as exc:
        import_tsv_files(db, "mc2", [bad])
    assert exc.value.defects[0].column == "modality"


def test_no_rows(tmp_path: Path, db: Database) -> None:
    path = write_tsv(tmp_path / "empty.tsv", [])
    with pytest.raises(ImportDefects, match="no rows") as exc:
        import_tsv_files(db, "e", [path])
    assert (exc.value.defects[0].file, exc.value.defects[0].row) == (str(path), 0)
    (tmp_path / "zero.tsv").write_bytes(b"")
    with pytest.raises(ImportDefects, match="empty file"):
        import_tsv_files(db, "z", [tmp_path / "zero.tsv"])
    assert store.list_benchmarks(db) == []


# -- atomicity and idempotence ---------------------------------------------------------------


def test_strict_imports_nothing(tmp_path: Path, db: Database) -> None:
    rows = [make_row(i) for i in range(600)] + [make_row(600, question="")]
    tsv = write_tsv(tmp_path / "strict.tsv", rows)
    with pytest.raises(ImportDefects, match="strict import") as exc:
        import_tsv_files(db, "strict", [tsv], strict=True)
    assert "row 601, column 'question': empty question" in str(exc.value)
    with pytest.raises(NotFound):
        store.get_benchmark(db, "strict")
    assert store.list_benchmarks(db) == []
    for table in ("benchmarks", "questions", "images", "import_defects"):
        assert _count(db, f"SELECT COUNT(*) FROM {table}") == 0


def test_reimport_is_a_noop_and_name_conflict(tmp_path: Path, db: Database) -> None:
    tsv = write_tsv(tmp_path / "a.tsv", [make_row(i) for i in range(3)])
    first = import_tsv_files(db, "a", [tsv])
    again = import_tsv_files(db, "a", [tsv])
    assert again.already_imported and again.imported_rows == 0
    assert again.benchmark == first.benchmark
    assert _count(db, "SELECT COUNT(*) FROM questions") == 3
    other = write_tsv(tmp_path / "b.tsv", [make_row(i) for i in range(4)])
    with pytest.raises(AlreadyExists, match="already exists with different content"):
        import_tsv_files(db, "a", [other])
    assert store.get_benchmark(db, "a").question_count == 3


def test_stale_importing_rows_are_cleaned(tmp_path: Path, db: Database) -> None:
    stale = imports.begin_import(db, "crashed", "VAL")  # what a killed import leaves behind
    with pytest.raises(NotFound):
        store.get_benchmark(db, "crashed")
    tsv = write_tsv(tmp_path / "a.tsv", [make_row(0)])
    import_tsv_files(db, "crashed", [tsv])
    b = store.get_benchmark(db, "crashed")
    assert b.id != stale and b.question_count == 1
    assert _count(db, "SELECT COUNT(*) FROM benchmarks WHERE state = 'importing'") == 0


# -- CLI -------------------------------------------------------------------------------------


def test_cli_import_benchmarks_and_defects(tmp_path: Path) -> None:
    runner = CliRunner()
    dbf = str(tmp_path / "cli.db")
    tsv = write_tsv(tmp_path / "a.tsv", [make_row(0), make_row(1, answer="Q")])
    res = runner.invoke(cli, ["import", "--db", dbf, "--name", "val", str(tsv)])
    assert res.exit_code == 0, res.output
    assert "imported val: 1 questions" in res.output
    assert f"defect: {tsv}, row 2, column 'answer'" in res.output
    res = runner.invoke(cli, ["import", "--db", dbf, "--name", "val", str(tsv)])
    assert res.exit_code == 0 and "already imported: val" in res.output
    res = runner.invoke(cli, ["import", "--db", dbf, "--name", "strict", "--strict", str(tsv)])
    assert res.exit_code == 1
    assert f"{tsv}, row 2, column 'answer'" in res.output
    res = runner.invoke(cli, ["benchmarks", "--db", dbf])
    assert res.exit_code == 0
    assert [line.split()[:3] for line in res.output.splitlines()[1:]] == [["val", "VAL", "1"]]


def test_cli_synth_then_import(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "s.tsv"
    res = runner.invoke(cli, ["synth", "--out", str(out), "--questions", "20", "--seed", "2", "--layout", "test", "--image-size", "32"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["import", "--db", str(tmp_path / "x.db"), "--name", "t", str(out)])
    assert res.exit_code == 0, res.output
    assert "imported t: 20 questions (TEST layout, 0 without answer)" in res.output


def test_quoted_fields_multiline_and_crlf(tmp_path: Path, db: Database) -> None:
    rows = [
        make_row(0, question='Is the "marked" area liver?'),
        make_row(1, question="Line one\nline two", A='say "yes"'),
        make_row(2, answer="Q"),  # record 3, though physical line 4
    ]
    tsv = write_tsv(tmp_path / "q.tsv", rows)
    crlf = tmp_path / "crlf.tsv"
    crlf.write_bytes(tsv.read_bytes().replace(b"\n", b"\r\n"))
    for name, path in (("lf", tsv), ("crlf", crlf)):
        report = import_tsv_files(db, name, [path])
        qs = store.load_questions(db, report.benchmark.id)
        newline = "\n" if name == "lf" else "\r\n"
        assert [q.question for q in qs] == ['Is the "marked" area liver?', f"Line one{newline}line two"]
        assert qs[1].options[0] == ("A", 'say "yes"')
        assert qs[0].department == "Gastroenterology and Hepatology"
        _one_defect(report.defects, str(path), 3, "answer")


def test_duplicate_header_column_and_unsupported_format(tmp_path: Path, db: Database) -> None:
    cols = [*VAL_COLUMNS, "Modality"]
    bad = write_tsv(tmp_path / "dup.tsv", [make_row(0)], cols)
    with pytest.raises(ImportDefects) as exc:
        import_tsv_files(db, "dup", [bad])
    d = _one_defect(exc.value.defects, str(bad), 0, "modality")
    assert "duplicate column 'modality'" in d.message
    gif = io.BytesIO()
    Image.new("RGB", (8, 8)).save(gif, format="GIF")
    _, d = _import_with_bad_row(tmp_path, db, make_row(1, image=base64.b64encode(gif.getvalue()).decode()))
    assert d.column == "image" and "unsupported image format 'GIF'" in d.message


@pytest.mark.parametrize("name", ["", "../../x", "a\x1bb", "x" * 65, "with space"])
def test_benchmark_names_follow_the_documented_pattern(db: Database, tmp_path: Path, name: str) -> None:
    tsv = tmp_path / "v.tsv"
    write_synthetic_tsv(tsv, 3, seed=1)
    with pytest.raises(InvalidArgument, match="benchmark name"):
        import_tsv_files(db, name, [tsv])
    assert store.list_benchmarks(db) == []
