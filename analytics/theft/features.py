"""Features of a daily-consumption series that separate tampered meters from honest ones.

Each feature targets a trace an attack leaves and an honest life event does not (or
leaves differently): a level drop against the same month last year (h1, h3, h4), runs
of zero days (h2), day-to-day roughness and lost weekly rhythm (h3, h4), flat readings
(h5), a seasonal profile that no longer matches last year's (h6). All are ratios or
shares, so a small customer does not look like a thief, and all are computed from the
customer's own series, so one customer can be scored alone and the same code serves
any number of days (365 days from a province or SGCC's 1,035).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

FEATURE_NAMES: tuple[str, ...] = (
    "missing_share", "leading_missing_share", "log_mean", "log_median", "cv",
    "q05_rel", "q25_rel", "q75_rel", "q95_rel",
    "zero_share", "near_zero_share", "longest_zero_run_share", "zero_runs_per_year",
    "flat_share", "roughness", "lag1_autocorr", "lag7_autocorr",
    "weekend_ratio", "day_of_week_strength",
    "winter_ratio", "summer_ratio", "shoulder_ratio",
    "yoy_corr", "yoy_corr_last_year", "yoy_ratio_min", "yoy_ratio_last",
    "split_drop", "split_rise", "split_drop_position",
    "cv_change", "last_quarter_level", "min_month_rel",
)

_ZERO_KWH = 0.01      # a reading below this is a zero day
_CHUNK_ROWS = 2_048   # rows processed at once: bounds memory at SGCC size
DEFAULT_START = "2014-01-01"


def extract_features(df: pd.DataFrame) -> np.ndarray:
    """(n_customers x len(FEATURE_NAMES)) float array from an SGCC-format frame.

    ``df`` holds one column per day named by its date (``2014/1/1`` or ISO); CONS_NO and
    FLAG are ignored if present. Columns are put in date order first, because the real
    SGCC file lists them in text order. NaN = missing reading. Output is always finite.
    """
    days = df.drop(columns=[c for c in ("CONS_NO", "FLAG") if c in df.columns])
    dates = pd.to_datetime(pd.Index(days.columns.astype(str)), format="mixed")
    order = np.argsort(dates.to_numpy(), kind="stable")
    return consumption_features(_in_order(days.to_numpy(dtype=float), order), dates[order])


def _in_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Columns in date order, without copying SGCC-size data that is already in order."""
    return values if np.array_equal(order, np.arange(len(order))) else values[:, order]


def consumption_features(values: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """Core of :func:`extract_features` on a (customers x days) array in date order."""
    if values.ndim != 2 or values.shape[1] != len(dates):
        raise ValueError(f"expected a (customers x {len(dates)}) array, got shape {values.shape}")
    if len(values) == 0:
        return np.empty((0, len(FEATURE_NAMES)))
    with warnings.catch_warnings():
        # Rows with no reading at all (meters not installed yet) are normal; they get neutral values.
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.vstack([_chunk_features(values[i:i + _CHUNK_ROWS], dates)
                          for i in range(0, len(values), _CHUNK_ROWS)])


def _ratio(num, den, default):
    """num / den where den is meaningfully positive, else the neutral ``default``."""
    num, den = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, float(default))
    ok = den > 1e-9
    np.divide(num, den, out=out, where=ok)
    return out


def _masked_mean(x, mask, default=np.nan):
    """Row means of x over mask (x already zero where masked out)."""
    return _ratio((x * mask).sum(axis=1), mask.sum(axis=1), default)


