"""`gridmart analytics ...`: generate data, train, predict with, and inspect analytics products.

Thin layer over :mod:`analytics.registry`; analytics errors become GridMartError so the
root command prints one line and exits 1. Progress goes to stderr, so ``--json``
output on stdout can be piped.
"""
from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from threadpoolctl import threadpool_limits

from analytics import registry
from analytics.bundles import build_product_bundle, build_training_bundle
from analytics.card import load_card
from analytics.data import billing, equipment
from analytics.data.federation import federation
from analytics.data.sgcc import SGCC_DAYS, generate_sgcc
from analytics.data.transformers import generate_transformer_load
from analytics.errors import AnalyticsError
from ledger_node.content.importer import compute_cid
from ledger_node.errors import GridMartError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
err = Console(stderr=True)
out = Console()
DEFAULT_MODEL_DIR = Path("models/analytics")
DATASETS = ("sgcc", "billing", "transformers", "assets")
#: One OpenMP thread by default: on the shared 2-core compute server, 2 spin-waiting
#: threads made SGCC-size training 7x slower (172 s vs 24 s, bench/analytics.py).
THREADS_HELP = "OpenMP threads for training/scoring (0 = library default)."


@contextmanager
def _analytics_errors():
    try:
        yield
    except AnalyticsError as exc:
        raise GridMartError(str(exc)) from exc


@contextmanager
def _stages(enabled: bool = True):
    """Spinner per stage with elapsed time; yields a callback taking the stage name."""
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err, transient=False, disable=not enabled) as progress:
        current = []

        def stage(description: str) -> None:
            if current:
                progress.update(current[-1], completed=1, total=1)
            current.append(progress.add_task(description, total=None))
        yield stage
        if current:
            progress.update(current[-1], completed=1, total=1)


def _model_path(name: str, model: Path | None) -> Path:
    return model or DEFAULT_MODEL_DIR / f"{name}.skops"


def _print_frame(frame, as_json: bool, title: str, limit: int = 20) -> None:
    if as_json:
        typer.echo(frame.to_json(orient="records"))
        return
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column))
    for row in frame.head(limit).itertuples(index=False):
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)
    if len(frame) > limit:
        out.print(f"... {len(frame) - limit:,} more rows (use --out FILE or --json)")


@app.command("list")
def list_products(as_json: bool = typer.Option(False, "--json", help="Print the registry as JSON.")):
    """List the products: name, kind, title and input format."""
    entries = registry.list_products()
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table(title="Analytics products")
    for column in ("name", "kind", "title", "input"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry["name"], entry["kind"], entry["title"], entry["input_schema"]["format"])
    out.print(table)


@app.command()
def generate(
    dataset: str = typer.Argument(..., help=f"One of: {', '.join(DATASETS)}."),
    out_file: Path = typer.Option(..., "--out", help="CSV file to write."),
    size: int = typer.Option(1_000, help="Customers, transformers or assets."),
    seed: int = typer.Option(0, help="Same seed, same file."),
    days: int = typer.Option(None, help=f"sgcc: days per customer (default {SGCC_DAYS}); "
                                        "transformers: days of hourly data (default 365)."),
    theft_rate: float = typer.Option(0.085, help="sgcc: share of thieves."),
    class_mix: str = typer.Option("0.86,0.10,0.04", help="sgcc: residential,commercial,small-industry shares."),
    consumption_scale: float = typer.Option(1.0, help="sgcc: multiplies every customer's level."),
    mean_temperature: float = typer.Option(15.0, help="sgcc/transformers: annual mean temperature (C)."),
    temperature_amplitude: float = typer.Option(13.0, help="sgcc/transformers: seasonal amplitude (C)."),
):
    """Write a seeded realistic data set in its real format (knobs make provinces non-IID)."""
    if dataset not in DATASETS:
        raise GridMartError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    with _analytics_errors(), _stages() as stage:
        stage(f"generating {dataset} ({size:,}, seed {seed})")
        try:
            mix = tuple(float(x) for x in class_mix.split(","))
        except ValueError:
            raise GridMartError(f"--class-mix must be three numbers like 0.86,0.10,0.04, got {class_mix!r}") from None
        try:
            frame = {
                "sgcc": lambda: generate_sgcc(size, days or SGCC_DAYS, theft_rate, seed, class_mix=mix,
                                              consumption_scale=consumption_scale,
                                              mean_temperature=mean_temperature,
                                              temperature_amplitude=temperature_amplitude),
                "billing": lambda: billing.generate_billing(size, seed=seed),
                "transformers": lambda: generate_transformer_load(size, days or 365, seed,
                                                                  mean_temperature=mean_temperature,
                                                                  temperature_amplitude=temperature_amplitude),
                "assets": lambda: equipment.generate_assets(size, seed=seed),
            }[dataset]()
        except ValueError as exc:
            raise GridMartError(str(exc)) from exc
        stage(f"writing {out_file}")
        out_file.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out_file, index=False)
    err.print(f"wrote {len(frame):,} rows x {frame.shape[1]:,} columns to {out_file}")


