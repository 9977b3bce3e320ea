"""`gridmart heatmap ...`: render power heat maps and generate a synthetic city."""
from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from analytics.heatmap import DEFAULT_MIN_COUNT, PERIODS, HeatmapError, find_inputs, generate_city, render_all
from ledger_node.errors import GridMartError

app = typer.Typer(no_args_is_help=True, help="Render power heat maps (seed 002 §3.3).")
_STEPS = {"load": "loading inputs", "aggregate": "aggregating", "png": "PNG maps",
          "html": "interactive HTML", "table": "tables"}


@app.command()
def render(
    input: Path = typer.Option(..., "--input", "-i", help="Directory with readings.*, areas.* and optionally "
                               "ev_sessions.* (.parquet, .csv or .csv.gz)."),
    period: str = typer.Option("hour", "--period", "-p", help=f"One of: {', '.join(PERIODS)}."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory (created if missing)."),
    min_count: int = typer.Option(DEFAULT_MIN_COUNT, "--min-count", help="Fewest distinct customers a shown cell may have."),
    cell_m: float = typer.Option(250.0, "--cell-m", help="Grid cell size in metres."),
    top: int = typer.Option(10, "--top", help="How many weakest areas to list."),
) -> None:
    """Render PNGs per layer and period, heatmap.html and the cell / area / weakest tables."""
    console = Console(stderr=True)
    try:
        paths = find_inputs(input)
        with Progress(TextColumn("{task.description:<18}"), BarColumn(), TaskProgressColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            tasks: dict[str, int] = {}

            def progress(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bar.add_task(_STEPS[step], total=total)
                bar.update(tasks[step], completed=done, total=total)

            result = render_all(paths["readings"], paths["ev_sessions"], paths["areas"], out,
                                period=period, min_count=min_count, cell_m=cell_m, top=top,
                                progress=progress)
    except HeatmapError as exc:
        raise GridMartError(f"heatmap: {exc}") from None
    typer.echo(f"{len(result['png'])} PNGs in {Path(result['png'][0]).parent}")
    for key in ("html", "cells", "areas", "weakest"):
        typer.echo(f"{key}: {result[key]}")


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write readings / ev_sessions / areas into."),
    meters: int = typer.Option(100_000, "--meters", help="Number of meters (96 readings per meter and day)."),
    days: int = typer.Option(2, "--days", help="Days of 15-minute data, spread over a year."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same city."),
    fmt: str = typer.Option("parquet", "--format", help="parquet or csv."),
) -> None:
    """Write a seeded synthetic city (districts, zones, meters, EV stations, capacities)."""
    try:
        paths = generate_city(meters=meters, days=days, seed=seed).save(out, fmt)
    except HeatmapError as exc:
        raise GridMartError(f"heatmap: {exc}") from None
    for name, path in paths.items():
        typer.echo(f"{name}: {path}")
