"""Saving a product = fitted pipeline (skops file) + model card (JSON) that pins its sha-256.

skops instead of pickle because the marketplace remote-runs models published by other
units: skops refuses to instantiate types nobody trusted. Beyond skops' own defaults
(exact names it vetted: containers, numpy arrays and dtypes, scikit-learn estimators)
we trust exactly ALLOWED_TYPES, never a prefix: a prefix such as ``builtins.`` lets a
file name ``builtins.exec`` as a constructor. Anything else in a file is reported by
name, never loaded. The card's sha-256 is what the publisher certifies on chain;
loading re-checks it.
"""
from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import sklearn
import skops
import skops.io as sio

from analytics.errors import AnalyticsError

#: What the skops files of GridMart's own products hold beyond skops' defaults: every
#: product of analytics.registry trained on small data at two sizes and seeds, then
#: ``skops.io.get_untrusted_types`` (scikit-learn 1.8, skops 0.16). Exact names only;
#: re-run that survey when a product or scikit-learn changes what a model holds.
ALLOWED_TYPES = frozenset({
    "analytics.theft.features.ConsumptionFeatures",                    # theft, anomaly, portrait
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",  # gradient boosting
    "sklearn.metrics._classification.f1_score",                        # threshold tuning's scorer
    "sklearn.metrics._scorer._CurveScorer",
    "sklearn.metrics._scorer._Scorer",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.tree._tree.Tree",                                         # isolation forest
    "sklearn.utils._metadata_requests.MetadataRequest",
    "sklearn.utils._metadata_requests.MethodMetadataRequest",
})


def card_path(model_path: str | Path) -> Path:
    """``theft-detection.skops`` -> ``theft-detection.card.json`` beside it."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.name.removesuffix(".skops") + ".card.json")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_product(model, card: dict, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<product>.skops`` and its card; the card gains artifact hash and environment."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / f"{card['product']}.skops"
    sio.dump(model, model_path)
    card = {
        **card,
        "created_utc": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "environment": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                        "numpy": np.__version__, "skops": skops.__version__},
        "artifact": {"file": model_path.name, "format": "skops", "bytes": model_path.stat().st_size,
                     "sha256": sha256_file(model_path)},
    }
    path = card_path(model_path)
    path.write_text(json.dumps(card, indent=2, default=_json_default) + "\n")
    return model_path, path


def load_card(model_path: str | Path) -> dict:
    path = card_path(model_path)
    if not path.is_file():
        raise AnalyticsError(f"model card {path} not found; a product is the model file plus its card")
    return json.loads(path.read_text())


def load_product(model_path: str | Path, product: str | None = None):
    """(model, card) after checking the file's sha-256 against the card and that it is
    the expected product; refuses files holding any type outside ALLOWED_TYPES (and
    skops' defaults) before a single object is built."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise AnalyticsError(f"model file {model_path} not found; train it with `gridmart analytics train`")
    card = load_card(model_path)
    if product is not None and card.get("product") != product:
        raise AnalyticsError(f"{model_path} is a {card.get('product')!r} model, not {product!r}")
    actual = sha256_file(model_path)
    if actual != card["artifact"]["sha256"]:
        raise AnalyticsError(f"{model_path} sha-256 {actual} does not match its card "
                             f"({card['artifact']['sha256']}); the file was altered")
    try:
        untrusted = sio.get_untrusted_types(file=model_path)
    except Exception as exc:  # a broken zip or schema: whatever skops raises, it is the file's fault
        raise AnalyticsError(f"{model_path} is not a readable skops file: {type(exc).__name__}: {exc}") from None
    foreign = sorted(set(untrusted) - ALLOWED_TYPES)
    if foreign:
        raise AnalyticsError(f"{model_path} names types GridMart does not load: {', '.join(foreign)}; "
                             "a product model may hold only the types its training writes")
    return sio.load(model_path, trusted=sorted(ALLOWED_TYPES)), card


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
