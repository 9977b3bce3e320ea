"""The aggregates are exact: cell, period and area sums equal the input, computed independently."""
from __future__ import annotations

import datashader as ds
import numpy as np
import pandas as pd
import pytest

from analytics.heatmap.aggregate import aggregate
from analytics.heatmap.areas import locate
from analytics.heatmap.grid import Grid
from analytics.heatmap.periods import period_kind
from analytics.heatmap.schema import check_areas, check_ev, check_readings


@pytest.fixture(scope="module")
def checked(city):
    return check_readings(city.readings), check_ev(city.ev_sessions), check_areas(city.areas)


@pytest.fixture(scope="module")
def cube(checked):
    return aggregate(*checked, period_kind("hour"))


def test_cell_sums_equal_input_sums(city, cube):
    assert cube.meter_kwh.sum() == pytest.approx(city.readings["kwh"].astype(float).sum(), rel=1e-9)
    assert cube.ev_kwh.sum() == pytest.approx(city.ev_sessions["kwh"].sum(), rel=1e-9)
    assert cube.totals["readings"] == len(city.readings)


def test_every_cell_and_hour_matches_a_pandas_groupby(city, cube):
    r = city.readings
    cell = cube.grid.cells(r["lon"].to_numpy(), r["lat"].to_numpy())
    assert (cell >= 0).all()
    frame = pd.DataFrame({"cell": cell, "hour": r["ts"].dt.hour, "kwh": r["kwh"].astype(float),
                          "meter": r["meter_id"]})
    grouped = frame.groupby(["hour", "cell"]).agg(kwh=("kwh", "sum"), meters=("meter", "nunique"))
    hour = grouped.index.get_level_values("hour").to_numpy()
    flat = grouped.index.get_level_values("cell").to_numpy()
    row, col = flat // cube.grid.width, flat % cube.grid.width
    np.testing.assert_allclose(cube.meter_kwh[hour, row, col], grouped["kwh"], rtol=1e-9)
    np.testing.assert_array_equal(cube.meters[hour, row, col], grouped["meters"])
    assert cube.meters.sum() == grouped["meters"].sum()  # nothing anywhere else


def test_area_sums_and_hours(city, cube, checked):
    r = city.readings
    area = locate(r["lon"].to_numpy(), r["lat"].to_numpy(), checked[2])
    expected = pd.Series(r["kwh"].astype(float).to_numpy()).groupby([area, r["ts"].dt.hour]).sum()
    got = cube.area_meter_kwh[expected.index.get_level_values(0), expected.index.get_level_values(1)]
    np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-9)
    days = r["ts"].dt.normalize().nunique()
    np.testing.assert_array_equal(cube.hours, np.full(24, float(days)))  # one hour a day: EV spill-over adds none
    assert cube.area_meter_slot_kwh.sum() == pytest.approx(r["kwh"].astype(float).sum(), rel=1e-9)


def test_ev_sessions_are_spread_over_their_quarter_hours(checked):
    readings, _, areas = checked
    ev = pd.DataFrame({"station_id": ["S1", "S1"], "lon": [120.15, 120.15], "lat": [30.25, 30.25],
                       "start": pd.to_datetime(["2025-01-06 18:50", "2025-01-06 18:50"]),
                       "minutes": [40, 10], "kwh": [30.0, 6.0], "user_id": ["u1", "u2"]})
    cube = aggregate(readings, check_ev(ev), areas, period_kind("hour"))
    by_hour = cube.ev_kwh.sum(axis=(1, 2))
    labels = cube.labels
    # 40 min from 18:50 -> slots 18:45, 19:00, 19:15 (10 kWh each); 10 min -> one slot at 18:45
    assert by_hour[labels.index("18:00")] == pytest.approx(16.0)
    assert by_hour[labels.index("19:00")] == pytest.approx(20.0)
    assert cube.ev_users.max(axis=(1, 2))[labels.index("18:00")] == 2
    assert cube.ev_users.max(axis=(1, 2))[labels.index("19:00")] == 1


def test_area_id_readings_land_on_their_area(checked, cube):
    readings, ev, areas = checked
    where = locate(readings["lon"].to_numpy(), readings["lat"].to_numpy(), areas)
    by_area = readings.drop(columns=["lon", "lat"]).assign(area_id=areas["area_id"].to_numpy()[where])
    other = aggregate(check_readings(by_area), ev, areas, period_kind("hour"))
    np.testing.assert_allclose(other.area_meter_kwh, cube.area_meter_kwh, rtol=1e-9)
    assert other.meter_kwh.sum() == pytest.approx(cube.meter_kwh.sum(), rel=1e-9)


def test_own_binning_matches_datashader_on_edges():
    grid = Grid.covering(120.0, 30.0, 120.1, 30.07, 250.0)
    rng = np.random.default_rng(3)
    (x0, x1), (y0, y1) = grid.x_range, grid.y_range
    edges_x = x0 + np.arange(grid.width + 1) * (x1 - x0) / grid.width
    edges_y = y0 + np.arange(grid.height + 1) * (y1 - y0) / grid.height
    lon = np.concatenate([rng.uniform(x0, x1, 20_000), edges_x, np.full(edges_y.size, x1), [x0 - 1e-9]])
    lat = np.concatenate([rng.uniform(y0, y1, 20_000), np.full(edges_x.size, y1), edges_y, [y0]])
    counted = grid.canvas().points(pd.DataFrame({"lon": lon, "lat": lat}), "lon", "lat", ds.count()).to_numpy()
    cells = grid.cells(lon, lat)
    mine = np.bincount(cells[cells >= 0], minlength=grid.size).reshape(grid.height, grid.width)
    np.testing.assert_array_equal(mine, counted)
    assert cells[-1] == -1  # off the grid


@pytest.mark.parametrize("name,accessor", [
    ("hour", lambda t: t.dt.hour), ("daytype", lambda t: (t.dt.day_of_week >= 5).astype(int)),
    ("month", lambda t: t.dt.month - 1)])
def test_period_codes_match_pandas(name, accessor):
    ts = pd.Series(pd.to_datetime(np.random.default_rng(1).integers(0, 2 ** 62, 5_000) % (60 * 365 * 86_400 * 10 ** 9)))
    codes = period_kind(name).codes(ts.to_numpy().view(np.int64))
    np.testing.assert_array_equal(codes, accessor(ts).to_numpy())
