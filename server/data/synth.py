"""A synthetic benchmark in the exact official GMAI-MMBench TSV layout.

Rows are consistent with the lexical tree: a task is drawn by the paper's Fig. 6 shares,
then a (modality, label) pair under it, a department whose tree holds that pair (else the
N/A department ``''``) and a granularity whose tree holds it (else ``Image level``).
Options are the label plus distractors from sibling labels, shuffled.

Images are procedural PNGs (numpy + Pillow), deterministic by seed. The answer is visible
and learnable: each label maps, through the sha256 of its text, to a visual signature
(:func:`label_signature`: hue, shape, stripe orientation and frequency) drawn as the
"finding" over a modality-dependent noisy background. Box, mask and contour prompts are
drawn in pure red around or over the finding, as in the real benchmark. Finding hues
avoid red so the prompts never hide the signature.
"""

from __future__ import annotations

import colorsys
import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gmai_eval.server.taxonomy import TASKS, subject_tree
from PIL import Image

VAL_COLUMNS: tuple[str, ...] = (
    "index", "question", "A", "B", "C", "D", "E", "answer", "category", "clinical VQA task",
    "department", "perceptual granularity", "modality", "original task", "image_path", "image",
)
"""The official VAL column order (TEST drops ``answer``)."""

TASK_SHARES: dict[str, float] = {
    "DD": 51.56, "SG": 9.07, "C": 5.38, "OR-A": 3.97, "SIR": 3.82, "MR": 3.68, "SAR": 3.26,
    "B": 3.21, "OR-T": 2.41, "OR-HN": 2.27, "BVR": 2.12, "SWR": 1.98, "CR": 1.84, "AR": 1.56,
    "IQG": 1.42, "OR-P": 1.27, "M": 0.71, "NT": 0.57,
}
"""Share of cases per task, percent (paper Fig. 6)."""

GRANULARITY_SHARES: dict[str, float] = {
    "Image level": 49.22, "Mask level": 22.01, "Contour level": 22.01, "Box level": 6.76,
}
"""Share of cases per granularity, percent (paper Fig. 6)."""

SHAPES: tuple[str, ...] = ("circle", "square", "diamond", "ring", "cross", "triangle")
"""Finding shapes."""

ANGLES: tuple[float, ...] = (0.0, 45.0, 90.0, 135.0)
"""Stripe orientations, degrees."""

FREQUENCIES: tuple[float, ...] = (2.0, 4.0, 7.0)
"""Stripe frequencies, cycles across the finding."""

RED = np.array([255.0, 0.0, 0.0])

_QUESTIONS: dict[str, tuple[str, ...]] = {
    "Image level": (
        "This is {a} {m} image. Which of the following options is the most appropriate to describe this image?",
        "This is {a} {m} image. Based on the image, which of the following is the most likely finding?",
        "Looking at this {m} image, which of the following options best describes what is shown?",
    ),
    "Box level": (
        "This is {a} {m} image. Which of the following options is the most appropriate to describe the object in the red box?",
        "This is {a} {m} image. What does the box-marked region most likely show?",
    ),
    "Mask level": (
        "This is {a} {m} image. Which of the following options is the most appropriate to describe the marked area?",
        "This is {a} {m} image. Which of the following options best describes the region marked by the red mask?",
    ),
    "Contour level": (
        "This is {a} {m} image. Which of the following options is the most appropriate to describe the area outlined by the red contour?",
        "This is {a} {m} image. What is the structure enclosed by the red contour?",
    ),
}

_AN_PREFIXES = ("X-ray", "MRI", "MP-RAGE", "SWI", "LGE", "ADC", "ASL", "OCT", "Infrared", "In-phase", "UltraSound")
_VOLUME_MODALITIES = ("CT", "MRI", "CMR", "CTA")


@dataclass(frozen=True)
class Signature:
    """The visual signature of one label."""

    hue: float
    """Hue in [0, 1), away from red."""
    shape: str
    """One of :data:`SHAPES`."""
    angle: float
    """Stripe orientation, degrees."""
    frequency: float
    """Stripe cycles across the finding."""


