"""#17 item 4: customer-level DP inside each partner (DP-SGD with an RDP accountant): the
per-example gradients are the batch's, each is clipped, the accountant agrees with the exact
Gaussian composition where they must coincide, and partners report epsilon per customer."""
from __future__ import annotations

import concurrent.futures

import numpy as np
import pytest

from fl_coordinator import dp, he
from fl_coordinator.errors import FLError
from fl_coordinator.model import FedMLPClassifier
from fl_coordinator.partner import Coordinator, run_partner
from fl_coordinator.strategy import FedAvg

ARCH = {"kind": "mlp", "n_features": 4, "hidden": [3]}


def _data(seed=0, n=200):
    rng = np.random.default_rng(seed)
    X = rng.normal(0, 1, (n, 4))
    return X, (X[:, 0] - X[:, 2] > 0).astype(int)


def test_per_example_gradients_sum_to_the_batch_gradient_and_are_clipped_each():
    X, y = _data()
    m = FedMLPClassifier(hidden=(3,), batch_size=200, dp_clip=1e9, dp_noise=0.0).init_weights(4)
    acts = m._forward(X)
    delta = ((1 / (1 + np.exp(-acts[-1][:, 0])) - y) * m._sample_weights(y))[:, None]
    private = m._private_gradients(acts, delta, len(y), np.random.default_rng(0))  # no clip, no noise: / (q n)
    plain = m._gradients(acts, delta / len(y))
    for (pw, pb), (gw, gb) in zip(private, plain):
        assert np.allclose(pw, gw) and np.allclose(pb, gb)
    tight = FedMLPClassifier(hidden=(3,), batch_size=200, dp_clip=1e-3, dp_noise=0.0).init_weights(4)
    clipped = tight._private_gradients(acts, delta, len(y), np.random.default_rng(0))
    total = np.sqrt(sum((gw ** 2).sum() + (gb ** 2).sum() for gw, gb in clipped))
    assert total <= 1e-3 + 1e-12  # the mean of examples each clipped to 1e-3


def test_the_rdp_accountant_is_no_tighter_than_the_exact_gaussian_composition():
    # q = 1 (every customer in every step): the exact answer is the Gaussian composition of dp.epsilon
    exact = dp.epsilon(1.2, 50, 1e-5)
    rdp = dp.customer_epsilon(100, 100, 1, 50, 1.2, 1e-5)
    assert exact <= rdp <= 1.15 * exact
    assert dp.customer_epsilon(15000, 64, 1, 30, 1.0, 1e-5) < dp.customer_epsilon(1500, 64, 1, 30, 1.0, 1e-5)
    assert dp.customer_epsilon(1500, 64, 1, 30, 2.0, 1e-5) < dp.customer_epsilon(1500, 64, 1, 30, 1.0, 1e-5)


def test_partners_train_by_dp_sgd_over_http_and_report_epsilon_per_customer(live_service, wallets):
    url, _ = live_service
    keyset = he.generate("ckks")
    owner = Coordinator(url, wallets[0].key.hex())
    training = dict(lr=0.1, epochs=1, batch_size=20, l2=1e-4, class_weight="balanced", dp_clip=1.0, dp_noise=1.1)
    model = FedMLPClassifier(hidden=(3,), **training).init_weights(4)
    task = owner.create_task(name="dp-sgd", model=model, keyset=keyset, rounds=2, min_partners=2, round_seconds=60,
                             strategy=FedAvg(**training))
    partners = [Coordinator(url, w.key.hex()) for w in wallets[1:3]]
    for p in partners:
        p.join(task["task_id"])
    owner.grant_keys(task["task_id"], keyset)
    data = [(*_data(1, 300), *_data(11, 80)), (*_data(2, 120), *_data(12, 80))]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run_partner, p, task["task_id"], *d, poll=0.05) for p, d in zip(partners, data)]
        owner.start(task["task_id"])
        results = [f.result(timeout=120) for f in futures]
    for result, (X, *_) in zip(results, data):
        assert result.customer_epsilon == pytest.approx(dp.customer_epsilon(len(X), 20, 1, 2, 1.1, dp.CUSTOMER_DELTA))
        assert 0 < result.customer_epsilon < 10
    assert results[0].customer_epsilon < results[1].customer_epsilon  # more customers, a smaller sample rate
    rounds = owner.task(task["task_id"])["rounds"]
    assert all("local" not in m for r in rounds for m in r["metrics"].values())  # no non-private model reported


def test_a_partner_whose_data_have_another_width_is_refused_before_any_round(live_service, wallets):
    url, _ = live_service
    keyset = he.generate("plain")
    owner = Coordinator(url, wallets[0].key.hex())
    task = owner.create_task(name="width", model=FedMLPClassifier(hidden=(3,)).init_weights(4), keyset=keyset,
                             rounds=1, min_partners=1, round_seconds=60)
    partner = Coordinator(url, wallets[1].key.hex())
    partner.join(task["task_id"])
    owner.grant_keys(task["task_id"], keyset)
    X = np.zeros((10, 5))
    with pytest.raises(FLError, match="your data have 5 features a customer, the task's model takes 4"):
        run_partner(partner, task["task_id"], X, np.zeros(10), X, np.zeros(10), poll=0.05)
