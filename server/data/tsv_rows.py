"""One data row of an import: its checks, its defects, and the batches it is written in.

:func:`import_row` checks every field of a row (size, encoding, index, options, answer or
its derivation from ``category``, the image) and either records the row's defects or
hands the question and its image to :class:`ImportState`, which writes them in batched
transactions through the store. The file-level loop and the benchmark's life cycle are in
:mod:`.tsv_import`.
"""

from __future__ import annotations

import concurrent.futures
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from gmai_eval.server.data.images import ImageDefect, decode_image_field
from gmai_eval.server.data.tsv_records import Field
from gmai_eval.server.errors import Defect
from gmai_eval.server.records import OPTION_LABELS
from gmai_eval.server.store import benchmark_imports as store
from gmai_eval.server.store.benchmark_imports import ImageRow
from gmai_eval.server.store.database import Database

MAX_TEXT_BYTES = 64 * 1024
"""Largest text field (question, option, category, ...), UTF-8 encoded: every request
carries the question and its options, and the longest official one is far below this."""


def _utf8_size(value: object) -> int:
    """Bytes of a text field as UTF-8 (fields arrive decoded, or as bytes when undecodable)."""
    return len(value.encode("utf-8", "surrogatepass")) if isinstance(value, str) else len(bytes(value))  # type: ignore[call-overload]

_BATCH_ROWS = 512
"""Most questions per write transaction."""

_BATCH_BYTES = 32 * 1024 * 1024
"""Most image bytes per write transaction."""

_INTEGER = re.compile(r"[+-]?[0-9]+")

def _bad_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _norm(text: str) -> str:
    return text.strip().strip(".").strip()


_MULTI_KEY = re.compile(r"[A-E](?:,[A-E])*")


def parse_multi_answer(raw: str, labels: Sequence[str]) -> tuple[str | None, str]:
    """The key of a multi-answer row as stored (``A,C``), or None and why not.

    Accepted spellings: upper-case option letters separated by commas, with any spaces
    around them (``A,C``, ``A, C``, `` C,A``); a single letter is a one-element set. Each
    letter must name a non-empty option and appear once. The key is stored sorted
    (``C,A`` -> ``A,C``). Anything else (``AC``, ``A;C``, ``a,c``, ``A,A``, empty) is a
    defect.
    """
    spelled = "".join(raw.split())
    if not _MULTI_KEY.fullmatch(spelled):
        return None, "is not upper-case option letters separated by commas (like A,C)"
    letters = spelled.split(",")
    if len(set(letters)) != len(letters):
        return None, "names an option twice"
    if not set(letters) <= set(labels):
        return None, f"is not among the non-empty options ({''.join(labels) or 'none'})"
    return ",".join(sorted(letters)), ""


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
class ImportState:
    """Mutable progress of one import."""

    db: Database
    benchmark_id: int
    strict: bool
    max_field: int
    multi_choice: bool = False
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


def import_row(
    st: ImportState,
    name: str,
    rowno: int,
    raw_fields: list[Field],
    cols: dict[str, int],
    extra: dict[str, int],
    width: int,
    decoded: concurrent.futures.Future[ImageRow] | None = None,
) -> None:
    """Check one data row and queue it for writing (or record why not).

    ``decoded``, when given, is the row's image field already going through
    :func:`~gmai_eval.server.data.images.decode_image_field` (on a worker thread).
    """
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
    if "answer" in cols and st.multi_choice:
        answer, why = parse_multi_answer(get("answer"), [lab for lab, _ in options])
        source = "answer"
        if answer is None:
            found.append(Defect(name, rowno, "answer", f"answer {get('answer')!r} {why}"))
    elif "answer" in cols:
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
        image = decoded.result() if decoded is not None else decode_image_field(image_field)
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


