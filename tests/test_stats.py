"""Wilson intervals and exact McNemar against scipy/statsmodels and hand-worked examples.

The oracles are independent implementations (statsmodels' ``proportion_confint`` and
scipy's ``binomtest``/``binom``), never the functions under test.
"""

from __future__ import annotations

import numpy as np
import pytest
from gmai_eval.server.scoring.stats import Z95, mcnemar_exact, wilson_interval
from hypothesis import given
from hypothesis import strategies as st

# -- Wilson ---------------------------------------------------------------------------------

WILSON_GRID = [
    (k, n)
    for n in (1, 2, 3, 5, 10, 48, 100, 1_000, 10_000, 1_000_000)
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n})
    if 0 <= k <= n
]


def test_z95_is_the_normal_quantile() -> None:
    from scipy.stats import norm

    assert norm.ppf(0.975) == pytest.approx(Z95, abs=1e-15)


def test_wilson_hand_worked_k8_n48() -> None:
    # p = 8/48 = 1/6 = 0.1666667, z = 1.959964, z^2 = 3.8414588
    # denom  = 1 + z^2/n = 1 + 0.0800304 = 1.0800304
    # centre = (p + z^2/(2n)) / denom = (0.1666667 + 0.0400152) / 1.0800304 = 0.1913667
    # half   = z * sqrt(p(1-p)/n + z^2/(4n^2)) / denom
    #        = 1.959964 * sqrt(0.0028935 + 0.0004168) / 1.0800304
    #        = 1.959964 * 0.0575356 / 1.0800304 = 0.1044116
    # interval = (0.1913667 - 0.1044116, 0.1913667 + 0.1044116) = (0.0869551, 0.2957783)
    lo, hi = wilson_interval(8, 48)
    assert lo == pytest.approx(0.0869551, abs=1e-7)
    assert hi == pytest.approx(0.2957783, abs=1e-7)


def test_wilson_hand_worked_edges() -> None:
    # n = 0: no information, the whole unit interval
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # k = 0, n = 1: upper = (z^2/2 + z*sqrt(z^2/4)) / (1 + z^2) = z^2 / (1 + z^2)
    #             = 3.8414588 / 4.8414588 = 0.7934507
    lo, hi = wilson_interval(0, 1)
    assert lo == 0.0 and hi == pytest.approx(0.7934507, abs=1e-7)
    # k = n = 1 mirrors it: lower = 1 / (1 + z^2) = 0.2065493
    lo, hi = wilson_interval(1, 1)
    assert lo == pytest.approx(0.2065493, abs=1e-7) and hi == 1.0
    # the textbook bounds at k = 0 and k = n are exactly 0 and 1; unclamped float arithmetic
    # gave 5.6e-17 for (0, 3) and 0.9999999999999999 for (10, 10)
    assert wilson_interval(0, 3)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0


@pytest.mark.parametrize("alpha", [0.05, 0.10, 0.01])
def test_wilson_matches_statsmodels_over_a_grid(alpha: float) -> None:
    from scipy.stats import norm
    from statsmodels.stats.proportion import proportion_confint

    ks = np.array([k for k, _ in WILSON_GRID])
    ns = np.array([n for _, n in WILSON_GRID])
    want_lo, want_hi = proportion_confint(ks, ns, alpha=alpha, method="wilson")
    z = float(norm.ppf(1 - alpha / 2))
    for (k, n), wl, wh in zip(WILSON_GRID, want_lo, want_hi, strict=True):
        lo, hi = wilson_interval(k, n) if alpha == 0.05 else wilson_interval(k, n, z=z)
        assert lo == pytest.approx(wl, rel=1e-9, abs=1e-12), (k, n)
        assert hi == pytest.approx(wh, rel=1e-9, abs=1e-12), (k, n)


@pytest.mark.parametrize(("k", "n"), [(-1, 5), (6, 5), (0, -1)])
def test_wilson_rejects_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="correct"):
        wilson_interval(k, n)