def _chunk_features(raw: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    n, n_days = raw.shape
    x = np.where(raw < 0, np.nan, raw)
    valid = ~np.isnan(x)
    n_valid = valid.sum(axis=1)
    missing_share = 1.0 - n_valid / n_days
    leading_missing = np.where(valid.any(axis=1), valid.argmax(axis=1), n_days) / n_days

    q05, q25, q50, q75, q95 = np.nanpercentile(x, [5, 25, 50, 75, 95], axis=1) if n_days else [np.zeros(n)] * 5
    q05, q25, q50, q75, q95 = (np.nan_to_num(q) for q in (q05, q25, q50, q75, q95))
    # Meter spikes (reading errors) are capped at 4x the 95th percentile before anything else.
    cap = 4.0 * q95 + 1.0
    x = np.where(valid, np.minimum(np.nan_to_num(x), cap[:, None]), 0.0)

    mean = _masked_mean(x, valid, 0.0)
    std = np.sqrt(_masked_mean((x - mean[:, None]) ** 2, valid, 0.0))
    zero = valid & (x < _ZERO_KWH)
    longest_zero, zero_runs = _zero_runs(zero)
    years = max(n_days / 365.25, 1 / 365.25)

    pair = valid[:, 1:] & valid[:, :-1]
    step = np.abs(np.diff(x, axis=1))
    flat_share = _ratio((pair & (step < 0.005 * mean[:, None] + 0.01)).sum(axis=1), pair.sum(axis=1), 0.0)
    roughness = _ratio(_masked_mean(step, pair, 0.0), mean, 0.0)

    filled = np.log1p(np.where(valid, x, mean[:, None]))
    lag1, lag7 = _autocorr(filled, 1), _autocorr(filled, 7)

    day_of_week = dates.day_of_week.to_numpy()
    weekend = (day_of_week >= 5)[None, :] & valid
    weekday = (day_of_week < 5)[None, :] & valid
    weekend_ratio = _ratio(_masked_mean(x, weekend, 0.0), _masked_mean(x, weekday, 0.0), 1.0)
    dow_means = np.stack([_masked_mean(x, valid & (day_of_week == d)[None, :], np.nan)
                          for d in range(7)], axis=1)
    dow_strength = _ratio(np.nan_to_num(np.nanstd(dow_means, axis=1)), mean, 0.0)

    month = dates.month.to_numpy()
    season = {name: _ratio(_masked_mean(x, valid & np.isin(month, months)[None, :], np.nan), mean, 1.0)
              for name, months in (("winter", (12, 1, 2)), ("summer", (7, 8)), ("shoulder", (4, 5, 10)))}
    season = {k: np.where(np.isnan(v), 1.0, v) for k, v in season.items()}

    monthly, monthly_days = _monthly_means(x, valid, dates)
    yoy = _year_over_year(monthly, monthly_days)
    split = _best_split(x, valid)

    half = n_days // 2
    cv_first = _ratio(_masked_std(x[:, :half], valid[:, :half]), _masked_mean(x[:, :half], valid[:, :half], 0.0), 0.0)
    cv_second = _ratio(_masked_std(x[:, half:], valid[:, half:]), _masked_mean(x[:, half:], valid[:, half:], 0.0), 0.0)
    tail = slice(max(0, n_days - 91), n_days)
    last_quarter = _ratio(_masked_mean(x[:, tail], valid[:, tail], 0.0), mean, 1.0)
    full_months = np.where(monthly_days >= 10, monthly, np.nan)
    min_month_rel = _ratio(np.nan_to_num(np.nanmin(full_months, axis=1), nan=0.0),
                           np.nan_to_num(np.nanmedian(full_months, axis=1), nan=0.0), 1.0)

    columns = [
        missing_share, leading_missing, np.log1p(mean), np.log1p(q50), _ratio(std, mean, 0.0),
        _ratio(q05, q50, 1.0), _ratio(q25, q50, 1.0), _ratio(q75, q50, 1.0), _ratio(q95, q50, 1.0),
        _ratio(zero.sum(axis=1), n_valid, 0.0),
        _ratio((valid & (x < 0.1 * q50[:, None])).sum(axis=1), n_valid, 0.0),
        _ratio(longest_zero, n_valid, 0.0), zero_runs / years,
        flat_share, roughness, lag1, lag7,
        weekend_ratio, dow_strength,
        season["winter"], season["summer"], season["shoulder"],
        *yoy, *split,
        np.log((cv_second + 0.01) / (cv_first + 0.01)), last_quarter, min_month_rel,
    ]
    out = np.column_stack(columns)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=1e6, neginf=-1e6), -1e6, 1e6)


