"""render_all: inputs in, PNGs + HTML + tables out. The CLI, the bench and the
marketplace's remote run all go through here, so they produce the same files."""
from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analytics.heatmap.aggregate import aggregate
from analytics.heatmap.generate import generate_city
from analytics.heatmap.html import write_html
from analytics.heatmap.layers import LAYERS
from analytics.heatmap.loaders import as_frame
from analytics.heatmap.periods import period_kind
from analytics.heatmap.png import render_pngs
from analytics.heatmap.privacy import DEFAULT_MIN_COUNT, Released, release
from analytics.heatmap.schema import check_areas, check_ev, check_readings
from analytics.heatmap.table import write_tables

Source = pd.DataFrame | str | Path
#: progress(step, done, total): step is "load", "aggregate", "png", "html" or "table"
Progress = Callable[[str, int, int], None]


def prepare(readings: Source, ev_sessions: Source | None, areas: Source, *, period: str = "hour",
            min_count: int = DEFAULT_MIN_COUNT, cell_m: float = 250.0,
            progress: Progress | None = None) -> Released:
    """Load, check, aggregate and apply the privacy rule; nothing is written yet."""
    kind = period_kind(period)
    tell = progress or (lambda *_: None)
    tell("load", 0, 1)
    frames = (check_readings(as_frame(readings)), check_ev(as_frame(ev_sessions)), check_areas(as_frame(areas)))
    tell("load", 1, 1)
    tell("aggregate", 0, 1)
    released = release(aggregate(*frames, kind, cell_m=cell_m), min_count)
    tell("aggregate", 1, 1)
    return released


def render_all(readings: Source, ev_sessions: Source | None, areas: Source, out_dir: str | Path, *,
               period: str = "hour", min_count: int = DEFAULT_MIN_COUNT, cell_m: float = 250.0,
               top: int = 10, progress: Progress | None = None) -> dict:
    """Render everything into ``out_dir``; each source is a DataFrame or a CSV/Parquet path.

    Returns ``{"png": [paths], "html": path, "cells": path, "areas": path,
    "weakest": path, "manifest": path}``. Nothing written singles out a customer:
    every figure rests on at least ``min_count`` distinct meters (or EV users).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tell = progress or (lambda *_: None)
    rel = prepare(readings, ev_sessions, areas, period=period, min_count=min_count,
                  cell_m=cell_m, progress=progress)
    total = len(LAYERS) * len(rel.labels)
    done = [0]

    def one_png() -> None:
        done[0] += 1
        tell("png", done[0], total)

    tell("png", 0, total)
    pngs = render_pngs(rel, out / "png", progress=one_png)
    tell("html", 0, 1)
    page = write_html(rel, out / "heatmap.html")
    tell("html", 1, 1)
    tell("table", 0, 1)
    tables = write_tables(rel, out, top=top)
    tell("table", 1, 1)
    manifest = out / "manifest.json"
    result = {"png": pngs, "html": page, **tables, "manifest": str(manifest)}
    manifest.write_text(json.dumps({
        "period": period, "periods": rel.labels, "min_count": min_count, "cell_m": cell_m,
        "grid": {"width": rel.grid.width, "height": rel.grid.height},
        "layers": [layer.name for layer in LAYERS],
        "cells_shown": int(rel.visible.sum()),
        "files": {k: ([Path(p).relative_to(out).as_posix() for p in v] if isinstance(v, list)
                      else Path(v).relative_to(out).as_posix()) for k, v in result.items()},
    }, indent=2))
    return result


def warm_up() -> None:
    """Have numba compile datashader's kernels now (~4 s of CPU, once per process),
    e.g. when a marketplace worker starts, so the first subscriber does not wait."""
    city = generate_city(meters=300, days=1, seed=1)
    with tempfile.TemporaryDirectory() as tmp:
        render_all(city.readings, city.ev_sessions, city.areas, tmp)
