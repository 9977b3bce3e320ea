"""The map layers, derived from released figures only.

Values are rates (kW, kWh per person per day) rather than period totals so that
periods of different length (5 weekdays vs 2 weekend days) compare on one scale.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analytics.heatmap.privacy import Released


@dataclass(frozen=True)
class Layer:
    name: str
    title: str
    unit: str
    cmap: str        # a matplotlib colormap name
    fixed_max: float | None = None  # a natural ceiling (shares) instead of the data's p99


LAYERS = (
    Layer("load_kw", "Mean load", "kW", "inferno"),
    Layer("load_ratio", "Load / capacity", "ratio", "RdYlGn_r", fixed_max=1.2),
    Layer("ev_kw", "EV charging load", "kW", "viridis"),
    Layer("ev_share", "EV share of load", "%", "cividis", fixed_max=100.0),
    Layer("kwh_per_capita", "Use per capita", "kWh / person / day", "magma"),
)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def cell_layers(rel: Released) -> dict[str, np.ndarray]:
    """[period, row, col] arrays per layer; NaN = nothing to show (no data or withheld)."""
    hours = rel.hours[:, None, None]
    visible = rel.visible
    meter = np.where(rel.meter.shown, rel.meter.kwh, 0.0)
    ev = np.where(rel.ev.shown, rel.ev.kwh, 0.0)
    load = np.where(visible, (meter + ev) / hours, np.nan)
    ev_known = visible & ~np.isnan(rel.ev.kwh)
    meter_known = visible & ~np.isnan(rel.meter.kwh)
    return {
        "load_kw": load,
        "load_ratio": np.where(visible, _ratio(load, rel.capacity_kw[None]), np.nan),
        "ev_kw": np.where(ev_known, ev / hours, np.nan),
        "ev_share": np.where(ev_known & meter_known, 100 * _ratio(ev, meter + ev), np.nan),
        "kwh_per_capita": np.where(rel.meter.shown,
                                   _ratio(meter / (hours / 24), rel.population[None]), np.nan),
    }


def scale_max(layer: Layer, values: np.ndarray) -> float:
    """Top of the colour scale, shared by all periods of a layer (robust 99th percentile)."""
    if layer.fixed_max is not None:
        return layer.fixed_max
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0
    top = float(np.percentile(finite, 99))
    return top if top > 0 else max(float(finite.max()), 1.0)
