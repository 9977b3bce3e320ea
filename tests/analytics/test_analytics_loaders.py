"""Loaders accept the real formats and reject malformed files naming column and row."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analytics.data.billing import generate_billing
from analytics.data.equipment import generate_assets
from analytics.data.loaders import (
    load_assets_csv, load_billing_csv, load_long_meter_csv, load_sgcc_csv, load_transformer_csv,
)
from analytics.data.sgcc import generate_sgcc
from analytics.data.transformers import generate_transformer_load
from analytics.errors import MalformedFileError


@pytest.fixture
def sgcc_file(tmp_path):
    path = tmp_path / "sgcc.csv"
    generate_sgcc(20, n_days=60, seed=1).to_csv(path, index=False)
    return path


def _edit(path, row, column, value):
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[row, column] = value
    frame.to_csv(path, index=False)


def test_sgcc_round_trip_restores_date_order(tmp_path):
    original = generate_sgcc(20, n_days=60, seed=1)
    text_order = original[["CONS_NO", "FLAG", *sorted(original.columns[2:])]]  # as the real file
    path = tmp_path / "real_order.csv"
    text_order.to_csv(path, index=False)
    loaded = load_sgcc_csv(path)
    assert list(loaded.columns) == list(original.columns)
    np.testing.assert_allclose(loaded.iloc[:, 2:].to_numpy(), original.iloc[:, 2:].to_numpy())


@pytest.mark.parametrize("column, row, value, message", [
    ("2014/1/5", 3, "12,5kWh", r"column '2014/1/5', row 4: expected a number, got '12,5kWh'"),
    ("2014/1/9", 0, "-3", r"column '2014/1/9', row 1: value -3.0 is below 0"),
    ("FLAG", 6, "2", r"column 'FLAG', row 7: FLAG must be 0 or 1"),
    ("CONS_NO", 5, None, r"column 'CONS_NO', row 6: duplicate identifier"),
])
def test_sgcc_rejects_bad_cells(sgcc_file, column, row, value, message):
    if value is None:
        value = pd.read_csv(sgcc_file, dtype=str)["CONS_NO"].iloc[0]
    _edit(sgcc_file, row, column, value)
    with pytest.raises(MalformedFileError, match=message):
        load_sgcc_csv(sgcc_file)


def test_sgcc_rejects_a_header_that_is_not_a_date(sgcc_file):
    frame = pd.read_csv(sgcc_file, dtype=str).rename(columns={"2014/1/3": "reading3"})
    frame.to_csv(sgcc_file, index=False)
    with pytest.raises(MalformedFileError, match=r"column 'reading3': header is not a date"):
        load_sgcc_csv(sgcc_file)


def test_sgcc_missing_column_and_file(tmp_path):
    path = tmp_path / "no_id.csv"
    pd.DataFrame({"ID": ["a"], "2014/1/1": [1.0]}).to_csv(path, index=False)
    with pytest.raises(MalformedFileError, match="column 'CONS_NO': missing column"):
        load_sgcc_csv(path)
    with pytest.raises(MalformedFileError, match="file not found"):
        load_sgcc_csv(tmp_path / "absent.csv")


def test_long_meter_csv_becomes_daily_sgcc_shape(tmp_path):
    path = tmp_path / "long.csv"
    pd.DataFrame({
        "meter_id": ["m1", "m1", "m1", "m2"],
        "timestamp": ["2015-03-01 00:30", "2015-03-01 12:00", "2015-03-03 08:00", "2015-03-02 09:15"],
        "kwh": [1.5, 2.0, 4.0, 7.0],
    }).to_csv(path, index=False)
    daily = load_long_meter_csv(path)
    assert list(daily.columns) == ["CONS_NO", "2015/3/1", "2015/3/2", "2015/3/3"]
    assert daily.iloc[0, 1:].tolist()[0] == 3.5 and np.isnan(daily.iloc[0, 2])
    assert daily.iloc[1, 2] == 7.0


def test_long_meter_csv_names_the_bad_timestamp(tmp_path):
    path = tmp_path / "long.csv"
    pd.DataFrame({"meter_id": ["m1", "m1"], "timestamp": ["2015-03-01 00:30", "yesterday"],
                  "kwh": [1, 2]}).to_csv(path, index=False)
    with pytest.raises(MalformedFileError, match=r"column 'timestamp', row 2: not a timestamp: 'yesterday'"):
        load_long_meter_csv(path)


def test_billing_transformer_and_asset_loaders(tmp_path):
    bills, hourly, assets = tmp_path / "b.csv", tmp_path / "t.csv", tmp_path / "a.csv"
    generate_billing(5, n_months=6, seed=1).to_csv(bills, index=False)
    generate_transformer_load(2, 3, seed=1).to_csv(hourly, index=False)
    generate_assets(30, seed=1).to_csv(assets, index=False)
    assert len(load_billing_csv(bills)) == 30
    assert load_transformer_csv(hourly)["timestamp"].dtype.kind == "M"
    assert len(load_assets_csv(assets)) == 30

    _edit(bills, 4, "month", "2023/13")
    with pytest.raises(MalformedFileError, match=r"column 'month', row 5: expected YYYY-MM"):
        load_billing_csv(bills)
    _edit(hourly, 10, "rated_kva", "0")
    with pytest.raises(MalformedFileError, match=r"column 'rated_kva', row 11: rated capacity must be positive"):
        load_transformer_csv(hourly)
    _edit(assets, 2, "asset_type", "flux_capacitor")
    with pytest.raises(MalformedFileError, match=r"column 'asset_type', row 3: unknown value 'flux_capacitor'"):
        load_assets_csv(assets)
