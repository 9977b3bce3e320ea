"""Raw (pre-privacy) aggregates per cell x period and per area x period.

Readings are first summed per meter x period with ``np.bincount`` (one pass over
the 10 M rows), then datashader rasterises those meter points onto the grid: the
same pass yields the cell sums and the distinct-meter counts the privacy rule needs.
A meter is fixed: it sits where its last reading says.
"""
from __future__ import annotations

from dataclasses import dataclass

import datashader as ds
import numpy as np
import pandas as pd

from analytics.heatmap.areas import locate
from analytics.heatmap.errors import HeatmapError
from analytics.heatmap.grid import Grid
from analytics.heatmap.periods import SLOT_HOURS, SLOT_NS, PeriodKind

MAX_KEYS = 64_000_000  # meters x periods, or areas x slots, held as dense arrays


@dataclass
class Cube:
    """Everything measured, before the privacy rule; arrays are [period, row, col]."""

    kind: PeriodKind
    labels: list[str]
    hours: np.ndarray              # observed hours per period (distinct 15-min slots / 4)
    grid: Grid
    meter_kwh: np.ndarray
    meters: np.ndarray             # distinct meters with a reading in the cell and period
    ev_kwh: np.ndarray
    ev_users: np.ndarray           # distinct EV users charging in the cell and period
    population: np.ndarray         # [row, col]: area population shared out by meters
    capacity_kw: np.ndarray        # [row, col]: area capacity shared out by meters
    areas: pd.DataFrame
    area_meter_kwh: np.ndarray     # [area, period]
    area_meters: np.ndarray
    area_ev_kwh: np.ndarray
    area_ev_users: np.ndarray
    area_meter_slot_kwh: np.ndarray  # [area, slot]: for the peak 15-minute load
    area_ev_slot_kwh: np.ndarray
    slot_period: np.ndarray        # period index of each slot, -1 for an empty slot
    stations: pd.DataFrame         # unique EV station locations (public infrastructure)
    meter_pairs: dict              # area, period, cell per distinct meter x period
    ev_pairs: dict                 # area, period, cell, user per EV slot
    totals: dict


def _codes(ids: np.ndarray, periods: int) -> tuple[np.ndarray, int]:
    """Dense meter codes, in a new int64 array the caller may overwrite: the ids
    themselves when they are small integers (no hashing), else pandas' factorize."""
    if np.issubdtype(ids.dtype, np.integer):
        low, high = int(ids.min()), int(ids.max())
        if (high - low + 1) * periods <= MAX_KEYS:
            return np.subtract(ids, low, dtype=np.int64), high - low + 1
    codes, uniques = pd.factorize(ids)
    if len(uniques) * periods > MAX_KEYS:
        raise HeatmapError(f"{len(uniques)} meters x {periods} periods is too many for one map")
    return codes.astype(np.int64, copy=False), len(uniques)


def _raster(canvas: ds.Canvas, lon, lat, period, n_periods: int, weight=None) -> np.ndarray:
    """[period, row, col] sums of ``weight`` (or point counts) rasterised by datashader."""
    frame = pd.DataFrame({
        "lon": lon, "lat": lat,
        "p": pd.Categorical.from_codes(period.astype(np.int8), categories=range(n_periods)),
    })
    if weight is None:
        reduction = ds.count()
    else:
        frame["w"] = weight
        reduction = ds.sum("w")
    agg = canvas.points(frame, "lon", "lat", agg=ds.by("p", reduction))
    return np.nan_to_num(np.moveaxis(agg.to_numpy(), 2, 0)).astype(np.float64)


def grid_for(readings_lon, readings_lat, ev: pd.DataFrame, areas: pd.DataFrame, cell_m: float) -> Grid:
    """A grid covering every area box, meter and station, so no input is dropped."""
    lon = [areas["lon_min"].min(), areas["lon_max"].max(), np.nanmin(readings_lon), np.nanmax(readings_lon)]
    lat = [areas["lat_min"].min(), areas["lat_max"].max(), np.nanmin(readings_lat), np.nanmax(readings_lat)]
    if len(ev):
        lon += [ev["lon"].min(), ev["lon"].max()]
        lat += [ev["lat"].min(), ev["lat"].max()]
    return Grid.covering(min(lon), min(lat), max(lon), max(lat), cell_m)