@app.command("federation")
def federation_files(
    out_dir: Path = typer.Option(..., "--out", help="Folder for each province's train and test CSV."),
    scale: float = typer.Option(1.0, help="Multiplies every province's customers (1.0: 50,000 in all)."),
    days: int = typer.Option(SGCC_DAYS, help="Days per customer."),
    seed: int = typer.Option(0, help="Same seed, same files."),
):
    """Write the FL federation of docs/fl.md: five provinces, each having caught other theft
    techniques (PROVINCE.train.csv), each scored on all six (PROVINCE.test.csv)."""
    if not 0 < scale <= 10 or days < 30:
        raise GridMartError("--scale must be in (0, 10] and --days at least 30")
    with _analytics_errors(), _stages() as stage:
        stage(f"generating the federation (scale {scale:g}, {days} days, seed {seed})")
        provinces = federation(scale, days, seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        recipe = []
        for province, train_frame, test_frame in provinces:
            for part, frame in (("train", train_frame), ("test", test_frame)):
                stage(f"writing {province.name}.{part}.csv")
                target = out_dir / f"{province.name}.{part}.csv"
                partial = target.with_suffix(".csv.partial")  # a crash leaves no half-written CSV
                frame.to_csv(partial, index=False)
                partial.replace(target)
            recipe.append({"province": province.name, "train_customers": len(train_frame),
                           "test_customers": len(test_frame), "theft_rate": province.theft_rate,
                           "attacks_seen": list(province.attacks_seen), "profile": province.profile})
        (out_dir / "recipe.json").write_text(json.dumps(recipe, indent=2, default=list))
    err.print(f"wrote {2 * len(provinces)} CSVs and recipe.json to {out_dir}")


@app.command()
def train(
    name: str = typer.Argument(..., help="Product name (see `gridmart analytics list`)."),
    out_dir: Path = typer.Option(DEFAULT_MODEL_DIR, "--out-dir", help="Where NAME.skops and NAME.card.json go."),
    size: int = typer.Option(None, help="Training entities to generate (default: the product's)."),
    seed: int = typer.Option(0, help="Generator and model seed; held-out set uses seed + 1000."),
    holdout_size: int = typer.Option(None, help="Held-out entities (default: size / 2)."),
    data: Path = typer.Option(None, "--data", help="Train on this labelled file instead of generated data."),
    as_json: bool = typer.Option(False, "--json", help="Print the model card as JSON."),
    threads: int = typer.Option(1, help=THREADS_HELP),
):
    """Train a product, measure it on a held-out set from another seed, save model + card."""
    with _analytics_errors(), threadpool_limits(threads or None), _stages(not as_json) as stage:
        model_path, card = registry.train(name, out_dir, size, seed, holdout_size, data, progress=stage)
    if as_json:
        typer.echo(json.dumps(card, indent=2))
        return
    table = Table(title=f"{name} — held-out metrics")
    table.add_column("metric")
    table.add_column("value")
    for key, value in card["metrics_holdout"].items():
        table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    out.print(table)
    out.print(f"model {model_path}  sha-256 {card['artifact']['sha256']}")


@app.command()
def predict(
    name: str = typer.Argument(..., help="Product name."),
    input_file: Path = typer.Option(..., "--input", help="Input file in the product's format."),
    model: Path = typer.Option(None, "--model", help=f"Model file (default {DEFAULT_MODEL_DIR}/NAME.skops)."),
    out_file: Path = typer.Option(None, "--out", help="Write the output table as CSV here."),
    as_json: bool = typer.Option(False, "--json", help="Print the output table as JSON records."),
    threads: int = typer.Option(1, help=THREADS_HELP),
):
    """Run a trained product on a file (the theft model writes CONS_NO, theft_score, theft_flag)."""
    with _analytics_errors(), threadpool_limits(threads or None), _stages(not as_json) as stage:
        stage(f"{name} on {input_file}")
        table = registry.predict_file(name, _model_path(name, model), input_file)
    if out_file is not None:
        out_file.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(out_file, index=False)
        err.print(f"wrote {len(table):,} rows to {out_file}")
    if as_json or out_file is None:
        _print_frame(table, as_json, f"{name} output")


@app.command()
def rank(
    input_file: Path = typer.Option(..., "--input", help="Asset register CSV."),
    model: Path = typer.Option(None, "--model", help="equipment-failure model file."),
    by: str = typer.Option("manufacturer", help="manufacturer or batch."),
    blacklist_only: bool = typer.Option(False, "--blacklist", help="Only blacklisted rows."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Rank manufacturers (or batches) by failures, complaints and LCC; show the blacklist."""
    with _analytics_errors():
        ranking = registry.rank_manufacturers(_model_path("equipment-failure", model), input_file, by)
    if blacklist_only:
        ranking = ranking[ranking["blacklisted"]]
    _print_frame(ranking, as_json, f"{by} ranking (best first, blacklisted last)", limit=50)


@app.command()
def card(
    name: str = typer.Argument(..., help="Product name."),
    model: Path = typer.Option(None, "--model", help="Model file (default models/analytics/NAME.skops)."),
):
    """Print a trained product's model card (JSON)."""
    with _analytics_errors():
        registry.get(name)
        typer.echo(json.dumps(load_card(_model_path(name, model)), indent=2))


def _write_bundle(data: bytes, out_file: Path) -> None:
    out_file.parent.mkdir(parents=True, exist_ok=True)
    out_file.write_bytes(data)
    typer.echo(f"{out_file}: CID {compute_cid(data)} sha-256 {hashlib.sha256(data).hexdigest()} size {len(data)}")


@app.command()
def bundle(
    name: str = typer.Argument(..., help="Product name (see `gridmart analytics list`)."),
    model_dir: Path = typer.Option(DEFAULT_MODEL_DIR, "--model", help="Folder holding NAME.skops and its card."),
    out_file: Path = typer.Option(..., "-o", "--out", help="Bundle archive to write (.tar.gz)."),
):
    """Pack a trained product as a compute bundle (publish it with --mode remote-run, no --runner)."""
    with _analytics_errors():
        _write_bundle(build_product_bundle(name, model_dir), out_file)


@app.command("training-bundle")
def training_bundle(out_file: Path = typer.Option(..., "-o", "--out", help="Bundle archive to write (.tar.gz).")):
    """Pack the compute-to-data algorithm that trains the theft model on a compute-only SGCC data set."""
    with _analytics_errors():
        _write_bundle(build_training_bundle(), out_file)
