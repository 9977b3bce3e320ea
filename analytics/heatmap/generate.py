"""Seeded synthetic city: districts, residential / commercial / industrial areas, meters
with 15-minute load curves, EV charging stations with sessions, population and capacity.

Shapes are textbook (residential evening peak, commercial business hours, industrial
shifts, summer air-conditioning); capacities are drawn around each area's expected
peak so a handful of areas run close to or over their limit, as in a real city.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analytics.heatmap.areas import locate
from analytics.heatmap.errors import HeatmapError
from analytics.heatmap.grid import M_PER_DEG_LAT
from analytics.heatmap.periods import SLOT_NS

DISTRICTS = ("Old Town", "Riverside", "North Hills", "Harbour", "Tech Park", "East Works")
_SLOTS = 96
_HOURS = np.arange(_SLOTS) / 4.0


@dataclass(frozen=True)
class City:
    """Generator output: the three tables render_all takes."""

    readings: pd.DataFrame
    ev_sessions: pd.DataFrame
    areas: pd.DataFrame

    def save(self, directory, fmt: str = "parquet") -> dict[str, str]:
        """Write readings.<fmt>, ev_sessions.<fmt>, areas.<fmt>; returns their paths."""
        if fmt not in ("parquet", "csv"):
            raise HeatmapError(f"unknown format {fmt!r}; use parquet or csv")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name in ("readings", "ev_sessions", "areas"):
            path = directory / f"{name}.{fmt}"
            frame = getattr(self, name)
            if fmt == "parquet":
                frame.to_parquet(path, index=False)
            else:
                frame.to_csv(path, index=False)
            paths[name] = str(path)
        return paths


def _bump(centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((_HOURS - centre) / width) ** 2)


def _shapes() -> np.ndarray:
    """kW per slot, indexed [kind, weekend, slot], for a meter of unit scale."""
    shape = np.empty((3, 2, _SLOTS))
    shape[0, 0] = 0.35 + 0.5 * _bump(7.5, 1.0) + 1.1 * _bump(19.5, 1.8)
    shape[0, 1] = 0.40 + 0.6 * _bump(10.0, 2.0) + 1.0 * _bump(19.0, 2.2)
    business = 1 / (1 + np.exp(-(_HOURS - 8.5) * 2)) / (1 + np.exp((_HOURS - 21) * 2))
    shape[1, 0] = 2.0 + 7.0 * business
    shape[1, 1] = 2.0 + 5.5 * business
    shift = 1 / (1 + np.exp(-(_HOURS - 7) * 3)) / (1 + np.exp((_HOURS - 19) * 3))
    shape[2, 0] = 25.0 + 40.0 * shift
    shape[2, 1] = 18.0 + 12.0 * shift
    return shape


#: seasonal factor [kind, month]: air-conditioning in summer, heating in winter
_SEASON = np.array([
    [1.30, 1.25, 1.05, 0.95, 1.00, 1.25, 1.60, 1.65, 1.25, 0.95, 1.05, 1.25],
    [1.05, 1.05, 1.00, 1.00, 1.05, 1.20, 1.35, 1.35, 1.15, 1.00, 1.00, 1.05],
    [1.00, 0.90, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00, 1.00],
])
_KIND_MIX = {  # share of meter kinds per zone (residential, commercial, industrial)
    "residential": (0.94, 0.06, 0.00),
    "commercial": (0.40, 0.58, 0.02),
    "industrial": (0.10, 0.25, 0.65),
    "rural": (0.90, 0.08, 0.02),
}
_DENSITY = {"residential": 1.0, "commercial": 0.8, "industrial": 0.25, "rural": 0.08}
_EV_WEIGHT = {"residential": 1.0, "commercial": 2.5, "industrial": 0.6, "rural": 0.2}


def _areas(rng: np.random.Generator, lon0: float, lat0: float, block_m: float,
           nx: int, ny: int) -> pd.DataFrame:
    dlat = block_m / M_PER_DEG_LAT
    dlon = block_m / (M_PER_DEG_LAT * np.cos(np.radians(lat0)))
    ix, iy = np.meshgrid(np.arange(nx), np.arange(ny))
    ix, iy = ix.ravel(), iy.ravel()
    dx, dy = ix - (nx - 1) / 2, iy - (ny - 1) / 2
    radius = np.hypot(dx, dy) / (max(nx, ny) / 2)
    angle = np.arctan2(dy, dx)
    zone = np.where(radius < 0.28, "commercial", np.where(radius > 0.95, "rural", "residential"))
    works = (radius > 0.55) & (np.abs(angle) < 0.5) | (radius > 0.6) & (np.abs(angle + 2.2) < 0.35)
    zone = np.where(works & (radius <= 1.1), "industrial", zone)
    flip = rng.random(ix.size) < 0.08  # a few mixed blocks, as cities have
    zone = np.where(flip & (zone == "residential"), "commercial", zone)
    sector = ((angle + np.pi) / (2 * np.pi) * 5).astype(int) % 5 + 1
    district = np.where(radius < 0.3, 0, sector)
    lon_min = lon0 + (ix - nx / 2) * dlon
    lat_min = lat0 + (iy - ny / 2) * dlat
    return pd.DataFrame({
        "area_id": [f"A{a:03d}" for a in range(ix.size)],
        "name": [f"{DISTRICTS[d]} {k + 1}" for k, d in enumerate(district)],
        "district": [DISTRICTS[d] for d in district],
        "zone": zone,
        "lon_min": lon_min, "lat_min": lat_min,
        "lon_max": lon_min + dlon, "lat_max": lat_min + dlat,
    })


def _day_offsets(days: int, start: np.datetime64) -> np.ndarray:
    """Days spread over a year (seasons), every other one moved to a weekend."""
    offsets = np.floor(np.arange(days) * 365 / days).astype(np.int64) if days <= 365 else np.arange(days)
    if days <= 365:
        weekday = (start.astype("datetime64[D]").astype(np.int64) + offsets + 3) % 7
        offsets = offsets + np.where(np.arange(days) % 2 == 1, (5 - weekday) % 7, 0)
    return np.unique(offsets)


def generate_city(meters: int = 100_000, days: int = 2, seed: int = 0,
                  start: str = "2025-01-06", stations: int | None = None,
                  lon0: float = 120.15, lat0: float = 30.25, block_m: float = 1_500.0) -> City:
    """A reproducible city: same arguments, same bytes.

    ``days`` full days of 15-minute readings per meter are spread across one year
    starting at ``start`` (every other one a weekend) so that hour, weekday/weekend
    and month views all have data; ``meters * 96 * days`` readings in total.
    """
    if meters < 1 or days < 1:
        raise HeatmapError("need at least one meter and one day")
    rng = np.random.default_rng(seed)
    side = max(4, int(round(np.sqrt(meters / 550))))
    areas = _areas(rng, lon0, lat0, block_m, side + 2, side)
    zone = areas["zone"].to_numpy()

    centre = np.hypot(areas["lon_min"] - areas["lon_min"].mean(), areas["lat_min"] - areas["lat_min"].mean())
    denser = 1.6 - (centre / centre.max()).to_numpy()  # density falls off towards the edge
    weight = np.array([_DENSITY[z] for z in zone]) * denser * rng.uniform(0.6, 1.4, len(areas))
    area_of = np.sort(rng.choice(len(areas), size=meters, p=weight / weight.sum()))
    mix = np.array([_KIND_MIX[z] for z in zone])[area_of]
    kind = (rng.random(meters)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1).clip(0, 2)
    lon, lat = _place(rng, areas, area_of)
    scale = rng.lognormal(0.0, 0.35, meters)

    offsets = _day_offsets(days, np.datetime64(start, "D"))
    day0 = np.datetime64(start, "D").astype("datetime64[ns]").astype(np.int64)
    shapes = _shapes()
    kwh_parts, ts_parts = [], []
    for offset in offsets:
        day_ns = int(day0) + int(offset) * 86_400_000_000_000
        stamp = np.datetime64(day_ns, "ns")
        weekend = int((int(offset) + np.datetime64(start, "D").astype(np.int64) + 3) % 7 >= 5)
        month = int(stamp.astype("datetime64[M]").astype(np.int64) % 12)
        factor = (scale * _SEASON[kind, month]).astype(np.float32)
        noise = rng.lognormal(0.0, 0.12, (meters, _SLOTS)).astype(np.float32)
        kw = shapes[kind, weekend].astype(np.float32) * factor[:, None] * noise
        kwh_parts.append((kw * np.float32(0.25)).ravel())
        ts_parts.append(np.tile(day_ns + np.arange(_SLOTS, dtype=np.int64) * SLOT_NS, meters))
    n_days = len(offsets)
    readings = pd.DataFrame({
        "meter_id": np.tile(np.repeat(np.arange(meters, dtype=np.int32), _SLOTS), n_days),
        "ts": np.concatenate(ts_parts).view("datetime64[ns]"),
        "kwh": np.concatenate(kwh_parts),
        "lon": np.tile(np.repeat(lon, _SLOTS), n_days),
        "lat": np.tile(np.repeat(lat, _SLOTS), n_days),
    })

    ev = _ev_sessions(rng, areas, zone, stations or max(8, meters // 250), meters, offsets, day0)
    _size_areas(rng, areas, area_of, kind, scale, ev)
    return City(readings, ev, areas)


def _place(rng: np.random.Generator, areas: pd.DataFrame, area_of: np.ndarray):
    """Meters cluster around a few compounds per block, like housing estates do."""
    n = len(areas)
    compounds = 6
    cx = rng.uniform(0.15, 0.85, (n, compounds))
    cy = rng.uniform(0.15, 0.85, (n, compounds))
    pick = rng.integers(0, compounds, area_of.size)
    fx = np.clip(cx[area_of, pick] + rng.normal(0, 0.13, area_of.size), 0.001, 0.999)
    fy = np.clip(cy[area_of, pick] + rng.normal(0, 0.13, area_of.size), 0.001, 0.999)
    a = areas.iloc[area_of]
    lon = a["lon_min"].to_numpy() + fx * (a["lon_max"].to_numpy() - a["lon_min"].to_numpy())
    lat = a["lat_min"].to_numpy() + fy * (a["lat_max"].to_numpy() - a["lat_min"].to_numpy())
    return lon, lat


def _ev_sessions(rng, areas, zone, n_stations, meters, offsets, day0) -> pd.DataFrame:
    weight = np.array([_EV_WEIGHT[z] for z in zone])
    at = rng.choice(len(areas), size=n_stations, p=weight / weight.sum())
    fx, fy = rng.uniform(0.05, 0.95, n_stations), rng.uniform(0.05, 0.95, n_stations)
    a = areas.iloc[at]
    s_lon = a["lon_min"].to_numpy() + fx * (a["lon_max"] - a["lon_min"]).to_numpy()
    s_lat = a["lat_min"].to_numpy() + fy * (a["lat_max"] - a["lat_min"]).to_numpy()
    fast = rng.random(n_stations) < 0.3
    per_day = np.where(fast, 40, 18)
    evening = np.array([z == "residential" for z in zone[at]])
    # start-hour weights: residential stations in the evening, the rest by day
    home = _bump(20.0, 2.0)[::4] + 0.05
    work = _bump(13.0, 3.5)[::4] + 0.05
    rows = []
    drivers = max(50, meters // 8)
    for offset in offsets:
        count = rng.poisson(per_day)
        station = np.repeat(np.arange(n_stations), count)
        hour_p = np.where(evening[station, None], home / home.sum(), work / work.sum())
        hour = (rng.random(station.size)[:, None] > np.cumsum(hour_p, axis=1)).sum(axis=1).clip(0, 23)
        minute = rng.integers(0, 60, station.size)
        minutes = np.where(fast[station], rng.uniform(15, 50, station.size),
                           rng.uniform(60, 420, station.size)).round()
        kw = np.where(fast[station], 60.0, 7.0) * rng.uniform(0.55, 0.95, station.size)
        start = day0 + int(offset) * 86_400_000_000_000 + (hour * 60 + minute) * 60_000_000_000
        rows.append(pd.DataFrame({
            "station_id": [f"S{s:04d}" for s in station],
            "lon": s_lon[station], "lat": s_lat[station],
            "start": np.asarray(start, dtype=np.int64).view("datetime64[ns]"),
            "minutes": minutes,
            "kwh": (kw * minutes / 60).round(2),
            "user_id": [f"U{u:06d}" for u in rng.integers(0, drivers, station.size)],
        }))
    return pd.concat(rows, ignore_index=True)


def _size_areas(rng, areas, area_of, kind, scale, ev) -> None:
    """Population from residential meters; capacity around the expected summer peak."""
    n = len(areas)
    residents = np.bincount(area_of, weights=(kind == 0) * rng.uniform(1.8, 3.6, area_of.size), minlength=n)
    workers = np.bincount(area_of, weights=(kind > 0) * 0.3, minlength=n)
    areas["population"] = np.round(residents + workers).astype(np.int64)
    peak_of_kind = _shapes().max(axis=(1, 2)) * _SEASON.max(axis=1)
    expected = np.bincount(area_of, weights=scale * peak_of_kind[kind], minlength=n) * 0.8
    ev_load = np.zeros(n)
    if len(ev):
        where = locate(ev["lon"].to_numpy(), ev["lat"].to_numpy(), areas)
        days = max(1, ev["start"].dt.normalize().nunique())
        hit = where >= 0
        per_area = np.bincount(where[hit], weights=ev["kwh"].to_numpy()[hit], minlength=n)
        ev_load = per_area / days / 6.0  # an evening-concentrated day, ~6 h effective
    headroom = rng.choice([0.85, 1.05, 1.3, 1.6, 2.0], size=n, p=[0.06, 0.14, 0.3, 0.3, 0.2])
    capacity = np.maximum((expected + ev_load) * headroom, 50.0)
    areas["capacity_kw"] = (np.ceil(capacity / 50.0) * 50.0).astype(np.int64)
