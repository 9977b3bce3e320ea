"""Bundle folders for GridMart's built-in analytics products, and their packed archives.

A product bundle = manifest + main.py (predict_entry.py) + the trained model and card as
``gridmart analytics train`` writes them + the vendored analytics code main.py imports.
The training bundle is the compute-to-data algorithm: the same code with
training_entry.py as main.py and no model. Packing uses ledger_node.compute.bundle.pack
(one deterministic packer for every bundle); this module is publisher-side tooling and is
never itself copied into a bundle, so the bundled code still imports nothing but analytics.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from analytics import registry
from analytics.bundles.pins import pinned_requirements
from analytics.bundles.vendor import copy_closure
from analytics.card import card_path, load_card, sha256_file
from analytics.errors import AnalyticsError

HERE = Path(__file__).resolve().parent
MANIFEST = "gridmart-bundle.json"
FORMAT = "gridmart-bundle/1"
TRAINING_NAME = "theft-detection-training"
TABLE_SCHEMA_KEYS = ("input_schema", "output_schema")
PREDICT_RESOURCES = {"memory_mb": 2048, "cpu_seconds": 600, "wall_seconds": 900, "output_mb": 64, "processes": 64}
TRAINING_RESOURCES = {"memory_mb": 4096, "cpu_seconds": 3600, "wall_seconds": 3600, "output_mb": 64,
                      "processes": 64}


def _table(schema: dict) -> dict:
    """A product schema as the manifest's: the format text and column -> type."""
    return {"format": schema["format"], "columns": {c["name"]: c["type"] for c in schema["columns"]}}


def _write(folder: Path, manifest: dict, entry: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(entry, folder / "main.py")
    copy_closure(entry, folder)
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return folder


def _checked_model(name: str, model_dir: Path) -> tuple[Path, dict]:
    """The model file and card of ``name`` in ``model_dir``, the file matching the card's
    sha-256 (checked by hash only: building a bundle never deserialises a model)."""
    model_path = Path(model_dir) / f"{name}.skops"
    if not model_path.is_file():
        raise AnalyticsError(f"{model_path} not found; train it with `gridmart analytics train {name} "
                             f"--out-dir {model_dir}`")
    card = load_card(model_path)
    if card.get("product") != name:
        raise AnalyticsError(f"{model_path} is a {card.get('product')!r} model, not {name!r}")
    if sha256_file(model_path) != card.get("artifact", {}).get("sha256"):
        raise AnalyticsError(f"{model_path} does not match the sha-256 of its card; the file was altered")
    return model_path, card


def write_product_folder(name: str, model_dir: str | Path, folder: Path) -> Path:
    """The unpacked bundle of product ``name`` with the model trained into ``model_dir``."""
    product = registry.get(name)
    model_path, card = _checked_model(name, Path(model_dir))
    describe = product.describe()
    manifest = {
        "format": FORMAT, "name": name, "version": product.version, "entry_point": "main.py",
        "requirements": pinned_requirements(),
        "input": {"media_type": "text/csv", "required": True, "schema": _table(describe["input_schema"])},
        "output": {"media_type": "text/csv", "schema": _table(describe["output_schema"])},
        "resources": PREDICT_RESOURCES,
        "description": f"{product.title}: {product.summary} Model sha-256 {card['artifact']['sha256']}, "
                       f"trained by `{card.get('training_command', 'unknown')}`.",
    }
    _write(folder, manifest, HERE / "predict_entry.py")
    (folder / "model").mkdir()
    shutil.copyfile(model_path, folder / "model" / model_path.name)
    shutil.copyfile(card_path(model_path), folder / "model" / card_path(model_path).name)
    return folder


def write_training_folder(folder: Path) -> Path:
    """The unpacked compute-to-data bundle that trains the theft model on a data product."""
    product = registry.get("theft-detection")
    manifest = {
        "format": FORMAT, "name": TRAINING_NAME, "version": product.version, "entry_point": "main.py",
        "requirements": pinned_requirements(),
        "input": None,
        "data": {"media_type": "text/csv", "required": True,
                 "schema": {**_table(product.describe()["input_schema"]),
                            "note": "FLAG is required: the model learns from confirmed thefts"}},
        "output": {"media_type": "application/x-tar",
                   "schema": {"members": ["theft-detection.skops", "theft-detection.card.json", "metrics.json"]}},
        "resources": TRAINING_RESOURCES,
        "description": "Trains GridMart's electricity-theft model where the data is (compute-to-data) and returns "
                       "only the model, its card and held-out metrics; load it with analytics.card.load_product.",
    }
    return _write(folder, manifest, HERE / "training_entry.py")


def _packed(write) -> bytes:
    from ledger_node.compute.bundle import (
        pack,  # the one packer; see the module docstring
    )

    with tempfile.TemporaryDirectory(prefix="gridmart-bundle-") as tmp:
        return pack(write(Path(tmp) / "bundle"))


def build_product_bundle(name: str, model_dir: str | Path) -> bytes:
    """The packed bundle of product ``name`` (same model, same code: same bytes and CID)."""
    return _packed(lambda folder: write_product_folder(name, model_dir, folder))


def build_training_bundle() -> bytes:
    """The packed theft-training bundle (compute-to-data)."""
    return _packed(write_training_folder)
