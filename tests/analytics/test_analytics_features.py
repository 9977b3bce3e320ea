"""Consumption features: estimator contract, invariances, and traces of attacks."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.estimator_checks import check_estimator

from analytics.data.sgcc import generate_sgcc_with_truth
from analytics.theft.features import FEATURE_NAMES, ConsumptionFeatures, extract_features

LENGTH_INVARIANT = ("features are statistics of a series of any length, so a model trained on "
                    "1,035 days can score another period; a different day count is accepted on purpose")


def test_sklearn_estimator_checks():
    results = check_estimator(
        ConsumptionFeatures(),
        expected_failed_checks={"check_n_features_in_after_fitting": LENGTH_INVARIANT,
                                "check_transformer_general": LENGTH_INVARIANT},
        on_fail="raise", on_skip=None)
    assert sum(r["status"] == "passed" for r in results) >= 35


def test_shape_names_and_finite_output_even_for_empty_meters():
    frame, _ = generate_sgcc_with_truth(50, n_days=400, seed=1)
    frame.iloc[0, 2:] = np.nan                    # a meter with no reading at all
    features = extract_features(frame)
    assert features.shape == (50, len(FEATURE_NAMES))
    assert np.isfinite(features).all()
    fitted = ConsumptionFeatures().fit(frame.iloc[:, 2:])
    assert list(fitted.get_feature_names_out()) == list(FEATURE_NAMES)


def test_column_order_is_read_from_the_dates():
    frame, _ = generate_sgcc_with_truth(30, n_days=500, seed=2)
    days = frame.iloc[:, 2:]
    shuffled = days[sorted(days.columns)]        # text order, as in the real SGCC file
    assert list(shuffled.columns) != list(days.columns)
    np.testing.assert_allclose(extract_features(shuffled), extract_features(days))


def test_rows_are_independent_so_one_customer_can_be_scored_alone():
    frame, _ = generate_sgcc_with_truth(40, n_days=300, seed=3)
    np.testing.assert_allclose(extract_features(frame.iloc[[7]]), extract_features(frame)[[7]])


def test_attack_traces_show_up_in_the_intended_features():
    frame, truth = generate_sgcc_with_truth(3_000, n_days=730, seed=4, theft_rate=0.3)
    features = pd.DataFrame(extract_features(frame), columns=FEATURE_NAMES)
    honest = truth["attack_type"] == ""

    def median(name, attack):
        return features.loc[truth["attack_type"] == attack, name].median()
    assert median("flat_share", "constant_mean") > 5 * features.loc[honest, "flat_share"].median()
    assert median("zero_runs_per_year", "zero_windows") > 5
    assert median("roughness", "random_scaling") > 1.5 * features.loc[honest, "roughness"].median()
    assert median("split_drop", "mean_scaling") < features.loc[honest, "split_drop"].median() - 0.3
