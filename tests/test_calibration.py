"""Calibration figures (ECE, Brier, NLL, accuracy against coverage).

Checked against hand-worked examples and against a numpy computation written here from the
conventions in ``server/scoring/calibration.py``'s docstring: bins ``(0, .1], ..., (.9, 1]``
with 0 in the first, argmax with the earliest label on ties, NLL clipped at 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
from gmai_eval.server.scoring.calibration import (
    COVERAGES,
    Scored,
    accuracy_coverage,
    brier_score,
    expected_calibration_error,
    negative_log_likelihood,
    normalise,
    summarise,
)

# -- hand-worked ---------------------------------------------------------------------------


def test_ece_hand_worked_with_shared_bins_and_edges() -> None:
    conf = [0.2, 0.25, 0.3, 0.6, 0.6, 0.7, 0.75, 1.0]
    ok = [True, False, False, True, False, True, True, True]
    # bins are right-closed, so 0.2, 0.3 and 0.7 close their bins:
    #   (.1, .2]: {0.2 T}          acc 1,  conf .2    |1 - .2|    * 1/8 = 0.1
    #   (.2, .3]: {0.25 F, 0.3 F}  acc 0,  conf .275  |0 - .275|  * 2/8 = 0.06875
    #   (.5, .6]: {0.6 T, 0.6 F}   acc .5, conf .6    |.5 - .6|   * 2/8 = 0.025
    #   (.6, .7]: {0.7 T}          acc 1,  conf .7    |1 - .7|    * 1/8 = 0.0375
    #   (.7, .8]: {0.75 T}         acc 1,  conf .75   |1 - .75|   * 1/8 = 0.03125
    #   (.9, 1]:  {1.0 T}          acc 1,  conf 1     0
    # ECE = 0.1 + 0.06875 + 0.025 + 0.0375 + 0.03125 = 0.2625
    # (left-closed bins [.2, .3), [.3, .4), ... would give 0.2 instead)
    assert expected_calibration_error(conf, ok) == pytest.approx(0.2625, abs=1e-12)


def test_ece_zero_goes_to_the_first_bin() -> None:
    # (0, .1] holds 0.0 and 0.1: acc 1/2, conf .05 -> |.5 - .05| * 2/2 = 0.45
    assert expected_calibration_error([0.0, 0.1], [True, False]) == pytest.approx(0.45, abs=1e-12)
    # 0.7 closes (.6, .7]: two wrong at 0.7 -> |0 - .7| * 2/4 = 0.35; two right at 0.75 in
    # (.7, .8] -> |1 - .75| * 2/4 = 0.125; ECE 0.475 (one merged bin would give |.5 - .725| = 0.225)
    conf, ok = [0.7, 0.7, 0.75, 0.75], [False, False, True, True]
    assert expected_calibration_error(conf, ok) == pytest.approx(0.475, abs=1e-12)


def _cal_items() -> list[Scored]:
    items = [
        normalise(1, ["A", "B"], {"A": 0.8, "B": 0.2}, "A"),
        normalise(2, ["A", "B"], {"A": 0.6, "B": 0.4}, "B"),
        normalise(3, ["A", "B", "C"], {"A": 1, "B": 1, "C": 2, "Z": 5}, "C"),  # Z is not an option
        normalise(4, ["A", "B"], {"A": 1.0}, "B"),
    ]
    assert all(i is not None for i in items)
    return [i for i in items if i is not None]


def test_calibration_hand_worked() -> None:
    items = _cal_items()
    # probabilities: (.8, .2) ans A; (.6, .4) ans B; (.25, .25, .5) ans C; (1, 0) ans B
    assert [i.probs for i in items] == [
        pytest.approx((0.8, 0.2)), pytest.approx((0.6, 0.4)), (0.25, 0.25, 0.5), (1.0, 0.0),
    ]
    assert [i.predicted for i in items] == ["A", "A", "C", "A"]
    assert [i.correct for i in items] == [True, False, True, False]
    assert [i.confidence for i in items] == pytest.approx([0.8, 0.6, 0.5, 1.0])
    # one answer per bin: |1-.8| + |0-.6| + |1-.5| + |0-1| = 2.3, over 4 -> 0.575
    conf, ok = [i.confidence for i in items], [i.correct for i in items]
    assert expected_calibration_error(conf, ok) == pytest.approx(0.575, abs=1e-12)
    # Brier: (.2^2 + .2^2) + (.6^2 + .6^2) + (.25^2 + .25^2 + .5^2) + (1^2 + 1^2)
    #      = 0.08 + 0.72 + 0.375 + 2 = 3.175, over 4 -> 0.79375
    assert brier_score(items) == pytest.approx(0.79375, abs=1e-12)
    # NLL: -(ln .8 + ln .4 + ln .5 + ln 1e-12) / 4 = (0.2231436 + 0.9162907 + 0.6931472
    #      + 27.6310211) / 4 = 7.3659007
    assert negative_log_likelihood(items) == pytest.approx(7.3659007, abs=1e-7)
    # coverage: ranked by confidence 1.0 (wrong), .8 (right), .6 (wrong), .5 (right);
    # c = .1 keeps ceil(.4) = 1 -> 0; .3 keeps ceil(1.2) = 2 -> 1/2; .7 keeps 3 -> 1/3; 1.0 -> 2/4
    cov = dict(accuracy_coverage(items))
    assert cov[0.1] == 0.0 and cov[0.3] == 0.5 and cov[0.5] == 0.5
    assert cov[0.7] == pytest.approx(1 / 3) and cov[1.0] == 0.5
    s = summarise(items)
    assert (s.n, s.accuracy) == (4, 0.5)
    assert (s.ece, s.brier, s.nll) == pytest.approx((0.575, 0.79375, 7.3659007), abs=1e-7)


def test_calibration_edges() -> None:
    assert normalise(1, ["A", "B"], {}, "A") is None
    assert normalise(1, ["A", "B"], {"C": 1.0}, "A") is None
    assert normalise(1, ["A", "B"], {"A": -1.0}, "A") is None  # negative scores count as 0
    tie = normalise(1, ["A", "B"], {"A": 2, "B": 2}, "B")
    assert tie is not None and tie.predicted == "A" and tie.probs == (0.5, 0.5)
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([0.0], [False]) == 0.0
    with pytest.raises(ValueError, match="length"):
        expected_calibration_error([0.5], [])
    s = summarise([])
    assert s.n == 0 and s.ece == 0 and s.brier == 0 and s.nll == 0
    assert all(a == 0 for _, a in s.coverage)


# -- against an independent numpy computation ---------------------------------------------


def _numpy_ece(conf: np.ndarray, ok: np.ndarray, bins: int) -> float:
    # right-closed bins: digitize(right=True) gives i with edge[i-1] < x <= edge[i]; 0 -> bin 0
    inner_edges = np.arange(1, bins) / bins
    idx = np.digitize(conf, inner_edges, right=True)
    total = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            total += abs(ok[mask].mean() - conf[mask].mean()) * mask.sum() / len(conf)
    return total


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("bins", [10, 5, 20])
def test_ece_matches_numpy(seed: int, bins: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    conf = rng.uniform(0.0, 1.0, n)
    # put some answers exactly on bin edges, where the convention matters
    on_edge = rng.random(n) < 0.2
    conf[on_edge] = rng.integers(0, bins + 1, on_edge.sum()) / bins
    ok = rng.random(n) < conf  # roughly calibrated, so the ECE is not trivially large
    got = expected_calibration_error(conf.tolist(), ok.tolist(), bins=bins)
    assert got == pytest.approx(_numpy_ece(conf, ok, bins), abs=1e-12)


def _random_questions(rng: np.random.Generator, m: int, integer_scores: bool) -> list[tuple]:
    out = []
    for idx in range(m):
        k = int(rng.integers(2, 6))
        labels = [chr(ord("A") + j) for j in range(k)]
        raw = rng.integers(0, 4, k).astype(float) if integer_scores else rng.exponential(1.0, k)
        if raw.sum() == 0:
            raw[int(rng.integers(0, k))] = 1.0
        answer = labels[int(rng.integers(0, k))]
        out.append((idx, labels, raw, answer))
    return out


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("integer_scores", [False, True])  # integer scores make many ties
def test_summary_matches_numpy(seed: int, integer_scores: bool) -> None:
    rng = np.random.default_rng(100 + seed)
    m = int(rng.integers(1, 300))
    questions = _random_questions(rng, m, integer_scores)
    items = []
    for idx, labels, raw, answer in questions:
        item = normalise(idx, labels, dict(zip(labels, raw.tolist(), strict=True)), answer)
        assert item is not None
        items.append(item)

    conf, ok, brier, nll = [], [], [], []
    for _, labels, raw, answer in questions:
        p = raw / raw.sum()
        pred = int(np.argmax(p))  # first maximum: the earliest label on ties
        y = np.array([lab == answer for lab in labels], dtype=float)
        conf.append(p[pred])
        ok.append(labels[pred] == answer)
        brier.append(((p - y) ** 2).sum())
        nll.append(-np.log(max(p[labels.index(answer)], 1e-12)))
    conf_a, ok_a = np.array(conf), np.array(ok)

    s = summarise(items)
    assert s.n == m
    assert s.accuracy == pytest.approx(ok_a.mean(), abs=1e-12)
    assert s.ece == pytest.approx(_numpy_ece(conf_a, ok_a, 10), abs=1e-12)
    assert s.brier == pytest.approx(float(np.mean(brier)), rel=1e-12)
    assert s.nll == pytest.approx(float(np.mean(nll)), rel=1e-12)

    # coverage: most confident first, ties by row index; keep ceil(j * m / 10) answers
    order = np.lexsort((np.arange(m), -conf_a))
    for j, (c, acc) in enumerate(s.coverage, start=1):
        assert c == COVERAGES[j - 1]
        keep = max(1, -(-j * m // 10))
        assert acc == pytest.approx(ok_a[order[:keep]].mean(), abs=1e-12)
