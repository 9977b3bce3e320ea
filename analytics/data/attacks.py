"""The six false-data-injection attacks of Jokar, Arianpoo & Leung (2016), adapted to daily kWh.

Jokar et al. ("Electricity theft detection in AMI using customers' consumption
patterns", IEEE Trans. Smart Grid 7(1)) define h1..h6 on a day's readings; SGCC
data are daily totals, so each attack is applied to the series from the day the
theft starts to the end, and intra-day windows become windows of days.
"""
from __future__ import annotations

import numpy as np

ATTACK_TYPES = (
    "partial_reduction",  # h1: x_t * a, a ~ U(0.1, 0.8) fixed
    "zero_windows",       # h2: zero inside one random window of 4-20 days per 30-day block
    "random_scaling",     # h3: x_t * a_t, a_t ~ U(0.1, 0.8) drawn every day
    "mean_scaling",       # h4: mean(x) * a_t, a_t ~ U(0.1, 0.8) drawn every day
    "constant_mean",      # h5: mean(x) every day: a flat, plausible-looking total
    "reversed_order",     # h6: x_{T-t}: readings reported in reverse order
)


def inject_attack(series: np.ndarray, attack: str, rng: np.random.Generator) -> np.ndarray:
    """Return the tampered copy of ``series`` (the reported readings of one thief)."""
    length = len(series)
    if attack == "partial_reduction":
        return series * rng.uniform(0.1, 0.8)
    if attack == "zero_windows":
        tampered = series.copy()
        for block_start in range(0, length, 30):
            window = int(rng.integers(4, 21))
            offset = block_start + int(rng.integers(0, max(1, 30 - window)))
            tampered[offset:offset + window] = 0.0
        return tampered
    if attack == "random_scaling":
        return series * rng.uniform(0.1, 0.8, length)
    if attack == "mean_scaling":
        return series.mean() * rng.uniform(0.1, 0.8, length)
    if attack == "constant_mean":
        return np.full(length, series.mean())
    if attack == "reversed_order":
        return series[::-1].copy()
    raise ValueError(f"unknown attack type {attack!r}; expected one of {ATTACK_TYPES}")