def label_signature(label: str) -> Signature:
    """The deterministic visual signature of ``label`` (from the sha256 of its text)."""
    h = hashlib.sha256(label.encode("utf-8")).digest()
    hue = (30 + (int.from_bytes(h[0:2], "big") / 65536.0) * 300) / 360.0  # 30..330 degrees
    return Signature(
        hue=hue,
        shape=SHAPES[h[2] % len(SHAPES)],
        angle=ANGLES[h[3] % len(ANGLES)],
        frequency=FREQUENCIES[h[4] % len(FREQUENCIES)],
    )


def modality_colour(modality: str) -> np.ndarray:
    """The background colour of a modality's images (RGB, 0-255), from the sha256 of its name."""
    h = hashlib.sha256(("modality:" + modality).encode("utf-8")).digest()
    grey = 60 + h[0] % 60
    tint = (np.array([h[1], h[2], h[3]], dtype=np.float64) / 255.0 - 0.5) * 50
    return np.clip(grey + tint, 0, 255)


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Pixels inside a finding of ``shape`` and radius ``r``; ``dx``, ``dy`` are offsets from its centre."""
    mask: np.ndarray
    if shape == "circle":
        mask = dx * dx + dy * dy <= r * r
    elif shape == "square":
        mask = np.maximum(np.abs(dx), np.abs(dy)) <= r * 0.85
    elif shape == "diamond":
        mask = np.abs(dx) + np.abs(dy) <= r * 1.15
    elif shape == "ring":
        d2 = dx * dx + dy * dy
        mask = (d2 <= r * r) & (d2 >= (r * 0.55) ** 2)
    elif shape == "cross":
        arm = r * 0.38
        mask = ((np.abs(dx) <= arm) & (np.abs(dy) <= r)) | ((np.abs(dy) <= arm) & (np.abs(dx) <= r))
    else:  # triangle, apex up
        mask = (dy <= r * 0.8) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    return mask


def _outline(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:, :] &= mask[:-1, :]
    inner[:-1, :] &= mask[1:, :]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    edge = mask & ~inner
    thick: np.ndarray = edge.copy()
    thick[1:, :] |= edge[:-1, :]
    thick[:, 1:] |= edge[:, :-1]
    return thick


def render_image(label: str, modality: str, granularity: str, rng: np.random.Generator, size: int = 128) -> bytes:
    """Draw one synthetic image and return it as PNG bytes.

    Args:
        label: the correct answer's text (selects the finding's signature).
        modality: selects the background.
        granularity: ``Image level`` (no prompt), ``Box level`` (red rectangle),
            ``Mask level`` (red translucent fill) or ``Contour level`` (red outline).
        rng: source of the random placement, background and noise.
        size: side in pixels.
    """
    sig = label_signature(label)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    # Background: modality colour, low-frequency texture, noise.
    field = np.zeros((size, size))
    for _ in range(3):
        fx, fy = rng.uniform(0.5, 3.0, size=2) * 2 * np.pi / size
        field += np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi))
    base = modality_colour(modality)
    img = base[None, None, :] * (0.8 + 0.08 * field[:, :, None])
    img += rng.normal(0.0, 10.0, size=(size, size, 1))
    # Finding: shape filled with the label's hue, striped.
    r = size * rng.uniform(0.17, 0.26)
    cx, cy = rng.uniform(r + 4, size - r - 4, size=2)
    dx, dy = xx - cx, yy - cy
    mask = shape_mask(sig.shape, dx, dy, r)
    theta = np.deg2rad(sig.angle)
    phase = (dx * np.cos(theta) + dy * np.sin(theta)) / (2 * r) * sig.frequency * 2 * np.pi
    stripes = 0.5 + 0.5 * np.sin(phase)
    colour = np.array(colorsys.hsv_to_rgb(sig.hue, 0.9, 1.0)) * 255.0
    finding = colour[None, None, :] * (0.45 + 0.55 * stripes[:, :, None])
    img = np.where(mask[:, :, None], finding, img)
    img = img + rng.normal(0.0, 4.0, size=img.shape)
    # Visual prompt.
    if granularity == "Mask level":
        img = np.where(mask[:, :, None], 0.7 * img + 0.3 * RED, img)
    elif granularity == "Contour level":
        img[_outline(mask)] = RED
    elif granularity == "Box level":
        ys, xs = np.nonzero(mask)
        y0, y1 = max(int(ys.min()) - 3, 0), min(int(ys.max()) + 3, size - 1)
        x0, x1 = max(int(xs.min()) - 3, 0), min(int(xs.max()) + 3, size - 1)
        for t in range(2):
            img[max(y0 - t, 0), x0 : x1 + 1] = RED
            img[min(y1 + t, size - 1), x0 : x1 + 1] = RED
            img[y0 : y1 + 1, max(x0 - t, 0)] = RED
            img[y0 : y1 + 1, min(x1 + t, size - 1)] = RED
    out = np.clip(img, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


@dataclass(frozen=True)
class _Tree:
    """Indexes of the lexical tree used for sampling."""

    tasks: tuple[str, ...]
    task_weights: np.ndarray
    pairs: dict[str, tuple[tuple[str, str], ...]]
    siblings: dict[tuple[str, str], tuple[str, ...]]
    by_modality: dict[str, tuple[str, ...]]
    departments: dict[tuple[str, str], tuple[str, ...]]
    granularities: dict[tuple[str, str], tuple[str, ...]]
    joint: np.ndarray
    cells: dict[tuple[str, str], tuple[tuple[str, str], ...]]
    all_labels: tuple[str, ...]


def _index_tree() -> _Tree:
    tasks_tree = subject_tree("task")
    names = tuple(name for name, _ in TASKS if name in tasks_tree)
    weights = np.array([TASK_SHARES[abbr] for name, abbr in TASKS if name in tasks_tree])
    pairs = {t: tuple((m, lab) for m, labels in tasks_tree[t].items() for lab in labels) for t in names}
    siblings = {(t, m): tuple(labels) for t in names for m, labels in tasks_tree[t].items()}
    by_mod: dict[str, list[str]] = {}
    depts: dict[tuple[str, str], list[str]] = {}
    grans: dict[tuple[str, str], list[str]] = {}
    for dim, target in (("department", depts), ("granularity", grans), ("task", None)):
        for cat, mods in subject_tree(dim).items():
            for m, labels in mods.items():
                for lab in labels:
                    if lab not in by_mod.setdefault(m, []):
                        by_mod[m].append(lab)
                    if target is not None and cat not in target.setdefault((m, lab), []):
                        target[(m, lab)].append(cat)
    task_p = weights / weights.sum()
    gran_sets = {k: tuple(v) for k, v in grans.items()}
    joint, cells = _fit_joint(names, task_p, pairs, gran_sets)
    return _Tree(
        tasks=names,
        task_weights=task_p,
        pairs=pairs,
        siblings=siblings,
        by_modality={m: tuple(v) for m, v in by_mod.items()},
        departments={k: tuple(v) for k, v in depts.items()},
        granularities=gran_sets,
        joint=joint,
        cells=cells,
        all_labels=tuple(sorted({lab for labs in by_mod.values() for lab in labs})),
    )


def _fit_joint(
    tasks: tuple[str, ...],
    task_p: np.ndarray,
    pairs: dict[str, tuple[tuple[str, str], ...]],
    grans: dict[tuple[str, str], tuple[str, ...]],
) -> tuple[np.ndarray, dict[tuple[str, str], tuple[tuple[str, str], ...]]]:
    """A task x granularity distribution whose margins match the paper's shares.

    A (modality, label) pair only takes the granularities its tree allows, so drawing the
    granularity after the task over-represents Image level. Iterative proportional fitting,
    seeded with the number of pairs in each feasible cell, fixes both margins at once.

    Returns:
        The probability matrix (tasks x :data:`GRANULARITY_SHARES` keys) and the pairs of
        each (task, granularity) cell.
    """
    gnames = list(GRANULARITY_SHARES)
    cells: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {}
    m = np.zeros((len(tasks), len(gnames)))
    for i, t in enumerate(tasks):
        for j, g in enumerate(gnames):
            members = tuple(p for p in pairs[t] if g in (grans.get(p) or ("Image level",)))
            cells[(t, g)] = members
            m[i, j] = len(members)
    g_p = np.array([GRANULARITY_SHARES[g] for g in gnames])
    g_p = g_p / g_p.sum()
    for _ in range(200):
        m *= (task_p / np.maximum(m.sum(axis=1), 1e-12))[:, None]
        m *= (g_p / np.maximum(m.sum(axis=0), 1e-12))[None, :]
    return m / m.sum(), cells


def article(modality: str) -> str:
    """``a`` or ``an`` before a modality's name."""
    return "an" if modality.startswith(_AN_PREFIXES) or modality[0] in "AEIOU" else "a"


