"""Import GMAI-MMBench TSV files (VLMEvalKit layout) into the store.

The files are read in one streaming pass (:mod:`.tsv_records`): bytes are hashed as they
are read and split into records with a bounded line length; each row is decoded as UTF-8
(invalid bytes become defects, not crashes), checked and written in batches, with one
batch in flight on the writer thread while the next is parsed. The images of the next few
rows are decoded and checked on worker threads meanwhile; rows are still taken in file
order, so defects, duplicates and the first-seen image are those of a plain pass. Memory stays bounded by
the largest row plus a batch, whatever the file size. While the import writes, a
:class:`~gmai_eval.server.store.write_behind.WriteBehind` thread pushes the WAL's pages
to disk (files of a WAL checkpoint or more), so the checkpoints' syncs do not stall the
writer.

Atomicity: the benchmark is created in state ``importing`` (invisible to readers),
filled in batched transactions and flipped to ``ready`` at the end; on any failure it is
deleted (cascading). ``importing`` rows left by a crashed process are deleted by the next
import.

Columns are found by header name (:mod:`.tsv_header`, which also says what is wrong with a
header: another delimiter, a misspelt column). Other columns are kept in ``extra`` and
listed as defects that skip no row. Without ``answer`` (TEST layout) the answer is the
only option whose text equals ``category`` (exactly, else after stripping '.' and
whitespace); rows where that fails are imported flagged (answer NULL). With
``multi_choice`` an ``answer`` may name several letters (``A,C``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gmai_eval.server.data.images import decode_image_field
from gmai_eval.server.data.tsv_header import layout_reason, read_header
from gmai_eval.server.data.tsv_records import (
    READ_BUFFER,
    Field,
    LineReader,
    Malformed,
    read_records,
)
from gmai_eval.server.data.tsv_rows import ImportState, import_row
from gmai_eval.server.errors import (
    AlreadyExists,
    Defect,
    ImportDefects,
    InvalidArgument,
    StoreError,
    StoreFull,
)
from gmai_eval.server.names import check_name
from gmai_eval.server.records import Benchmark, SourceFile
from gmai_eval.server.store import benchmark_imports as imports
from gmai_eval.server.store import benchmarks as store
from gmai_eval.server.store import write_behind
from gmai_eval.server.store.benchmark_imports import ImageRow
from gmai_eval.server.store.database import Database

MAX_FIELD_CHARS = 64 * 1024 * 1024
"""Largest accepted field, in characters (64 MiB: a ~48 MB image in base64)."""

DECODE_THREADS = 2
"""Threads decoding and checking images (base64, Pillow's check, sha256) while rows are read."""

DECODE_AHEAD = 4
"""Rows whose images are being decoded ahead of the row being imported (each holds its
base64 field and decoded image: about 3.5 MB at the official row size)."""

_LINE_SLACK = 4 * 1024 * 1024
"""A physical line may exceed the field limit by this much (the row's other fields)."""

log = logging.getLogger(__name__)

_active_lock = threading.Lock()
_active_imports: set[int] = set()
"""Benchmark ids this process is importing right now (not stale)."""


@dataclass(frozen=True)
class ImportReport:
    """What an import did."""

    benchmark: Benchmark
    """The benchmark (new, or the existing one when already imported)."""
    already_imported: bool
    """True when the same files were already imported under this name (nothing done)."""
    imported_rows: int
    """Questions written (flagged ones included)."""
    skipped_rows: int
    """Data rows not imported because of defects."""
    defects: tuple[Defect, ...]
    """Every defect found, in file and row order."""
    layout_reason: str = ""
    """Why the benchmark is VAL or TEST, in one sentence (see :func:`.tsv_header.layout_reason`)."""


def _decode_header(fields: list[Field]) -> list[str]:
    return [f.decode("utf-8", "replace") if isinstance(f, bytes) else f for f in fields]


def _import_file(st: ImportState, path: Path, name: str, overall: Any) -> tuple[SourceFile, bool]:
    """Stream one file into the import; returns its record and whether it has ``answer``."""
    file_hash = hashlib.sha256()
    hashers = [file_hash] if overall is None else [file_hash, overall]
    rows = 0
    has_answer = False
    with open(path, "rb", buffering=0) as f, contextlib.closing(LineReader(f, hashers, st.max_field + _LINE_SLACK)) as raw:
        records = read_records(raw)
        first = next(records, None)
        if first is None:
            st.defect(Defect(name, 0, "", "empty file: no header and no rows"), True)
        elif isinstance(first, Malformed):
            st.defect(Defect(name, 0, "", f"unreadable header: {first.message}"), True)
        else:
            header = _decode_header(first)
            head = read_header(header, name)
            cols, extra, head_defects = head.cols, head.extra, head.fatal
            has_answer = "answer" in cols
            for d in head_defects:
                st.defect(d, True)
            for d in head.notes:
                st.defect(d, False)
            image_pos = cols.get("image", -1)
            ahead: deque[tuple[int, list[Field] | Malformed, Future[ImageRow] | None]] = deque()
            with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="gmai-image") as pool:
                try:
                    for rec in records:
                        rows += 1
                        decoding = None
                        if not isinstance(rec, Malformed) and not head_defects and 0 <= image_pos < len(rec):
                            decoding = pool.submit(decode_image_field, rec[image_pos])
                        ahead.append((rows, rec, decoding))
                        if len(ahead) > DECODE_AHEAD:
                            _take(st, name, ahead.popleft(), head_defects, cols, extra, len(header))
                    while ahead:
                        _take(st, name, ahead.popleft(), head_defects, cols, extra, len(header))
                finally:
                    for _, _, decoding in ahead:
                        if decoding is not None:
                            decoding.cancel()
            if rows == 0:
                st.defect(Defect(name, 0, "", "no rows: the file has a header but no data rows"), True)
        raw.drain()
        size = raw.bytes_read
    return SourceFile(name=name, sha256=f"sha256:{file_hash.hexdigest()}", rows=rows, size_bytes=size), has_answer


