"""Contribution shares in basis points: by the round's aggregation weights (FedAvg's and
FedProx's: sample-weighted), summing to exactly 10,000.

Rounding (Hamilton / largest remainder): each partner first gets
floor(10000 * n_i / sum n); the leftover points go one each to the largest
fractional remainders, ties broken by larger sample count, then by lower
address. A partner whose update was not accepted before aggregation (dropped,
late, refused) contributes 0 samples and is left out of the round's record:
its share for that round is 0 and the others' weights p_i are renormalized.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence

BPS = 10_000


def largest_remainder(weights: Sequence[Fraction], total: int,
                      tiebreak: Sequence[tuple] | None = None) -> list[int]:
    """Integers proportional to `weights` (which sum to 1) that sum to exactly `total`."""
    exact = [Fraction(w) * total for w in weights]
    base = [math.floor(x) for x in exact]
    left = total - sum(base)
    keys = tiebreak or [() for _ in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - base[i]), keys[i]))
    for i in order[:left]:
        base[i] += 1
    return base


def round_shares(partners: Sequence[str], weights: Sequence[Fraction], sample_counts: Sequence[int]) -> list[int]:
    """Basis points per contributing partner of one round (same order as given), by the
    weights the round was aggregated with (the task's Strategy); ties by sample count."""
    if not partners or not len(partners) == len(weights) == len(sample_counts):
        raise ValueError("need one weight and one sample count per contributing partner")
    if any(n <= 0 for n in sample_counts) or any(w < 0 for w in weights) or sum(weights) != 1:
        raise ValueError("sample counts must be positive and the weights sum to 1")
    ties = [(-n, p.lower()) for p, n in zip(partners, sample_counts)]
    return largest_remainder(weights, BPS, ties)


def task_shares(rounds: Sequence[dict[str, int]]) -> dict[str, int]:
    """Whole-task shares for the reward pool: the mean of the per-round shares,
    re-rounded by the same rule so they too sum to 10,000."""
    if not rounds:
        return {}
    addrs = sorted({a for r in rounds for a in r}, key=str.lower)
    totals = [sum(r.get(a, 0) for r in rounds) for a in addrs]
    grand = sum(totals)
    bps = largest_remainder([Fraction(t, grand) for t in totals], BPS,
                            [(-t, a.lower()) for a, t in zip(addrs, totals)])
    return dict(zip(addrs, bps))
