"""Import defects are recorded in file and row order, whatever mix of row problems."""

from __future__ import annotations

import base64
from pathlib import Path

from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmarks as store

from tests._data_helpers import VAL_COLUMNS, image_bytes, make_row, write_tsv


def _corrupt_png() -> str:
    data = bytearray(image_bytes(1))
    data[60] ^= 0xFF  # inside the first IDAT chunk's data: CRC mismatch
    return base64.b64encode(bytes(data)).decode()


def test_defects_come_in_file_order_across_many_rows(tmp_path: Path, db: Database) -> None:
    rows = [make_row(i) for i in range(40)]
    rows[2]["image"] = _corrupt_png()          # Pillow's check fails...
    rows[3]["image"] = "not*base64!"           # ...and the next row's base64
    rows[7]["image"] = _corrupt_png()
    rows[8]["index"] = "7"                     # same index as the skipped row 7: not a duplicate
    rows[9]["index"] = "7"                     # duplicate of row 8, which was imported
    rows[9]["image"] = _corrupt_png()          # and a bad image: both defects, index first
    rows[20]["answer"] = "E"
    rows[30]["image"] = base64.b64encode(b"plain text").decode()
    tsv = write_tsv(tmp_path / "many.tsv", rows)
    report = import_tsv_files(db, "many", [tsv])
    got = [(d.row, d.column, d.message.split(":")[0]) for d in report.defects]
    # Data rows are 1-based: rows[i] is row i + 1.
    assert got == [
        (3, "image", "corrupt image"),
        (4, "image", "bad base64"),
        (8, "image", "corrupt image"),
        (10, "index", "duplicate index 7"),
        (10, "image", "corrupt image"),
        (21, "answer", "answer 'E' is not among the non-empty options (ABC)"),
        (31, "image", "not an image (10 bytes that Pillow cannot identify)"),
    ]
    imported = [q.index for q in store.load_questions(db, report.benchmark.id)]
    assert imported == [0, 1, 4, 5, 6, 7, *range(10, 20), *range(21, 30), *range(31, 40)]
    assert (report.imported_rows, report.skipped_rows) == (34, 6)


def test_malformed_and_short_rows_keep_their_place(tmp_path: Path, db: Database) -> None:
    def line(i: int, **overrides: str) -> bytes:
        return "\t".join(make_row(i, **overrides)[c] for c in VAL_COLUMNS).encode() + b"\n"

    short = b"\t".join(make_row(5)[c].encode() for c in VAL_COLUMNS[:-3]) + b"\n"
    huge = line(7, question="y" * (4 * 1024 * 1024 + 5000))
    unclosed = line(10).replace(b"This is a CT", b'"This is a CT', 1)  # a quote opened, never closed
    path = tmp_path / "mixed.tsv"
    path.write_bytes(
        b"\t".join(c.encode() for c in VAL_COLUMNS) + b"\n"
        + b"".join(line(i) for i in range(4)) + line(4, image=_corrupt_png()) + short + line(6) + huge + line(8) + line(9) + unclosed
    )
    report = import_tsv_files(db, "mixed", [path], max_field_chars=2000)
    assert [(d.row, d.column, d.message.split(":")[0]) for d in report.defects] == [
        (5, "image", "corrupt image"),
        (6, "", "wrong field count"),
        (8, "", "malformed row"),
        (11, "", "wrong field count"),
    ]
    assert "line longer than" in report.defects[2].message
    assert [q.index for q in store.load_questions(db, report.benchmark.id)] == [0, 1, 2, 3, 6, 8, 9]
