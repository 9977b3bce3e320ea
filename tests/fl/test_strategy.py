"""#17 item 6: the Strategy owns the round. A FedProx task certifies its mu; partners train
with it over the real protocol; the coordinator's aggregate equals the rule computed in
memory, and the round's shares come from the very weights it aggregated with."""
from __future__ import annotations

import concurrent.futures
from fractions import Fraction

import httpx
import numpy as np
import pytest

from fl_coordinator import he
from fl_coordinator.errors import FLError
from fl_coordinator.model import FedMLPClassifier, from_architecture
from fl_coordinator.partner import Coordinator, run_partner
from fl_coordinator.shares import round_shares
from fl_coordinator.strategy import FedAvg, FedProx, from_terms

TRAINING = dict(lr=0.1, epochs=2, batch_size=16, l2=1e-4, class_weight="balanced")


def _data(seed: int, n: int, shift: float):
    rng = np.random.default_rng(seed)
    X = rng.normal(shift, 1.0, (n, 5))
    y = (X[:, 0] + X[:, 1] * shift > shift).astype(int)
    return X, y, X[: n // 4], y[: n // 4]


def test_the_proximal_term_keeps_a_partner_nearer_the_global_model():
    X, y, *_ = _data(0, 400, 2.0)
    start = FedMLPClassifier(hidden=(4,), **TRAINING).init_weights(5).get_weights()
    moved = {mu: np.linalg.norm(from_architecture({"kind": "mlp", "n_features": 5, "hidden": [4]}, start,
                                                  random_state=1, prox_mu=mu, **TRAINING)
                                .partial_fit(X, y).get_weights() - start) for mu in (0.0, 1.0, 5.0)}
    assert moved[0.0] > moved[1.0] > moved[5.0] > 0


def test_terms_round_trip_and_bad_terms_are_refused_with_a_reason():
    rule = FedProx(0.05, **TRAINING)
    again = from_terms(rule.terms())
    assert isinstance(again, FedProx) and again.prox_mu == 0.05 and again.configure_round(3)["prox_mu"] == 0.05
    assert type(from_terms(dict(TRAINING))) is FedAvg  # a task from before strategies were named
    with pytest.raises(FLError, match="unknown strategy 'scaffold'"):
        from_terms({"strategy": "scaffold"})
    with pytest.raises(FLError, match="0 < prox_mu < 10"):
        FedProx(-1.0)
    with pytest.raises(FLError, match="unknown training parameter"):
        FedAvg(learning_rate=0.1)


def test_a_fedprox_task_over_http_aggregates_by_the_rule_and_shares_by_its_weights(live_service, wallets):
    url, svc = live_service
    keyset = he.generate("plain")  # exact, so the protocol can be compared with the rule bit for bit
    owner = Coordinator(url, wallets[0].key.hex())
    model = FedMLPClassifier(hidden=(4,), random_state=0, **TRAINING).init_weights(5)
    rule = FedProx(0.5, **TRAINING)
    rounds = 2
    task = owner.create_task(name="prox", model=model, keyset=keyset, rounds=rounds, min_partners=2,
                             round_seconds=60, strategy=rule)
    tid = task["task_id"]
    data = [_data(1, 300, 0.5), _data(2, 100, 2.5)]  # two partners whose data differ
    partners = [Coordinator(url, w.key.hex()) for w in wallets[1:3]]
    for p in partners:
        p.join(tid)
    owner.grant_keys(tid, keyset)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run_partner, p, tid, *d, poll=0.05) for p, d in zip(partners, data)]
        owner.start(tid)
        results = [f.result(timeout=120) for f in futures]

    view = owner.task(tid)
    assert view["training"] == {"strategy": "fedprox", **TRAINING, "prox_mu": 0.5}  # certified with the task
    arch, w = model.architecture(), model.get_weights()
    counts = [len(d[1]) for d in data]
    for r in range(1, rounds + 1):
        local = [from_architecture(arch, w, random_state=view["seed"] * 100_003 + r, **rule.configure_round(r))
                 .partial_fit(X, y).get_weights() for X, y, *_ in data]
        w = sum(float(p) * lw for p, lw in zip(rule.weights(counts), local))
    assert np.allclose(results[0].weights, w, atol=1e-12) and np.array_equal(results[0].weights, results[1].weights)
    by_address = sorted(zip((p.address for p in partners), counts), key=lambda pc: pc[0].lower())
    expected = round_shares([a for a, _ in by_address], FedAvg.weights([n for _, n in by_address]),
                            [n for _, n in by_address])
    assert view["rounds"][0]["shares_bps"] == expected and sum(expected) == 10_000
    assert expected == [7500, 2500] or expected == [2500, 7500]
    # the second partner's validation set is one class: its AUC is undefined, kept as null, and the
    # task still reads as JSON and plots (it answered 500 before)
    assert any(m["federated"]["auc"] is None for m in view["rounds"][0]["metrics"].values())
    assert owner.plot_png(tid).startswith(b"\x89PNG")

    bad = httpx.post(f"{url}/fl/tasks", json={})  # unsigned: refused before anything else
    assert bad.status_code in (401, 422)
    with pytest.raises(FLError, match="unknown strategy"):
        owner.create_task(name="x", model=model, keyset=keyset, rounds=1, min_partners=1, round_seconds=10,
                          strategy=_Unknown(**TRAINING))


class _Unknown(FedAvg):
    name = "scaffold"


def test_fedavg_weights_are_exact_fractions():
    assert FedAvg.weights([1, 3]) == [Fraction(1, 4), Fraction(3, 4)]
