"""The SGCC generator: real format, determinism, province knobs, Jokar attacks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.data.attacks import ATTACK_TYPES, inject_attack
from analytics.data.sgcc import generate_sgcc, generate_sgcc_with_truth


def test_sgcc_format_matches_the_real_set():
    frame = generate_sgcc(400, seed=1)
    assert list(frame.columns[:2]) == ["CONS_NO", "FLAG"]
    assert frame.shape == (400, 2 + 1_035)
    assert frame.columns[2] == "2014/1/1" and frame.columns[-1] == "2016/10/31"
    assert frame["CONS_NO"].str.fullmatch(r"[0-9A-F]{32}").all() and frame["CONS_NO"].is_unique
    assert set(frame["FLAG"].unique()) == {0, 1}
    assert frame["FLAG"].sum() == round(0.085 * 400)
    days = frame.iloc[:, 2:].to_numpy()
    assert 0.01 < np.isnan(days).mean() < 0.2          # missing readings, as in SGCC
    assert np.nanmin(days) >= 0
    assert np.nanmax(days) > 20 * np.nanmedian(days)   # absurd spikes exist


def test_same_seed_same_frame_other_seed_other_customers():
    a, b = generate_sgcc(300, n_days=200, seed=5), generate_sgcc(300, n_days=200, seed=5)
    pd.testing.assert_frame_equal(a, b)
    c = generate_sgcc(300, n_days=200, seed=6)
    assert not set(a["CONS_NO"]) & set(c["CONS_NO"])


def test_province_knobs_make_non_iid_data():
    base = generate_sgcc(600, n_days=365, seed=2, theft_rate=0.0)
    rich = generate_sgcc(600, n_days=365, seed=2, theft_rate=0.0, consumption_scale=3.0)
    assert np.nanmedian(rich.iloc[:, 2:]) > 2.5 * np.nanmedian(base.iloc[:, 2:])
    _, business = generate_sgcc_with_truth(600, n_days=365, seed=2, class_mix=(0.2, 0.5, 0.3))
    assert (business["customer_class"] != "residential").mean() > 0.7
    cold = generate_sgcc(600, n_days=365, seed=2, theft_rate=0.0, mean_temperature=5.0, heating_share=0.9)
    january, july = "2014/1/15", "2014/7/15"
    assert cold[january].median() / cold[july].median() > base[january].median() / base[july].median()
    with pytest.raises(TypeError, match="unknown profile knob"):
        generate_sgcc(10, seed=0, consumption_scal=2.0)


def test_theft_rate_and_attack_types_are_controlled():
    frame, truth = generate_sgcc_with_truth(1_000, n_days=120, seed=3, theft_rate=0.2,
                                            attack_types=("constant_mean",))
    assert frame["FLAG"].sum() == 200
    assert set(truth.loc[frame["FLAG"] == 1, "attack_type"]) == {"constant_mean"}
    assert (truth.loc[frame["FLAG"] == 0, "theft_start"] == -1).all()


@pytest.mark.parametrize("attack", ATTACK_TYPES)
def test_each_jokar_attack_leaves_its_trace(attack):
    rng = np.random.default_rng(0)
    honest = 10 + 3 * np.sin(np.arange(120) / 10) + rng.random(120)
    tampered = inject_attack(honest, attack, np.random.default_rng(1))
    assert tampered.shape == honest.shape
    if attack == "constant_mean":
        assert np.allclose(tampered, honest.mean())
    elif attack == "reversed_order":
        assert np.array_equal(tampered, honest[::-1])
    elif attack == "zero_windows":
        assert (tampered == 0).sum() >= 4 * 4 and np.array_equal(tampered[tampered > 0], honest[tampered > 0])
    else:  # the three reducing attacks report 10-80 % of the truth
        assert 0.1 * honest.mean() <= tampered.mean() <= 0.8 * honest.mean()
    with pytest.raises(ValueError):
        inject_attack(honest, "bypass", rng)
