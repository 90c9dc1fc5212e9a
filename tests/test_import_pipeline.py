"""The import's image checks on worker threads: file order, failures, nothing half-written."""

from __future__ import annotations

import base64
import io
import sqlite3
import threading
from pathlib import Path

import pytest
from gmai_eval.server.data.images import ImageChecks, ImageDefect, ImageRow, inspect_image
from gmai_eval.server.data.synth import write_synthetic_tsv
from gmai_eval.server.data.tsv_import import import_tsv_files
from gmai_eval.server.data.tsv_records import LineReader, read_records
from gmai_eval.server.errors import NotFound
from gmai_eval.server.store import Database
from gmai_eval.server.store import benchmarks as store

from tests._data_helpers import VAL_COLUMNS, image_bytes, make_row, write_tsv


def _count(db: Database, sql: str) -> int:
    conn = sqlite3.connect(db.path)
    try:
        return int(conn.execute(sql).fetchone()[0])
    finally:
        conn.close()


def _corrupt_png() -> str:
    data = bytearray(image_bytes(1))
    data[60] ^= 0xFF  # inside the first IDAT chunk's data: CRC mismatch
    return base64.b64encode(bytes(data)).decode()


def test_defects_come_in_file_order_across_many_rows_in_flight(tmp_path: Path, db: Database) -> None:
    rows = [make_row(i) for i in range(40)]
    rows[2]["image"] = _corrupt_png()          # the check fails on a worker...
    rows[3]["image"] = "not*base64!"           # ...and the next row's decode on the reading thread
    rows[7]["image"] = _corrupt_png()          # the check fails on a worker
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


def test_malformed_and_short_rows_keep_their_place_among_checks_in_flight(tmp_path: Path, db: Database) -> None:
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


def test_an_unexpected_error_in_a_worker_aborts_and_leaves_nothing(tmp_path: Path, db: Database) -> None:
    tsv = tmp_path / "synth.tsv"
    write_synthetic_tsv(tsv, 700, seed=3, image_size=32)  # more than one 512-row write batch
    calls = 0
    lock = threading.Lock()

    def failing(data: bytes) -> ImageRow:
        nonlocal calls
        with lock:
            calls += 1
            n = calls
        if n == 600:
            raise RuntimeError("disk on fire at image 600")
        return inspect_image(data)

    with pytest.raises(RuntimeError, match="disk on fire at image 600"):
        import_tsv_files(db, "synth", [tsv], check_image=failing)
    with pytest.raises(NotFound):
        store.get_benchmark(db, "synth")
    assert _count(db, "SELECT COUNT(*) FROM benchmarks") == 0
    assert _count(db, "SELECT COUNT(*) FROM questions") == 0
    assert _count(db, "SELECT COUNT(*) FROM images") == 0
    report = import_tsv_files(db, "synth", [tsv])
    assert report.imported_rows == 700 and report.defects == ()
    assert _count(db, "SELECT COUNT(*) FROM images") == len({q.image_sha256 for q in store.load_questions(db, report.benchmark.id)})


def test_checks_finish_in_submission_order_when_workers_finish_out_of_order() -> None:
    second_done = threading.Event()

    def check(data: bytes) -> ImageRow:
        if data == b"first":
            assert second_done.wait(10), "the second check never ran alongside the first"
        elif data == b"second":
            second_done.set()
        if data == b"bad":
            raise ImageDefect("not an image")
        return ImageRow(sha256=data.decode(), media_type="image/png", width=1, height=1, mode="L", data=data)

    seen: list[str] = []
    checks = ImageChecks(workers=2, ahead=8, check=check)
    try:
        checks.submit(b"first", lambda r: seen.append(r.sha256 if isinstance(r, ImageRow) else str(r)))
        checks.after(lambda: seen.append("between"))
        checks.submit(b"second", lambda r: seen.append(r.sha256 if isinstance(r, ImageRow) else str(r)))
        checks.submit(b"bad", lambda r: seen.append(r.sha256 if isinstance(r, ImageRow) else f"defect: {r}"))
        checks.drain()
    finally:
        checks.close()
    assert seen == ["first", "between", "second", "defect: not an image"]


def test_an_error_in_a_check_is_raised_and_later_continuations_never_run() -> None:
    def check(data: bytes) -> ImageRow:
        raise MemoryError("no room for " + data.decode())

    ran: list[str] = []
    checks = ImageChecks(workers=1, ahead=4, check=check)
    try:
        checks.submit(b"x", lambda r: ran.append("x"))
        checks.after(lambda: ran.append("after"))
        with pytest.raises(MemoryError, match="no room for x"):
            checks.drain()
    finally:
        checks.close()
    assert ran == []


def test_the_image_field_view_is_released_when_the_next_record_is_read() -> None:
    data = b"a\tQUJD\nb\tREVG\n"
    lines = LineReader(io.BytesIO(data), [], 100, size=4)
    lines.view_field = 1
    records = read_records(lines)
    first = next(records)
    assert isinstance(first[1], memoryview) and bytes(first[1]) == b"QUJD" and first[0] == b"a"
    second = next(records)
    with pytest.raises(ValueError, match="released"):
        bytes(first[1])  # type: ignore[arg-type]
    assert bytes(second[1]) == b"REVG"  # type: ignore[arg-type]
