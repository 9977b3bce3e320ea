"""Electricity-charge risk (seed 003 Table 2 #2): will a customer's next bill go unpaid?

Payment behaviour is summarised per customer over the whole history and the recent
six months separately, because a deterioration (a customer who used to pay on time
and no longer does) is the strongest warning, as in Li et al. 2019 and He et al. 2019.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import StratifiedKFold, TunedThresholdClassifierCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from analytics.data.billing import CLASSES

RECENT_MONTHS = 6
NUMERIC_FEATURES = (
    "tenure_months", "log_mean_kwh", "log_mean_due", "kwh_trend",
    "late_share", "late_share_recent", "mean_days_late", "mean_days_late_recent", "max_days_late",
    "late_streak_at_end", "partial_share", "partial_share_recent",
    "unpaid_ratio", "unpaid_ratio_recent", "arrears_over_mean_bill",
)


def billing_features(bills: pd.DataFrame) -> pd.DataFrame:
    """One row per customer_id: customer_class + NUMERIC_FEATURES, from the long billing frame."""
    grids = bills.pivot(index="customer_id", columns="month",
                        values=["amount_due", "amount_paid", "days_late", "billed_kwh"]).sort_index(axis=1)
    customers = grids.index
    due, paid, late, kwh = (grids[c].to_numpy(dtype=float) for c in ("amount_due", "amount_paid", "days_late", "billed_kwh"))
    # Right-align each customer's months so "recent" means their last six bills.
    due, paid, late, kwh = (_right_align(a) for a in (due, paid, late, kwh))
    have = ~np.isnan(due)
    recent = np.zeros_like(have)
    recent[:, -RECENT_MONTHS:] = True
    recent &= have
    is_late = (late > 0) & have
    partial = (paid < 0.99 * due) & have
    unpaid = np.where(have, np.maximum(due - paid, 0.0), 0.0)

    def share(mask, within):
        return mask.sum(axis=1) / np.maximum(within.sum(axis=1), 1)

    def mean_of(values, within):
        return np.where(within, values, 0.0).sum(axis=1) / np.maximum(within.sum(axis=1), 1)

    tenure = have.sum(axis=1)
    mean_due = mean_of(due, have)
    first = mean_of(kwh, have & (np.cumsum(have, axis=1) <= 3))
    last = mean_of(kwh, have & (np.arange(have.shape[1]) >= have.shape[1] - 3))
    streak = np.cumprod(is_late[:, ::-1], axis=1).sum(axis=1)
    features = pd.DataFrame({
        "tenure_months": tenure,
        "log_mean_kwh": np.log1p(mean_of(kwh, have)),
        "log_mean_due": np.log1p(mean_due),
        "kwh_trend": np.log((last + 1.0) / (first + 1.0)),
        "late_share": share(is_late, have),
        "late_share_recent": share(is_late & recent, recent),
        "mean_days_late": mean_of(late, have),
        "mean_days_late_recent": mean_of(late, recent),
        "max_days_late": np.where(have, late, 0.0).max(axis=1),
        "late_streak_at_end": streak,
        "partial_share": share(partial, have),
        "partial_share_recent": share(partial & recent, recent),
        "unpaid_ratio": unpaid.sum(axis=1) / np.maximum(np.where(have, due, 0).sum(axis=1), 1e-9),
        "unpaid_ratio_recent": np.where(recent, unpaid, 0).sum(axis=1) / np.maximum(np.where(recent, due, 0).sum(axis=1), 1e-9),
        "arrears_over_mean_bill": unpaid.sum(axis=1) / np.maximum(mean_due, 1e-9),
    }, index=customers)
    classes = bills.groupby("customer_id", sort=True)["customer_class"].last()
    features.insert(0, "customer_class", classes.reindex(features.index).to_numpy())
    return features


def _right_align(grid: np.ndarray) -> np.ndarray:
    """Shift each row's values to the right end, keeping their order (NaN on the left)."""
    have = ~np.isnan(grid)
    order = np.argsort(have, axis=1, kind="stable")
    return np.take_along_axis(grid, order, axis=1)


def build_charge_risk_pipeline(seed: int = 0) -> Pipeline:
    """Unfitted pipeline on :func:`billing_features` output; predict_proba[:, 1] = risk."""
    prepare = ColumnTransformer([
        ("class", OneHotEncoder(categories=[list(CLASSES)], handle_unknown="ignore"), ["customer_class"]),
        ("numeric", "passthrough", list(NUMERIC_FEATURES)),
    ], verbose_feature_names_out=False)
    booster = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                             l2_regularization=1.0, random_state=seed)
    return Pipeline([
        ("prepare", prepare),
        ("classifier", TunedThresholdClassifierCV(
            booster, scoring="f1", cv=StratifiedKFold(3, shuffle=True, random_state=seed))),
    ])
