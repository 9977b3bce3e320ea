"""The synthetic city is reproducible and looks like a city."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.heatmap import generate_city


def test_same_seed_same_city_other_seed_other_city():
    a, b, c = generate_city(500, 2, seed=1), generate_city(500, 2, seed=1), generate_city(500, 2, seed=2)
    pd.testing.assert_frame_equal(a.readings, b.readings)
    pd.testing.assert_frame_equal(a.ev_sessions, b.ev_sessions)
    assert not np.array_equal(a.readings["kwh"], c.readings["kwh"])


def test_shape_of_the_city(city):
    r = city.readings
    assert len(r) == 3_000 * 96 * 2 and r["meter_id"].nunique() == 3_000
    assert set(city.areas["zone"]) >= {"residential", "commercial", "industrial"}
    assert city.areas["district"].nunique() >= 4
    days = r["ts"].dt.normalize().unique()
    assert {d.day_of_week >= 5 for d in days} == {False, True}  # a weekday and a weekend day
    assert len(city.ev_sessions) > 100 and city.ev_sessions["user_id"].nunique() > 50
    hourly = r.groupby(r["ts"].dt.hour)["kwh"].sum()
    assert hourly.loc[18:21].mean() > 1.3 * hourly.loc[2:5].mean()  # evening peak over night
    peak = r.groupby(["meter_id"])["kwh"].max()
    assert (peak > 0).all()
    assert (city.areas["capacity_kw"] > 0).all() and city.areas["population"].sum() > 3_000
