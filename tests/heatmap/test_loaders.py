"""CSV and Parquet give the same map; malformed inputs fail with a message naming the column."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.heatmap import HeatmapError, load_dir, prepare


@pytest.fixture(scope="module")
def small(city):
    keep = city.readings["meter_id"] < 800
    return city.readings[keep].reset_index(drop=True), city.ev_sessions, city.areas


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_file_formats_round_trip(small, tmp_path, fmt):
    readings, ev, areas = small
    for name, frame in (("readings", readings), ("ev_sessions", ev), ("areas", areas)):
        path = tmp_path / f"{name}.{fmt}"
        frame.to_csv(path, index=False) if fmt == "csv" else frame.to_parquet(path, index=False)
    tables = load_dir(tmp_path)
    from_files = prepare(tables["readings"], tables["ev_sessions"], tables["areas"], period="daytype")
    in_memory = prepare(readings, ev, areas, period="daytype")
    np.testing.assert_allclose(np.nan_to_num(from_files.meter.kwh), np.nan_to_num(in_memory.meter.kwh), rtol=1e-6)
    np.testing.assert_array_equal(from_files.visible, in_memory.visible)
    # paths work too (the remote-run API takes either)
    by_path = prepare(tmp_path / f"readings.{fmt}", None, tmp_path / f"areas.{fmt}", period="daytype")
    assert by_path.ev.kwh[by_path.visible].max() == 0  # no EV file, no EV load


def test_missing_ev_file_is_allowed_but_areas_are_required(small, tmp_path):
    readings, _, areas = small
    readings.to_parquet(tmp_path / "readings.parquet")
    areas.to_csv(tmp_path / "areas.csv", index=False)
    assert load_dir(tmp_path)["ev_sessions"] is None
    (tmp_path / "areas.csv").unlink()
    with pytest.raises(HeatmapError, match="no areas"):
        load_dir(tmp_path)


@pytest.mark.parametrize("change,message", [
    (lambda r: r.drop(columns=["kwh"]), "missing column.*kwh"),
    (lambda r: r.drop(columns=["lon", "lat"]), "need a location"),
    (lambda r: r.assign(kwh=r["kwh"].astype(object).where(r.index != 3, "lots")), "'kwh' is not numeric"),
    (lambda r: r.assign(lat=np.where(r.index == 5, np.nan, r["lat"])), "'lat' must be finite; row 5"),
    (lambda r: r.assign(ts="not a time"), "'ts' is not a timestamp"),
    (lambda r: r.iloc[:0], "empty"),
])
def test_bad_readings_name_the_problem(small, change, message):
    readings, ev, areas = small
    with pytest.raises(HeatmapError, match=message):
        prepare(change(readings.head(50).copy()), ev, areas)


def test_bad_areas_and_options(small):
    readings, ev, areas = small
    with pytest.raises(HeatmapError, match="appears more than once"):
        prepare(readings, ev, pd.concat([areas, areas.head(1)]))
    with pytest.raises(HeatmapError, match="unknown period"):
        prepare(readings, ev, areas, period="week")
    with pytest.raises(HeatmapError, match="too many"):
        prepare(readings, ev, areas, cell_m=1)
