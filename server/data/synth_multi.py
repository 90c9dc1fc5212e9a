"""A synthetic multi-answer benchmark: several findings per image (``synth --multi-choice``).

The paper's multi-answer questions are image-level multi-label classification drawn from
five sources (reference §1.3). Each row here is drawn from one of them, through the
lexical tree's (task, modality) node that holds that source's labels:

=============================  ==========================  ====================
source                         task                        modality
=============================  ==========================  ====================
Human Protein Atlas            Cell Recognition            Microscopy
NIH Chest X-rays (multi-label) Disease Diagnosis           X-ray
ODIR-2019                      Disease Diagnosis           Fundus Photography
RSNA Intracranial Hemorrhage   Disease Diagnosis           CT
AGE-2019                       Attribute Recognition       OCT
=============================  ==========================  ====================

A row has 3 to 5 options, all sibling labels of that node, of which 1 to 3 are correct
(never all: one option at least is a distractor). The image shows one finding per correct
label, each with that label's visual signature (:func:`.synth.label_signature`, the same
as in the single-answer benchmark) at its own place, so a model can learn the answer.
``answer`` holds the correct letters as ``A,C``; ``category`` the correct labels' texts
joined by `` + ``. Granularity is ``Image level`` and the original task ``CLS_2D``.
Deterministic by seed; VAL layout only (a TEST file could not carry several keys).
"""

from __future__ import annotations

import base64
import colorsys
import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from gmai_eval.server.data.synth import (
    VAL_COLUMNS,
    article,
    label_signature,
    modality_colour,
    shape_mask,
)
from gmai_eval.server.taxonomy import subject_tree
from PIL import Image

SOURCES: tuple[tuple[str, str, str], ...] = (
    ("Human Protein Atlas", "Cell Recognition", "Microscopy"),
    ("NIH Chest X-rays", "Disease Diagnosis", "X-ray"),
    ("ODIR-2019", "Disease Diagnosis", "Fundus Photography"),
    ("RSNA Intracranial Hemorrhage", "Disease Diagnosis", "CT"),
    ("AGE-2019", "Attribute Recognition", "OCT"),
)
"""(paper source, task, modality) of each kind of row."""

CATEGORY_SEPARATOR = " + "
"""Joins the correct labels' texts in ``category``."""

_QUESTIONS: tuple[str, ...] = (
    "This is {a} {m} image. Which of the following findings are present in this image?",
    "This is {a} {m} image. Which of the following options describe this image? There may be more than one.",
    "Looking at this {m} image, which of the following labels apply?",
)

_CELLS = ((0.27, 0.27), (0.73, 0.27), (0.27, 0.73), (0.73, 0.73))
"""Centres (fractions of the side) where findings may sit; each finding takes its own."""


def _pools() -> list[tuple[str, str, tuple[str, ...]]]:
    tree = subject_tree("task")
    return [(task, modality, tuple(tree[task][modality])) for _, task, modality in SOURCES]


def _departments() -> dict[tuple[str, str], str]:
    """(modality, label) -> the first department whose tree holds it."""
    out: dict[tuple[str, str], str] = {}
    for dept, mods in subject_tree("department").items():
        for modality, labels in mods.items():
            for label in labels:
                out.setdefault((modality, label), dept)
    return out


def render_findings(labels: list[str], modality: str, rng: np.random.Generator, size: int = 128) -> bytes:
    """An image with one finding per label (its signature), each in its own quarter; PNG bytes."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    field = np.zeros((size, size))
    for _ in range(3):
        fx, fy = rng.uniform(0.5, 3.0, size=2) * 2 * np.pi / size
        field += np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi))
    img = modality_colour(modality)[None, None, :] * (0.8 + 0.08 * field[:, :, None])
    img += rng.normal(0.0, 10.0, size=(size, size, 1))
    cells = rng.permutation(len(_CELLS))
    for label, cell in zip(labels, cells, strict=False):
        sig = label_signature(label)
        r = size * rng.uniform(0.13, 0.17)
        jitter = rng.uniform(-0.04, 0.04, size=2) * size
        cx, cy = np.array(_CELLS[int(cell)]) * size + jitter
        dx, dy = xx - cx, yy - cy
        mask = shape_mask(sig.shape, dx, dy, r)
        theta = np.deg2rad(sig.angle)
        phase = (dx * np.cos(theta) + dy * np.sin(theta)) / (2 * r) * sig.frequency * 2 * np.pi
        colour = np.array(colorsys.hsv_to_rgb(sig.hue, 0.9, 1.0)) * 255.0
        finding = colour[None, None, :] * (0.45 + 0.55 * (0.5 + 0.5 * np.sin(phase))[:, :, None])
        img = np.where(mask[:, :, None], finding, img)
    img = img + rng.normal(0.0, 4.0, size=img.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def multi_rows(questions: int, seed: int, *, image_size: int = 128) -> Iterator[dict[str, str]]:
    """Generate multi-answer rows (column -> value, VAL layout), deterministic by ``seed``."""
    pools = _pools()
    departments = _departments()
    rng = np.random.default_rng(seed)
    letters = "ABCDE"
    for index in range(questions):
        source = int(rng.integers(len(pools)))
        task, modality, pool = pools[source]
        n_options = min(int(rng.choice([3, 4, 5], p=[0.2, 0.3, 0.5])), len(pool))
        n_correct = min(int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25])), n_options - 1)
        picked = [pool[int(i)] for i in rng.choice(len(pool), size=n_options, replace=False)]
        correct = picked[:n_correct]
        options = [picked[int(i)] for i in rng.permutation(n_options)]
        answer = ",".join(sorted(letters[options.index(lab)] for lab in correct))
        template = _QUESTIONS[int(rng.integers(len(_QUESTIONS)))]
        png = render_findings(correct, modality, rng, image_size)
        yield {
            "index": str(index),
            "question": template.format(a=article(modality), m=modality),
            **{letters[i]: (options[i] if i < n_options else "") for i in range(5)},
            "answer": answer,
            "category": CATEGORY_SEPARATOR.join(sorted(correct)),
            "clinical VQA task": task,
            "department": departments.get((modality, correct[0]), ""),
            "perceptual granularity": "Image level",
            "modality": modality,
            "original task": "CLS_2D",
            "image_path": f"/synthetic/gmai-mmbench-multi/{SOURCES[source][0].lower().replace(' ', '-')}/{index:06d}.png",
            "image": base64.b64encode(png).decode("ascii"),
        }


def write_multi_tsv(path: Path, questions: int, seed: int, *, image_size: int = 128) -> None:
    """Write a synthetic multi-answer benchmark TSV (VAL layout, byte-identical for a seed)."""
    tmp = Path(path).with_name(Path(path).name + ".partial")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(VAL_COLUMNS)
        for row in multi_rows(questions, seed, image_size=image_size):
            w.writerow([row[c] for c in VAL_COLUMNS])
    tmp.replace(path)
