"""VLMEvalKit's file layouts, import side: a prediction file read back as a graded run.

``score-file``: a VLMEvalKit prediction file becomes a succeeded run. Column names are
lower-cased except single upper-case letters, ``index`` and ``prediction`` are required,
every index must exist in the benchmark (else an error naming the row), and a missing
prediction, or one pandas reads as NA (``NA``, ``None``, ``null``...), is the string
``nan``. Options and answers come from the benchmark.

Writing such files (``export``) is :mod:`gmai_eval.server.scoring.vlmeval_export`.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.scoring.extraction import check_era
from gmai_eval.server.scoring.grading import finish_grading_sync
from gmai_eval.server.store import Database
from gmai_eval.server.store import prediction_files as files


def _normalise_header(name: str) -> str:
    return name if len(name) == 1 and name.isupper() else name.lower()


def read_prediction_file(path: str | Path, shown: str | None = None) -> list[tuple[int, int, str]]:
    """Read ``(data row, index, prediction)`` triples from a TSV or XLSX prediction file.

    ``shown`` is the file's name in messages (default: ``path``); other messages name its
    base name.

    Raises:
        InvalidArgument: unreadable file, missing column, bad or duplicate index (the
            message names the file, the 1-based data row and the column).
    """
    p = Path(path)
    try:
        if p.suffix.lower() == ".xlsx":
            header, rows = _read_xlsx(p)
        else:
            header, rows = _read_tsv(p)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, KeyError) as exc:
        raise InvalidArgument(f"cannot read prediction file {shown or p}: {exc}") from exc
    cols = [_normalise_header(str(h or "")) for h in header]
    for need in ("index", "prediction"):
        if need not in cols:
            raise InvalidArgument(f"{p.name}: no {need!r} column (columns: {', '.join(map(str, header))})")
    i_idx, i_pred = cols.index("index"), cols.index("prediction")
    out: list[tuple[int, int, str]] = []
    seen: dict[int, int] = {}
    for rowno, row in enumerate(rows, start=1):
        if not any(v not in (None, "") for v in row):
            continue
        raw = row[i_idx] if i_idx < len(row) else None
        try:
            idx = _parse_index(raw)
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgument(f"{p.name}, row {rowno}, column 'index': not an integer: {raw!r}") from None
        if idx in seen:
            raise InvalidArgument(f"{p.name}, row {rowno}, column 'index': index {idx} repeats row {seen[idx]}")
        seen[idx] = rowno
        pred = row[i_pred] if i_pred < len(row) else None
        out.append((rowno, idx, _cell_text(pred)))
    if not out:
        raise InvalidArgument(f"{p.name}: no data rows")
    return out


def _parse_index(raw: object) -> int:
    if isinstance(raw, bool) or raw is None:
        raise ValueError
    if isinstance(raw, int):
        return raw
    value = float(str(raw).strip())
    if value != int(value):
        raise ValueError
    return int(value)


PANDAS_NA_STRINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
"""Cell texts that pandas' readers turn into NaN by default (so VLMEvalKit sees ``nan``)."""


def _cell_text(v: object) -> str:
    """A prediction cell as VLMEvalKit sees it after pandas reads it and casts it to ``str``.

    Empty cells and pandas' default NA strings (``NA``, ``None``, ``null``...) become ``nan``.
    """
    if v is None or (isinstance(v, str) and v in PANDAS_NA_STRINGS):
        return "nan"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        # pandas' Excel reader turns integral numbers into int
        return str(int(v)) if v.is_integer() else repr(v)
    return str(v)


def _read_tsv(p: Path) -> tuple[list[str], list[list[object]]]:
    with p.open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader)
        return header, [list(r) for r in reader]


def _read_xlsx(p: Path) -> tuple[list[str], list[list[object]]]:
    from openpyxl import load_workbook

    wb = load_workbook(p, read_only=True, data_only=True)
    try:
        ws = wb.active
        it = ws.iter_rows(values_only=True)
        header = [str(h) if h is not None else "" for h in next(it)]
        return header, [list(r) for r in it]
    finally:
        wb.close()


def score_file(
    db: Database, benchmark: str, path: str | Path, era: str = "2024", evaluator_version: str = "",
    shown: str | None = None,
) -> str:
    """Turn a VLMEvalKit prediction file into a graded, succeeded run.

    Args:
        db: the database.
        benchmark: benchmark name.
        path: ``.tsv`` or ``.xlsx`` prediction file.
        era: extraction era.
        evaluator_version: recorded on the run.
        shown: the file's name in messages (default: ``path``; the evaluator passes the
            name the client gave for the file it spooled).

    Returns:
        The new run id (model ``file:<file stem>``).

    Raises:
        NotFound: unknown benchmark.
        InvalidArgument: a bad file or an index not in the benchmark (the message names the row).
    """
    check_era(era)
    p = Path(path)
    rows = read_prediction_file(p, shown)
    bid, digest = db.read(lambda s: files.benchmark_ref(s, benchmark))
    known = db.read(lambda s: files.benchmark_indexes(s, bid))
    for rowno, idx, _ in rows:
        if idx not in known:
            raise InvalidArgument(f"{p.name}, row {rowno}, column 'index': index {idx} is not in benchmark {benchmark!r}")
    preds = [(idx, text) for _, idx, text in rows]
    run_id = db.write(
        lambda s: files.create_file_run(
            s, model=f"file:{p.stem}", benchmark_id=bid, digest=digest, era=era,
            evaluator_version=evaluator_version, predictions=preds,
        )
    )
    finish_grading_sync(db, run_id)  # the run is created succeeded: grade it and store its summary
    return run_id
