"""Power heat map (seed 002 §3.3): load, EV charging, capacity and population by area
and period, rendered to PNGs, one offline HTML page and tables, with a minimum
customer count per shown cell. Imports nothing of GridMart outside this package.

Entry points: :func:`render_all` (what the marketplace remote-runs and the CLI calls),
:func:`generate_city` (synthetic input), :func:`find_inputs` / :func:`load_dir` (CSV / Parquet).
"""
from analytics.heatmap.errors import HeatmapError
from analytics.heatmap.generate import City, generate_city
from analytics.heatmap.loaders import find_inputs, load_dir
from analytics.heatmap.periods import KINDS as PERIODS
from analytics.heatmap.pipeline import prepare, render_all, warm_up
from analytics.heatmap.privacy import DEFAULT_MIN_COUNT

__all__ = ["City", "DEFAULT_MIN_COUNT", "HeatmapError", "PERIODS", "find_inputs", "generate_city", "load_dir",
           "prepare", "render_all", "warm_up"]
