"""Manufacturer (or batch) ranking and blacklist from failure and 95598 complaint rates.

Raw failure rates mislead: a maker who sold old cable looks worse than one who sold new
arresters. Each group's observed failures are compared with the failures *expected*
for its own mix of asset types and age bands at fleet rates (a standardized failure
ratio, SFR). A group is blacklisted only when the excess is large *and* statistically
clear (the exact Poisson 95 % lower bound of its SFR is above 1), or when its
complaint rate is a multiple of the fleet's on enough assets; the reason is recorded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2


@dataclass(frozen=True)
class BlacklistRule:
    """Thresholds of the blacklist; defaults are conservative so a flag means something."""

    min_sfr: float = 1.5              # observed / expected failures
    min_failures: int = 5             # never blacklist on a handful of events
    min_complaint_ratio: float = 2.0  # complaints per asset relative to the fleet
    min_assets: int = 30


def rank_groups(assets: pd.DataFrame, by: str = "manufacturer", lcc: pd.DataFrame | None = None,
                rule: BlacklistRule = BlacklistRule()) -> pd.DataFrame:
    """One row per group, best first: assets, failures, expected, SFR with its 95 % bounds,
    complaint ratio, mean equivalent annual cost relative to its type, blacklist + reason."""
    frame = assets.assign(age_band=pd.cut(assets["age_years"], [-1, 5, 10, 20, 30, 200]).astype(str))
    cell_rate = frame.groupby(["asset_type", "age_band"], observed=True)["failures_5y"].transform("mean")
    fleet_complaints = frame["complaints_95598_1y"].mean()
    frame = frame.assign(expected=cell_rate)
    if lcc is not None:
        type_mean = lcc["equivalent_annual_cost"].groupby(frame["asset_type"]).transform("mean")
        frame = frame.assign(relative_cost=lcc["equivalent_annual_cost"] / type_mean)
    else:
        frame = frame.assign(relative_cost=np.nan)

    grouped = frame.groupby(by, sort=True).agg(
        assets=("asset_id", "size"), failures=("failures_5y", "sum"), expected=("expected", "sum"),
        complaints=("complaints_95598_1y", "mean"), relative_cost=("relative_cost", "mean"))
    observed, expected = grouped["failures"].to_numpy(float), np.maximum(grouped["expected"].to_numpy(float), 1e-9)
    lower = np.where(observed > 0, chi2.ppf(0.025, 2 * observed) / 2, 0.0) / expected
    upper = chi2.ppf(0.975, 2 * (observed + 1)) / 2 / expected
    ranking = pd.DataFrame({
        "assets": grouped["assets"], "failures": observed.astype(int), "expected_failures": expected.round(2),
        "sfr": (observed / expected).round(3), "sfr_low95": lower.round(3), "sfr_high95": upper.round(3),
        "complaint_ratio": (grouped["complaints"] / max(fleet_complaints, 1e-9)).round(3),
        "relative_lcc": grouped["relative_cost"].round(3),
    }, index=grouped.index)

    excess = (ranking["sfr"] >= rule.min_sfr) & (ranking["sfr_low95"] > 1.0) & (ranking["failures"] >= rule.min_failures)
    complaints = (ranking["complaint_ratio"] >= rule.min_complaint_ratio) & (ranking["assets"] >= rule.min_assets)
    ranking["blacklisted"] = excess | complaints
    ranking["reason"] = np.select(
        [excess & complaints, excess, complaints],
        ["failures and 95598 complaints", "failure rate above fleet (SFR, 95% bound > 1)",
         "95598 complaints above fleet"], default="")
    ranking["score"] = (ranking["sfr"] + ranking["complaint_ratio"]).round(3) / 2
    return ranking.sort_values(["blacklisted", "score"], ascending=[True, True]).reset_index()
