"""Entry point of a product bundle (copied as main.py): score GRIDMART_INPUT with the bundled model.

Runs as ``python -E -s main.py`` in the bundle folder (docs/compute.md), so ``analytics``
is the vendored copy beside it. Writes the product's output table as CSV to
GRIDMART_OUTPUT; a refused model or input is one line on stderr and exit status 1.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from threadpoolctl import threadpool_limits

from analytics import registry
from analytics.card import load_product
from analytics.errors import AnalyticsError

HERE = Path(__file__).resolve().parent


def main() -> int:
    name = json.loads((HERE / "gridmart-bundle.json").read_text())["name"]
    input_path, output_path = os.environ.get("GRIDMART_INPUT", ""), os.environ["GRIDMART_OUTPUT"]
    if not input_path:
        print(f"{name} needs an input file: post a table in the product's input format", file=sys.stderr)
        return 1
    product = registry.get(name)
    print("progress: 0.05", flush=True)
    try:
        model, card = load_product(HERE / "model" / f"{name}.skops", name)
        print("progress: 0.2", flush=True)
        frame = product.read(input_path)
        print(f"read {len(frame):,} rows\nprogress: 0.4", flush=True)
        with threadpool_limits(1):  # OpenMP spin-waiting on a shared node is slower than one thread
            table = product.predict(model, card, frame)
    except AnalyticsError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    print("progress: 0.9", flush=True)
    table.to_csv(output_path, index=False)
    print(f"wrote {len(table):,} rows\nprogress: 1.0", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
