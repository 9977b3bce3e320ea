"""Registry, saved products (skops + card with sha-256) and the `gridmart analytics` CLI."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from analytics import registry
from analytics.card import card_path, load_product, sha256_file
from analytics.errors import AnalyticsError

ROOT = Path(__file__).resolve().parents[2]
SMALL = {"theft-detection": 1_200, "abnormal-consumption": 600, "charge-risk": 1_500,
         "transformer-overload": 15, "equipment-failure": 3_000, "customer-portrait": 600}


def test_registry_lists_every_product_with_schemas():
    entries = {e["name"]: e for e in registry.list_products()}
    assert set(entries) == set(SMALL)
    for entry in entries.values():
        assert entry["kind"] in ("tool", "application")
        assert entry["input_schema"]["columns"] and entry["output_schema"]["columns"]
    with pytest.raises(AnalyticsError, match="unknown product 'nope'; known: theft-detection"):
        registry.get("nope")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    return out, {name: registry.train(name, out, size=size, seed=0) for name, size in SMALL.items()}


@pytest.mark.parametrize("name", list(SMALL))
def test_train_save_and_predict_file(trained, tmp_path, name):
    out, results = trained
    model_path, card = results[name]
    assert card["artifact"]["sha256"] == sha256_file(model_path)
    assert card["data"]["holdout"]["generator_seed"] == 1_000 and card["metrics_holdout"]
    product = registry.get(name)
    sample = product.generate(4 if name == "transformer-overload" else 50, seed=77)
    input_path = tmp_path / "input.csv"
    sample.to_csv(input_path, index=False)
    table = registry.predict_file(name, model_path, input_path)
    expected = [c["name"] for c in product.describe()["output_schema"]["columns"]]
    assert list(table.columns)[:3] == [c for c in expected if "|" not in c][:3]
    assert len(table) == (4 if name == "transformer-overload" else 50)


def test_predict_refuses_an_altered_model_and_a_wrong_product(trained, tmp_path):
    out, results = trained
    model_path, _ = results["charge-risk"]
    with pytest.raises(AnalyticsError, match="is a 'charge-risk' model, not 'theft-detection'"):
        load_product(model_path, "theft-detection")
    copy = tmp_path / "charge-risk.skops"
    copy.write_bytes(model_path.read_bytes() + b"\0")
    card_path(copy).write_text(card_path(model_path).read_text())
    with pytest.raises(AnalyticsError, match="does not match its card"):
        load_product(copy, "charge-risk")


def test_cli_list_generate_train_predict(tmp_path):
    from marketplace.cli.main import app
    runner = CliRunner()
    listed = runner.invoke(app, ["analytics", "list", "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 6

    data = tmp_path / "province.csv"
    generated = runner.invoke(app, ["analytics", "generate", "sgcc", "--out", str(data), "--size", "300",
                                    "--days", "400", "--seed", "9", "--class-mix", "0.5,0.3,0.2"])
    assert generated.exit_code == 0, generated.output
    trained = runner.invoke(app, ["analytics", "train", "theft-detection", "--size", "1000",
                                  "--out-dir", str(tmp_path / "m"), "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["metrics_holdout"]["auc"] > 0.8
    scored = tmp_path / "scores.csv"
    predicted = runner.invoke(app, ["analytics", "predict", "theft-detection", "--input", str(data),
                                    "--model", str(tmp_path / "m" / "theft-detection.skops"),
                                    "--out", str(scored)])
    assert predicted.exit_code == 0, predicted.output
    assert scored.read_text().splitlines()[0] == "CONS_NO,theft_score,theft_flag"
    assert len(scored.read_text().splitlines()) == 301


def test_cli_reports_a_malformed_file_as_one_error_line(trained, tmp_path):
    out, results = trained
    bad = tmp_path / "bad.csv"
    bad.write_text("CONS_NO,FLAG,2014/1/1,2014/1/2\nA,0,1.0,2.0\nB,0,oops,1.0\n")
    completed = subprocess.run(
        [sys.executable, "-m", "marketplace.cli.main", "analytics", "predict", "theft-detection",
         "--input", str(bad), "--model", str(results["theft-detection"][0])],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert "error:" in completed.stderr and "column '2014/1/1', row 2: expected a number, got 'oops'" in completed.stderr


def test_train_on_a_users_labelled_file(tmp_path):
    labelled = tmp_path / "my_province.csv"
    registry.get("charge-risk").generate(1_500, seed=5).to_csv(labelled, index=False)
    model_path, card = registry.train("charge-risk", tmp_path / "m", seed=0, holdout_size=800, data_path=labelled)
    assert card["data"]["source"] == str(labelled) and card["data"]["rows"] == 1_500 * 24
    assert "--data" in card["training_command"] and card["metrics_holdout"]["auc"] > 0.75
    unlabelled = tmp_path / "unlabelled.csv"
    registry.get("charge-risk").generate(50, seed=6).drop(columns=["DEFAULTED"]).to_csv(unlabelled, index=False)
    with pytest.raises(AnalyticsError, match="needs the label column 'DEFAULTED'"):
        registry.train("charge-risk", tmp_path / "m2", data_path=unlabelled)


def test_theft_product_also_scores_a_long_meter_file(trained, tmp_path):
    _, results = trained
    wide = registry.get("theft-detection").generate(5, seed=3).drop(columns=["FLAG"])
    long = wide.melt(id_vars="CONS_NO", var_name="day", value_name="kwh").dropna()
    long = long.assign(meter_id=long["CONS_NO"], timestamp=long["day"] + " 08:00")[["meter_id", "timestamp", "kwh"]]
    path = tmp_path / "long.csv"
    long.to_csv(path, index=False)
    from_long = registry.predict_file("theft-detection", results["theft-detection"][0], path)
    wide_path = tmp_path / "wide.csv"
    wide.to_csv(wide_path, index=False)
    from_wide = registry.predict_file("theft-detection", results["theft-detection"][0], wide_path)
    merged = from_long.merge(from_wide, on="CONS_NO", suffixes=("_long", "_wide"))
    assert len(merged) == 5
    assert (merged["theft_score_long"] - merged["theft_score_wide"]).abs().max() < 1e-9
