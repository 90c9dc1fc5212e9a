"""VLMEvalKit's file layouts, export side: a run as a prediction file and group accuracy CSVs.

**Export.** A run becomes a prediction file exactly as VLMEvalKit writes one (without the
``image`` column): ``index, question, A..E, answer, category, clinical VQA task,
department, perceptual granularity, modality, original task, image_path, prediction``,
plus the three group accuracy CSVs that its ``report_acc_by_groups`` writes next to it.
``prediction`` is chosen so that VLMEvalKit, run on the file with exact matching and the
same era, gives our verdicts:

- typed labels -> the labels joined by ``,`` (one label is just the letter);
- free text -> the text verbatim;
- refused / abstained / input_unsupported -> ``Cannot determine the answer`` (its ``Z``);
- an error -> ``Failed to obtain answer via API`` (never matched, scored wrong).

Questions without a final answer are left out (VLMEvalKit scores the rows given).

**Circular runs.** The prediction file holds rotation 0 (the original option order, the
vanilla answers), so VLMEvalKit scores it as any run. The other rotations go to a
companion file next to it, ``<stem>_rotations.<tsv|xlsx>`` (:data:`ROTATION_COLUMNS`).

**Group CSVs.** Columns ``split``, ``Overall``, then one column per group value sorted
alphabetically; one row ``none``; fractions as Python/pandas print floats. Parity quirk
kept on purpose: the empty department becomes a column ``None`` whose value is always
empty (NaN), as VLMEvalKit writes it; our own reports show that node as ``N/A``.

**Multi-answer runs** also get ``<stem>_mcls.csv``: exact-set accuracy, ACC_mcls and
Recall_mcls per node (:func:`mcls_csv`); VLMEvalKit has no such file. Their ``answer``
column holds the key as ``A,C``.

Reading such files back (``score-file``) is :mod:`gmai_eval.server.scoring.vlmeval_files`.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gmai_eval.server.errors import InvalidArgument
from gmai_eval.server.records import OPTION_LABELS, Recorded
from gmai_eval.server.scoring.aggregate import RunScores
from gmai_eval.server.scoring.circular import grade_rotation, rotate, to_rotated
from gmai_eval.server.scoring.extraction import check_era
from gmai_eval.server.scoring.grading import compute_scores, graded_rows
from gmai_eval.server.scoring.verdicts import NON_ANSWER_STATUSES
from gmai_eval.server.store import Database
from gmai_eval.server.store import grades as store
from gmai_eval.server.store import prediction_files as files
from gmai_eval.server.store.rotations import rotation_answers

PREDICTION_COLUMNS: tuple[str, ...] = (
    "index", "question", *OPTION_LABELS, "answer", "category", "clinical VQA task", "department",
    "perceptual granularity", "modality", "original task", "image_path", "prediction",
)
"""Columns of an exported prediction file, in order."""

ROTATION_COLUMNS: tuple[str, ...] = (
    "index", "rotation", *OPTION_LABELS, "answer", "prediction", "extracted", "hit",
)
"""Columns of a circular run's companion file: options, ``answer`` (the key's label) and
``prediction`` as that rotation showed and got them; ``extracted`` is the chosen option
in the original labels; ``hit`` 1 when it is the key (exact matching, the export's era)."""

GROUP_COLUMNS: tuple[str, ...] = ("clinical vqa task", "department", "perceptual granularity")
"""The lower-cased columns VLMEvalKit writes a group accuracy CSV for."""

REFUSAL_PREDICTION = "Cannot determine the answer"
"""Prediction written for refusals and abstentions (VLMEvalKit maps it to Z)."""

ERROR_PREDICTION = "Failed to obtain answer via API"
"""Prediction written for failed questions (VLMEvalKit never matches it)."""

_ILLEGAL_XLSX = re.compile(r"[\000-\010\013\014\016-\037]")


def prediction_text(rec: Recorded) -> str:
    """The ``prediction`` cell for a final attempt (see the module docstring)."""
    if rec.outcome != "answered":
        return ERROR_PREDICTION
    if rec.status in NON_ANSWER_STATUSES:
        return REFUSAL_PREDICTION
    if rec.labels:
        return ",".join(rec.labels)
    return rec.text


@dataclass(frozen=True)
class ExportResult:
    """Files written by :func:`export_run`."""

    predictions: Path
    """The prediction file."""
    group_csvs: tuple[Path, ...]
    """The three group accuracy CSVs, then a multi-answer run's ``<stem>_mcls.csv``."""
    rows: int
    """Rows in the prediction file."""
    rotations: Path | None = None
    """A circular run's companion file: the answers to rotations 1..k-1."""

    @property
    def files(self) -> list[Path]:
        """Every file written: the prediction file, its CSVs, then the companion file."""
        return [self.predictions, *self.group_csvs, *([self.rotations] if self.rotations else [])]


def _table(
    db: Database, info: store.RunInfo, era: str, judge: str
) -> tuple[list[list[object]], list[files.ExportRow], dict[int, str]]:
    rows = [r for r in db.read(lambda s: files.export_rows(s, info.id)) if r.recorded is not None]
    verdicts = {g.idx: g.verdict for g in graded_rows(db, info, era, judge)}
    table: list[list[object]] = []
    for r in rows:
        assert r.recorded is not None
        table.append([
            r.idx, r.question, *[o if o not in (None, "") else None for o in r.options], r.answer, r.category,
            r.task, r.department or None, r.granularity, r.modality, r.original_task, r.image_path,
            prediction_text(r.recorded),
        ])
    return table, rows, verdicts


def group_accuracy(rows: Sequence[files.ExportRow], hits: dict[int, int], column: str) -> list[tuple[str, float]]:
    """VLMEvalKit's group accuracy row: ``Overall`` then sorted group values (NaN for ``None``)."""
    field = {"clinical vqa task": "task", "department": "department", "perceptual granularity": "granularity"}[column]
    groups: dict[str, list[int]] = {}
    for r in rows:
        value = getattr(r, field) or "None"
        groups.setdefault(value, []).append(hits[r.idx])
    total = sum(hits[r.idx] for r in rows)
    out = [("Overall", total / len(rows) if rows else math.nan)]
    for name in sorted(groups):
        out.append((name, math.nan if name == "None" else sum(groups[name]) / len(groups[name])))
    return out


def _fmt(v: float) -> str:
    return "" if math.isnan(v) else repr(float(v))


def export_run(
    db: Database, run_id: str, out: str | Path, fmt: str = "tsv", era: str | None = None, judge: str = ""
) -> ExportResult:
    """Write a run's prediction file and its group accuracy CSVs.

    Args:
        db: the database.
        run_id: the run.
        out: path of the prediction file; the CSVs go next to it, named from its stem.
        fmt: ``tsv`` or ``xlsx``.
        era: extraction era of the grades behind the CSVs; None for the run's own.
        judge: judge of those grades, ``""`` for exact matching.

    Raises:
        NotFound: unknown run.
        InvalidArgument: unknown format or era.
    """
    if fmt not in ("tsv", "xlsx"):
        raise InvalidArgument(f"unknown export format {fmt!r}; expected tsv or xlsx")
    info = db.read(lambda s: store.run_info(s, run_id))
    era = check_era(era or info.era)
    table, rows, verdicts = _table(db, info, era, judge)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tsv":
        _write_tsv(path, table)
    else:
        _write_xlsx(path, table)
    hits = {r.idx: int(verdicts.get(r.idx) == "correct") for r in rows}
    csvs = []
    for column in GROUP_COLUMNS:
        acc = group_accuracy(rows, hits, column)
        target = path.with_name(f"{path.stem}_{column}_acc.csv")
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["split", *[name for name, _ in acc]])
        w.writerow(["none", *[_fmt(v) for _, v in acc]])
        _replace_atomically(target, buf.getvalue())
        csvs.append(target)
    if info.multi_choice:
        target = path.with_name(f"{path.stem}_mcls.csv")
        _replace_atomically(target, mcls_csv(compute_scores(db, run_id, era, judge)))
        csvs.append(target)
    rotations = None
    if info.circular:
        rotations = path.with_name(f"{path.stem}_rotations{path.suffix}")
        rot_table = _rotation_table(db, info, era)
        if fmt == "tsv":
            _write_tsv(rotations, rot_table, ROTATION_COLUMNS)
        else:
            _write_xlsx(rotations, rot_table, ROTATION_COLUMNS)
    return ExportResult(path, tuple(csvs), len(table), rotations)


