"""Seeded equipment-asset register with maintenance, defects, 95598 complaints and failures.

Mirrors the asset records seed 002 §3.2 asks to join: type, manufacturer, batch,
install date, maintenance and (family) defect history, 95598 customer-complaint
counts, plus the cost figures a life-cycle-cost (LCC) evaluation needs. Failures
follow a Weibull (wear-out) hazard per type, worsened by a manufacturer's quality,
a defective production batch, load and climate, and reduced by maintenance. Two
manufacturers are made poor on purpose so the ranking has something to find.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

ASSET_COLUMNS = ("asset_id", "asset_type", "manufacturer", "batch", "install_year", "age_years",
                 "climate_zone", "load_factor", "maintenance_count_3y", "defect_count_3y",
                 "critical_defects_3y", "complaints_95598_1y", "failures_5y")
LABEL = "FAILED_NEXT_YEAR"

#: asset type -> (annual failure rate at design life, design life years, Weibull shape)
ASSET_TYPES = {
    "distribution_transformer": (0.05, 30, 2.5),
    "circuit_breaker": (0.04, 25, 2.2),
    "disconnector": (0.05, 25, 2.0),
    "switchgear": (0.035, 30, 2.3),
    "cable_segment": (0.06, 35, 1.8),
    "surge_arrester": (0.05, 20, 1.6),
}
CLIMATE_ZONES = {"inland": 1.0, "coastal": 1.35, "cold": 1.15, "hot_humid": 1.25}
REFERENCE_YEAR = 2025


def generate_assets(n_assets: int, seed: int = 0, n_manufacturers: int = 14,
                    poor_manufacturers: int = 2) -> pd.DataFrame:
    """Asset register (ASSET_COLUMNS) plus the FAILED_NEXT_YEAR label."""
    return generate_assets_with_truth(n_assets, seed, n_manufacturers, poor_manufacturers)[0]


def generate_assets_with_truth(n_assets: int, seed: int = 0, n_manufacturers: int = 14,
                               poor_manufacturers: int = 2) -> tuple[pd.DataFrame, pd.Series]:
    """Like :func:`generate_assets`, plus each manufacturer's hidden quality multiplier
    (failure hazard relative to a good maker; the poor ones are about 2.4x)."""
    if n_assets < 1 or n_manufacturers < 1:
        raise ValueError("need at least one asset and one manufacturer")
    rng = np.random.default_rng(seed)
    names = [f"M{i + 1:02d}" for i in range(n_manufacturers)]
    quality = rng.lognormal(0.0, 0.2, n_manufacturers)
    quality[rng.choice(n_manufacturers, min(poor_manufacturers, n_manufacturers), replace=False)] *= 2.4
    market_share = rng.dirichlet(np.full(n_manufacturers, 3.0))

    types = np.array(list(ASSET_TYPES), dtype=object)
    asset_type = rng.choice(types, n_assets)
    rate, life, shape = (np.array([ASSET_TYPES[t][k] for t in asset_type]) for k in range(3))
    maker = rng.choice(n_manufacturers, n_assets, p=market_share)
    install_year = rng.integers(REFERENCE_YEAR - 40, REFERENCE_YEAR, n_assets)
    age = REFERENCE_YEAR - install_year
    lot = rng.integers(1, 4, n_assets)
    batch = np.array([f"{names[m]}-{y}-{b}" for m, y, b in zip(maker, install_year, lot)], dtype=object)
    defective_batches = {b for b in np.unique(batch) if rng.random() < 0.04}
    batch_effect = np.where(np.isin(batch, list(defective_batches)), 2.5, 1.0)

    zone_names = np.array(list(CLIMATE_ZONES), dtype=object)
    zone = rng.choice(zone_names, n_assets, p=(0.45, 0.2, 0.15, 0.2))
    load_factor = np.clip(rng.beta(4, 3, n_assets), 0.05, 1.2)
    maintenance = rng.poisson(1.0 + age / 12.0)
    hazard = (rate * (np.maximum(age, 0.5) / life) ** (shape - 1) * quality[maker] * batch_effect
              * np.array([CLIMATE_ZONES[z] for z in zone]) * (0.6 + 0.8 * load_factor)
              * np.exp(-0.12 * np.minimum(maintenance, 6)))
    hazard = np.clip(hazard, 0.0, 0.9)
    defects = rng.poisson(hazard * 25)
    critical = rng.binomial(defects, 0.2)
    complaints = rng.poisson(hazard * 12 + 0.2)
    failures_5y = rng.poisson(hazard * np.minimum(age, 5))
    failed = rng.random(n_assets) < np.clip(hazard * (1 + 0.15 * critical), 0.0, 0.95)

    frame = pd.DataFrame({
        "asset_id": [f"A{seed:03d}{i:07d}" for i in range(n_assets)],
        "asset_type": asset_type, "manufacturer": np.array(names, dtype=object)[maker], "batch": batch,
        "install_year": install_year, "age_years": age, "climate_zone": zone,
        "load_factor": np.round(load_factor, 3), "maintenance_count_3y": maintenance,
        "defect_count_3y": defects, "critical_defects_3y": critical,
        "complaints_95598_1y": complaints, "failures_5y": failures_5y,
        LABEL: failed.astype(np.int64),
    })
    return frame, pd.Series(quality, index=names, name="quality")
