"""Seeded monthly billing and payment histories for electricity-charge (arrears) risk.

One row per customer and month: what was billed, what was paid, how late. Each
customer carries a hidden financial-stress level that drifts, and some suffer a
shock (a business downturn) from a random month; the label ``DEFAULTED`` is whether
the bill after the last month goes unpaid beyond 30 days. Only the payment trail
reveals the hidden state, as in the real collection systems (Li et al. 2019).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

BILLING_COLUMNS = ("customer_id", "customer_class", "month", "billed_kwh", "amount_due",
                   "amount_paid", "days_late")
LABEL = "DEFAULTED"
CLASSES = ("residential", "commercial", "small_industry")
_PRICE = {"residential": 0.56, "commercial": 0.82, "small_industry": 0.68}  # CNY per kWh
_MEDIAN_MONTHLY_KWH = {"residential": 210.0, "commercial": 1_700.0, "small_industry": 8_000.0}
_CLASS_RISK = {"residential": 0.0, "commercial": 0.35, "small_industry": 0.5}


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def generate_billing(n_customers: int, n_months: int = 24, seed: int = 0,
                     start_month: str = "2023-01", shock_share: float = 0.15) -> pd.DataFrame:
    """Long billing frame (BILLING_COLUMNS + DEFAULTED on every row of a customer)."""
    if n_customers < 1 or n_months < 2:
        raise ValueError("need at least one customer and two months")
    rng = np.random.default_rng(seed)
    classes = rng.choice(len(CLASSES), n_customers, p=(0.78, 0.16, 0.06))
    class_names = np.array(CLASSES, dtype=object)[classes]
    months = pd.period_range(start_month, periods=n_months, freq="M")

    base_risk = rng.normal(0.0, 1.0, n_customers) + np.array([_CLASS_RISK[c] for c in class_names])
    drift = np.cumsum(rng.normal(0.0, 0.12, (n_customers, n_months + 1)), axis=1)
    shocked = rng.random(n_customers) < shock_share
    shock_month = rng.integers(n_months // 3, n_months + 1, n_customers)
    shock = np.where(shocked[:, None] & (np.arange(n_months + 1)[None, :] >= shock_month[:, None]),
                     rng.uniform(1.0, 2.5, n_customers)[:, None], 0.0)
    risk = base_risk[:, None] + drift + shock                      # (customers, months + 1)

    level = np.array([_MEDIAN_MONTHLY_KWH[c] for c in class_names]) * rng.lognormal(0.0, 0.5, n_customers)
    season = 1.0 + 0.25 * np.cos(2 * np.pi * (months.month.to_numpy() - 1) / 12.0) ** 2
    downturn = np.where(shock[:, :n_months] > 0, 0.75, 1.0)       # a struggling business uses less
    kwh = level[:, None] * season[None, :] * downturn * rng.lognormal(0.0, 0.12, (n_customers, n_months))
    due = kwh * np.array([_PRICE[c] for c in class_names])[:, None]

    late = rng.random((n_customers, n_months)) < _sigmoid(-2.0 + 1.1 * risk[:, :n_months])
    days_late = np.where(late, np.ceil(rng.exponential(4.0 + 6.0 * np.clip(risk[:, :n_months], 0, None))), 0)
    partial = rng.random((n_customers, n_months)) < _sigmoid(-3.6 + 1.2 * risk[:, :n_months])
    paid = due * np.where(partial, rng.uniform(0.2, 0.9, (n_customers, n_months)), 1.0)
    defaulted = rng.random(n_customers) < _sigmoid(-4.6 + 1.6 * risk[:, n_months])

    frame = pd.DataFrame({
        "customer_id": np.repeat([f"C{seed:03d}{i:07d}" for i in range(n_customers)], n_months),
        "customer_class": np.repeat(class_names, n_months),
        "month": np.tile(months.astype(str), n_customers),
        "billed_kwh": np.round(kwh.ravel(), 1),
        "amount_due": np.round(due.ravel(), 2),
        "amount_paid": np.round(paid.ravel(), 2),
        "days_late": days_late.ravel().astype(np.int64),
    })
    frame[LABEL] = np.repeat(defaulted.astype(np.int64), n_months)
    return frame
