"""Helpers for the data-area tests: hand-made TSV rows and images."""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

VAL_COLUMNS: tuple[str, ...] = (
    "index", "question", "A", "B", "C", "D", "E", "answer", "category", "clinical VQA task",
    "department", "perceptual granularity", "modality", "original task", "image_path", "image",
)
TEST_COLUMNS: tuple[str, ...] = tuple(c for c in VAL_COLUMNS if c != "answer")


def image_bytes(seed: int = 0, *, mode: str = "RGB", fmt: str = "PNG", size: int = 16) -> bytes:
    """A small random image encoded as ``fmt``."""
    rng = np.random.default_rng(seed)
    bands = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    arr = rng.integers(0, 256, size=(size, size, bands), dtype=np.uint8)
    img = Image.fromarray(arr[:, :, 0] if bands == 1 else arr, mode=mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def image_b64(seed: int = 0, **kw: object) -> str:
    """Base64 of :func:`image_bytes`."""
    return base64.b64encode(image_bytes(seed, **kw)).decode("ascii")  # type: ignore[arg-type]


def make_row(index: int, **overrides: str) -> dict[str, str]:
    """A valid VAL row with index ``index``; keyword arguments replace columns."""
    row = {
        "index": str(index),
        "question": "This is a CT image. Which of the following options is the most appropriate to describe the marked area?",
        "A": "liver",
        "B": "spleen",
        "C": "kidney",
        "D": "",
        "E": "",
        "answer": "A",
        "category": "liver",
        "clinical VQA task": "Organ Recognition - Abdomen",
        "department": "Gastroenterology and Hepatology",
        "perceptual granularity": "Mask level",
        "modality": "CT",
        "original task": "SEG_2D",
        "image_path": f"/mnt/petrelfs/x/{index}.png",
        "image": image_b64(index),
    }
    row.update(overrides)
    return row


def write_tsv(path: Path, rows: Sequence[dict[str, str]], columns: Sequence[str] = VAL_COLUMNS) -> Path:
    """Write ``rows`` as a tab-separated file with a header, like pandas ``to_csv(sep='\\t')``."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow([r.get(c, "") for c in columns])
    return path


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Read a TSV written by the synthesizer or :func:`write_tsv` (plain csv, no pandas)."""
    csv.field_size_limit(1 << 30)
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))
