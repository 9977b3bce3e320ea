"""The minimum-count rule holds in the tables, the PNGs and the HTML (seed 002 §3.3 E)."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageColor

from analytics.heatmap import png as png_module
from analytics.heatmap import render_all
from analytics.heatmap.aggregate import aggregate
from analytics.heatmap.colors import NO_DATA
from analytics.heatmap.periods import period_kind
from analytics.heatmap.privacy import release
from analytics.heatmap.schema import check_areas, check_ev, check_readings

LONE_KWH = 1000.0  # the one big customer who must not be visible anywhere
SPOTS = {  # name: (lon, lat, meters, area)
    "X1": (120.0051, 30.0051, 5, "A"),   # 5 meters: shown at k=5
    "Y": (120.0151, 30.0151, 1, "A"),    # 1 meter: withheld; makes area A withheld too (differencing)
    "Z": (120.0301, 30.0101, 4, "B"),    # 4 meters: withheld, and so is area B
    "X2": (120.0501, 30.0101, 6, "C"),   # 6 meters: shown; area C shown
}


def _tiny_city():
    areas = pd.DataFrame({"area_id": ["A", "B", "C"], "population": [100, 80, 120],
                          "capacity_kw": [500, 500, 500],
                          "lon_min": [120.00, 120.02, 120.04], "lat_min": [30.0] * 3,
                          "lon_max": [120.02, 120.04, 120.06], "lat_max": [30.02] * 3})
    ts = pd.date_range("2025-03-03", periods=96, freq="15min")
    rows, meter = [], 0
    for name, (lon, lat, count, _) in SPOTS.items():
        for _ in range(count):
            kwh = LONE_KWH if name == "Y" else 1.0
            rows.append(pd.DataFrame({"meter_id": meter, "ts": ts, "kwh": kwh, "lon": lon, "lat": lat}))
            meter += 1
    readings = pd.concat(rows, ignore_index=True)
    sessions = []  # 5 users at X1 (shown), 3 users at X2 (withheld), all at 18:00
    for spot, users in (("X1", 5), ("X2", 3)):
        lon, lat = SPOTS[spot][:2]
        for u in range(users):
            sessions.append({"station_id": spot, "lon": lon, "lat": lat, "start": pd.Timestamp("2025-03-03 18:00"),
                             "minutes": 15, "kwh": 7.0, "user_id": f"{spot}-{u}"})
    return readings, pd.DataFrame(sessions), areas


@pytest.fixture(scope="module")
def tiny():
    return _tiny_city()


@pytest.fixture(scope="module")
def tiny_rendered(tiny, tmp_path_factory):
    return render_all(*tiny, tmp_path_factory.mktemp("tiny"), period="daytype", min_count=5)


def _released(tiny, k):
    readings, ev, areas = tiny
    cube = aggregate(check_readings(readings), check_ev(ev), check_areas(areas), period_kind("hour"))
    return cube, release(cube, k)


def _cell(rel, spot):
    lon, lat = SPOTS[spot][:2]
    flat = int(rel.grid.cells(np.array([lon]), np.array([lat]))[0])
    return divmod(flat, rel.grid.width)


def test_cells_below_the_minimum_are_withheld(tiny):
    cube, rel = _released(tiny, 5)
    shown = {s: bool(rel.meter.shown[:, r, c].all()) for s in SPOTS for r, c in [_cell(rel, s)]}
    assert shown == {"X1": True, "Y": False, "Z": False, "X2": True}
    r, c = _cell(rel, "Y")
    assert np.isnan(rel.meter.kwh[:, r, c]).all() and np.isnan(rel.meter.count[:, r, c]).all()
    assert cube.meter_kwh[:, r, c].sum() == pytest.approx(LONE_KWH * 96)  # measured, just not released


def test_threshold_is_configurable(tiny):
    _, strict = _released(tiny, 6)
    _, loose = _released(tiny, 1)
    assert not strict.meter.shown[:, *_cell(strict, "X1")].any()
    assert strict.meter.shown[:, *_cell(strict, "X2")].all()
    assert loose.meter.shown[:, *_cell(loose, "Y")].all()  # with k=1 the lone meter would show
    with pytest.raises(ValueError):
        _released(tiny, 0)


def test_areas_resist_differencing_and_ev_has_its_own_count(tiny):
    _, rel = _released(tiny, 5)
    a, b, c = 0, 1, 2
    assert not rel.area_meter.shown[a].any()   # 6 meters, but 1 sits in a withheld cell
    assert not rel.area_meter.shown[b].any()   # 4 meters
    assert rel.area_meter.shown[c].all()
    hour18 = rel.labels.index("18:00")
    assert rel.ev.shown[hour18, *_cell(rel, "X1")]
    assert not rel.ev.shown[hour18, *_cell(rel, "X2")]        # 3 EV users
    assert np.isnan(rel.ev.kwh[hour18, *_cell(rel, "X2")])
    assert rel.meter.shown[hour18, *_cell(rel, "X2")]          # its meters still show


def test_tables_hold_no_figure_below_the_minimum(tiny_rendered):
    cells = pd.read_csv(tiny_rendered["cells"])
    areas = pd.read_csv(tiny_rendered["areas"])
    assert cells["cell"].nunique() == 2  # X1 and X2
    assert (cells["meters"] >= 5).all()
    assert cells["meter_kwh"].max() < LONE_KWH  # the big customer's use is nowhere
    assert set(areas["area_id"]) == {"A", "C"}  # B has 4 meters and no EV: nothing to show
    a = areas[areas["area_id"] == "A"]
    assert a["meter_kwh"].isna().all() and a["meters"].isna().all()  # only A's 5 EV users show
    assert areas.loc[areas["area_id"] == "C", "ev_kwh"].isna().all()  # C's 3 EV users are withheld
    assert list(pd.read_csv(tiny_rendered["weakest"])["area_id"]) == []  # no area has a complete load


def test_pngs_paint_withheld_cells_as_empty(tiny, tiny_rendered):
    _, rel = _released(tiny, 5)
    grid = rel.grid
    scale = min(png_module._MAP_W / grid.width, png_module._MAP_H / grid.height)
    box_w, box_h = round(grid.width * scale), round(grid.height * scale)
    no_data = ImageColor.getrgb(NO_DATA)
    for path in tiny_rendered["png"]:
        image = Image.open(path).convert("RGB")

        def pixel(spot):
            r, c = _cell(rel, spot)
            x = png_module._LEFT + (c + 0.5) / grid.width * box_w
            y = png_module._TOP + (1 - (r + 0.5) / grid.height) * box_h
            return image.getpixel((int(x), int(y)))

        assert pixel("Y") == no_data and pixel("Z") == no_data, path
        if "load_kw" in path:
            assert pixel("X1") != no_data and pixel("X2") != no_data, path


def test_html_carries_no_withheld_value(tiny, tiny_rendered):
    _, rel = _released(tiny, 5)
    page = open(tiny_rendered["html"], encoding="utf-8").read()
    data = json.loads(re.search(r'id="heatmap-data">(.*?)</script>', page, re.S).group(1))
    flat = {s: r * data["grid"]["width"] + c for s in SPOTS for r, c in [_cell(rel, s)]}
    for grids in [layer["values"] for layer in data["layers"]] + [data["meters"]]:
        for encoded in grids:
            values = np.frombuffer(base64.b64decode(encoded), dtype="<u2")
            assert values[flat["Y"]] == 65535 and values[flat["Z"]] == 65535
    load = np.frombuffer(base64.b64decode(data["layers"][0]["values"][0]), dtype="<u2")
    assert load[flat["X1"]] != 65535
    assert all(period == [] for period in data["weakest"])  # no area has a complete, shown load


def test_generated_city_every_shown_row_rests_on_enough_customers(city):
    readings, ev, areas = check_readings(city.readings), check_ev(city.ev_sessions), check_areas(city.areas)
    cube = aggregate(readings, ev, areas, period_kind("hour"))
    rel = release(cube, 5)
    assert rel.visible.any() and (~rel.visible & (cube.meters > 0)).any()  # both cases occur
    assert (cube.meters[rel.meter.shown] >= 5).all() and (cube.ev_users[rel.ev.shown] >= 5).all()
    assert np.isnan(rel.meter.kwh[(cube.meters > 0) & (cube.meters < 5)]).all()
    assert np.isnan(rel.ev.kwh[(cube.ev_users > 0) & (cube.ev_users < 5)]).all()
    assert (cube.area_meters[rel.area_meter.shown] >= 5).all()
