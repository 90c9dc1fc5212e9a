"""The reference model: a small CNN image encoder scored against hashed option text.

Each option's text becomes a bag of hashed features (the whole text, its words and word
bigrams) fed to an ``EmbeddingBag``; the image (RGB plus saturation-weighted hue
channels) goes through a four-layer CNN. The score
of an option is the dot product of the two embeddings, and the answer's probabilities
are the softmax over the question's own options. On the synthetic benchmark this learns
each label's visual signature; on real GMAI-MMBench it is a weak but honest baseline.
For a multi-answer question each option's score goes through its own sigmoid instead
(trained with ``gmai-model train --multi-choice``).

This module imports torch; import it only where torch is needed (the CLI does so lazily).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from gmai_eval.clients.sdk import Answer, AnswerFormat, AnswerStatus, Model, ModelInfo, Question
from PIL import Image as PILImage
from torch import nn

MAX_OPTIONS = 5
"""GMAI-MMBench questions have 2 to 5 options."""


@dataclass(frozen=True)
class NetConfig:
    """Shape of the network (saved with the weights)."""

    image_size: int = 32
    """Images are resized to this square side (docs/sdk.md has the accuracy and training
    time at 32 px against the earlier 64 px)."""
    embed_dim: int = 128
    """Joint embedding width."""
    hash_buckets: int = 1 << 13
    """Hashed text feature buckets (AdamW updates every bucket at every step; 1 << 16 of
    them made a training step 3x slower at 32 px)."""
    channels: int = 32
    """Width of the CNN's convolutions."""


_WORD = re.compile(r"[a-z0-9]+")
FULL_TEXT_WEIGHT = 4
"""Copies of the whole-text feature in an option's bag (the label's own embedding dominates)."""


def text_features(text: str, buckets: int) -> list[int]:
    """Hash an option text into feature ids: the whole text, its words and word bigrams.

    Uses CRC-32 (stable across processes, unlike ``hash``).
    """
    lowered = text.lower().strip()
    words = _WORD.findall(lowered)
    grams = [f"t:{lowered}"] * FULL_TEXT_WEIGHT + [f"w:{w}" for w in words]
    grams += [f"b:{a}_{b}" for a, b in itertools.pairwise(words)]
    return [zlib.crc32(g.encode()) % buckets for g in grams]


def _pixels(img: PILImage.Image) -> torch.Tensor:
    """A 3-band Pillow image as a ``(3, H, W)`` float32 tensor in [0, 1]."""
    width, height = img.size
    raw = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
    return raw.view(height, width, 3).permute(2, 0, 1).float().div_(255.0)


def image_array(data: bytes, size: int) -> torch.Tensor:
    """Decode image bytes to a ``(IMAGE_CHANNELS, size, size)`` float32 tensor.

    Channels: RGB in [0, 1], then hue as (cos, sin) weighted by saturation, and
    saturation itself, so that colour identity is explicit and cheap to pool.
    """
    with PILImage.open(io.BytesIO(data)) as img:
        rgb = img.convert("RGB").resize((size, size), PILImage.Resampling.BILINEAR)
    hsv = _pixels(rgb.convert("HSV"))
    hue = hsv[0] * (2 * math.pi)
    sat = hsv[1]
    return torch.cat([_pixels(rgb), torch.stack([torch.cos(hue) * sat, torch.sin(hue) * sat, sat])])


IMAGE_CHANNELS = 6
"""Input channels produced by :func:`image_array`."""


