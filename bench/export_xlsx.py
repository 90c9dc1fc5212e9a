"""``export --format xlsx`` at TEST size: XlsxWriter (what the export uses) against openpyxl.

Builds one run of ``--questions`` questions as ``bench/read_scaling.py`` does, then times,
alternately and ``--repeat`` times each, in process:

- ``export_run`` to xlsx: rows read, verdicts, the XlsxWriter file and the group CSVs;
- the same with openpyxl's writer in its place (the export's writer before issue 13, kept
  here as the baseline: normal mode, every text a string cell).

Prints wall and CPU seconds; on a loaded machine compare the CPU. Nothing is asserted.
Usage::

    .venv/bin/python bench/export_xlsx.py [--questions 21281] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gmai_eval.server.scoring import grading, vlmeval_export
from gmai_eval.server.store import Database
from read_scaling import attempts

from tests._scoring_helpers import insert_benchmark, insert_run, make_questions


def openpyxl_writer(path: Path, table: list[list[object]]) -> None:
    """The export's xlsx writer before issue 13 (openpyxl, normal mode)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(list(vlmeval_export.PREDICTION_COLUMNS))
    for r, row in enumerate(table, start=2):
        for c, v in enumerate(row, start=1):
            if v is None:
                continue
            cell = ws.cell(row=r, column=c)
            if isinstance(v, str):
                cell.value = vlmeval_export._ILLEGAL_XLSX.sub("", v)
                cell.data_type = "s"
            else:
                cell.value = v
    tmp = path.with_name(path.name + ".part")
    wb.save(tmp)
    tmp.replace(path)


def main() -> None:
    """Build the run, time both writers, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=21281, help="Questions in the run.")
    parser.add_argument("--repeat", type=int, default=2, help="Rounds of both writers.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "export.db")
        qs = make_questions(args.questions, seed=1)
        insert_run(db, insert_benchmark(db, qs), attempts(qs, 2), run_id="r-a", graded=False)
        asyncio.run(grading.finish_grading(db, "r-a"))
        for _ in range(args.repeat):
            for name in ("openpyxl (before)", "XlsxWriter"):
                out = Path(tmp) / "r-a.xlsx"
                patch = (
                    mock.patch.object(vlmeval_export, "_write_xlsx", openpyxl_writer)
                    if name.startswith("openpyxl")
                    else mock.patch.object(vlmeval_export, "_write_xlsx", vlmeval_export._write_xlsx)
                )
                with patch:
                    wall, cpu = time.perf_counter(), time.process_time()
                    rows = vlmeval_export.export_run(db, "r-a", out, "xlsx").rows
                    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                print(f"{name:<18} {rows:,} rows  wall {wall:6.2f} s  cpu {cpu:6.2f} s", flush=True)
        db.close()


if __name__ == "__main__":
    main()
