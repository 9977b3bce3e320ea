"""Theft detection and abnormal-consumption scoring: metric floors on unseen customers."""
from __future__ import annotations

import numpy as np
import pytest

from analytics.metrics import binary_report, map_at_k
from analytics.theft.anomaly import anomaly_score, build_anomaly_pipeline
from analytics.theft.model import build_theft_pipeline, operating_threshold


def _days(frame):
    return frame.drop(columns=["CONS_NO", "FLAG"])


@pytest.fixture(scope="module")
def theft_model(sgcc_train):
    frame, _ = sgcc_train
    return build_theft_pipeline(seed=0).fit(_days(frame), frame["FLAG"])


def test_theft_auc_on_another_seed_and_unseen_customers(theft_model, sgcc_train, sgcc_holdout):
    frame, _ = sgcc_holdout
    assert not set(frame["CONS_NO"]) & set(sgcc_train[0]["CONS_NO"])
    score = theft_model.predict_proba(_days(frame))[:, 1]
    report = binary_report(frame["FLAG"], score, operating_threshold(theft_model))
    assert report["auc"] >= 0.90, report
    assert report["map_at_100"] >= 0.85, report
    assert report["precision"] >= 0.6 and report["recall"] >= 0.6, report


def test_predict_uses_the_tuned_threshold(theft_model, sgcc_holdout):
    days = _days(sgcc_holdout[0])
    threshold = operating_threshold(theft_model)
    assert 0.0 < threshold < 1.0
    flags = theft_model.predict(days)
    np.testing.assert_array_equal(flags, (theft_model.predict_proba(days)[:, 1] >= threshold).astype(int))


def test_training_is_deterministic_under_a_seed(sgcc_train):
    frame, _ = sgcc_train
    small = frame.iloc[:800]
    first = build_theft_pipeline(seed=3).fit(_days(small), small["FLAG"])
    second = build_theft_pipeline(seed=3).fit(_days(small), small["FLAG"])
    np.testing.assert_array_equal(first.predict_proba(_days(frame.iloc[800:1000])),
                                  second.predict_proba(_days(frame.iloc[800:1000])))


def test_unsupervised_anomaly_score_ranks_thieves_without_labels(sgcc_train, sgcc_holdout):
    model = build_anomaly_pipeline(seed=0).fit(_days(sgcc_train[0]))
    frame, _ = sgcc_holdout
    report = binary_report(frame["FLAG"], anomaly_score(model, _days(frame)), 0.0)
    assert report["auc"] >= 0.75, report
    assert 0.03 < (anomaly_score(model, _days(frame)) >= 0).mean() < 0.2


def test_map_at_k_matches_the_sgcc_definition():
    labels = np.array([1, 0, 1, 0, 0, 1])
    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.1])
    # true positives at ranks 1 and 3 within the top 4: (1/1 + 2/3) / 2
    assert map_at_k(labels, score, k=4) == pytest.approx((1 + 2 / 3) / 2)
    assert map_at_k(np.zeros(6), score, k=4) == 0.0