def _take(
    st: ImportState,
    name: str,
    row: tuple[int, list[Field] | Malformed, Future[ImageRow] | None],
    head_defects: Sequence[Defect],
    cols: dict[str, int],
    extra: dict[str, int],
    width: int,
) -> None:
    """Import one row read ahead, in file order (so defects and duplicates stay in order)."""
    rowno, rec, decoding = row
    if isinstance(rec, Malformed):
        st.defect(Defect(name, rowno, "", f"malformed row: {rec.message}"), True)
        st.skipped += 1
    elif head_defects:
        st.skipped += 1
    else:
        import_row(st, name, rowno, rec, cols, extra, width, decoding)


def files_digest(paths: Sequence[Path]) -> str:
    """``sha256:<hex>`` over the bytes of ``paths``, in order."""
    h = hashlib.sha256()
    buf = bytearray(READ_BUFFER)
    view = memoryview(buf)
    for p in paths:
        with open(p, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(view[:n])
    return f"sha256:{h.hexdigest()}"


def _disk_full_message(exc: StoreFull, db_path: str, paths: Sequence[Path]) -> str:
    """The store's message plus the size of the files and the space left beside the database."""
    need = sum(p.stat().st_size for p in paths)
    try:
        free = f", {shutil.disk_usage(Path(db_path).resolve().parent).free / 1e6:.1f} MB free there now"
    except OSError:
        free = ""
    return (
        f"{exc}; nothing was imported. The benchmark needs about {need / 1e6:.1f} MB "
        f"(the size of its files){free}"
    )


def import_tsv_files(
    db: Database,
    name: str,
    paths: Sequence[Path],
    *,
    strict: bool = False,
    display_names: Sequence[str] | None = None,
    max_field_chars: int = MAX_FIELD_CHARS,
    multi_choice: bool = False,
) -> ImportReport:
    """Import GMAI-MMBench TSV files as one benchmark.

    Args:
        db: the database.
        name: benchmark name (unique).
        paths: the TSV files, in order (several TEST parts make one benchmark).
        strict: import nothing if any row has a defect.
        display_names: names for the files in defects and records (default: the paths as given).
        max_field_chars: largest accepted field (documented default :data:`MAX_FIELD_CHARS`).
        multi_choice: the rows are multi-answer questions: ``answer`` holds one or more
            letters (``A,C``, see :func:`.tsv_rows.parse_multi_answer`) and the benchmark
            records it. Without it a key of several letters is a defect.

    Returns:
        The report; ``already_imported`` when the same bytes were imported under ``name``.

    Raises:
        InvalidArgument: no files, a file that cannot be read, or a bad name.
        AlreadyExists: ``name`` holds a benchmark with different content, or is being
            imported, or was imported with the other ``multi_choice``.
        ImportDefects: strict mode with defects, or no valid row at all (nothing imported).
    """
    paths = [Path(p) for p in paths]
    check_name(name, "benchmark")
    if not paths:
        raise InvalidArgument("no files to import")
    names = list(display_names) if display_names is not None else [str(p) for p in paths]
    if len(names) != len(paths):
        raise InvalidArgument("display_names must name every file")
    for p, n in zip(paths, names, strict=True):
        if not p.is_file():
            raise InvalidArgument(f"{n}: not a readable file")

    with _active_lock:
        imports.delete_stale_imports(db, keep=sorted(_active_imports))
        existing = imports.find_any_state(db, name)
        if existing is not None and existing[2] != "ready":
            raise AlreadyExists(f"benchmark {name!r} is being imported right now")
        if existing is None:
            bid = imports.begin_import(db, name, "VAL", multi_choice)
            _active_imports.add(bid)
    if existing is not None:
        digest = files_digest(paths)
        if digest != existing[1]:
            raise AlreadyExists(
                f"benchmark {name!r} already exists with different content ({existing[1]}; these files: {digest})"
            )
        known = store.get_benchmark(db, name)
        if known.multi_choice != multi_choice:
            kind = "multi-choice" if known.multi_choice else "single-choice"
            raise AlreadyExists(f"benchmark {name!r} already exists with these files, imported as {kind}")
        return ImportReport(known, True, 0, 0, (), f"{known.layout} layout, as first imported")

    st = ImportState(db=db, benchmark_id=bid, strict=strict, max_field=max_field_chars, multi_choice=multi_choice)
    try:
        behind: contextlib.AbstractContextManager[object] = contextlib.nullcontext()
        if sum(p.stat().st_size for p in paths) >= write_behind.MIN_BYTES:
            behind = write_behind.WriteBehind([write_behind.wal_file(db.path)])
        with behind:
            overall = hashlib.sha256() if len(paths) > 1 else None
            files: list[SourceFile] = []
            layouts: list[tuple[str, bool]] = []
            for p, n in zip(paths, names, strict=True):
                rec, has_answer = _import_file(st, p, n, overall)
                files.append(rec)
                layouts.append((n, has_answer))
            st.flush()
            st.flush()
            digest = files[0].sha256 if overall is None else f"sha256:{overall.hexdigest()}"
            defects = [d for d, _ in st.defects]
            if strict and defects:
                raise ImportDefects(defects, f"strict import of {name!r}: {len(defects)} defect(s); nothing imported")
            if st.imported == 0:
                raise ImportDefects(defects, f"import of {name!r}: no valid rows; nothing imported")
            layout = "VAL" if all(has for _, has in layouts) else "TEST"
            imports.finish_import(db, bid, digest, layout, files, st.defects)
    except BaseException as exc:
        if st.pending is not None:
            with contextlib.suppress(Exception):
                st.pending.result()
        try:
            imports.abort_import(db, bid)
        except StoreError as abort_exc:  # the original error matters more; the next import deletes it
            log.warning("import of %r: the unfinished benchmark was not deleted: %s", name, abort_exc)
        if isinstance(exc, StoreFull):
            raise StoreFull(_disk_full_message(exc, db.path, paths)) from exc
        raise
    finally:
        with _active_lock:
            _active_imports.discard(bid)
    return ImportReport(
        benchmark=store.get_benchmark_by_id(db, bid),
        already_imported=False,
        imported_rows=st.imported,
        skipped_rows=st.skipped,
        defects=tuple(d for d, _ in st.defects),
        layout_reason=layout_reason(layouts),
    )
