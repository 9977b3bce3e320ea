"""Supervised theft detector: consumption features -> gradient boosting, threshold tuned for F1.

Gradient boosting on hand-made features (not a CNN on raw days) because it trains in
seconds on SGCC size on two cores, handles missing days natively and its inputs can be
explained to an inspector. The decision threshold is tuned by cross-validation for F1,
since a fixed 0.5 is wrong at an 8.5 % positive rate.
"""
from __future__ import annotations

from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV
from sklearn.pipeline import Pipeline

from analytics.theft.features import ConsumptionFeatures


def build_theft_pipeline(seed: int = 0) -> Pipeline:
    """Unfitted pipeline: fit(day columns, FLAG); predict_proba[:, 1] is the theft score."""
    booster = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.05, max_leaf_nodes=31, l2_regularization=1.0,
        random_state=seed)
    return Pipeline([
        ("features", ConsumptionFeatures()),
        ("classifier", TunedThresholdClassifierCV(
            booster, scoring="f1", cv=StratifiedKFold(3, shuffle=True, random_state=seed))),
    ])


def operating_threshold(pipeline: Pipeline) -> float:
    """The tuned probability above which a customer is flagged."""
    return float(pipeline.named_steps["classifier"].best_threshold_)
