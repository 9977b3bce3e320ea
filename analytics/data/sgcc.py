"""Seeded generator of smart-meter data in the SGCC electricity-theft format.

The real set (State Grid Corporation of China, released with Zheng et al. 2018,
"Wide and deep CNNs for electricity-theft detection") has 42,372 customers, one row
each: ``CONS_NO`` (a 32-hex id), ``FLAG`` (1 = confirmed thief, about 8.5 %), then one
column per day from 2014/1/1 to 2016/10/31 (1,035 days) of daily kWh, with many
missing days and a few absurd spikes. It cannot be downloaded here, so this module
builds look-alikes: class load shapes and weather from :mod:`analytics.data.profiles`,
honest irregularities (vacancies, household changes, move-outs) so that "a drop" is
not the same as "a theft", and thieves tampered by the Jokar et al. attacks.

Every knob of :class:`ProvinceProfile` can differ between generated "provinces", which
is how the federated-learning zone obtains non-IID partners.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from analytics.data.attacks import ATTACK_TYPES, inject_attack
from analytics.data.profiles import (
    CLASS_MEDIAN_KWH, CUSTOMER_CLASSES, Climate, calendar_factor, degree_days,
)

SGCC_CUSTOMERS = 42_372
SGCC_DAYS = 1_035
SGCC_START = "2014-01-01"
_CHUNK = 4_096  # customers generated at once: bounds memory at SGCC size


@dataclass(frozen=True)
class ProvinceProfile:
    """What makes one province's customers differ from another's (all optional knobs)."""

    class_mix: tuple[float, float, float] = (0.86, 0.10, 0.04)  # residential, commercial, small industry
    consumption_scale: float = 1.0        # multiplies every customer's level
    mean_temperature: float = 15.0        # degrees C, annual mean
    temperature_amplitude: float = 13.0   # half the winter-summer swing: the seasonal amplitude
    heating_share: float = 0.35           # residential customers heating with electricity
    cooling_sensitivity: float = 1.0      # air-conditioning intensity
    missing_rate: float = 0.03            # mean share of days with no reading
    late_start_share: float = 0.08        # meters installed after the first day (leading NaNs)
    outlier_rate: float = 0.0005          # share of readings multiplied 5-40x (reading errors)
    start_date: str = SGCC_START

    @classmethod
    def from_knobs(cls, **knobs) -> "ProvinceProfile":
        """Build from keyword knobs, naming any unknown one (typos must not pass silently)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(knobs) - known)
        if unknown:
            raise TypeError(f"unknown profile knob(s) {unknown}; known: {sorted(known)}")
        if "class_mix" in knobs:
            mix = np.asarray(knobs["class_mix"], dtype=float)
            if mix.shape != (3,) or (mix < 0).any() or mix.sum() <= 0:
                raise ValueError("class_mix must be three non-negative shares")
            knobs["class_mix"] = tuple(mix / mix.sum())
        return cls(**knobs)


def day_column_names(dates: pd.DatetimeIndex) -> list[str]:
    """Day columns as the real set writes them: ``2014/1/1``."""
    return [f"{d.year}/{d.month}/{d.day}" for d in dates]


def generate_sgcc(n_customers: int, n_days: int = SGCC_DAYS, theft_rate: float = 0.085,
                  seed: int = 0, **profile_knobs) -> pd.DataFrame:
    """SGCC-format frame: CONS_NO, FLAG, then daily kWh per date column (NaN = missing).

    Same arguments give the same frame, bit for bit. ``profile_knobs`` are the fields of
    :class:`ProvinceProfile` (class_mix, consumption_scale, mean_temperature,
    temperature_amplitude, heating_share, cooling_sensitivity, missing_rate, ...) plus
    ``attack_types`` (a subset of :data:`ATTACK_TYPES`).
    """
    frame, _ = generate_sgcc_with_truth(n_customers, n_days, theft_rate, seed, **profile_knobs)
    return frame


