"""Differential privacy on partner updates: L2 clipping + Gaussian noise, RDP accounting.

Each partner privatizes its own update delta = w_local - w_global before
encrypting it: clip to norm C, add N(0, (sigma*C)^2) per coordinate. This is
the Gaussian mechanism with sensitivity C at partner level (neighbouring
datasets differ by one partner's whole contribution), applied once per round
with every partner taking part (no subsampling amplification is claimed).
Renyi DP of one round is alpha / (2 sigma^2); T rounds compose additively;
the (epsilon, delta) conversion is the one of Balle et al. 2020 (as in Opacus).
The epsilon reported is therefore an upper bound for each partner's data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORDERS = tuple([1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 256, 512])


@dataclass(frozen=True)
class DPConfig:
    clip: float
    noise_multiplier: float
    delta: float = 1e-5

    def __post_init__(self):
        if self.clip <= 0 or self.noise_multiplier <= 0 or not 0 < self.delta < 1:
            raise ValueError("DP needs clip > 0, noise_multiplier > 0 and 0 < delta < 1")


def clip(update: np.ndarray, bound: float) -> np.ndarray:
    """Scale the update down so its L2 norm is at most `bound`."""
    norm = float(np.linalg.norm(update))
    return update if norm <= bound else update * (bound / norm)


def privatize(update: np.ndarray, cfg: DPConfig, rng: np.random.Generator) -> np.ndarray:
    """Clip, then add Gaussian noise calibrated to the clip bound."""
    clipped = clip(np.asarray(update, dtype=np.float64), cfg.clip)
    return clipped + rng.normal(0.0, cfg.noise_multiplier * cfg.clip, size=clipped.shape)


def epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """(epsilon, delta)-DP after `rounds` Gaussian releases with this noise multiplier."""
    if rounds <= 0:
        return 0.0
    a = np.array(ORDERS, dtype=np.float64)
    rdp = rounds * a / (2.0 * noise_multiplier ** 2)
    eps = rdp + np.log((a - 1) / a) - (np.log(delta) + np.log(a)) / (a - 1)
    return float(max(0.0, eps.min()))
