"""The release rule (seed 002 §3.3 E): nothing shown may single out one customer.

A cell's (or area's) meter figures are released only when at least ``min_count``
distinct meters contribute in that period; its EV figures only when at least
``min_count`` distinct EV users do. A withheld part is NaN from here on and never
reaches a PNG, the HTML or a table: those are built from :class:`Released` alone.

Areas get one more check against differencing: an area total minus its shown cells
would expose the withheld cells, so an area part is shown only when the customers
it has in withheld cells number 0 or at least ``min_count`` too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.heatmap.aggregate import Cube, distinct_count
from analytics.heatmap.errors import HeatmapError
from analytics.heatmap.grid import Grid
from analytics.heatmap.periods import SLOT_HOURS

DEFAULT_MIN_COUNT = 5


@dataclass
class Part:
    """Released figures of one population (meters or EV users) at one level."""

    count: np.ndarray   # contributors; NaN where withheld
    kwh: np.ndarray     # energy; NaN where withheld, 0 where nobody contributed
    shown: np.ndarray   # released with at least min_count contributors


@dataclass
class Released:
    """What may leave the process: cells are [period, row, col], areas [area, period]."""

    kind: str
    labels: list[str]
    hours: np.ndarray
    grid: Grid
    min_count: int
    meter: Part
    ev: Part
    population: np.ndarray   # [row, col]
    capacity_kw: np.ndarray  # [row, col]
    areas: pd.DataFrame
    area_meter: Part
    area_ev: Part
    area_peak_kw: np.ndarray  # [area, period]: peak 15-min load of the released parts
    stations: pd.DataFrame

    @property
    def visible(self) -> np.ndarray:
        return self.meter.shown | self.ev.shown

    @property
    def area_visible(self) -> np.ndarray:
        return self.area_meter.shown | self.area_ev.shown


def _part(count: np.ndarray, kwh: np.ndarray, min_count: int, hidden: np.ndarray | None = None) -> Part:
    shown = count >= min_count
    if hidden is not None:
        shown &= (hidden == 0) | (hidden >= min_count)
    none = count == 0
    return Part(count=np.where(shown | none, count, np.nan).astype(np.float64),
                kwh=np.where(shown, kwh, np.where(none, 0.0, np.nan)),
                shown=shown)


def release(cube: Cube, min_count: int = DEFAULT_MIN_COUNT) -> Released:
    """Apply the rule to every cell and area, in every period."""
    if min_count < 1:
        raise HeatmapError(f"min count must be at least 1, got {min_count}")
    meter = _part(cube.meters, cube.meter_kwh, min_count)
    ev = _part(cube.ev_users, cube.ev_kwh, min_count)
    shape = cube.area_meters.shape
    area_meter = _part(cube.area_meters, cube.area_meter_kwh, min_count,
                       _hidden(cube.meter_pairs, meter.shown, shape))
    area_ev = _part(cube.area_ev_users, cube.area_ev_kwh, min_count,
                    _hidden(cube.ev_pairs, ev.shown, shape))
    return Released(
        kind=cube.kind.name, labels=cube.labels, hours=cube.hours, grid=cube.grid, min_count=min_count,
        meter=meter, ev=ev,
        population=cube.population, capacity_kw=cube.capacity_kw, areas=cube.areas,
        area_meter=area_meter, area_ev=area_ev,
        area_peak_kw=_peaks(cube, area_meter.shown, area_ev.shown),
        stations=cube.stations,
    )


def _hidden(pairs: dict, shown: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Distinct customers per [area, period] that sit in withheld cells."""
    n_a, n_p = shape
    flat = shown.reshape(n_p, -1)
    keep = (pairs["area"] >= 0) & ~flat[pairs["period"], pairs["cell"]]
    group = pairs["area"][keep] * n_p + pairs["period"][keep]
    if "user" not in pairs:  # meter pairs are distinct already
        return np.bincount(group, minlength=n_a * n_p).reshape(shape)
    return distinct_count(group, pairs["user"][keep], n_a * n_p).reshape(shape)


def _peaks(cube: Cube, meter_shown: np.ndarray, ev_shown: np.ndarray) -> np.ndarray:
    """Highest 15-minute load per area and period, adding only the released parts."""
    n_a, n_p = meter_shown.shape
    peaks = np.full((n_a, n_p), np.nan)
    for p in range(n_p):
        in_period = cube.slot_period == p
        load = (cube.area_meter_slot_kwh[:, in_period] * meter_shown[:, p, None]
                + cube.area_ev_slot_kwh[:, in_period] * ev_shown[:, p, None])
        if load.shape[1]:
            peaks[:, p] = load.max(axis=1) / SLOT_HOURS
    return np.where(meter_shown | ev_shown, peaks, np.nan)