counts = st.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))
)


@given(counts)
def test_wilson_is_a_proper_interval_around_the_proportion(kn: tuple[int, int]) -> None:
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert lo < hi
    # k successes and n - k failures are mirror images
    mlo, mhi = wilson_interval(n - k, n)
    assert lo == pytest.approx(1 - mhi, abs=1e-12) and hi == pytest.approx(1 - mlo, abs=1e-12)


@given(counts)
def test_wilson_widens_with_confidence(kn: tuple[int, int]) -> None:
    from scipy.stats import norm

    k, n = kn
    lo90, hi90 = wilson_interval(k, n, z=float(norm.ppf(0.95)))
    lo99, hi99 = wilson_interval(k, n, z=float(norm.ppf(0.995)))
    assert lo99 <= lo90 and hi90 <= hi99


# -- exact McNemar ---------------------------------------------------------------------------
#
# The implementation's two-sided p is "twice the smaller binomial tail, capped at 1". Under
# Binomial(b + c, 1/2) the distribution is symmetric, so this equals scipy's binomtest
# two-sided p (the mass of outcomes no more likely than the one observed); both oracles are
# checked. b + c = 0 has no discordant pairs: p = 1 by definition (binomtest needs n >= 1).

MCNEMAR_GRID = [
    (0, 1), (1, 0), (0, 2), (1, 1), (2, 2), (3, 3), (1, 9), (9, 1), (0, 20), (20, 0),
    (5, 6), (10, 25), (25, 10), (50, 50), (49, 51), (100, 130), (0, 300), (400, 350),
    (1_000, 1_100), (2_500, 2_500),
]


def test_mcnemar_hand_worked() -> None:
    # b=1, c=9: n=10, smaller tail P(X <= 1) = (C(10,0) + C(10,1)) / 2^10 = (1 + 10) / 1024;
    # two-sided p = 2 * 11/1024 = 22/1024 = 0.021484375
    assert mcnemar_exact(1, 9) == pytest.approx(0.021484375, rel=1e-12)
    # b=0, c=20: tail P(X = 0) = 2^-20; p = 2^-19 = 1.9073486328125e-06
    assert mcnemar_exact(0, 20) == pytest.approx(2.0**-19, rel=1e-12)
    # b=3, c=3: tail P(X <= 3 | n=6) = (1+6+15+20)/64 = 42/64; 2 * 42/64 > 1, capped at 1
    assert mcnemar_exact(3, 3) == 1.0
    # no discordant pairs: nothing to test, p = 1
    assert mcnemar_exact(0, 0) == 1.0


@pytest.mark.parametrize(("b", "c"), MCNEMAR_GRID)
def test_mcnemar_matches_scipy(b: int, c: int) -> None:
    from scipy.stats import binom, binomtest

    n = b + c
    got = mcnemar_exact(b, c)
    doubled_tail = min(1.0, 2 * float(binom.cdf(min(b, c), n, 0.5)))
    assert got == pytest.approx(doubled_tail, rel=1e-9, abs=1e-300)
    assert got == pytest.approx(binomtest(b, n, 0.5, alternative="two-sided").pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("b", "c"), [(-1, 0), (0, -1)])
def test_mcnemar_rejects_negative_counts(b: int, c: int) -> None:
    with pytest.raises(ValueError, match="non-negative"):
        mcnemar_exact(b, c)


discordant = st.integers(min_value=0, max_value=600)


@given(discordant, discordant)
def test_mcnemar_properties(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    assert 0.0 <= p <= 1.0
    assert p == mcnemar_exact(c, b)
    if b == c:
        assert p == 1.0
    # moving one pair from the smaller to the larger side never makes the split less extreme
    if min(b, c) > 0:
        lo, hi = sorted((b, c))
        assert mcnemar_exact(lo - 1, hi + 1) <= p
