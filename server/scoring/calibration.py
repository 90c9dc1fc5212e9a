"""Calibration of option probabilities (pure).

Defined only for answers that carry ``option_scores``. Scores are normalised to sum to 1
over the question's options (labels outside the options are ignored). The predicted
option is the most probable one (ties: the earliest label), its probability the
confidence.

- **ECE**: 10 equal-width bins on the confidence, ``(0, .1], (.1, .2], ... (.9, 1]`` with 0
  in the first bin; sum over bins of ``|accuracy - mean confidence| * bin share``.
- **Brier**: mean over questions of ``sum_k (p_k - y_k)^2`` over the question's options.
- **NLL**: mean of ``-log(max(p_correct, 1e-12))``.
- **Accuracy against coverage**: answers sorted by confidence (descending, ties by index);
  accuracy of the first ``ceil(c * n)`` answers for c = 10%, 20%, ..., 100%.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

NLL_CLIP = 1e-12
"""Smallest probability used in the log."""

COVERAGES: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
"""Coverage levels of the accuracy-coverage curve."""


@dataclass(frozen=True)
class Scored:
    """One question with option probabilities."""

    idx: int
    """Benchmark row index."""
    labels: tuple[str, ...]
    """The question's option labels, in order."""
    probs: tuple[float, ...]
    """Normalised probability of each label (sums to 1)."""
    answer: str
    """Correct label."""
    confidence: float = field(init=False, compare=False, repr=False)
    """Probability of the predicted label (the largest)."""
    predicted: str = field(init=False, compare=False, repr=False)
    """The most probable label (the earliest on ties)."""

    def __post_init__(self) -> None:
        # Computed once here: every calibration figure reads them for each question.
        confidence = max(self.probs)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "predicted", self.labels[self.probs.index(confidence)])

    @property
    def correct(self) -> bool:
        """True when the predicted label is the answer."""
        return self.predicted == self.answer


def normalise(idx: int, labels: Sequence[str], scores: Mapping[str, float], answer: str) -> Scored | None:
    """Build a :class:`Scored`; None when the scores carry no mass on the options."""
    raw = [max(0.0, float(scores.get(label, 0.0))) for label in labels]
    total = sum(raw)
    if total <= 0 or not math.isfinite(total):
        return None
    return Scored(idx, tuple(labels), tuple(p / total for p in raw), answer)


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """ECE with ``bins`` equal-width bins; 0 for no data."""
    n = len(confidences)
    if n != len(correct):
        raise ValueError("confidences and correct differ in length")
    if n == 0:
        return 0.0
    sums = [[0, 0.0, 0] for _ in range(bins)]  # count, confidence sum, correct count
    for conf, ok in zip(confidences, correct, strict=True):
        b = min(bins - 1, max(0, math.ceil(round(conf * bins, 9)) - 1))
        sums[b][0] += 1
        sums[b][1] += conf
        sums[b][2] += int(ok)
    ece = 0.0
    for count, conf_sum, ok_sum in sums:
        if count:
            ece += abs(ok_sum / count - conf_sum / count) * count / n
    return ece


def brier_score(items: Sequence[Scored]) -> float:
    """Multi-class Brier score over each question's options; 0 for no data."""
    if not items:
        return 0.0
    total = 0.0
    for it in items:
        total += sum((p - (1.0 if lab == it.answer else 0.0)) ** 2 for lab, p in zip(it.labels, it.probs, strict=True))
    return total / len(items)


def negative_log_likelihood(items: Sequence[Scored]) -> float:
    """Mean NLL of the correct option, probabilities clipped at :data:`NLL_CLIP`."""
    if not items:
        return 0.0
    total = 0.0
    for it in items:
        p = it.probs[it.labels.index(it.answer)] if it.answer in it.labels else 0.0
        total -= math.log(max(p, NLL_CLIP))
    return total / len(items)


def accuracy_coverage(items: Sequence[Scored], levels: Sequence[float] = COVERAGES) -> list[tuple[float, float]]:
    """(coverage, accuracy of the most confident answers at that coverage) pairs."""
    if not items:
        return [(c, 0.0) for c in levels]
    ranked = sorted(items, key=lambda it: (-it.confidence, it.idx))
    hits = list(itertools.accumulate(it.correct for it in ranked))  # correct among the first k
    out = []
    for c in levels:
        k = max(1, math.ceil(round(c * len(ranked), 9)))
        out.append((c, hits[k - 1] / k))
    return out


@dataclass(frozen=True)
class Calibration:
    """Calibration summary of a run."""

    n: int
    """Questions with usable option probabilities."""
    accuracy: float
    """Accuracy of the most probable option over those questions."""
    ece: float
    """Expected calibration error (10 bins)."""
    brier: float
    """Multi-class Brier score."""
    nll: float
    """Negative log-likelihood of the correct option."""
    coverage: tuple[tuple[float, float], ...]
    """Accuracy against coverage."""


def summarise(items: Sequence[Scored]) -> Calibration:
    """Every calibration figure for ``items``."""
    conf = [it.confidence for it in items]
    ok = [it.correct for it in items]
    return Calibration(
        n=len(items),
        accuracy=sum(ok) / len(items) if items else 0.0,
        ece=expected_calibration_error(conf, ok),
        brier=brier_score(items),
        nll=negative_log_likelihood(items),
        coverage=tuple(accuracy_coverage(items)),
    )
