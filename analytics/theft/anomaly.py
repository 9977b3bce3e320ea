"""Unsupervised "abnormal power consumption" score (seed 003, Table 2 #7): no labels needed.

An isolation forest on the same consumption features: a province with no confirmed
theft cases can still rank its customers for inspection. Scores are rescaled so that
higher = more abnormal and the flag marks the ``contamination`` share of training data.
"""
from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import QuantileTransformer

from analytics.theft.features import ConsumptionFeatures


def build_anomaly_pipeline(seed: int = 0, contamination: float = 0.085) -> Pipeline:
    """Unfitted pipeline; fit(day columns) ignores y. Quantile scaling stops heavy-tailed
    features (consumption level) from dominating the isolation splits."""
    return Pipeline([
        ("features", ConsumptionFeatures()),
        ("scale", QuantileTransformer(n_quantiles=200, output_distribution="normal", random_state=seed)),
        ("forest", IsolationForest(n_estimators=300, contamination=contamination, random_state=seed)),
    ])


def anomaly_score(pipeline: Pipeline, X) -> np.ndarray:
    """Higher = more abnormal; 0 is the flagging boundary."""
    return -pipeline.decision_function(X)
