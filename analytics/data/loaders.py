"""Loaders for the real file formats users bring; each rejects a bad file by column and row.

Row numbers in messages are 1-based data rows as a spreadsheet shows them after the
header (row 1 = first line under the header), so a user can find the cell.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from analytics.data import billing, equipment
from analytics.data.billing import BILLING_COLUMNS
from analytics.data.equipment import ASSET_COLUMNS, ASSET_TYPES
from analytics.data.sgcc import day_column_names
from analytics.data.transformers import TRANSFORMER_COLUMNS
from analytics.errors import MalformedFileError

LONG_METER_COLUMNS = ("meter_id", "timestamp", "kwh")


def read_csv(path: str | Path, required: Iterable[str]) -> pd.DataFrame:
    """Read a CSV as text and check the required header names are all there."""
    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(path, "-", None, "file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise MalformedFileError(path, "-", None, f"not a readable CSV ({exc})") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in required:
        if column not in frame.columns:
            raise MalformedFileError(path, column, None, f"missing column; header is {list(frame.columns)[:8]}...")
    return frame


def parse_numbers(frame: pd.DataFrame, column: str, path, *, allow_missing: bool,
                  minimum: float | None = None) -> np.ndarray:
    """Column as floats; names the first row that is not a number (or is below minimum)."""
    text = frame[column].astype(str).str.strip()
    blank = text.isin(["", "nan", "NaN", "NA", "null"])
    values = pd.to_numeric(text.where(~blank), errors="coerce").to_numpy(dtype=float)
    bad = np.isnan(values) & ~blank.to_numpy()
    if not allow_missing:
        bad |= blank.to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise MalformedFileError(path, column, row + 1, f"expected a number, got {frame[column].iloc[row]!r}")
    if minimum is not None:
        below = np.flatnonzero(values < minimum)
        if len(below):
            raise MalformedFileError(path, column, int(below[0]) + 1,
                                     f"value {values[below[0]]} is below {minimum}")
    return values


def parse_ids(frame: pd.DataFrame, column: str, path, *, unique: bool) -> np.ndarray:
    """Identifier column: no blanks, and no repeats when each row is one entity."""
    ids = frame[column].astype(str).str.strip()
    blank = np.flatnonzero((ids == "").to_numpy())
    if len(blank):
        raise MalformedFileError(path, column, int(blank[0]) + 1, "empty identifier")
    if unique:
        repeated = np.flatnonzero(ids.duplicated().to_numpy())
        if len(repeated):
            raise MalformedFileError(path, column, int(repeated[0]) + 1, f"duplicate identifier {ids.iloc[repeated[0]]!r}")
    return ids.to_numpy(dtype=object)


def load_sgcc_csv(path: str | Path, *, require_flag: bool = False) -> pd.DataFrame:
    """The SGCC theft CSV: CONS_NO, optional FLAG (0/1), one column per date of daily kWh.

    Returns CONS_NO, FLAG (if present), then float day columns in date order (the real
    file lists dates in text order). Blank cells are missing days; text, negative
    readings, unparseable date headers, duplicate customers or a FLAG other than 0/1
    raise :class:`MalformedFileError` naming the column and row.
    """
    frame = read_csv(path, ["CONS_NO"] + (["FLAG"] if require_flag else []))
    day_columns = [c for c in frame.columns if c not in ("CONS_NO", "FLAG")]
    if not day_columns:
        raise MalformedFileError(path, "-", None, "no day columns after CONS_NO/FLAG")
    dates = []
    for column in day_columns:
        try:
            dates.append(pd.to_datetime(column, format="mixed"))
        except (ValueError, TypeError):
            raise MalformedFileError(path, column, None, "header is not a date (expected e.g. 2014/1/1)") from None
    if len(set(dates)) != len(dates):
        raise MalformedFileError(path, "-", None, "two day columns name the same date")
    ordered = [c for _, c in sorted(zip(dates, day_columns))]
    out = {"CONS_NO": parse_ids(frame, "CONS_NO", path, unique=True)}
    if "FLAG" in frame.columns:
        flag = parse_numbers(frame, "FLAG", path, allow_missing=False)
        wrong = np.flatnonzero(~np.isin(flag, (0, 1)))
        if len(wrong):
            raise MalformedFileError(path, "FLAG", int(wrong[0]) + 1, f"FLAG must be 0 or 1, got {flag[wrong[0]]:g}")
        out["FLAG"] = flag.astype(np.int64)
    days = {c: parse_numbers(frame, c, path, allow_missing=True, minimum=0.0) for c in ordered}
    return pd.concat([pd.DataFrame(out), pd.DataFrame(days)], axis=1)


def load_long_meter_csv(path: str | Path) -> pd.DataFrame:
    """Generic long-format meter CSV (meter_id, timestamp, kwh) converted to SGCC shape.

    Readings of any interval are summed per meter and calendar day; a day with no
    reading becomes NaN. FLAG is absent (unknown). Bad timestamps or kWh name the row.
    """
    frame = read_csv(path, LONG_METER_COLUMNS)
    meters = parse_ids(frame, "meter_id", path, unique=False)
    kwh = parse_numbers(frame, "kwh", path, allow_missing=False, minimum=0.0)
    stamps = pd.to_datetime(frame["timestamp"].str.strip(), errors="coerce", format="mixed")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        raise MalformedFileError(path, "timestamp", int(bad[0]) + 1,
                                 f"not a timestamp: {frame['timestamp'].iloc[bad[0]]!r}")
    daily = (pd.DataFrame({"CONS_NO": meters, "day": stamps.dt.normalize(), "kwh": kwh})
             .groupby(["CONS_NO", "day"], sort=True)["kwh"].sum()
             .unstack("day"))
    full_range = pd.date_range(daily.columns.min(), daily.columns.max(), freq="D")
    daily = daily.reindex(columns=full_range)
    daily.columns = day_column_names(full_range)
    return daily.reset_index()


def load_consumption_csv(path: str | Path) -> pd.DataFrame:
    """SGCC wide file or long meter file, told apart by the header; SGCC shape either way."""
    path = Path(path)
    if not path.is_file():
        raise MalformedFileError(path, "-", None, "file not found")
    header = pd.read_csv(path, nrows=0).columns.str.strip()
    if set(LONG_METER_COLUMNS) <= set(header):
        return load_long_meter_csv(path)
    return load_sgcc_csv(path)


def _optional_label(frame: pd.DataFrame, column: str, path) -> dict:
    """A 0/1 label column if the file has one (training data), else nothing (scoring data)."""
    if column not in frame.columns:
        return {}
    label = parse_numbers(frame, column, path, allow_missing=False)
    wrong = np.flatnonzero(~np.isin(label, (0, 1)))
    if len(wrong):
        raise MalformedFileError(path, column, int(wrong[0]) + 1, f"{column} must be 0 or 1, got {label[wrong[0]]:g}")
    return {column: label.astype(np.int64)}


def _categories(frame: pd.DataFrame, column: str, allowed, path) -> np.ndarray:
    values = frame[column].astype(str).str.strip()
    wrong = np.flatnonzero(~values.isin(list(allowed)).to_numpy())
    if len(wrong):
        raise MalformedFileError(path, column, int(wrong[0]) + 1,
                                 f"unknown value {values.iloc[wrong[0]]!r}; expected one of {sorted(allowed)}")
    return values.to_numpy(dtype=object)


def load_billing_csv(path: str | Path) -> pd.DataFrame:
    """Billing history: customer_id, customer_class, month (YYYY-MM), billed_kwh, amount_due,
    amount_paid, days_late, optional DEFAULTED (0/1). One row per customer and month."""
    frame = read_csv(path, BILLING_COLUMNS)
    months = pd.to_datetime(frame["month"].str.strip(), format="%Y-%m", errors="coerce")
    bad = np.flatnonzero(months.isna().to_numpy())
    if len(bad):
        raise MalformedFileError(path, "month", int(bad[0]) + 1, f"expected YYYY-MM, got {frame['month'].iloc[bad[0]]!r}")
    out = pd.DataFrame({
        "customer_id": parse_ids(frame, "customer_id", path, unique=False),
        "customer_class": _categories(frame, "customer_class", billing.CLASSES, path),
        "month": months.dt.strftime("%Y-%m").to_numpy(dtype=object),
        **{c: parse_numbers(frame, c, path, allow_missing=False, minimum=0.0)
           for c in ("billed_kwh", "amount_due", "amount_paid", "days_late")},
        **_optional_label(frame, billing.LABEL, path),
    })
    repeated = np.flatnonzero(out.duplicated(["customer_id", "month"]).to_numpy())
    if len(repeated):
        raise MalformedFileError(path, "month", int(repeated[0]) + 1,
                                 f"second bill for customer {out['customer_id'].iloc[repeated[0]]!r} in the same month")
    return out


def load_transformer_csv(path: str | Path) -> pd.DataFrame:
    """Hourly transformer data: transformer_id, timestamp, load_kva, temperature_c, rated_kva (> 0)."""
    frame = read_csv(path, TRANSFORMER_COLUMNS)
    stamps = pd.to_datetime(frame["timestamp"].str.strip(), errors="coerce", format="mixed")
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if len(bad):
        raise MalformedFileError(path, "timestamp", int(bad[0]) + 1,
                                 f"not a timestamp: {frame['timestamp'].iloc[bad[0]]!r}")
    rated = parse_numbers(frame, "rated_kva", path, allow_missing=False, minimum=0.0)
    zero = np.flatnonzero(rated <= 0)
    if len(zero):
        raise MalformedFileError(path, "rated_kva", int(zero[0]) + 1, "rated capacity must be positive")
    return pd.DataFrame({
        "transformer_id": parse_ids(frame, "transformer_id", path, unique=False),
        "timestamp": stamps.to_numpy(),
        "load_kva": parse_numbers(frame, "load_kva", path, allow_missing=True, minimum=0.0),
        "temperature_c": parse_numbers(frame, "temperature_c", path, allow_missing=True),
        "rated_kva": rated,
    })


def load_assets_csv(path: str | Path) -> pd.DataFrame:
    """Equipment register (see analytics.data.equipment.ASSET_COLUMNS), optional FAILED_NEXT_YEAR."""
    frame = read_csv(path, ASSET_COLUMNS)
    text = ("manufacturer", "batch", "climate_zone")
    numeric = [c for c in ASSET_COLUMNS if c not in ("asset_id", "asset_type") + text]
    return pd.DataFrame({
        "asset_id": parse_ids(frame, "asset_id", path, unique=True),
        "asset_type": _categories(frame, "asset_type", ASSET_TYPES, path),
        **{c: frame[c].astype(str).str.strip().to_numpy(dtype=object) for c in text},
        **{c: parse_numbers(frame, c, path, allow_missing=False, minimum=0.0) for c in numeric},
        **_optional_label(frame, equipment.LABEL, path),
    })
