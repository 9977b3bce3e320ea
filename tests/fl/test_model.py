"""The federated model: scikit-learn compatible, learns, flat weights round-trip, deterministic."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_score

from fl_coordinator.model import FedMLPClassifier, from_architecture


@pytest.fixture(scope="module")
def data():
    return make_classification(2000, 12, n_informative=6, weights=[0.9], random_state=0)


@pytest.mark.parametrize("hidden", [(), (8,), (8, 4)])
def test_learns_imbalanced_binary_task(data, hidden):
    X, y = data
    m = FedMLPClassifier(hidden=hidden, epochs=5).fit(X[:1500], y[:1500])
    assert roc_auc_score(y[1500:], m.predict_proba(X[1500:])[:, 1]) > 0.85
    assert set(np.unique(m.predict(X))) <= {0, 1}


def test_sklearn_api(data):
    X, y = data
    m = FedMLPClassifier(hidden=(4,), lr=0.1)
    assert clone(m).get_params()["lr"] == 0.1
    assert cross_val_score(m, X, y, cv=3, scoring="roc_auc").mean() > 0.8


def test_weights_roundtrip_and_architecture(data):
    X, y = data
    m = FedMLPClassifier(hidden=(5,)).fit(X, y)
    w = m.get_weights()
    assert w.size == m.n_params == 12 * 5 + 5 + 5 + 1
    m2 = from_architecture(m.architecture(), w)
    assert np.array_equal(m2.predict_proba(X), m.predict_proba(X))
    with pytest.raises(ValueError, match="needs 71"):
        m2.set_weights(w[:-1])


def test_partial_fit_is_deterministic_for_a_seed(data):
    X, y = data
    a = FedMLPClassifier(hidden=(6,), random_state=3).fit(X, y)
    b = FedMLPClassifier(hidden=(6,), random_state=3).fit(X, y)
    assert np.array_equal(a.get_weights(), b.get_weights())
    c = FedMLPClassifier(hidden=(6,), random_state=4).fit(X, y)
    assert not np.array_equal(a.get_weights(), c.get_weights())