def synthetic_rows(
    questions: int, seed: int, *, layout: str = "val", image_size: int = 128
) -> Iterator[dict[str, str]]:
    """Generate synthetic benchmark rows (column -> value), deterministic by ``seed``.

    Args:
        questions: rows to generate; indexes are 0..questions-1.
        seed: random seed.
        layout: ``val`` (with ``answer``) or ``test`` (without).
        image_size: image side in pixels.
    """
    import base64

    if layout not in ("val", "test"):
        raise ValueError(f"layout must be 'val' or 'test', not {layout!r}")
    tree = _index_tree()
    rng = np.random.default_rng(seed)
    letters = "ABCDE"
    gnames = list(GRANULARITY_SHARES)
    flat = tree.joint.ravel()
    for index in range(questions):
        cell = int(rng.choice(tree.joint.size, p=flat))
        task, granularity = tree.tasks[cell // len(gnames)], gnames[cell % len(gnames)]
        members = tree.cells[(task, granularity)]
        modality, label = members[int(rng.integers(len(members)))]
        depts = tree.departments.get((modality, label), ())
        department = depts[int(rng.integers(len(depts)))] if depts else ""
        pool = [lab for lab in tree.siblings[(task, modality)] if lab != label]
        if len(pool) < 4:
            pool += [lab for lab in tree.by_modality.get(modality, ()) if lab != label and lab not in pool]
        if not pool:
            pool = [lab for lab in tree.all_labels if lab != label]
        n_options = int(rng.choice([2, 3, 4, 5], p=[0.1, 0.2, 0.3, 0.4]))
        n_distractors = min(n_options - 1, len(pool))
        picks: list[int] = (
            [int(i) for i in rng.choice(len(pool), size=n_distractors, replace=False)] if n_distractors else []
        )
        options = [label, *[pool[int(i)] for i in picks]]
        order = rng.permutation(len(options))
        options = [options[int(i)] for i in order]
        answer = letters[options.index(label)]
        template = _QUESTIONS[granularity][int(rng.integers(len(_QUESTIONS[granularity])))]
        if granularity == "Image level":
            original = "CLS_2D"
        elif granularity == "Box level":
            original = "DET_2D"
        else:
            original = "SEG_3D" if modality.endswith(_VOLUME_MODALITIES) and rng.random() < 0.5 else "SEG_2D"
        png = render_image(label, modality, granularity, rng, image_size)
        row = {
            "index": str(index),
            "question": template.format(a=article(modality), m=modality),
            **{letters[i]: (options[i] if i < len(options) else "") for i in range(5)},
            "answer": answer,
            "category": label,
            "clinical VQA task": task,
            "department": department,
            "perceptual granularity": granularity,
            "modality": modality,
            "original task": original,
            "image_path": f"/synthetic/gmai-mmbench/{original.lower()}/{index:06d}.png",
            "image": base64.b64encode(png).decode("ascii"),
        }
        if layout == "test":
            del row["answer"]
        yield row


def write_synthetic_tsv(path: Path, questions: int, seed: int, *, layout: str = "val", image_size: int = 128) -> None:
    """Write a synthetic benchmark TSV in the official layout (byte-identical for a seed).

    Args:
        path: output file.
        questions: number of rows.
        seed: random seed.
        layout: ``val`` or ``test`` (drops ``answer``).
        image_size: image side in pixels.
    """
    columns = [c for c in VAL_COLUMNS if layout == "val" or c != "answer"]
    tmp = Path(path).with_name(Path(path).name + ".partial")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(columns)
        for row in synthetic_rows(questions, seed, layout=layout, image_size=image_size):
            w.writerow([row[c] for c in columns])
    tmp.replace(path)
