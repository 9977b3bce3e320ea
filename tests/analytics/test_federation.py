"""#17 item 1: the federation of docs/fl.md: seed-sized, uneven provinces that each caught
other theft techniques, each scored on a balanced test set holding all six."""
from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from analytics.data.attacks import ATTACK_TYPES
from analytics.data.federation import PROVINCES, TEST_THEFT_RATE, federation, province_data
from marketplace.cli.main import build_app


def test_the_recipe_has_the_seeds_sizes_and_splits_the_techniques():
    sizes = [p.customers for p in PROVINCES]
    assert len(PROVINCES) >= 5 and sum(sizes) / len(sizes) == 10_000 and min(sizes) == 2_000 and max(sizes) == 20_000
    assert set().union(*(p.attacks_seen for p in PROVINCES)) == set(ATTACK_TYPES)  # together they know all six
    assert all(1 <= len(p.attacks_seen) <= 2 for p in PROVINCES)  # alone, none knows more than two
    assert len({p.theft_rate for p in PROVINCES}) == len(PROVINCES)


def test_a_province_trains_on_what_it_has_seen_and_is_tested_on_everything():
    (train, train_truth), (test, test_truth) = province_data(PROVINCES[2], 2, scale=0.05, days=90, truth=True)
    seen = set(train_truth.loc[train_truth.attack_type != "", "attack_type"])
    assert seen == set(PROVINCES[2].attacks_seen)
    assert set(test_truth.loc[test_truth.attack_type != "", "attack_type"]) == set(ATTACK_TYPES)
    assert abs(test["FLAG"].mean() - TEST_THEFT_RATE) < 0.01
    assert abs(train["FLAG"].mean() - PROVINCES[2].theft_rate) < 0.01
    assert list(train.columns[:2]) == ["CONS_NO", "FLAG"] and train.shape[1] == 2 + 90  # SGCC format
    assert not set(train["CONS_NO"]) & set(test["CONS_NO"])
    again = federation(scale=0.05, days=90)[2]
    pd.testing.assert_frame_equal(again[1], train)  # same arguments, same frames
    pd.testing.assert_frame_equal(again[2], test)


def test_the_cli_writes_every_province_and_refuses_a_bad_scale(tmp_path):
    runner = CliRunner()
    done = runner.invoke(build_app(), ["analytics", "federation", "--out", str(tmp_path), "--scale", "0.02",
                                       "--days", "40"])
    assert done.exit_code == 0, done.output
    recipe = json.loads((tmp_path / "recipe.json").read_text())
    assert [r["province"] for r in recipe] == [p.name for p in PROVINCES]
    for r in recipe:
        train = pd.read_csv(tmp_path / f"{r['province']}.train.csv")
        assert len(train) == r["train_customers"] and train["FLAG"].sum() > 0
    assert not list(tmp_path.glob("*.partial"))
    bad = runner.invoke(build_app(), ["analytics", "federation", "--out", str(tmp_path / "x"), "--scale", "0"])
    assert bad.exit_code != 0 and "--scale must be in (0, 10]" in str(bad.exception)
    assert not (tmp_path / "x").exists()