def _rotation_table(db: Database, info: store.RunInfo, era: str) -> list[list[object]]:
    """One row per answered rotation r > 0: the options and key as shown, the answer, and
    the option it chose mapped back to the original labels, with its hit (exact matching)."""
    table: list[list[object]] = []
    for ans in db.read(lambda s: rotation_answers(s, info.id)):
        p = ans.row
        shown = dict(rotate(p.choices, ans.rotation))
        g = grade_rotation(p.recorded, p.choices, p.answer, era, ans.rotation)
        table.append([
            p.recorded.idx, ans.rotation, *[shown.get(lab) for lab in OPTION_LABELS],
            None if p.answer is None else to_rotated(p.answer, p.choices, ans.rotation),
            prediction_text(p.recorded), g.extracted or None, int(g.verdict == "correct"),
        ])
    return table


MCLS_DIMENSIONS = ("overall", "task", "department", "granularity", "modality")
"""The dimensions of the multi-answer CSV, in order."""


def mcls_csv(scores: RunScores) -> str:
    """A multi-answer run's metrics per node (not a VLMEvalKit file: it has none).

    Columns ``dimension, node, n, exact_accuracy, ACC_mcls, Recall_mcls``; one row per node
    of :data:`MCLS_DIMENSIONS`, fractions as Python prints them.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dimension", "node", "n", "exact_accuracy", "ACC_mcls", "Recall_mcls"])
    for n in scores.nodes:
        m = scores.mcls.get((n.dimension, n.path))
        if n.dimension in MCLS_DIMENSIONS and m is not None:
            w.writerow([n.dimension, n.name, n.n, _fmt(n.accuracy), _fmt(m.acc_mcls), _fmt(m.recall_mcls)])
    return buf.getvalue()


def _replace_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a ``.part`` file, so readers never see half a file."""
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, "utf-8")
    tmp.replace(path)