def generate_sgcc_with_truth(n_customers: int, n_days: int = SGCC_DAYS, theft_rate: float = 0.085,
                             seed: int = 0, attack_types: tuple[str, ...] = ATTACK_TYPES,
                             **profile_knobs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Like :func:`generate_sgcc`, plus the hidden truth the real set never tells:
    CONS_NO, customer_class, attack_type ('' if honest) and theft_start (day index, -1)."""
    if n_customers < 1 or n_days < 1:
        raise ValueError("n_customers and n_days must be positive")
    if not 0.0 <= theft_rate <= 1.0:
        raise ValueError("theft_rate must be within [0, 1]")
    unknown_attacks = sorted(set(attack_types) - set(ATTACK_TYPES))
    if unknown_attacks or not attack_types:
        raise ValueError(f"attack_types must be a non-empty subset of {ATTACK_TYPES}")
    profile = ProvinceProfile.from_knobs(**profile_knobs)
    dates = pd.date_range(profile.start_date, periods=n_days, freq="D")
    root = np.random.SeedSequence(seed)
    plan_rng, weather_rng, *chunk_seeds = [
        np.random.default_rng(s) for s in root.spawn(2 + -(-n_customers // _CHUNK))]

    climate = Climate(profile.mean_temperature, profile.temperature_amplitude)
    heating, cooling = degree_days(climate.daily_temperature(dates, weather_rng))
    calendar = np.stack([calendar_factor(dates, c) for c in CUSTOMER_CLASSES])

    classes = plan_rng.choice(len(CUSTOMER_CLASSES), n_customers, p=profile.class_mix)
    n_thieves = int(round(theft_rate * n_customers))
    thieves = plan_rng.choice(n_customers, n_thieves, replace=False)
    attack = np.full(n_customers, "", dtype=object)
    attack[thieves] = plan_rng.choice(np.array(attack_types, dtype=object), n_thieves)
    theft_start = np.full(n_customers, -1)
    earliest, latest = int(0.1 * n_days), max(int(0.8 * n_days), int(0.1 * n_days) + 1)
    since_day_zero = plan_rng.random(n_thieves) < 0.3      # thieves since the meter was installed
    theft_start[thieves] = np.where(since_day_zero, 0, plan_rng.integers(earliest, latest, n_thieves))
    ids = np.array([plan_rng.bytes(16).hex().upper() for _ in range(n_customers)])

    values = np.empty((n_customers, n_days))   # filled chunk by chunk: one SGCC-size copy only
    for k, rng in enumerate(chunk_seeds):
        rows = slice(k * _CHUNK, min((k + 1) * _CHUNK, n_customers))
        kwh = _honest_consumption(classes[rows], calendar, heating, cooling, profile, rng)
        for i in np.flatnonzero(attack[rows] != ""):
            start = theft_start[rows][i]
            kwh[i, start:] = inject_attack(kwh[i, start:], attack[rows][i], rng)
        values[rows] = _meter_artifacts(np.round(kwh, 2), profile, rng)

    frame = pd.DataFrame(values, columns=day_column_names(dates), copy=False)
    frame.insert(0, "FLAG", (attack != "").astype(np.int64))
    frame.insert(0, "CONS_NO", ids)
    truth = pd.DataFrame({
        "CONS_NO": ids,
        "customer_class": np.array(CUSTOMER_CLASSES, dtype=object)[classes],
        "attack_type": attack.astype(str),
        "theft_start": theft_start,
    })
    return frame, truth


def _honest_consumption(classes: np.ndarray, calendar: np.ndarray, heating: np.ndarray,
                        cooling: np.ndarray, profile: ProvinceProfile,
                        rng: np.random.Generator) -> np.ndarray:
    """True daily kWh of honest behaviour, including life events that look like theft."""
    n, n_days = len(classes), len(heating)
    is_res, is_com = classes == 0, classes == 1
    median = np.array([CLASS_MEDIAN_KWH[c] for c in CUSTOMER_CLASSES])[classes]
    level = median * profile.consumption_scale * rng.lognormal(0.0, 0.6, n)
    electric_heating = is_res & (rng.random(n) < profile.heating_share)
    heat = np.where(electric_heating, rng.uniform(0.4, 1.3, n),
                    np.where(is_com, rng.uniform(0.1, 0.5, n), rng.uniform(0.0, 0.15, n)))
    cool = profile.cooling_sensitivity * np.where(
        is_res, rng.uniform(0.2, 1.2, n), np.where(is_com, rng.uniform(0.5, 1.5, n), rng.uniform(0.1, 0.5, n)))
    growth = rng.normal(0.02, 0.05, n)
    noise_sd = np.where(is_res, 0.25, np.where(is_com, 0.15, 0.2))
    shocks = rng.normal(0.0, 1.0, (n, n_days)) * (noise_sd * np.sqrt(1 - 0.5 ** 2))[:, None]
    log_noise = _ar1(shocks, 0.5)

    years = np.arange(n_days) / 365.25
    kwh = (level[:, None] * calendar[classes]
           * (1.0 + heat[:, None] * heating + cool[:, None] * cooling)
           * np.exp(growth[:, None] * years + log_noise))

    for i in np.flatnonzero(rng.random(n) < 0.25):        # holidays / vacancies
        for _ in range(int(rng.integers(1, 4))):
            length = int(rng.integers(3, 26))
            start = int(rng.integers(0, max(1, n_days - length)))
            standby = 0.0 if rng.random() < 0.3 else rng.uniform(0.02, 0.15)
            kwh[i, start:start + length] *= standby
    for i in np.flatnonzero(rng.random(n) < 0.2):         # household or business changes
        kwh[i, int(rng.integers(0, n_days)):] *= rng.lognormal(0.0, 0.35)
    for i in np.flatnonzero(rng.random(n) < 0.02):        # moved out: an empty meter
        kwh[i, int(rng.integers(n_days // 2, n_days)):] = 0.0
    return kwh


def _ar1(shocks: np.ndarray, phi: float) -> np.ndarray:
    """AR(1) filter along days: consumption noise persists for a few days."""
    return lfilter([1.0], [1.0, -phi], shocks, axis=1)


def _meter_artifacts(kwh: np.ndarray, profile: ProvinceProfile, rng: np.random.Generator) -> np.ndarray:
    """What the metering system adds: late installation, missing days, absurd spikes."""
    n, n_days = kwh.shape
    spikes = rng.random(kwh.shape) < profile.outlier_rate
    kwh[spikes] *= rng.uniform(5.0, 40.0, int(spikes.sum()))
    if profile.missing_rate > 0:
        shape = 0.3  # Beta(0.3, .) so a few meters miss a lot, as in the real set
        rates = rng.beta(shape, shape * (1 - profile.missing_rate) / profile.missing_rate, n)
        kwh[rng.random(kwh.shape) < rates[:, None]] = np.nan
    for i in np.flatnonzero(rng.random(n) < profile.late_start_share):
        kwh[i, :int(rng.integers(30, max(31, n_days // 2)))] = np.nan
    return kwh
