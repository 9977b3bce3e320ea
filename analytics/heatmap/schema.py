"""The three inputs (meter readings, EV charging sessions, areas) and their checks.

Each ``check_*`` returns a frame with canonical dtypes or raises HeatmapError naming
the column, so a subscriber's file fails with a message, never deep inside numpy.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from analytics.heatmap.errors import HeatmapError

READINGS_REQUIRED = ("meter_id", "ts", "kwh")
READINGS_LOCATION = (("lon", "lat"), ("area_id",))
EV_REQUIRED = ("station_id", "lon", "lat", "start", "minutes", "kwh")
AREAS_REQUIRED = ("area_id", "population", "capacity_kw", "lon_min", "lat_min", "lon_max", "lat_max")
AREAS_OPTIONAL_TEXT = ("name", "district", "zone")


def _require(df: pd.DataFrame, what: str, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise HeatmapError(f"{what}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, df.columns))}")


def _timestamps(df: pd.DataFrame, what: str, column: str) -> pd.Series:
    """Wall-clock datetime64[ns]: hour-of-day is read off local time, so tz is dropped.
    Text must be ISO 8601 (what every CSV writer here produces): one format, no guessing."""
    try:
        is_text = not pd.api.types.is_datetime64_any_dtype(df[column])
        ts = pd.to_datetime(df[column], format="ISO8601" if is_text else None)
    except (ValueError, TypeError) as exc:
        raise HeatmapError(f"{what}: column {column!r} is not a timestamp ({exc})") from None
    if ts.dt.tz is not None:
        ts = ts.dt.tz_localize(None)
    if ts.isna().any():
        raise HeatmapError(f"{what}: column {column!r} has {int(ts.isna().sum())} missing timestamp(s)")
    return ts.astype("datetime64[ns]")


def _numeric(df: pd.DataFrame, what: str, column: str, dtype, minimum: float | None = None) -> np.ndarray:
    try:
        values = pd.to_numeric(df[column]).to_numpy(dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise HeatmapError(f"{what}: column {column!r} is not numeric ({exc})") from None
    bad = ~np.isfinite(values)
    if minimum is not None:
        bad |= values < minimum
    if bad.any():
        row = int(np.argmax(bad))
        rule = "finite" if minimum is None else f"finite and >= {minimum}"
        raise HeatmapError(f"{what}: column {column!r} must be {rule}; row {row} is {df[column].iloc[row]!r}")
    return values


def check_readings(df: pd.DataFrame) -> pd.DataFrame:
    """meter_id, ts (15-min interval start), kwh, and lon/lat or area_id."""
    what = "readings"
    _require(df, what, READINGS_REQUIRED)
    has_point = all(c in df.columns for c in READINGS_LOCATION[0])
    if not has_point and "area_id" not in df.columns:
        raise HeatmapError("readings: need a location: columns lon and lat, or area_id")
    if len(df) == 0:
        raise HeatmapError("readings: the table is empty")
    out = {"meter_id": df["meter_id"].to_numpy(),
           "ts": _timestamps(df, what, "ts").to_numpy(),
           "kwh": _numeric(df, what, "kwh", np.float64)}
    if has_point:
        out["lon"] = _numeric(df, what, "lon", np.float64)
        out["lat"] = _numeric(df, what, "lat", np.float64)
    else:
        out["area_id"] = df["area_id"].astype(str).to_numpy()
    return pd.DataFrame(out, copy=False)


def check_ev(df: pd.DataFrame | None) -> pd.DataFrame:
    """station_id, lon, lat, start, minutes, kwh, optional user_id (one row per session)."""
    what = "ev_sessions"
    if df is None:
        df = pd.DataFrame({c: [] for c in EV_REQUIRED})
    _require(df, what, EV_REQUIRED)
    out = pd.DataFrame({
        "station_id": df["station_id"].astype(str).to_numpy(),
        "lon": _numeric(df, what, "lon", np.float64),
        "lat": _numeric(df, what, "lat", np.float64),
        "start": _timestamps(df, what, "start").to_numpy() if len(df) else np.array([], "datetime64[ns]"),
        "minutes": _numeric(df, what, "minutes", np.float64, minimum=0),
        "kwh": _numeric(df, what, "kwh", np.float64, minimum=0),
    })
    # Without a user id every session counts as its own user (stated in docs/heatmap.md).
    out["user_id"] = (df["user_id"].astype(str).to_numpy() if "user_id" in df.columns
                      else np.arange(len(df)).astype(str))
    return out


def check_areas(df: pd.DataFrame) -> pd.DataFrame:
    """One row per supply area: population, capacity, and a lon/lat bounding box."""
    what = "areas"
    _require(df, what, AREAS_REQUIRED)
    if len(df) == 0:
        raise HeatmapError("areas: the table is empty")
    out = pd.DataFrame({"area_id": df["area_id"].astype(str).to_numpy()})
    for column in AREAS_OPTIONAL_TEXT:
        out[column] = df[column].astype(str).to_numpy() if column in df.columns else out["area_id"]
    out["population"] = _numeric(df, what, "population", np.float64, minimum=0)
    out["capacity_kw"] = _numeric(df, what, "capacity_kw", np.float64, minimum=0)
    for column in ("lon_min", "lat_min", "lon_max", "lat_max"):
        out[column] = _numeric(df, what, column, np.float64)
    if out["area_id"].duplicated().any():
        dup = out.loc[out["area_id"].duplicated(), "area_id"].iloc[0]
        raise HeatmapError(f"areas: area_id {dup!r} appears more than once")
    if ((out["lon_max"] <= out["lon_min"]) | (out["lat_max"] <= out["lat_min"])).any():
        raise HeatmapError("areas: every box needs lon_max > lon_min and lat_max > lat_min")
    return out