def _masked_std(x, mask):
    mean = _masked_mean(x, mask, 0.0)
    return np.sqrt(_masked_mean((x - mean[:, None]) ** 2 * mask, mask, 0.0))


def _zero_runs(zero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Longest run of zero days and number of runs, per row, without a Python loop."""
    if zero.shape[1] == 0:
        return np.zeros(len(zero)), np.zeros(len(zero))
    count = np.cumsum(zero, axis=1)
    last_reset = np.maximum.accumulate(np.where(zero, 0, count), axis=1)
    longest = (count - last_reset).max(axis=1)
    starts = zero[:, 0].astype(int) + (zero[:, 1:] & ~zero[:, :-1]).sum(axis=1)
    return longest.astype(float), starts.astype(float)


def _autocorr(series: np.ndarray, lag: int) -> np.ndarray:
    """Lag-k autocorrelation of each row (0 when the row is too short or constant)."""
    if series.shape[1] <= lag:
        return np.zeros(len(series))
    centred = series - series.mean(axis=1, keepdims=True)
    return _ratio((centred[:, lag:] * centred[:, :-lag]).sum(axis=1), (centred ** 2).sum(axis=1), 0.0)


def _monthly_means(x, valid, dates) -> tuple[np.ndarray, np.ndarray]:
    """(rows x calendar months) mean kWh and valid-day counts, months consecutive from the first."""
    month_index = (dates.year.to_numpy() - dates.year[0]) * 12 + dates.month.to_numpy() - dates.month[0] \
        if len(dates) else np.zeros(0, dtype=int)
    n_months = int(month_index.max()) + 1 if len(dates) else 0
    sums = np.zeros((len(x), n_months))
    days = np.zeros((len(x), n_months))
    for m in range(n_months):
        cols = month_index == m
        sums[:, m] = (x[:, cols] * valid[:, cols]).sum(axis=1)
        days[:, m] = valid[:, cols].sum(axis=1)
    return _ratio(sums, days, np.nan), days


def _year_over_year(monthly: np.ndarray, days: np.ndarray) -> list[np.ndarray]:
    """Compare each month with the same month a year before: correlation of the
    log profiles (all pairs and the last 12) and min / last quarterly level ratio."""
    n = len(monthly)
    if monthly.shape[1] <= 12:
        return [np.ones(n), np.ones(n), np.zeros(n), np.zeros(n)]
    now, before = np.log1p(monthly[:, 12:]), np.log1p(monthly[:, :-12])
    ok = (days[:, 12:] >= 10) & (days[:, :-12] >= 10)
    corr_all = _masked_corr(now, before, ok)
    corr_last = _masked_corr(now[:, -12:], before[:, -12:], ok[:, -12:])

    # Quarterly (3-month) sums smooth out vacations before taking level ratios.
    def rolling3(a):
        a = np.nan_to_num(a)
        c = np.cumsum(np.pad(a, ((0, 0), (1, 0))), axis=1)
        return c[:, 3:] - c[:, :-3]
    kwh = np.nan_to_num(monthly) * days
    q_kwh, q_days = rolling3(kwh), rolling3(days)
    q_mean = _ratio(q_kwh, q_days, np.nan)
    if q_mean.shape[1] <= 12:
        return [corr_all, corr_last, np.zeros(n), np.zeros(n)]
    q_ok = (q_days[:, 12:] >= 30) & (q_days[:, :-12] >= 30)
    log_ratio = np.log((np.nan_to_num(q_mean[:, 12:]) + 0.1) / (np.nan_to_num(q_mean[:, :-12]) + 0.1))
    ratio_min = np.where(q_ok, log_ratio, np.inf).min(axis=1)
    ratio_min = np.where(np.isfinite(ratio_min), ratio_min, 0.0)
    last_ok = np.where(q_ok, np.arange(q_ok.shape[1])[None, :], -1).max(axis=1)
    ratio_last = np.where(last_ok >= 0, log_ratio[np.arange(n), np.maximum(last_ok, 0)], 0.0)
    return [corr_all, corr_last, ratio_min, ratio_last]


def _masked_corr(a, b, mask) -> np.ndarray:
    """Pearson correlation per row over masked pairs; 1 (no evidence of change) if < 4 pairs."""
    count = mask.sum(axis=1)
    a, b = np.where(mask, np.nan_to_num(a), 0.0), np.where(mask, np.nan_to_num(b), 0.0)
    mean_a, mean_b = _ratio(a.sum(axis=1), count, 0.0), _ratio(b.sum(axis=1), count, 0.0)
    da, db = (a - mean_a[:, None]) * mask, (b - mean_b[:, None]) * mask
    corr = _ratio((da * db).sum(axis=1), np.sqrt((da ** 2).sum(axis=1) * (db ** 2).sum(axis=1)), 0.0)
    return np.where(count >= 4, corr, 1.0)


def _best_split(x, valid) -> list[np.ndarray]:
    """Largest level drop and rise between the days before and after any weekly split point
    (log ratio of means) and where the drop happens (share of the series)."""
    n, n_days = x.shape
    candidates = np.arange(max(1, n_days // 10), max(2, n_days - n_days // 10), 7)
    candidates = candidates[candidates < n_days]
    if n_days < 14 or len(candidates) == 0:
        return [np.zeros(n), np.zeros(n), np.zeros(n)]
    kwh = np.cumsum(x * valid, axis=1)[:, candidates - 1]
    days = np.cumsum(valid, axis=1)[:, candidates - 1]
    total_kwh, total_days = (x * valid).sum(axis=1, keepdims=True), valid.sum(axis=1, keepdims=True)
    before = _ratio(kwh, days, np.nan)
    after = _ratio(total_kwh - kwh, total_days - days, np.nan)
    enough = (days >= 30) & (total_days - days >= 30)
    log_ratio = np.where(enough, np.log((np.nan_to_num(after) + 0.1) / (np.nan_to_num(before) + 0.1)), 0.0)
    drop_at = log_ratio.argmin(axis=1)
    return [log_ratio.min(axis=1), log_ratio.max(axis=1), candidates[drop_at] / n_days]


class ConsumptionFeatures(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: daily kWh (customers x days) -> :data:`FEATURE_NAMES`.

    Fitting learns nothing from the data, and transform accepts any number of days,
    because a model trained on one period must score another province's extract. With a frame
    whose columns are dates those dates are used; with a bare array, day ``i`` is
    ``start_date + i``. ``features`` selects a subset (the customer portrait uses one).
    """

    def __init__(self, start_date: str = DEFAULT_START, features: tuple[str, ...] | None = None):
        self.start_date = start_date
        self.features = features

    def fit(self, X, y=None):
        self.n_features_in_ = check_array(X, ensure_all_finite="allow-nan").shape[1]
        self.selected_ = self._selection()
        return self

    def transform(self, X):
        check_is_fitted(self)
        dates = self._columns(X)
        values = check_array(X, ensure_all_finite="allow-nan", dtype=float)
        if dates is None:
            dates = pd.date_range(self.start_date, periods=values.shape[1], freq="D")
            order = np.arange(values.shape[1])
        else:
            order = np.argsort(dates.to_numpy(), kind="stable")
            dates = dates[order]
        return consumption_features(_in_order(values, order), dates)[:, self.selected_]

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.asarray(FEATURE_NAMES, dtype=object)[self.selected_]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # missing days are the normal case in SGCC data
        return tags

    def _selection(self) -> np.ndarray:
        if self.features is None:
            return np.arange(len(FEATURE_NAMES))
        unknown = sorted(set(self.features) - set(FEATURE_NAMES))
        if unknown:
            raise ValueError(f"unknown feature(s) {unknown}")
        return np.array([FEATURE_NAMES.index(f) for f in self.features])

    @staticmethod
    def _columns(X) -> pd.DatetimeIndex | None:
        """Dates from a frame's column names, or None when they are not all dates."""
        if not isinstance(X, pd.DataFrame):
            return None
        try:
            return pd.DatetimeIndex(pd.to_datetime(pd.Index(X.columns.astype(str)), format="mixed"))
        except (ValueError, TypeError):
            return None
