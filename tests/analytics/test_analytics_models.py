"""Charge risk, transformer overload, equipment failure + LCC + blacklist, customer portrait."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from analytics.charge_risk import billing_features, build_charge_risk_pipeline
from analytics.data.billing import LABEL as DEFAULTED, generate_billing
from analytics.data.equipment import LABEL as FAILED, generate_assets, generate_assets_with_truth
from analytics.data.transformers import generate_transformer_load
from analytics.equipment.failure import build_failure_pipeline
from analytics.equipment.lcc import life_cycle_cost
from analytics.equipment.manufacturers import BlacklistRule, rank_groups
from analytics.overload import build_overload_pipeline, daily_features, overloaded
from analytics.portrait import build_portrait_pipeline, describe_segments


def _defaults(bills, index):
    return bills.groupby("customer_id")[DEFAULTED].first().reindex(index).to_numpy()


def test_charge_risk_auc_on_unseen_customers():
    train, test = generate_billing(3_000, seed=1), generate_billing(2_000, seed=2)
    x_train, x_test = billing_features(train), billing_features(test)
    model = build_charge_risk_pipeline(seed=0).fit(x_train, _defaults(train, x_train.index))
    auc = roc_auc_score(_defaults(test, x_test.index), model.predict_proba(x_test)[:, 1])
    assert auc >= 0.78


def test_billing_features_see_the_recent_deterioration():
    bills = generate_billing(2, n_months=12, seed=0)
    bills.loc[bills["customer_id"] == bills["customer_id"].iloc[0], "days_late"] = 0
    late_recently = bills["customer_id"] == bills["customer_id"].iloc[-1]
    bills.loc[late_recently, "days_late"] = [0] * 6 + [20] * 6
    features = billing_features(bills)
    assert features["late_share_recent"].tolist() == [0.0, 1.0]
    assert features["late_streak_at_end"].tolist() == [0, 6]


def test_overload_definition_needs_two_consecutive_hours():
    ratio = np.full((3, 24), 0.5)
    ratio[0, [3, 5]] = 1.2          # two separate hours: not an overload
    ratio[1, [3, 4]] = 1.2          # two consecutive hours: overload
    ratio[2, 10] = 2.0
    assert overloaded(ratio).tolist() == [False, True, False]


def test_overload_prediction_on_unseen_transformers():
    train, test = generate_transformer_load(60, 365, seed=1), generate_transformer_load(40, 365, seed=2)
    x_train, y_train = daily_features(train)
    x_test, y_test = daily_features(test)
    model = build_overload_pipeline(seed=0).fit(x_train[y_train >= 0], y_train[y_train >= 0])
    known = y_test >= 0
    assert 0.005 < y_test[known].mean() < 0.1
    assert roc_auc_score(y_test[known], model.predict_proba(x_test[known])[:, 1]) >= 0.9


def test_overload_features_use_only_the_past():
    frame = generate_transformer_load(3, 30, seed=3)
    before, _ = daily_features(frame)
    later = frame["timestamp"] >= frame["timestamp"].min() + pd.Timedelta(days=20)
    frame.loc[later, "load_kva"] *= 3          # change the future only
    after, _ = daily_features(frame)
    early = before.index.get_level_values("target_date") <= frame["timestamp"].min() + pd.Timedelta(days=20)
    pd.testing.assert_frame_equal(before[early], after[early])


def test_equipment_failure_model_and_blacklist_find_the_poor_manufacturers():
    train = generate_assets(12_000, seed=1)
    test, quality = generate_assets_with_truth(8_000, seed=2)
    model = build_failure_pipeline(seed=0).fit(train, train[FAILED])
    probability = model.predict_proba(test)[:, 1]
    assert roc_auc_score(test[FAILED], probability) >= 0.62
    ranking = rank_groups(test, lcc=life_cycle_cost(test, probability))
    assert set(ranking.loc[ranking["blacklisted"], "manufacturer"]) == set(quality[quality > 2].index)
    assert (ranking.loc[ranking["blacklisted"], "reason"] != "").all()
    strict = rank_groups(test, rule=BlacklistRule(min_sfr=10.0, min_complaint_ratio=10.0))
    assert not strict["blacklisted"].any()


def test_lcc_is_the_sum_of_its_parts_and_grows_with_failure_risk():
    assets = generate_assets(200, seed=4)
    low, high = life_cycle_cost(assets, np.full(200, 0.01)), life_cycle_cost(assets, np.full(200, 0.2))
    parts = ["lcc_acquisition", "lcc_operation", "lcc_maintenance", "lcc_failure", "lcc_disposal"]
    np.testing.assert_allclose(low[parts].sum(axis=1), low["lcc_total"], atol=0.05)
    assert (high["lcc_total"] > low["lcc_total"]).all()
    assert (high["lcc_acquisition"] == low["lcc_acquisition"]).all()


def test_portrait_segments_follow_behaviour(sgcc_train, sgcc_holdout):
    model = build_portrait_pipeline(seed=0).fit(sgcc_train[0].iloc[:, 2:])
    frame, truth = sgcc_holdout
    days = frame.iloc[:, 2:]
    segment = model.predict(days)
    membership = model.predict_proba(days)
    np.testing.assert_allclose(membership.sum(axis=1), 1.0)
    purity = pd.crosstab(segment, truth["customer_class"]).max(axis=1).sum() / len(frame)
    assert purity >= 0.85
    table = describe_segments(model, days)
    business = truth["customer_class"] != "residential"
    weekday_segments = table.loc[table["label"].str.contains("weekday-driven"), "segment"]
    assert np.isin(segment[business.to_numpy()], weekday_segments).mean() >= 0.7


@pytest.mark.parametrize("seed", [0, 1])
def test_portrait_is_deterministic_under_a_seed(sgcc_train, seed):
    days = sgcc_train[0].iloc[:600, 2:]
    a = build_portrait_pipeline(seed=seed).fit(days).predict_proba(days)
    b = build_portrait_pipeline(seed=seed).fit(days).predict_proba(days)
    np.testing.assert_array_equal(a, b)
