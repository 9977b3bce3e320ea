"""Entry point of the theft-training bundle (copied as main.py): compute-to-data, seed §2.5(2).

Trains the electricity-theft model on the data product beside it (GRIDMART_DATA, an
SGCC table with FLAG), measures it on a stratified fifth of that data held out, and
writes to GRIDMART_OUTPUT a tar of the model file, its card and the metrics: aggregates
only, never a customer's row or number, so the subscriber gets a model and not the data.
"""
from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from pathlib import Path

from sklearn.model_selection import train_test_split
from threadpoolctl import threadpool_limits

from analytics import registry
from analytics.card import save_product
from analytics.data.loaders import load_sgcc_csv
from analytics.errors import AnalyticsError
from analytics.metrics import binary_report

PRODUCT = "theft-detection"
HOLDOUT_SHARE = 0.2
SEED = 0


def train(data_path: str, out_dir: Path) -> list[Path]:
    """Fit on four fifths, measure on the rest; the model, card and metrics files."""
    product = registry.get(PRODUCT)
    frame = load_sgcc_csv(data_path, require_flag=True)
    if frame["FLAG"].nunique() < 2 or frame["FLAG"].value_counts().min() < 5:
        raise AnalyticsError("the data needs at least 5 customers with FLAG 1 and 5 with FLAG 0 to train on")
    print(f"read {len(frame):,} customers\nprogress: 0.1", flush=True)
    fit_rows, holdout = train_test_split(frame, test_size=HOLDOUT_SHARE, stratify=frame["FLAG"], random_state=SEED)
    model, about = product.fit(fit_rows, SEED)
    print("progress: 0.8", flush=True)
    days = holdout.drop(columns=["CONS_NO", "FLAG"])
    metrics = binary_report(holdout["FLAG"], model.predict_proba(days)[:, 1], about["threshold"])
    card = {
        "product": product.name, "kind": product.kind, "title": product.title, "version": product.version,
        "summary": product.summary,
        "training_command": "compute-to-data: the theft-detection training bundle on a data product",
        "data": {"source": "compute-to-data", "rows": len(fit_rows),
                 "holdout": {"source": "compute-to-data", "share": HOLDOUT_SHARE, "rows": len(holdout)}},
        **about,
        "metrics_holdout": metrics,
        **{key: value for key, value in product.describe().items() if key.endswith("_schema")},
    }
    model_path, card_path = save_product(model, card, out_dir)
    metrics_path = out_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return [model_path, card_path, metrics_path]


def write_tar(files: list[Path], output: str) -> None:
    """Plain tar, sorted names, mtime 0: the same training gives the same member list."""
    with tarfile.open(output, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files, key=lambda p: p.name):
            info = tarfile.TarInfo(path.name)
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))


def main() -> int:
    data_path, output = os.environ.get("GRIDMART_DATA", ""), os.environ["GRIDMART_OUTPUT"]
    if not data_path:
        print("this bundle trains on a data product: run it on a compute-only SGCC data set", file=sys.stderr)
        return 1
    print("progress: 0.02", flush=True)
    try:
        with threadpool_limits(1):  # OpenMP spin-waiting on a shared node is slower than one thread
            files = train(data_path, Path(os.environ["GRIDMART_SCRATCH"]) / "model")
    except AnalyticsError as exc:
        print(f"{PRODUCT} training: {exc}", file=sys.stderr)
        return 1
    write_tar(files, output)
    print("progress: 1.0", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
