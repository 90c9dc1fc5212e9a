"""Import GMAI-MMBench TSV files (VLMEvalKit layout) into the store.

The files are read in one streaming pass (:mod:`.tsv_records`): bytes are hashed as they
are read and split into records with a bounded line length; each row is decoded as UTF-8
(invalid bytes become defects, not crashes), checked and written in batches, with one
batch in flight on the writer thread while the next is parsed. Memory stays bounded by
the largest row plus a batch, whatever the file size.

Atomicity: the benchmark is created in state ``importing`` (invisible to readers),
filled in batched transactions and flipped to ``ready`` at the end; on any failure it is
deleted (cascading). ``importing`` rows left by a crashed process are deleted by the next
import.

Columns are found by header name (:mod:`.tsv_header`, which also says what is wrong with a
header: another delimiter, a misspelt column). Other columns are kept in ``extra`` and
listed as defects that skip no row. Without ``answer`` (TEST layout) the answer is the
only option whose text equals ``category`` (exactly, else after stripping '.' and
whitespace); rows where that fails are imported flagged (answer NULL).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import logging
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gmai_eval.server.data.images import ImageDefect, decode_image_field
from gmai_eval.server.data.tsv_header import layout_reason, read_header
from gmai_eval.server.data.tsv_records import (
    READ_BUFFER,
    Field,
    LineReader,
    Malformed,
    read_records,
)
from gmai_eval.server.errors import (
    AlreadyExists,
    Defect,
    ImportDefects,
    InvalidArgument,
    StoreError,
    StoreFull,
)
from gmai_eval.server.names import check_name
from gmai_eval.server.records import OPTION_LABELS, Benchmark, SourceFile
from gmai_eval.server.store import benchmarks as store
from gmai_eval.server.store.database import Database

MAX_FIELD_CHARS = 64 * 1024 * 1024
"""Largest accepted field, in characters (64 MiB: a ~48 MB image in base64)."""

MAX_TEXT_BYTES = 64 * 1024
"""Largest text field (question, option, category, ...), UTF-8 encoded: every request
carries the question and its options, and the longest official one is far below this."""


def _utf8_size(value: object) -> int:
    """Bytes of a text field as UTF-8 (fields arrive decoded, or as bytes when undecodable)."""
    return len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else len(bytes(value))  # type: ignore[call-overload]

_LINE_SLACK = 4 * 1024 * 1024
"""A physical line may exceed the field limit by this much (the row's other fields)."""

_BATCH_ROWS = 512
"""Most questions per write transaction."""

_BATCH_BYTES = 32 * 1024 * 1024
"""Most image bytes per write transaction."""

_INTEGER = re.compile(r"[+-]?[0-9]+")

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


def _bad_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _norm(text: str) -> str:
    return text.strip().strip(".").strip()


def derive_answer(options: Sequence[tuple[str, str]], category: str) -> str | None:
    """The letter of the only option whose text equals ``category``, else None.

    Exact comparison first; if that does not give exactly one option, compare after
    stripping '.' and surrounding whitespace on both sides.
    """
    exact = [lab for lab, text in options if text == category]
    if len(exact) == 1:
        return exact[0]
    want = _norm(category)
    loose = [lab for lab, text in options if _norm(text) == want]
    if len(loose) == 1 and want:
        return loose[0]
    return None


@dataclass
class _State:
    """Mutable progress of one import."""

    db: Database
    benchmark_id: int
    strict: bool
    max_field: int
    defects: list[tuple[Defect, bool]] = field(default_factory=list)
    seen_index: set[int] = field(default_factory=set)
    seen_images: set[str] = field(default_factory=set)
    batch_q: list[store.QuestionRow] = field(default_factory=list)
    batch_i: list[store.ImageRow] = field(default_factory=list)
    batch_bytes: int = 0
    pending: concurrent.futures.Future[None] | None = None
    imported: int = 0
    skipped: int = 0

    def defect(self, d: Defect, skipped: bool) -> None:
        self.defects.append((d, skipped))

    @property
    def writing(self) -> bool:
        return not (self.strict and self.defects)

    def add(self, q: store.QuestionRow, img: store.ImageRow | None) -> None:
        self.imported += 1
        if not self.writing:
            return
        self.batch_q.append(q)
        if img is not None:
            self.batch_i.append(img)
            self.batch_bytes += len(img.data)
        if len(self.batch_q) >= _BATCH_ROWS or self.batch_bytes >= _BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            self.pending.result()
            self.pending = None
        if not self.batch_q or not self.writing:
            self.batch_q, self.batch_i, self.batch_bytes = [], [], 0
            return
        qs, imgs, bid = self.batch_q, self.batch_i, self.benchmark_id
        self.pending = self.db.submit(lambda d: store.write_batch(d, bid, imgs, qs))
        self.batch_q, self.batch_i, self.batch_bytes = [], [], 0


def _row(
    st: _State,
    name: str,
    rowno: int,
    raw_fields: list[Field],
    cols: dict[str, int],
    extra: dict[str, int],
    width: int,
) -> None:
    """Check one data row and queue it for writing (or record why not)."""
    image_pos = cols.get("image", -1)
    image_field = raw_fields[image_pos] if 0 <= image_pos < len(raw_fields) else ""
    fields = [
        "" if i == image_pos else f.decode("utf-8", "surrogateescape") if isinstance(f, bytes) else f
        for i, f in enumerate(raw_fields)
    ]
    if len(fields) != width:
        st.defect(Defect(name, rowno, "", f"wrong field count: expected {width}, found {len(fields)}"), True)
        st.skipped += 1
        return
    found: list[Defect] = []

    def get(col: str) -> str:
        pos = cols.get(col)
        return "" if pos is None else fields[pos]

    for col, pos in (*cols.items(), *extra.items()):
        value = image_field if pos == image_pos else fields[pos]
        if len(value) > st.max_field:
            found.append(Defect(name, rowno, col, f"field of {len(value)} characters exceeds the maximum of {st.max_field}"))
        elif pos != image_pos and len(value) > MAX_TEXT_BYTES // 4 and (size := _utf8_size(value)) > MAX_TEXT_BYTES:
            found.append(Defect(name, rowno, col, f"text of {size} bytes exceeds the maximum of {MAX_TEXT_BYTES} for a text field"))
        elif isinstance(value, str) and _bad_utf8(value):
            found.append(Defect(name, rowno, col, "bad encoding: the bytes are not valid UTF-8"))
    if found:
        for d in found:
            st.defect(d, True)
        st.skipped += 1
        return

    idx: int | None = None
    raw_index = get("index").strip()
    if _INTEGER.fullmatch(raw_index) and abs(int(raw_index)) < 2**63:
        idx = int(raw_index)
    else:
        found.append(Defect(name, rowno, "index", f"index {raw_index!r} is not an integer"))
    if idx is not None and idx in st.seen_index:
        found.append(Defect(name, rowno, "index", f"duplicate index {idx}"))
    question = get("question")
    if not question.strip():
        found.append(Defect(name, rowno, "question", "empty question"))
    texts = tuple(get(lab) for lab in OPTION_LABELS)
    options = [(lab, text) for lab, text in zip(OPTION_LABELS, texts, strict=True) if text != ""]
    if len(options) < 2:
        found.append(
            Defect(name, rowno, "A..E", f"{len(options)} non-empty option(s); a question needs 2 to 5")
        )
    category = get("category")
    answer: str | None
    flag: Defect | None = None
    if "answer" in cols:
        answer = get("answer").strip()
        source = "answer"
        if answer not in {lab for lab, _ in options}:
            present = "".join(lab for lab, _ in options) or "none"
            found.append(
                Defect(name, rowno, "answer", f"answer {answer!r} is not among the non-empty options ({present})")
            )
    else:
        answer = derive_answer(options, category)
        source = "category"
        if answer is None:
            source = "none"
            flag = Defect(
                name,
                rowno,
                "category",
                f"cannot derive the answer: category {category!r} matches "
                f"{'no' if not options else 'not exactly one'} option text; imported without an answer",
            )
    image = None
    try:
        image = decode_image_field(image_field)
    except ImageDefect as exc:
        found.append(Defect(name, rowno, "image", str(exc)))
    if found or idx is None or image is None:
        for d in found:
            st.defect(d, True)
        st.skipped += 1
        return
    if flag is not None:
        st.defect(flag, False)
    st.seen_index.add(idx)
    img_row = None
    if image.sha256 not in st.seen_images:
        st.seen_images.add(image.sha256)
        img_row = image
    st.add(
        store.QuestionRow(
            idx=idx,
            question=question,
            options=texts,  # type: ignore[arg-type]
            answer=answer,
            answer_source=source,
            category=category,
            clinical_task=get("clinical VQA task"),
            department=get("department"),
            granularity=get("perceptual granularity"),
            modality=get("modality"),
            original_task=get("original task"),
            image_path=get("image_path"),
            image_sha256=image.sha256,
            source_file=name,
            source_row=rowno,
            extra={k: fields[p] for k, p in extra.items()},
        ),
        img_row,
    )


def _decode_header(fields: list[Field]) -> list[str]:
    return [f.decode("utf-8", "replace") if isinstance(f, bytes) else f for f in fields]


def _import_file(st: _State, path: Path, name: str, overall: Any) -> tuple[SourceFile, bool]:
    """Stream one file into the import; returns its record and whether it has ``answer``."""
    file_hash = hashlib.sha256()
    hashers = [file_hash] if overall is None else [file_hash, overall]
    rows = 0
    has_answer = False
    with open(path, "rb", buffering=0) as f:
        raw = LineReader(f, hashers, st.max_field + _LINE_SLACK)
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
            for rec in records:
                rows += 1
                if isinstance(rec, Malformed):
                    st.defect(Defect(name, rows, "", f"malformed row: {rec.message}"), True)
                    st.skipped += 1
                elif head_defects:
                    st.skipped += 1
                else:
                    _row(st, name, rows, rec, cols, extra, len(header))
            if rows == 0:
                st.defect(Defect(name, 0, "", "no rows: the file has a header but no data rows"), True)
        raw.drain()
        size = raw.bytes_read
    return SourceFile(name=name, sha256=f"sha256:{file_hash.hexdigest()}", rows=rows, size_bytes=size), has_answer


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
) -> ImportReport:
    """Import GMAI-MMBench TSV files as one benchmark.

    Args:
        db: the database.
        name: benchmark name (unique).
        paths: the TSV files, in order (several TEST parts make one benchmark).
        strict: import nothing if any row has a defect.
        display_names: names for the files in defects and records (default: the paths as given).
        max_field_chars: largest accepted field (documented default :data:`MAX_FIELD_CHARS`).

    Returns:
        The report; ``already_imported`` when the same bytes were imported under ``name``.

    Raises:
        InvalidArgument: no files, a file that cannot be read, or a bad name.
        AlreadyExists: ``name`` holds a benchmark with different content, or is being imported.
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
        store.delete_stale_imports(db, keep=sorted(_active_imports))
        existing = store.find_any_state(db, name)
        if existing is not None and existing[2] != "ready":
            raise AlreadyExists(f"benchmark {name!r} is being imported right now")
        if existing is None:
            bid = store.begin_import(db, name, "VAL")
            _active_imports.add(bid)
    if existing is not None:
        digest = files_digest(paths)
        if digest != existing[1]:
            raise AlreadyExists(
                f"benchmark {name!r} already exists with different content ({existing[1]}; these files: {digest})"
            )
        known = store.get_benchmark(db, name)
        return ImportReport(known, True, 0, 0, (), f"{known.layout} layout, as first imported")

    st = _State(db=db, benchmark_id=bid, strict=strict, max_field=max_field_chars)
    try:
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
        store.finish_import(db, bid, digest, layout, files, st.defects)
    except BaseException as exc:
        if st.pending is not None:
            with contextlib.suppress(Exception):
                st.pending.result()
        try:
            store.abort_import(db, bid)
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
