"""Daily standard load profiles and a province's weather, the base of every consumption generator.

Why not ``demandlib``: it installs here (0.2.2), but it produces 15-minute BDEW profiles
for one German year; at SGCC's daily resolution all it contributes is the day-type
factors and the seasonal dynamisation, which are reproduced below from the published
BDEW tables (VDEW 1999, "Repräsentative VDEW-Lastprofile") so the generator needs no
extra dependency. Heating and cooling come from degree days of a synthetic province
climate instead of Germany's fixed season, so "provinces" can differ (non-IID data).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

CUSTOMER_CLASSES = ("residential", "commercial", "small_industry")

#: Median daily kWh of one customer of each class (SGCC residential ~ 5-10 kWh/day).
CLASS_MEDIAN_KWH = {"residential": 7.0, "commercial": 55.0, "small_industry": 260.0}

#: Day-of-week factors Monday..Sunday. Residential follows BDEW H0 (weekends higher),
#: commercial BDEW G0/G1 (weekends low), small industry BDEW G3/L-type shift work.
DAY_OF_WEEK_FACTOR = {
    "residential": np.array([0.97, 0.97, 0.97, 0.97, 0.99, 1.06, 1.10]),
    "commercial": np.array([1.08, 1.08, 1.08, 1.08, 1.05, 0.78, 0.55]),
    "small_industry": np.array([1.10, 1.10, 1.10, 1.10, 1.06, 0.82, 0.45]),
}

#: Consumption multiplier during the Spring Festival week (factories and offices close,
#: homes fill up): the strongest calendar effect in Chinese load data.
SPRING_FESTIVAL_FACTOR = {"residential": 1.15, "commercial": 0.45, "small_industry": 0.25}

#: Spring Festival (lunar new year) dates; the holiday runs 7 days from this date.
SPRING_FESTIVAL = pd.to_datetime([
    "2012-01-23", "2013-02-10", "2014-01-31", "2015-02-19", "2016-02-08", "2017-01-28",
    "2018-02-16", "2019-02-05", "2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22",
    "2024-02-10", "2025-01-29", "2026-02-17", "2027-02-06", "2028-01-26",
])

HEATING_BASE_C = 15.0   # heating degree days below this mean daily temperature
COOLING_BASE_C = 24.0   # cooling degree days above this one


@dataclass(frozen=True)
class Climate:
    """A province's daily mean temperature: annual cosine plus persistent weather noise."""

    mean_temperature: float = 15.0
    temperature_amplitude: float = 13.0
    weather_noise: float = 2.5

    def daily_temperature(self, dates: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
        """Coldest around 15 January; AR(1) noise (phi 0.7) makes warm and cold spells last."""
        day_of_year = dates.day_of_year.to_numpy()
        seasonal = self.mean_temperature - self.temperature_amplitude * np.cos(
            2 * np.pi * (day_of_year - 15) / 365.25)
        shocks = rng.normal(0.0, self.weather_noise * np.sqrt(1 - 0.7 ** 2), len(dates))
        return seasonal + lfilter([1.0], [1.0, -0.7], shocks)


def degree_days(temperature: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Heating and cooling degree days, scaled so 10 degree-days means 'a lot'."""
    heating = np.maximum(0.0, HEATING_BASE_C - temperature) / 10.0
    cooling = np.maximum(0.0, temperature - COOLING_BASE_C) / 10.0
    return heating, cooling


def calendar_factor(dates: pd.DatetimeIndex, customer_class: str) -> np.ndarray:
    """Day-of-week times Spring-Festival factor of one class for each date."""
    factor = DAY_OF_WEEK_FACTOR[customer_class][dates.day_of_week.to_numpy()].copy()
    values = dates.to_numpy()
    for start in SPRING_FESTIVAL:
        in_holiday = (values >= start.to_datetime64()) & (
            values < (start + pd.Timedelta(days=7)).to_datetime64())
        factor[in_holiday] *= SPRING_FESTIVAL_FACTOR[customer_class]
    return factor
