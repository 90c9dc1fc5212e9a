"""Training the reference model on a GMAI-MMBench-layout TSV (synthetic or real VAL).

Images are decoded and resized once; each epoch shuffles the questions and minimises the
cross-entropy of the correct option against the question's other options. A few
thousand synthetic questions train in well under two minutes on two CPU cores.

With ``multi_choice`` (a multi-answer TSV, keys like ``A,C``) the loss is instead a binary
cross-entropy per option (a sigmoid per option, over the question's real options): the
model learns to say of each option whether it is present, and answers with every option
whose sigmoid passes one half (:func:`.model.choose_labels`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data import Row, read_rows
from .model import (
    MAX_OPTIONS,
    NetConfig,
    ReferenceNet,
    choose_label_mask,
    image_array,
    option_logits,
    predict_probabilities,
    save_weights,
    text_batch,
)


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    weights: Path
    """Where the weights were written."""
    digest: str
    """``sha256:<hex>`` of the weights file (reported as GetModelInfo.weights_digest)."""
    questions: int
    """Training questions used."""
    epochs: int
    """Epochs run."""
    seconds: float
    """Wall-clock training time (decoding included)."""
    train_accuracy: float
    """Accuracy on the training questions after the last epoch."""


def _encode(rows: Sequence[Row], size: int) -> tuple[torch.Tensor, list[list[str]], torch.Tensor]:
    images = torch.stack([image_array(r.image, size) for r in rows])
    texts = [list(r.option_texts) for r in rows]
    answers = torch.tensor([r.labels.index(r.answer) for r in rows], dtype=torch.long)
    return images, texts, answers


def _targets(rows: Sequence[Row]) -> torch.Tensor:
    """``(N, MAX_OPTIONS)`` 0/1 targets: 1 for each correct option of a multi-answer row."""
    out = torch.zeros(len(rows), MAX_OPTIONS)
    for i, r in enumerate(rows):
        for label in r.answers:
            out[i, r.labels.index(label)] = 1.0
    return out


def _multi_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of the real options (padded options left out)."""
    per_option = nn.functional.binary_cross_entropy_with_logits(
        logits.masked_fill(~mask, 0.0), targets, reduction="none"
    )
    return (per_option * mask).sum() / mask.sum()


def train(
    tsv: Path,
    out: Path,
    *,
    epochs: int = 12,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
    threads: int = 2,
    limit: int | None = None,
    config: NetConfig | None = None,
    progress: Callable[[str], None] | None = None,
    multi_choice: bool = False,
) -> TrainResult:
    """Train the reference model and save it.

    Args:
        tsv: Training TSV in the GMAI-MMBench VAL layout (with ``answer``).
        out: Where to write the weights.
        epochs: Passes over the data.
        seed: Seeds torch and the shuffling (same seed, same weights on one machine).
        batch_size: Questions per optimisation step.
        learning_rate: AdamW learning rate.
        threads: torch intra-op threads.
        limit: Use only the first ``limit`` rows.
        config: Network shape.
        progress: Receives one line per epoch.
        multi_choice: The TSV holds multi-answer questions (keys like ``A,C``): train a
            sigmoid per option; the reported accuracy is then exact-set accuracy.

    Returns:
        The weights path, digest and training figures.
    """
    start = time.monotonic()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    config = config or NetConfig()
    rows = list(read_rows(tsv, require_answer=True, limit=limit))
    if not rows:
        raise ValueError(f"{tsv}: no rows to train on")
    if multi_choice:
        images = torch.stack([image_array(r.image, config.image_size) for r in rows])
        texts = [list(r.option_texts) for r in rows]
        answers = _targets(rows)
    else:
        images, texts, answers = _encode(rows, config.image_size)
    net = ReferenceNet(config)
    # fused: one kernel per step for all parameters (training about 15% faster on the CPU,
    # docs/benchmarks.md "A fused optimiser step").
    optimiser = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=1e-4, fused=True)
    steps = epochs * ((len(rows) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=learning_rate, total_steps=max(steps, 1)
    )
    generator = torch.Generator().manual_seed(seed)
    loss_fn = nn.CrossEntropyLoss()
    correct = 0
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(rows), generator=generator)
        total_loss, correct = 0.0, 0
        for i in range(0, len(rows), batch_size):
            idx = order[i : i + batch_size]
            ids, offsets, mask = text_batch([texts[j] for j in idx.tolist()], config.hash_buckets)
            logits = net(images[idx], ids, offsets, mask)
            loss = _multi_loss(logits, answers[idx], mask) if multi_choice else loss_fn(logits, answers[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += float(loss.detach()) * len(idx)
            if multi_choice:
                chosen = choose_label_mask(logits.detach(), mask)
                correct += int((chosen == answers[idx].bool()).all(dim=1).sum())
            else:
                correct += int((logits.argmax(1) == answers[idx]).sum())
        if progress is not None:
            progress(
                f"epoch {epoch + 1}/{epochs}: loss {total_loss / len(rows):.3f}, "
                f"train accuracy {correct / len(rows):.3f}"
            )
    net.eval()
    digest = save_weights(net, Path(out))
    return TrainResult(
        weights=Path(out),
        digest=digest,
        questions=len(rows),
        epochs=epochs,
        seconds=time.monotonic() - start,
        train_accuracy=correct / len(rows),
    )


def accuracy(net: ReferenceNet, rows: Sequence[Row], batch_size: int = 64) -> float:
    """Accuracy of ``net`` on rows with answers (in-process, no gRPC)."""
    net.eval()
    hits = 0
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        probs = predict_probabilities(
            net, [r.image for r in chunk], [list(r.option_texts) for r in chunk]
        )
        hits += sum(
            p.index(max(p)) == r.labels.index(r.answer) for p, r in zip(probs, chunk, strict=True)
        )
    return hits / len(rows)


def multi_answer_metrics(net: ReferenceNet, rows: Sequence[Row], batch_size: int = 64) -> tuple[float, float, float]:
    """Exact-set accuracy, mean ACC_mcls and mean Recall_mcls of ``net`` on multi-answer
    rows (in-process, no gRPC), as docs/scoring.md defines them."""
    net.eval()
    exact = acc = recall = 0.0
    for i in range(0, len(rows), batch_size):
        chunk = rows[i : i + batch_size]
        arrays = [image_array(r.image, net.config.image_size) for r in chunk]
        logits = option_logits(net, arrays, [list(r.option_texts) for r in chunk])
        chosen = choose_label_mask(logits, torch.isfinite(logits))
        for row, r in enumerate(chunk):
            picked = {lab for k, lab in enumerate(r.labels) if chosen[row, k]}
            truth = set(r.answers)
            exact += picked == truth
            acc += len(picked & truth) / len(picked)
            recall += len(picked & truth) / len(truth)
    return exact / len(rows), acc / len(rows), recall / len(rows)
