"""The synthetic benchmark: official layout, tree consistency, determinism, visible answers."""

from __future__ import annotations

import base64
import colorsys
import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from gmai_eval.server.data.synth import VAL_COLUMNS, label_signature, write_synthetic_tsv
from gmai_eval.server.taxonomy import TASKS, lexical_tree
from PIL import Image

from tests._data_helpers import read_tsv

N = 600


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    path = tmp_path_factory.mktemp("synth") / "val.tsv"
    write_synthetic_tsv(path, N, seed=5, image_size=64)
    return read_tsv(path)


def test_layout_and_determinism(tmp_path: Path) -> None:
    a, b, c, t = (tmp_path / f"{n}.tsv" for n in "abct")
    write_synthetic_tsv(a, 30, seed=1)
    write_synthetic_tsv(b, 30, seed=1)
    write_synthetic_tsv(c, 30, seed=2)
    write_synthetic_tsv(t, 30, seed=1, layout="test")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert a.read_text().splitlines()[0].split("\t") == list(VAL_COLUMNS)
    assert VAL_COLUMNS == (
        "index", "question", "A", "B", "C", "D", "E", "answer", "category", "clinical VQA task",
        "department", "perceptual granularity", "modality", "original task", "image_path", "image",
    )
    val_rows, test_rows = read_tsv(a), read_tsv(t)
    assert list(test_rows[0]) == [col for col in VAL_COLUMNS if col != "answer"]
    for v, te in zip(val_rows, test_rows, strict=True):
        assert {k: x for k, x in v.items() if k != "answer"} == te
    with pytest.raises(ValueError, match="layout"):
        write_synthetic_tsv(tmp_path / "x.tsv", 1, 0, layout="train")


def test_rows_are_consistent_with_the_tree(rows: list[dict[str, str]]) -> None:
    tree = lexical_tree()
    assert len(rows) == N and [int(r["index"]) for r in rows] == list(range(N))
    for r in rows:
        task, mod, label = r["clinical VQA task"], r["modality"], r["category"]
        assert label in tree["clinical_vqa_task"][task][mod]
        dept = r["department"]
        if dept:
            assert label in tree["department"][dept][mod]
        else:
            holders = [d for d, mods in tree["department"].items() if d and label in mods.get(mod, ())]
            assert holders == [] or label in tree["department"][""].get(mod, ())
        gran = r["perceptual granularity"]
        assert gran in ("Image level", "Box level", "Mask level", "Contour level")
        granularity_tree = tree["perceptual_granularity"][gran]
        assert label in granularity_tree.get(mod, ()) or (
            gran == "Image level"
            and not any(label in mods.get(mod, ()) for mods in tree["perceptual_granularity"].values())
        )
        opts = [r[c] for c in "ABCDE" if r[c]]
        assert 2 <= len(opts) <= 5 and len(set(opts)) == len(opts)
        assert [c for c in "ABCDE" if r[c]] == list("ABCDE"[: len(opts)])
        assert r[r["answer"]] == label
        assert r["original task"] == {"Image level": "CLS_2D", "Box level": "DET_2D"}.get(
            gran, r["original task"]
        ) and r["original task"] in ("CLS_2D", "DET_2D", "SEG_2D", "SEG_3D")
        assert f" {mod} image" in r["question"] or f"this {mod} image" in r["question"]


def test_proportions_close_to_the_paper(rows: list[dict[str, str]]) -> None:
    tasks = Counter(r["clinical VQA task"] for r in rows)
    assert set(tasks) <= {n for n, _ in TASKS}
    assert 0.44 < tasks["Disease Diagnosis"] / N < 0.59  # paper 51.56 %
    assert 0.05 < tasks["Severity Grading"] / N < 0.14  # paper 9.07 %
    grans = Counter(r["perceptual granularity"] for r in rows)
    assert 0.42 < grans["Image level"] / N < 0.57  # paper 49.22 %
    assert 0.16 < grans["Mask level"] / N < 0.29  # paper 22.01 %
    assert 0.16 < grans["Contour level"] / N < 0.29  # paper 22.01 %
    assert 0.03 < grans["Box level"] / N < 0.11  # paper 6.76 %
    options = Counter(sum(1 for c in "ABCDE" if r[c]) for r in rows)
    assert set(options) == {2, 3, 4, 5}
    assert Counter(r["answer"] for r in rows)["A"] < 0.45 * N  # shuffled


def _image(r: dict[str, str]) -> np.ndarray:
    img = Image.open(io.BytesIO(base64.b64decode(r["image"])))
    assert img.format == "PNG" and img.size == (64, 64) and img.mode == "RGB"
    return np.asarray(img).astype(np.int32)


def test_visual_prompts_in_red(rows: list[dict[str, str]]) -> None:
    for r in rows[:200]:
        arr = _image(r)
        pure_red = int(((arr[:, :, 0] == 255) & (arr[:, :, 1] == 0) & (arr[:, :, 2] == 0)).sum())
        gran = r["perceptual granularity"]
        if gran in ("Box level", "Contour level"):
            assert pure_red >= 40, r["index"]
        else:
            assert pure_red == 0, r["index"]


def _dominant_hue(arr: np.ndarray) -> float:
    rgb = arr.reshape(-1, 3) / 255.0
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    keep = (sat > 0.6) & (mx > 0.35) & ~((rgb[:, 0] > 0.9) & (rgb[:, 1] < 0.1) & (rgb[:, 2] < 0.1))
    hues = np.array([colorsys.rgb_to_hsv(*px)[0] for px in rgb[keep]])
    angle = np.angle(np.exp(2j * np.pi * hues).mean())
    return float(angle / (2 * np.pi)) % 1.0


def test_answer_is_visible(rows: list[dict[str, str]]) -> None:
    """Reading only the finding's hue picks the right option far above chance."""
    hits = total = 0
    for r in rows:
        if r["perceptual granularity"] == "Mask level":
            continue  # the red overlay shifts the hue; the other signature traits remain
        hue = _dominant_hue(_image(r))
        opts = {c: r[c] for c in "ABCDE" if r[c]}

        def dist(text: str, hue: float = hue) -> float:
            d = abs(label_signature(text).hue - hue)
            return min(d, 1 - d)

        guess = min(opts, key=lambda c: dist(opts[c]))
        hits += guess == r["answer"]
        total += 1
    assert total > 300
    assert hits / total > 0.9


def test_signatures_differ_between_labels() -> None:
    labels = sorted({lab for mods in lexical_tree()["clinical_vqa_task"].values() for ls in mods.values() for lab in ls})
    sigs = {label_signature(lab) for lab in labels}
    assert len(sigs) == len(labels)
    assert label_signature("liver") == label_signature("liver")
    assert all(30 / 360 <= s.hue <= 330 / 360 for s in sigs)
