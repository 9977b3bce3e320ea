"""Seeded hourly load and temperature of distribution transformers (heavy-load / overload).

Each transformer has a rated capacity (kVA) from the standard Chinese series, a customer
mix that sets its daily shape (residential evening peak or daytime commercial plateau),
heating/cooling sensitivity to a shared province temperature, load growth, and
persistent noise. In State Grid practice a transformer is *overloaded* on a day when
its load exceeds 100 % of rated capacity for two consecutive hours or more (heavy load:
80 %); that definition is computed from the data, so no separate label is needed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from analytics.data.profiles import Climate, calendar_factor, degree_days

TRANSFORMER_COLUMNS = ("transformer_id", "timestamp", "load_kva", "temperature_c", "rated_kva")
RATED_KVA = (100, 200, 315, 400, 630, 800)

# Hour-of-day load shapes (share of the daily peak), from typical State Grid station areas.
_RESIDENTIAL_SHAPE = np.array([0.42, 0.36, 0.33, 0.32, 0.32, 0.35, 0.45, 0.58, 0.62, 0.60, 0.60, 0.65,
                               0.68, 0.62, 0.58, 0.58, 0.63, 0.75, 0.92, 1.00, 0.98, 0.90, 0.74, 0.55])
_COMMERCIAL_SHAPE = np.array([0.30, 0.28, 0.27, 0.27, 0.28, 0.32, 0.45, 0.70, 0.90, 0.97, 1.00, 0.98,
                              0.92, 0.95, 0.98, 0.97, 0.93, 0.85, 0.75, 0.65, 0.55, 0.45, 0.38, 0.33])


def generate_transformer_load(n_transformers: int, n_days: int = 365, seed: int = 0,
                              start_date: str = "2023-01-01", mean_temperature: float = 16.0,
                              temperature_amplitude: float = 13.0) -> pd.DataFrame:
    """Long hourly frame with TRANSFORMER_COLUMNS, sorted by transformer then time."""
    if n_transformers < 1 or n_days < 2:
        raise ValueError("need at least one transformer and two days")
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start_date, periods=n_days, freq="D")
    daily_temp = Climate(mean_temperature, temperature_amplitude).daily_temperature(dates, rng)
    diurnal = 4.0 * np.sin(2 * np.pi * (np.arange(24) - 9) / 24.0)
    hourly_temp = daily_temp[:, None] + diurnal[None, :]                       # (days, 24)
    heating, cooling = degree_days(hourly_temp)

    rated = rng.choice(RATED_KVA, n_transformers)
    residential_share = rng.beta(2.0, 1.2, n_transformers)
    shape = (residential_share[:, None] * _RESIDENTIAL_SHAPE + (1 - residential_share[:, None]) * _COMMERCIAL_SHAPE)
    week = (residential_share[:, None] * calendar_factor(dates, "residential")
            + (1 - residential_share[:, None]) * calendar_factor(dates, "commercial"))   # (n, days)
    peak_ratio = rng.beta(5.0, 4.0, n_transformers) * 0.95                          # typical peak / rating
    heat = rng.uniform(0.1, 0.9, n_transformers)
    cool = rng.uniform(0.3, 1.6, n_transformers)
    growth = rng.normal(0.06, 0.06, n_transformers)                                 # per year
    daily_noise = lfilter([1.0], [1.0, -0.6], rng.normal(0, 0.06, (n_transformers, n_days)), axis=1)
    hourly_noise = rng.normal(0, 0.04, (n_transformers, n_days, 24))

    weather = 1.0 + heat[:, None, None] * heating[None] + cool[:, None, None] * cooling[None]
    trend = np.exp(growth[:, None] * np.arange(n_days)[None, :] / 365.0 + daily_noise)
    load = (rated[:, None, None] * peak_ratio[:, None, None] * shape[:, None, :]
            * (week * trend)[:, :, None] * weather / 1.25 * np.exp(hourly_noise))

    stamps = (dates.to_numpy()[:, None] + np.arange(24)[None, :] * np.timedelta64(1, "h")).ravel()
    return pd.DataFrame({
        "transformer_id": np.repeat([f"T{seed:03d}{i:05d}" for i in range(n_transformers)], n_days * 24),
        "timestamp": np.tile(stamps, n_transformers),
        "load_kva": np.round(load.reshape(-1), 2),
        "temperature_c": np.round(np.tile(hourly_temp.ravel(), n_transformers), 1),
        "rated_kva": np.repeat(rated, n_days * 24).astype(float),
    })