class ReferenceNet(nn.Module):
    """CNN image encoder + EmbeddingBag option encoder, scored by dot product."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        c = config.channels
        self.config = config
        self.cnn = nn.Sequential(
            nn.Conv2d(IMAGE_CHANNELS, c, 5, stride=2, padding=2),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, c, 3, stride=2, padding=1),
            nn.BatchNorm2d(c),
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, stride=2, padding=1),
            nn.BatchNorm2d(2 * c),
            nn.ReLU(),
            nn.Conv2d(2 * c, 2 * c, 3, stride=1, padding=1),
            nn.ReLU(),
        )
        self.dropout = nn.Dropout(0.2)
        self.image_head = nn.Linear(4 * c, config.embed_dim)
        self.text = nn.EmbeddingBag(config.hash_buckets, config.embed_dim, mode="mean")
        self.scale = nn.Parameter(torch.tensor(4.0))

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` -> ``(B, D)`` unit vectors."""
        feats = self.cnn(images)
        pooled = torch.cat([feats.mean(dim=(2, 3)), feats.amax(dim=(2, 3))], dim=1)
        return nn.functional.normalize(self.image_head(self.dropout(pooled)), dim=1)

    def forward(
        self,
        images: torch.Tensor,
        feature_ids: torch.Tensor,
        offsets: torch.Tensor,
        mask: torch.Tensor,
    ) -> torch.Tensor:
        """Option logits ``(B, MAX_OPTIONS)``; padded options get ``-inf``.

        Args:
            images: ``(B, 3, S, S)``.
            feature_ids: Concatenated hashed features of the ``B * MAX_OPTIONS`` options.
            offsets: Start of each option's features in ``feature_ids``.
            mask: ``(B, MAX_OPTIONS)`` booleans, true for real options.
        """
        img = self.encode_images(images)
        opt = nn.functional.normalize(self.text(feature_ids, offsets), dim=1)
        opt = opt.view(images.shape[0], MAX_OPTIONS, -1)
        logits = torch.einsum("bd,bkd->bk", img, opt) * self.scale
        return logits.masked_fill(~mask, float("-inf"))