def _write_tsv(path: Path, table: list[list[object]], columns: Sequence[str] = PREDICTION_COLUMNS) -> None:
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(columns)
        for row in table:
            w.writerow(["" if v is None else v for v in row])
    tmp.replace(path)


XLSX_CELL_MAX = 32_767
"""The most UTF-16 code units an xlsx cell holds (Excel's limit)."""


def _xlsx_text(text: str, row: list[object], column: str) -> str:
    """``text`` without the characters XML forbids; InvalidArgument over Excel's cell limit."""
    text = _ILLEGAL_XLSX.sub("", text)
    if len(text) > XLSX_CELL_MAX // 2 and len(text.encode("utf-16-le")) // 2 > XLSX_CELL_MAX:
        raise InvalidArgument(
            f"index {row[0]}, column {column!r}: {len(text):,} characters, more "
            f"than the {XLSX_CELL_MAX:,} an xlsx cell holds; export with --format tsv"
        )
    return text


def _write_xlsx(path: Path, table: list[list[object]], columns: Sequence[str] = PREDICTION_COLUMNS) -> None:
    """The prediction file as xlsx, written row by row by XlsxWriter (constant memory).

    Every text is a string cell (never a formula, even when it starts with ``=``); numbers
    are numbers. XlsxWriter writes a 21,281-row run about 3 times faster than openpyxl did
    (docs/benchmarks.md); openpyxl still reads xlsx files (``score-file``).
    """
    import xlsxwriter

    texts = [
        [_xlsx_text(v, row, columns[c]) if isinstance(v, str) else v for c, v in enumerate(row)] for row in table
    ]
    tmp = path.with_name(path.name + ".part")
    wb = xlsxwriter.Workbook(str(tmp), {"constant_memory": True})
    ws = wb.add_worksheet()
    for c, name in enumerate(columns):
        ws.write_string(0, c, name)
    for r, row in enumerate(texts, start=1):
        for c, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, str):
                ws.write_string(r, c, v)
            else:
                ws.write_number(r, c, v)
    wb.close()
    tmp.replace(path)
