"""Next-year failure probability of an equipment asset from its register record.

Manufacturer is a model input on purpose: "family defects" are a manufacturer trait
the seed asks to exploit. Batch is not (too many levels, too few assets each); it is
used by the ranking instead, where counts can be pooled and tested.
"""
from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

CATEGORICAL = ("asset_type", "manufacturer", "climate_zone")
NUMERIC = ("age_years", "load_factor", "maintenance_count_3y", "defect_count_3y",
           "critical_defects_3y", "complaints_95598_1y", "failures_5y")


def build_failure_pipeline(seed: int = 0) -> Pipeline:
    """Unfitted pipeline on register columns; predict_proba[:, 1] = P(failure next year)."""
    prepare = ColumnTransformer([
        ("categories", OneHotEncoder(handle_unknown="ignore", min_frequency=20), list(CATEGORICAL)),
        ("numeric", "passthrough", list(NUMERIC)),
    ], verbose_feature_names_out=False)
    booster = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                             l2_regularization=1.0, random_state=seed)
    return Pipeline([
        ("prepare", prepare),
        ("classifier", TunedThresholdClassifierCV(
            booster, scoring="f1", cv=StratifiedKFold(3, shuffle=True, random_state=seed))),
    ])