def aggregate(readings: pd.DataFrame, ev: pd.DataFrame, areas: pd.DataFrame,
              kind: PeriodKind, cell_m: float = 250.0) -> Cube:
    """Checked inputs (see schema.py) to a Cube; sums are exact, nothing is dropped."""
    n_p, n_a = kind.size, len(areas)
    ts = readings["ts"].to_numpy().view(np.int64)
    kwh = readings["kwh"].to_numpy()
    code, n_m = _codes(readings["meter_id"].to_numpy(), n_p)

    # quarter-hour slots (epoch-aligned) shared by readings and EV sessions; a slot
    # lies inside one hour, day and month, so its period code comes from a small table
    ev_slots = _expand_sessions(ev)
    starts = [ts.min()] + ([ev_slots["ts"].min()] if len(ev_slots["ts"]) else [])
    base = (min(starts) // SLOT_NS) * SLOT_NS
    slot = np.subtract(ts, base)
    np.floor_divide(slot, SLOT_NS, out=slot)
    e_slot = (ev_slots["ts"] - base) // SLOT_NS
    n_s = int(max(slot.max(), e_slot.max() if e_slot.size else 0)) + 1
    if n_a * n_s > MAX_KEYS:
        raise HeatmapError(f"{n_a} areas x {n_s} quarter-hours is too long a span; split the input by year")
    slot_code = kind.codes(base + np.arange(n_s, dtype=np.int64) * SLOT_NS)
    has_reading = np.zeros(n_s, dtype=bool)
    has_reading[slot] = True
    has_any = has_reading.copy()
    has_any[e_slot] = True
    # a period lasts as long as its metered quarter-hours; charging that spills past
    # the metered days must not dilute the meters' mean load (EV-only periods use theirs)
    metered = np.bincount(slot_code[has_reading], minlength=n_p)
    hours = np.where(metered > 0, metered, np.bincount(slot_code[has_any], minlength=n_p)) * SLOT_HOURS

    # one location and one area per meter
    if "lon" in readings.columns:
        m_lon, m_lat = np.full(n_m, np.nan), np.full(n_m, np.nan)
        m_lon[code] = readings["lon"].to_numpy()
        m_lat[code] = readings["lat"].to_numpy()
        m_area = locate(m_lon, m_lat, areas)
    else:
        r_area = pd.Index(areas["area_id"]).get_indexer(readings["area_id"].to_numpy())
        if (r_area < 0).any():
            raise HeatmapError(f"readings: area_id {readings['area_id'].iloc[int(np.argmax(r_area < 0))]!r} is not in areas")
        m_area = np.full(n_m, -1, dtype=np.int64)
        m_area[code] = r_area
        centre_lon = ((areas["lon_min"] + areas["lon_max"]) / 2).to_numpy()
        centre_lat = ((areas["lat_min"] + areas["lat_max"]) / 2).to_numpy()
        m_lon = np.where(m_area >= 0, centre_lon[m_area], np.nan)
        m_lat = np.where(m_area >= 0, centre_lat[m_area], np.nan)
    grid = grid_for(m_lon, m_lat, ev, areas, cell_m)
    canvas = grid.canvas()

    # per area, the 15-minute series for peaks (before ``code`` is reused as a key)
    r_key = m_area[code]
    if r_key.min() < 0:  # meters outside every area: leave them out of the area series
        keep = r_key >= 0
        r_key, slot_kept, kwh_kept = r_key[keep], slot[keep], kwh[keep]
    else:
        slot_kept, kwh_kept = slot, kwh
    r_key *= n_s
    r_key += slot_kept
    area_meter_slot = np.bincount(r_key, weights=kwh_kept, minlength=n_a * n_s).reshape(n_a, n_s)
    del r_key, slot_kept, kwh_kept

    # meter x period: energy and presence, then rasterised (10 M readings -> ~10^6 points)
    key = code  # reused in place: one 10 M temporary fewer
    key *= n_p
    key += slot_code[slot]
    del slot
    energy = np.bincount(key, weights=kwh, minlength=n_m * n_p)
    pair = np.flatnonzero(np.bincount(key, minlength=n_m * n_p))
    del key
    pm, pp = pair // n_p, pair % n_p
    meter_kwh = _raster(canvas, m_lon[pm], m_lat[pm], pp, n_p, energy[pair])
    meter_pairs = {"area": m_area[pm], "period": pp, "cell": grid.cells(m_lon[pm], m_lat[pm])}
    meters = _raster(canvas, m_lon[pm], m_lat[pm], pp, n_p)

    # per area: energy and distinct meters
    inside = m_area[pm] >= 0
    a_key = m_area[pm][inside] * n_p + pp[inside]
    area_meter_kwh = np.bincount(a_key, weights=energy[pair][inside], minlength=n_a * n_p).reshape(n_a, n_p)
    area_meters = np.bincount(a_key, minlength=n_a * n_p).reshape(n_a, n_p)

    # population and capacity shared out over the cells by each area's meters
    per_area = np.bincount(m_area[m_area >= 0], minlength=n_a)
    share = np.where(per_area > 0, 1.0 / np.maximum(per_area, 1), 0.0)
    placed = np.flatnonzero(~np.isnan(m_lon) & (m_area >= 0))
    weights = share[m_area[placed]]
    zeros = np.zeros(placed.size, dtype=np.int8)
    population = _raster(canvas, m_lon[placed], m_lat[placed], zeros, 1,
                         weights * areas["population"].to_numpy()[m_area[placed]])[0]
    capacity = _raster(canvas, m_lon[placed], m_lat[placed], zeros, 1,
                       weights * areas["capacity_kw"].to_numpy()[m_area[placed]])[0]

    ev_part = _aggregate_ev(ev, ev_slots, e_slot, slot_code[e_slot], kind, grid, canvas, areas, n_s)
    used = np.flatnonzero(hours > 0)
    remap = np.full(n_p, -1)
    remap[used] = np.arange(used.size)
    slot_period = np.where(has_any, remap[slot_code], -1)
    meter_pairs["period"] = remap[meter_pairs["period"]]
    ev_pairs = ev_part["pairs"]
    ev_pairs["period"] = remap[ev_pairs["period"]]
    totals = {
        "readings": int(len(readings)), "meters": int(np.count_nonzero(~np.isnan(m_lon))),
        "reading_kwh": float(kwh.sum()), "ev_sessions": int(len(ev)), "ev_kwh": float(ev["kwh"].sum()),
        "meters_outside_areas": int(((m_area < 0) & ~np.isnan(m_lon)).sum()),
    }
    return Cube(
        kind=kind, labels=[kind.labels[p] for p in used], hours=hours[used], grid=grid,
        meter_kwh=meter_kwh[used], meters=meters[used],
        ev_kwh=ev_part["ev_kwh"][used], ev_users=ev_part["ev_users"][used],
        population=population, capacity_kw=capacity, areas=areas,
        area_meter_kwh=area_meter_kwh[:, used], area_meters=area_meters[:, used],
        area_ev_kwh=ev_part["area_ev_kwh"][:, used], area_ev_users=ev_part["area_ev_users"][:, used],
        area_meter_slot_kwh=area_meter_slot, area_ev_slot_kwh=ev_part["area_slot"],
        slot_period=slot_period, stations=ev_part["stations"],
        meter_pairs=meter_pairs, ev_pairs=ev_pairs, totals=totals,
    )


def _expand_sessions(ev: pd.DataFrame) -> dict[str, np.ndarray]:
    """One row per 15-minute slot a session covers, its energy split evenly over them."""
    slots = np.maximum(1, np.ceil(ev["minutes"].to_numpy() / 15.0)).astype(np.int64)
    row = np.repeat(np.arange(len(ev)), slots)
    step = np.arange(row.size) - np.repeat(np.cumsum(slots) - slots, slots)
    start = ev["start"].to_numpy().view(np.int64)
    users, _ = pd.factorize(ev["user_id"].to_numpy()) if len(ev) else (np.zeros(0, np.int64), None)
    return {
        "ts": start[row] + step * SLOT_NS,
        "kwh": ev["kwh"].to_numpy()[row] / slots[row],
        "lon": ev["lon"].to_numpy()[row], "lat": ev["lat"].to_numpy()[row],
        "user": np.asarray(users, dtype=np.int64)[row], "row": row,
    }


def distinct_count(group: np.ndarray, user: np.ndarray, size: int) -> np.ndarray:
    """Distinct users per group id (0..size-1)."""
    if group.size == 0:
        return np.zeros(size, dtype=np.int64)
    span = int(user.max()) + 1
    pairs = np.unique(group * span + user)
    return np.bincount(pairs // span, minlength=size)


def _aggregate_ev(ev: pd.DataFrame, slots: dict, e_slot: np.ndarray, period: np.ndarray, kind: PeriodKind,
                  grid: Grid, canvas: ds.Canvas, areas: pd.DataFrame, n_s: int) -> dict:
    n_p, n_a = kind.size, len(areas)
    ev_kwh = _raster(canvas, slots["lon"], slots["lat"], period, n_p, slots["kwh"])
    cell = grid.cells(slots["lon"], slots["lat"])
    users = distinct_count(cell * n_p + period, slots["user"], grid.size * n_p)
    ev_users = users.reshape(grid.size, n_p).T.reshape(n_p, grid.height, grid.width)
    area = locate(ev["lon"].to_numpy(), ev["lat"].to_numpy(), areas)[slots["row"]]
    inside = area >= 0
    a_key = area[inside] * n_p + period[inside]
    return {
        "ev_kwh": ev_kwh, "ev_users": ev_users.astype(np.float64),
        "area_ev_kwh": np.bincount(a_key, weights=slots["kwh"][inside], minlength=n_a * n_p).reshape(n_a, n_p),
        "area_ev_users": distinct_count(a_key, slots["user"][inside], n_a * n_p).reshape(n_a, n_p),
        "area_slot": np.bincount(area[inside] * n_s + e_slot[inside], weights=slots["kwh"][inside],
                                 minlength=n_a * n_s).reshape(n_a, n_s),
        "stations": ev[["lon", "lat"]].drop_duplicates(ignore_index=True),
        "pairs": {"area": area, "period": period.astype(np.int64), "cell": cell, "user": slots["user"]},
    }
