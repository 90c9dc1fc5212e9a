"""Position bias: the letters a run chose against the letters of the keys (pure).

A model that guesses by position picks some letters more often than the keys call for.
For each number of options k (2..5), the answered questions with k options form a group;
in each group the chosen letters are tested against the distribution the keys of those
same questions imply:

- **Which answers count.** A graded question with a key whose answer is one of its own
  options (verdict ``correct`` or ``incorrect`` with a single offered letter). Unparsed,
  refused and error answers, questions without a key, several labels at once and letters
  outside the question's options are left out (counted in ``excluded``).
- **Chi-square goodness of fit.** Pearson's statistic over the group's letters,
  ``sum_j (O_j - E_j)^2 / E_j``, where ``O_j`` is how often letter j was chosen and
  ``E_j = n * (share of letter j among the keys of those questions)``. Letters that are
  never the key have no expected count: the answers that chose them are left out of the
  test (not of the shares), and ``n`` is the number of answers left. ``df = (letters that
  are a key at least once) - 1``; the p-value is the chi-square survival function at the
  statistic (:func:`chi2_sf`, exact for integer df). A group with fewer than two key
  letters is not tested (p = 1).
- **Effect size.** The total-variation distance between the chosen and the key shares,
  ``0.5 * sum_j |chosen_j / n - key_j / n|`` over every letter of the group: the share of
  answers that would have to move to another letter to match the keys (0 to 1).
- **Flag.** A group is flagged when ``p < FLAG_P`` and ``effect >= FLAG_EFFECT``; a run is
  flagged when any group is. docs/scoring.md gives the reasoning.

A model that always answers the key scores exactly 0; one that picks uniformly is flagged
only when the keys themselves are far from uniform (the test is against the keys).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

FLAG_P = 0.001
"""A group is flagged only below this p-value ..."""

FLAG_EFFECT = 0.1
"""... and at or above this total-variation distance."""


@dataclass(frozen=True)
class Choice:
    """One answered question, as the test sees it."""

    labels: tuple[str, ...]
    """The question's offered option labels, in order."""
    chosen: str
    """The label the model chose ('' or several joined labels when it chose none or many)."""
    key: str | None
    """The correct label; None when the question has no key."""


@dataclass(frozen=True)
class GroupBias:
    """Position bias among the questions with one number of options."""

    options: int
    """Number of options of the group's questions."""
    letters: tuple[str, ...]
    """The group's letters (every offered label), in label order."""
    chosen: tuple[int, ...]
    """How often each letter was chosen."""
    key: tuple[int, ...]
    """How often each letter is the key."""
    n: int
    """Answers in the group."""
    chi_square: float
    """Pearson's statistic (0 when not tested)."""
    df: int
    """Degrees of freedom (0 when not tested)."""
    p_value: float
    """Chi-square survival function at the statistic (1 when not tested)."""
    effect: float
    """Total-variation distance between the chosen and the key shares."""
    flagged: bool
    """True when p < FLAG_P and effect >= FLAG_EFFECT."""


@dataclass(frozen=True)
class PositionBias:
    """Position bias of a run."""

    groups: tuple[GroupBias, ...]
    """One group per number of options that has answers, by number of options."""
    excluded: int
    """Graded questions left out (no key, no single offered letter chosen)."""
    flagged: bool
    """True when any group is flagged."""


def chi2_sf(x: float, df: int) -> float:
    """Survival function of the chi-square distribution with integer ``df`` >= 1.

    ``P(X > x) = Q(df/2, x/2)``, the regularized upper incomplete gamma function, in closed
    form for half-integer shapes: ``Q(1, y) = exp(-y)``, ``Q(1/2, y) = erfc(sqrt(y))`` and
    ``Q(a + 1, y) = Q(a, y) + y^a exp(-y) / Gamma(a + 1)``.
    """
    if df < 1:
        raise ValueError(f"df must be at least 1, got {df}")
    if x <= 0:
        return 1.0
    y = x / 2
    if df % 2 == 0:
        a, q = 1.0, math.exp(-y)
    else:
        a, q = 0.5, math.erfc(math.sqrt(y))
    log_y = math.log(y)
    while a < df / 2:
        q += math.exp(a * log_y - y - math.lgamma(a + 1))
        a += 1
    return min(1.0, q)


def pearson(observed: Sequence[int], expected: Sequence[float]) -> float:
    """Pearson's chi-square statistic; every expected count must be positive."""
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


def group_bias(options: int, letters: Sequence[str], chosen: Sequence[int], key: Sequence[int]) -> GroupBias:
    """Test one group's chosen letter counts against its key letter counts."""
    n = sum(chosen)
    if n != sum(key):
        raise ValueError("chosen and key counts differ in total")
    effect = 0.5 * sum(abs(c - k) for c, k in zip(chosen, key, strict=True)) / n if n else 0.0
    tested = [(c, k) for c, k in zip(chosen, key, strict=True) if k > 0]
    stat, df, p = 0.0, len(tested) - 1, 1.0
    n_test = sum(c for c, _ in tested)
    if df >= 1 and n_test > 0:
        stat = pearson([c for c, _ in tested], [n_test * k / n for _, k in tested])
        p = chi2_sf(stat, df)
    else:
        df = 0
    return GroupBias(
        options=options, letters=tuple(letters), chosen=tuple(chosen), key=tuple(key), n=n, chi_square=stat,
        df=df, p_value=p, effect=effect, flagged=p < FLAG_P and effect >= FLAG_EFFECT,
    )


def position_bias(choices: Iterable[Choice]) -> PositionBias:
    """Position bias of a run's answers, one group per number of options."""
    by_k: dict[int, list[Choice]] = {}
    excluded = 0
    for c in choices:
        if c.key is None or c.key not in c.labels or c.chosen not in c.labels:
            excluded += 1
            continue
        by_k.setdefault(len(c.labels), []).append(c)
    groups = []
    for k in sorted(by_k):
        items = by_k[k]
        letters = sorted({lab for c in items for lab in c.labels})
        chosen = [sum(c.chosen == lab for c in items) for lab in letters]
        key = [sum(c.key == lab for c in items) for lab in letters]
        groups.append(group_bias(k, letters, chosen, key))
    return PositionBias(tuple(groups), excluded, any(g.flagged for g in groups))
