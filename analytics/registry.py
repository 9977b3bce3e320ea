"""Registry of analytics products: the stable entry points the marketplace and CLI call.

    from analytics import registry
    registry.list_products()                                 # name, kind, schemas
    model_path, card = registry.train("theft-detection", "models/")
    table = registry.predict_file("theft-detection", model_path, "customers.csv")

``predict_file`` is what remote-run (application products) calls: it verifies the
model's sha-256 against its card, validates the input file, and returns the output
table described by the product's output schema.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd

from analytics.card import load_product, save_product
from analytics.errors import AnalyticsError
from analytics.product import HOLDOUT_SEED_OFFSET, Product
from analytics.products import PRODUCTS

_REGISTRY: dict[str, Product] = {p.name: p for p in PRODUCTS}


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str) -> Product:
    """The product called ``name``; the error lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AnalyticsError(f"unknown product {name!r}; known: {', '.join(_REGISTRY)}") from None


def list_products() -> list[dict]:
    """Registry entries: name, kind, title, summary, version, input and output schema."""
    return [p.describe() for p in PRODUCTS]


def train(name: str, out_dir: str | Path, size: int | None = None, seed: int = 0,
          holdout_size: int | None = None, data_path: str | Path | None = None,
          progress: Callable[[str], None] = lambda stage: None) -> tuple[Path, dict]:
    """Fit a product on generated data (or a labelled file), measure it on a held-out set
    generated from ``seed + 1000`` (unseen entities), save model + card in ``out_dir``."""
    product = get(name)
    size = size or product.default_size
    holdout_size = holdout_size or max(size // 2, 1)
    if data_path is None:
        progress(f"generating {size:,} {product.size_unit} (seed {seed})")
        frame = product.generate(size, seed)
        data = {"source": "generated", "generator_seed": seed, "size": size, "size_unit": product.size_unit}
    else:
        progress(f"reading {data_path}")
        frame = product.read(data_path)
        data = {"source": str(data_path), "rows": int(len(frame))}
    progress("fitting")
    model, about = product.fit(frame, seed)
    progress(f"evaluating on {holdout_size:,} held-out {product.size_unit} (seed {seed + HOLDOUT_SEED_OFFSET})")
    metrics = product.evaluate(model, about, holdout_size, seed + HOLDOUT_SEED_OFFSET)
    card = {
        "product": product.name, "kind": product.kind, "title": product.title, "version": product.version,
        "summary": product.summary,
        "training_command": f"gridmart analytics train {product.name} --size {size} --seed {seed}"
                            + (f" --data {data_path}" if data_path else ""),
        "data": {**data, "holdout": {"source": "generated", "generator_seed": seed + HOLDOUT_SEED_OFFSET,
                                     "size": holdout_size}},
        **about,
        "metrics_holdout": metrics,
        "input_schema": product.describe()["input_schema"],
        "output_schema": product.describe()["output_schema"],
    }
    progress("saving")
    model_path, _ = save_product(model, card, out_dir)
    return model_path, load_product(model_path, product.name)[1]


def predict_file(name: str, model_path: str | Path, input_path: str | Path) -> pd.DataFrame:
    """Remote-run entry point: output table of product ``name`` for the file ``input_path``."""
    product = get(name)
    model, card = load_product(model_path, product.name)
    return product.predict(model, card, product.read(input_path))


def rank_manufacturers(model_path: str | Path, input_path: str | Path, by: str = "manufacturer") -> pd.DataFrame:
    """Manufacturer (or batch) ranking and blacklist for an asset register file."""
    product = get("equipment-failure")
    model, _ = load_product(model_path, product.name)
    return product.rank(model, product.read(input_path), by=by)
