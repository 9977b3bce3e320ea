"""Differential privacy: on partner updates (partner level) and inside a partner's training
(customer level, DP-SGD).

Customer level (`customer_epsilon`): the partner trains by DP-SGD (Abadi et al. 2016:
Poisson-sampled batches, each customer's gradient clipped, Gaussian noise on their sum;
`FedMLPClassifier(dp_clip=..., dp_noise=...)`), so whatever leaves the partner — its
updates, and every model built from them — bounds what can be learnt about any one customer.
The steps of all rounds compose as Poisson-subsampled Gaussian mechanisms in Google's RDP
accountant (dp-accounting). This protects a province's customers from everyone else,
the other partners and the model's future users included.

Partner level, below: it protects a partner's whole contribution, which with five partners
costs far more accuracy (docs/fl.md, "Differential privacy").

Each partner privatizes its own update delta = w_local - w_global before
encrypting it: clip to norm C, add N(0, (sigma*C)^2) per coordinate. This is
the Gaussian mechanism with sensitivity C at partner level (neighbouring: one
partner's contribution present or replaced by nothing; swapping its data for
other data doubles the sensitivity, i.e. halves sigma), applied once per round
with every partner taking part, so there is no subsampling to amplify privacy.
The partner's own noise is enough: the guarantee does not rely on the other
partners' noise nor on HE.

Accounting: T adaptive releases of a Gaussian mechanism with noise multiplier
sigma compose *exactly* into one Gaussian mechanism with multiplier
sigma/sqrt(T) (mu-GDP with mu = sqrt(T)/sigma, Dong, Roth & Su 2019); its
(epsilon, delta) curve is known in closed form (Balle & Wang 2018, Thm 8).
The epsilon reported is therefore tight, not just an upper bound: about 8 %
below the RDP + Balle et al. 2020 conversion that Opacus uses.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import log_ndtr, ndtr


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


def gaussian_delta(eps: float, mu: float) -> float:
    """Smallest delta for which a mu-GDP mechanism is (eps, delta)-DP (Balle & Wang 2018)."""
    return float(ndtr(mu / 2 - eps / mu) - np.exp(eps + log_ndtr(-mu / 2 - eps / mu)))


def epsilon(noise_multiplier: float, rounds: int, delta: float) -> float:
    """(epsilon, delta)-DP after `rounds` Gaussian releases with this noise multiplier."""
    if rounds <= 0:
        return 0.0
    mu = math.sqrt(rounds) / noise_multiplier
    if gaussian_delta(0.0, mu) <= delta:
        return 0.0
    # the privacy loss is N(mu^2/2, mu^2): its (1 - delta) tail bound brackets the root
    upper = mu * mu / 2 + mu * math.sqrt(2 * math.log(1 / delta))
    return float(brentq(lambda e: gaussian_delta(e, mu) - delta, 0.0, upper, xtol=1e-12))


#: the delta of customer-level epsilons: below 1 / n for any province's customer count
CUSTOMER_DELTA = 1e-5


def customer_epsilon(n_samples: int, batch_size: int, epochs: int, rounds: int, noise_multiplier: float,
                     delta: float) -> float:
    """epsilon per customer after `rounds` rounds of DP-SGD on `n_samples` customers: each
    round runs epochs / q steps, each a Poisson sample of rate q = batch_size / n_samples
    through a Gaussian mechanism of this noise multiplier (RDP accountant, dp-accounting)."""
    import dp_accounting
    from dp_accounting.rdp import RdpAccountant

    if rounds <= 0:
        return 0.0
    q = sample_rate(n_samples, batch_size)
    accountant = RdpAccountant()
    event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(noise_multiplier))
    accountant.compose(event, rounds * steps_per_round(n_samples, batch_size, epochs))
    return float(accountant.get_epsilon(delta))


def sample_rate(n_samples: int, batch_size: int) -> float:
    return min(1.0, batch_size / max(n_samples, 1))


def steps_per_round(n_samples: int, batch_size: int, epochs: int) -> int:
    """DP-SGD steps of one local round: `epochs` expected passes over the data."""
    return max(1, round(epochs / sample_rate(n_samples, batch_size)))
