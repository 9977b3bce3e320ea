"""Customer portrait (seed 003 Table 2 #6): segments of customers by consumption behaviour.

A Gaussian mixture (not k-means) on scaled behaviour features, so each customer gets
a segment *and* a membership probability (predict / predict_proba), and a segment
can be elongated. Each segment is then described in words from its median behaviour,
which is what a marketing analyst reads.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from analytics.theft.features import ConsumptionFeatures

PORTRAIT_FEATURES = ("log_mean", "cv", "weekend_ratio", "day_of_week_strength", "winter_ratio",
                     "summer_ratio", "shoulder_ratio", "lag7_autocorr", "near_zero_share")


def build_portrait_pipeline(n_segments: int = 6, seed: int = 0) -> Pipeline:
    """Unfitted pipeline: fit(day columns); predict -> segment, predict_proba -> membership."""
    return Pipeline([
        ("features", ConsumptionFeatures(features=PORTRAIT_FEATURES)),
        ("scale", StandardScaler()),
        ("mixture", GaussianMixture(n_components=n_segments, covariance_type="full", n_init=3,
                                    random_state=seed)),
    ])


def describe_segments(pipeline: Pipeline, X) -> pd.DataFrame:
    """Size, median behaviour and a plain-words label of every segment on the data X."""
    features = pd.DataFrame(pipeline.named_steps["features"].transform(X), columns=PORTRAIT_FEATURES)
    features["segment"] = pipeline.predict(X)
    medians = features.groupby("segment").median()
    table = pd.DataFrame({
        "customers": features.groupby("segment").size(),
        "median_daily_kwh": np.expm1(medians["log_mean"]).round(2),
        "weekend_ratio": medians["weekend_ratio"].round(3),
        "winter_ratio": medians["winter_ratio"].round(3),
        "summer_ratio": medians["summer_ratio"].round(3),
        "cv": medians["cv"].round(3),
    })
    table["label"] = [segment_label(row) for row in table.itertuples()]
    return table.reindex(range(pipeline.named_steps["mixture"].n_components)).fillna(
        {"customers": 0, "label": "empty"}).reset_index(names="segment")


def segment_label(row) -> str:
    """Words for a segment's medians; thresholds follow typical SGCC consumption levels.
    The median kWh/day is part of the label so that two segments never read the same."""
    kwh = row.median_daily_kwh
    size = ("low-use" if kwh < 5 else "medium-use" if kwh < 20
            else "high-use" if kwh < 100 else "very-high-use")
    week = ("weekday-driven (business hours)" if row.weekend_ratio < 0.85
            else "home-centred (weekend peak)" if row.weekend_ratio > 1.05 else "even across the week")
    season = ("winter-peaking (electric heating)" if row.winter_ratio > 1.25
              else "summer-peaking (cooling)" if row.summer_ratio > 1.2 else "flat across seasons")
    variability = "steady" if row.cv < 0.35 else "variable" if row.cv < 0.6 else "irregular"
    return f"{size} (~{kwh:.0f} kWh/day), {week}, {season}, {variability}"
