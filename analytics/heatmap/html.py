"""One self-contained interactive HTML file: data, CSS and JavaScript all inline.

Values travel as little-endian uint16 quantised to each layer's maximum (65535 =
nothing to show), base64-encoded: half the size of float32, and the hover read-out
stays within 0.002 % of the table. No URL of any kind is referenced.
"""
from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

import numpy as np

from analytics.heatmap.colors import NO_DATA, lut
from analytics.heatmap.layers import LAYERS, cell_layers, scale_max
from analytics.heatmap.privacy import Released
from analytics.heatmap.table import area_table
from analytics.heatmap.table import weakest as rank_weakest

NAN_CODE = 65535
_PERIOD_NAMES = {"hour": "hour", "daytype": "day type", "month": "month"}


def quantise(values: np.ndarray, top: float) -> str:
    """[row, col] floats to base64 uint16 (0..65534 over 0..top; NaN -> 65535)."""
    scaled = np.clip(np.nan_to_num(values, nan=0.0) / top * 65534, 0, 65534)
    codes = np.where(np.isnan(values), NAN_CODE, np.rint(scaled)).astype("<u2")
    return base64.b64encode(codes.tobytes()).decode("ascii")


def payload(rel: Released, title: str, weakest_per_period: int = 8) -> dict:
    """Everything the page needs, built from released figures only."""
    values = cell_layers(rel)
    layers = []
    for layer in LAYERS:
        data = values[layer.name]
        finite = data[np.isfinite(data)]
        top = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
        layers.append({"name": layer.name, "title": layer.title, "unit": layer.unit,
                       "vmax": scale_max(layer, data), "top": top, "lut": lut(layer.cmap),
                       "values": [quantise(data[p], top) for p in range(len(rel.labels))]})
    meters = np.minimum(rel.meter.count, 65534)
    areas = area_table(rel)
    weakest = []
    for label in rel.labels:
        rows = rank_weakest(areas[areas["period"] == label], weakest_per_period)
        weakest.append([{"area": html.escape(r.area_id), "name": html.escape(r.name),
                         "zone": html.escape(r.zone), "peak": round(float(r.peak_kw), 1),
                         "cap": float(r.capacity_kw), "ratio": round(float(r.peak_ratio), 3)}
                        for r in rows.itertuples()])
    grid = rel.grid
    return {
        "title": title, "period_name": _PERIOD_NAMES.get(rel.kind, rel.kind),
        "subtitle": (f"{grid.cell_m:g} m cells, {len(rel.labels)} periods; cells with fewer than "
                     f"{rel.min_count} customers are withheld; EV sessions are spread over the "
                     f"quarter-hours they last"),
        "labels": rel.labels, "min_count": rel.min_count,
        "start": int(np.argmax(np.nansum(values["load_kw"], axis=(1, 2)))),  # open on the busiest period
        "grid": {"width": grid.width, "height": grid.height,
                 "x_range": list(grid.x_range), "y_range": list(grid.y_range)},
        "layers": layers,
        "meters": [quantise(meters[p], 65534) for p in range(len(rel.labels))],
        "areas": [{"id": html.escape(a.area_id), "box": [a.lon_min, a.lat_min, a.lon_max, a.lat_max]}
                  for a in rel.areas.itertuples()],
        "weakest": weakest,
        "stations": rel.stations[["lon", "lat"]].round(6).to_numpy().tolist(),
    }


def write_html(rel: Released, path: str | Path, title: str = "GridMart power heat map") -> str:
    """Fill template.html with the payload; returns the path written."""
    template = resources.files("analytics.heatmap").joinpath("template.html").read_text("utf-8")
    data = json.dumps(payload(rel, title), separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    page = (template.replace("__TITLE__", html.escape(title)).replace("__NODATA__", NO_DATA)
            .replace("__DATA__", data))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return str(path)
