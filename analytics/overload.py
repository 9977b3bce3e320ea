"""Distribution-transformer overload prediction (seed 003 Table 2 #8): overload tomorrow?

Rows are (transformer, day d) with features known at the end of day d; the target is
whether day d+1 is an overload day (load > 100 % of rating for >= 2 consecutive
hours). Recent peaks, hours spent above 80 %, temperature and its trend, and the
calendar carry the signal, as in the random-forest models of He et al. 2018.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV
from sklearn.pipeline import Pipeline

OVERLOAD_RATIO = 1.0
HEAVY_LOAD_RATIO = 0.8
FEATURES = (
    "rated_kva", "peak_ratio", "peak_ratio_prev", "peak_ratio_max7", "peak_ratio_mean7", "peak_trend",
    "hours_heavy", "hours_over", "overloaded_today", "overload_days_7", "load_factor",
    "temp_max", "temp_mean", "temp_min", "temp_change", "temp_mean3",
    "next_weekday", "next_doy_sin", "next_doy_cos",
)


def overloaded(ratio: np.ndarray) -> np.ndarray:
    """Overload days from (..., 24) load/rating ratios: two consecutive hours above 100 %."""
    above = np.nan_to_num(ratio) > OVERLOAD_RATIO
    return (above[..., 1:] & above[..., :-1]).any(axis=-1)


def to_cube(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, pd.DatetimeIndex]:
    """Long hourly frame -> ids, rated (n,), load and temperature (n, days, 24), days."""
    frame = frame.assign(day=frame["timestamp"].dt.normalize(), hour=frame["timestamp"].dt.hour)
    ids = np.array(sorted(frame["transformer_id"].unique()), dtype=object)
    days = pd.date_range(frame["day"].min(), frame["day"].max(), freq="D")
    row = pd.Index(ids).get_indexer(frame["transformer_id"])
    col = days.get_indexer(frame["day"])
    load = np.full((len(ids), len(days), 24), np.nan)
    temp = np.full((len(ids), len(days), 24), np.nan)
    load[row, col, frame["hour"].to_numpy()] = frame["load_kva"].to_numpy(dtype=float)
    temp[row, col, frame["hour"].to_numpy()] = frame["temperature_c"].to_numpy(dtype=float)
    rated = frame.groupby("transformer_id", sort=True)["rated_kva"].max().reindex(ids).to_numpy(dtype=float)
    return ids, rated, load, temp, days


def daily_features(frame: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """(features per transformer and day, next-day overload target or -1 when unknown).

    The returned frame's index holds transformer_id and ``target_date`` (day d+1).
    """
    ids, rated, load, temp, days = to_cube(frame)
    n, n_days = load.shape[:2]
    with np.errstate(all="ignore"):
        ratio = load / rated[:, None, None]
        peak = np.nan_to_num(np.nanmax(ratio, axis=2))
        mean_ratio = np.nan_to_num(np.nanmean(ratio, axis=2))
        t_max, t_mean, t_min = (np.nan_to_num(f(temp, axis=2)) for f in (np.nanmax, np.nanmean, np.nanmin))
    over = overloaded(ratio)

    def trailing(a, window, how):
        padded = np.pad(a, ((0, 0), (window - 1, 0)), mode="edge")
        stacked = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)
        return how(stacked, axis=2)

    prev = np.concatenate([peak[:, :1], peak[:, :-1]], axis=1)
    mean7 = trailing(peak, 7, np.mean)
    mean28 = trailing(peak, 28, np.mean)
    target_days = days + pd.Timedelta(days=1)
    doy = 2 * np.pi * target_days.day_of_year.to_numpy() / 365.25
    columns = {
        "rated_kva": np.repeat(rated[:, None], n_days, axis=1),
        "peak_ratio": peak, "peak_ratio_prev": prev,
        "peak_ratio_max7": trailing(peak, 7, np.max), "peak_ratio_mean7": mean7,
        "peak_trend": mean7 - mean28,
        "hours_heavy": (np.nan_to_num(ratio) > HEAVY_LOAD_RATIO).sum(axis=2),
        "hours_over": (np.nan_to_num(ratio) > OVERLOAD_RATIO).sum(axis=2),
        "overloaded_today": over.astype(float),
        "overload_days_7": trailing(over.astype(float), 7, np.sum),
        "load_factor": np.where(peak > 0, mean_ratio / np.where(peak > 0, peak, 1), 0.0),
        "temp_max": t_max, "temp_mean": t_mean, "temp_min": t_min,
        "temp_change": t_mean - np.concatenate([t_mean[:, :1], t_mean[:, :-1]], axis=1),
        "temp_mean3": trailing(t_mean, 3, np.mean),
        "next_weekday": np.broadcast_to(target_days.day_of_week.to_numpy(), (n, n_days)),
        "next_doy_sin": np.broadcast_to(np.sin(doy), (n, n_days)),
        "next_doy_cos": np.broadcast_to(np.cos(doy), (n, n_days)),
    }
    features = pd.DataFrame({k: np.asarray(v, dtype=float).ravel() for k, v in columns.items()},
                            index=pd.MultiIndex.from_product([ids, target_days], names=["transformer_id", "target_date"]))
    target = np.concatenate([over[:, 1:], np.zeros((n, 1), bool)], axis=1).astype(int)
    target[:, -1] = -1  # the day after the data is what a forecast is for
    return features, target.ravel()


def build_overload_pipeline(seed: int = 0) -> Pipeline:
    """Unfitted pipeline on :func:`daily_features`; predict_proba[:, 1] = overload tomorrow."""
    booster = HistGradientBoostingClassifier(max_iter=250, learning_rate=0.05, max_leaf_nodes=31,
                                             l2_regularization=1.0, random_state=seed)
    return Pipeline([("classifier", TunedThresholdClassifierCV(
        booster, scoring="f1", cv=StratifiedKFold(3, shuffle=True, random_state=seed)))])
