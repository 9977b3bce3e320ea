"""Contribution shares (exact 10,000 bps, documented rounding) and DP (clipping, noise, epsilon)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, strategies as st

from fl_coordinator.dp import DPConfig, clip, epsilon, privatize
from fl_coordinator.shares import BPS, round_shares as by_weights, task_shares
from fl_coordinator.strategy import FedAvg


def round_shares(partners, counts):
    """Shares as the coordinator takes them: by the weights FedAvg aggregated the round with."""
    return by_weights(partners, FedAvg.weights(counts) if counts else [], counts)


@given(st.lists(st.integers(1, 10 ** 9), min_size=1, max_size=40))
def test_round_shares_sum_exactly_and_stay_within_one_bp(counts):
    partners = [f"0x{i:040x}" for i in range(len(counts))]
    bps = round_shares(partners, counts)
    assert sum(bps) == BPS
    total = sum(counts)
    for n, b in zip(counts, bps):
        assert abs(b - BPS * n / total) < 1


def test_largest_remainder_tie_break_is_documented_order():
    # 1/3 each: 3333 + 1 leftover point -> lowest address (equal counts)
    assert round_shares(["0xB", "0xa", "0xC"], [5, 5, 5]) == [3333, 3334, 3333]
    # equal remainders, larger sample count wins the leftover
    assert round_shares(["0x1", "0x2"], [1, 1]) == [5000, 5000]
    assert round_shares(["0x1", "0x2", "0x3"], [1, 1, 2]) == [2500, 2500, 5000]


def test_bad_counts_refused():
    with pytest.raises(ValueError):
        round_shares(["0x1"], [0])
    with pytest.raises(ValueError):
        round_shares([], [])
    with pytest.raises(ValueError):  # weights that do not sum to 1
        by_weights(["0x1", "0x2"], [Fraction(1, 3), Fraction(1, 3)], [1, 1])


def test_task_shares_dropout_counts_zero_for_missed_rounds():
    r1 = dict(zip(["0xa", "0xb", "0xc"], round_shares(["0xa", "0xb", "0xc"], [100, 100, 200])))
    r2 = dict(zip(["0xa", "0xc"], round_shares(["0xa", "0xc"], [100, 200])))  # 0xb dropped
    shares = task_shares([r1, r2])
    assert sum(shares.values()) == BPS
    assert shares["0xb"] == 1250  # 2500 in round 1, 0 in round 2
    # 2916.5 and 5833.5: the tied leftover point goes to the larger contributor
    assert shares["0xa"] == 2916 and shares["0xc"] == 5834


def test_clip_bounds_norm_and_keeps_small_updates():
    v = np.array([3.0, 4.0])
    assert np.linalg.norm(clip(v, 1.0)) == pytest.approx(1.0)
    assert np.array_equal(clip(v, 10.0), v)


def test_privatize_noise_has_calibrated_std():
    cfg = DPConfig(clip=0.5, noise_multiplier=2.0)
    rng = np.random.default_rng(0)
    out = privatize(np.zeros(200_000), cfg, rng)
    assert out.std() == pytest.approx(1.0, rel=0.02)  # sigma * C
    assert abs(out.mean()) < 0.01


def _hockey_stick(eps: float, mu: float) -> float:
    """delta(eps) between N(mu, 1) and N(0, 1), by numerical integration (no closed form used)."""
    x = np.linspace(-40.0, 40.0 + mu, 800_001)
    p = np.exp(-0.5 * (x - mu) ** 2) / np.sqrt(2 * np.pi)
    q = np.exp(-0.5 * x ** 2) / np.sqrt(2 * np.pi)
    return float(np.trapezoid(np.maximum(p - np.exp(eps) * q, 0.0), x))


@pytest.mark.parametrize("sigma, rounds", [(1.0, 1), (0.8, 20), (2.75, 30), (5.0, 3)])
def test_epsilon_is_the_exact_curve_of_the_composed_gaussian_mechanism(sigma, rounds):
    # `rounds` releases with noise sigma*C and sensitivity C compose into one shift of sqrt(rounds)/sigma
    # standard deviations: the reported epsilon must give exactly delta there, and no smaller one may
    eps = epsilon(sigma, rounds, 1e-5)
    mu = np.sqrt(rounds) / sigma
    assert _hockey_stick(eps, mu) == pytest.approx(1e-5, rel=1e-4)
    assert _hockey_stick(eps * 0.99, mu) > 1e-5


def test_epsilon_composition_and_known_values():
    one = epsilon(1.0, 1, 1e-5)
    assert one == pytest.approx(4.377, abs=2e-3)  # analytic Gaussian mechanism, sigma=1, delta=1e-5
    assert epsilon(1.0, 4, 1e-5) == pytest.approx(epsilon(0.5, 1, 1e-5))  # 4 rounds at sigma 1 = 1 at sigma 1/2
    assert epsilon(2.0, 1, 1e-5) < one < epsilon(1.0, 10, 1e-5) < 10 * one
    assert epsilon(1.0, 10, 1e-5) < 19.05  # the RDP bound (Opacus' conversion) is looser
    assert epsilon(1.0, 0, 1e-5) == 0.0
    assert epsilon(1e5, 1, 1e-5) == 0.0  # noise this large meets delta at epsilon 0