def text_batch(
    option_texts: Sequence[Sequence[str]], buckets: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build ``(feature_ids, offsets, mask)`` for a batch of option lists."""
    ids: list[int] = []
    offsets: list[int] = []
    mask = torch.zeros(len(option_texts), MAX_OPTIONS, dtype=torch.bool)
    for b, texts in enumerate(option_texts):
        if len(texts) > MAX_OPTIONS:
            raise ValueError(
                f"{len(texts)} options; the reference model handles at most {MAX_OPTIONS}"
            )
        for k in range(MAX_OPTIONS):
            offsets.append(len(ids))
            if k < len(texts):
                ids.extend(text_features(texts[k], buckets))
                mask[b, k] = True
            else:
                ids.append(0)
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long), mask


def choose_label_mask(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Multi-answer choice: every real option whose sigmoid passes 1/2 (logit > 0), and at
    least the highest one, so an answer is never empty. ``(B, MAX_OPTIONS)`` booleans."""
    chosen = (logits > 0) & mask
    top = logits.masked_fill(~mask, float("-inf")).argmax(dim=1)
    chosen[torch.arange(logits.shape[0]), top] = True
    return chosen


def option_logits(
    net: ReferenceNet,
    arrays: Sequence[torch.Tensor],
    option_texts: Sequence[Sequence[str]],
    device: str = "cpu",
) -> torch.Tensor:
    """The raw option logits ``(B, MAX_OPTIONS)`` (padded options ``-inf``), on the CPU."""
    batch = torch.stack(list(arrays)).to(device)
    ids, offsets, mask = text_batch(option_texts, net.config.hash_buckets)
    with torch.inference_mode():
        logits: torch.Tensor = net(batch, ids.to(device), offsets.to(device), mask.to(device)).cpu()
    return logits


def save_weights(net: ReferenceNet, path: Path) -> str:
    """Save config and weights; return ``sha256:<hex>`` of the written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"config": asdict(net.config), "state_dict": net.state_dict()}, tmp)
    tmp.replace(path)
    return file_digest(path)


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def load_weights(path: Path, device: str = "cpu") -> ReferenceNet:
    """Load a network saved by :func:`save_weights` (``weights_only``: no code runs)."""
    blob = torch.load(path, map_location=device, weights_only=True)
    net = ReferenceNet(NetConfig(**blob["config"]))
    net.load_state_dict(blob["state_dict"])
    return net.to(device).eval()


def predict_probabilities(
    net: ReferenceNet,
    images: Sequence[bytes],
    option_texts: Sequence[Sequence[str]],
    device: str = "cpu",
) -> list[list[float]]:
    """Probabilities over each question's options (softmax over its own options)."""
    size = net.config.image_size
    return score_arrays(net, [image_array(d, size) for d in images], option_texts, device)


def score_arrays(
    net: ReferenceNet,
    arrays: Sequence[torch.Tensor],
    option_texts: Sequence[Sequence[str]],
    device: str = "cpu",
) -> list[list[float]]:
    """Like :func:`predict_probabilities`, for images already decoded by :func:`image_array`."""
    batch = torch.stack(list(arrays)).to(device)
    ids, offsets, mask = text_batch(option_texts, net.config.hash_buckets)
    with torch.inference_mode():
        logits = net(batch, ids.to(device), offsets.to(device), mask.to(device))
        probs = torch.softmax(logits, dim=1).cpu()
    return [probs[b, : len(texts)].tolist() for b, texts in enumerate(option_texts)]


class ReferenceModel(Model):
    """The reference CNN behind the SDK (dynamic batching friendly).

    Args:
        weights: Path to a file written by ``gmai-model train``.
        device: ``cpu`` or ``cuda`` (``auto`` picks CUDA when available).
        threads: torch intra-op threads on CPU.
    """

    name = "reference-cnn"
    version = "1.0"
    vendor = "gmai-eval"
    capabilities = ("option_scores",)

    def __init__(self, weights: Path, device: str = "auto", threads: int = 2) -> None:
        self.weights = Path(weights)
        self.device = (
            ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        )
        self.threads = threads
        self.net: ReferenceNet | None = None
        self._digest = ""

    def load(self) -> None:
        """Load the weights and compute their digest (runs before SERVING)."""
        if self.device == "cpu":
            torch.set_num_threads(self.threads)
        self._digest = file_digest(self.weights)
        self.net = load_weights(self.weights, self.device)

    def weights_digest(self) -> str:
        """``sha256:<hex>`` of the weights file."""
        return self._digest

    def info(self) -> ModelInfo:
        """Identity plus framework and device properties."""
        return ModelInfo(
            name=self.name,
            version=self.version,
            vendor=self.vendor,
            weights_digest=self._digest,
            capabilities=self.capabilities,
            preferred_batch_size=32,
            properties={"framework": f"torch {torch.__version__}", "device": self.device},
        )

    def predict_batch(self, questions: Sequence[Question]) -> list[Answer]:
        """Answer a batch in one forward pass.

        A single-answer question gets the most probable option (softmax over its options);
        a multi-answer one every option whose sigmoid passes 1/2, at least one
        (:func:`choose_label_mask`). A question the model cannot take (no image, an image that fails to decode, more
        than five options) gets ``INPUT_UNSUPPORTED`` on its own; the rest of the batch
        is answered normally.
        """
        if self.net is None:
            raise RuntimeError("weights not loaded")
        answers: list[Answer | None] = [None] * len(questions)
        arrays: list[torch.Tensor] = []
        texts: list[list[str]] = []
        kept: list[int] = []
        for i, q in enumerate(questions):
            if not q.images:
                answers[i] = unsupported("the reference model needs an image")
                continue
            if len(q.options) > MAX_OPTIONS:
                answers[i] = unsupported(f"{len(q.options)} options; at most {MAX_OPTIONS}")
                continue
            try:
                arrays.append(image_array(q.image.data, self.net.config.image_size))
            except (OSError, ValueError, SyntaxError) as exc:  # PIL raises all three
                answers[i] = unsupported(f"the image cannot be decoded: {exc}")
                continue
            texts.append([o.text for o in q.options])
            kept.append(i)
        multi = [questions[i].answer_format is AnswerFormat.MULTI_CHOICE for i in kept]
        if any(multi):
            logits = option_logits(self.net, arrays, texts, self.device)
            mask = torch.isfinite(logits)
            chosen = choose_label_mask(logits, mask)
            softmax = torch.softmax(logits, dim=1)
            for row, (i, is_multi) in enumerate(zip(kept, multi, strict=True)):
                labels = questions[i].labels
                if is_multi:  # a sigmoid per option; no probabilities sent (they need not sum to 1)
                    answers[i] = Answer(labels=tuple(lab for k, lab in enumerate(labels) if chosen[row, k]))
                else:
                    answers[i] = Answer.from_probabilities(
                        dict(zip(labels, softmax[row, : len(labels)].tolist(), strict=True))
                    )
        elif kept:
            probs = score_arrays(self.net, arrays, texts, self.device)
            for i, p in zip(kept, probs, strict=True):
                labels = questions[i].labels
                answers[i] = Answer.from_probabilities(dict(zip(labels, p, strict=True)))
        return [a for a in answers if a is not None]


def unsupported(reason: str) -> Answer:
    """An ``INPUT_UNSUPPORTED`` answer with its reason."""
    return Answer(status=AnswerStatus.INPUT_UNSUPPORTED, text=reason)
