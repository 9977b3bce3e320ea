"""The sandboxed side of remote-run: ``python -I -m analytics.remote_run <work>``.

The marketplace writes ``job.json`` (the runner), ``artifact`` (the product's decrypted
bytes) and ``input`` (what the subscriber posted) into a fresh work folder and starts
this module in a sandbox (ledger_node/compute/sandbox.py). Everything that parses a
publisher's bundle or a subscriber's file happens here, in a process that holds no key:
untar, load the model, read the input, run. It writes ``out/result`` and
``out/status.json`` (scratch goes to ``tmp/``): ``{"ok": true, "media_type": ...}`` or ``{"ok": false, "kind":
"rejected" | "product" | "memory", "message": ...}`` with the work folder's path removed.

Like the rest of analytics, this module imports nothing of GridMart outside analytics.
"""
from __future__ import annotations

import io
import json
import sys
import tarfile
import zipfile
from pathlib import Path

HEATMAP = "heatmap"


class Refused(Exception):
    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def main(work: Path) -> int:
    out = work / "out"
    try:
        job = json.loads((work / "job.json").read_text())
        if job["runner"] == HEATMAP:
            result, media_type = _heatmap((work / "artifact").read_bytes(), work / "input", work), "application/zip"
        else:
            result, media_type = _analytics(job["runner"], work / "artifact", work / "input", work), "text/csv"
    except Refused as exc:
        return _status(out, {"ok": False, "kind": exc.kind, "message": _public(str(exc), work)})
    except MemoryError:
        return _status(out, {"ok": False, "kind": "memory", "message": "the run ran out of memory"})
    (out / "result").write_bytes(result)
    return _status(out, {"ok": True, "media_type": media_type})


def _status(out: Path, status: dict) -> int:
    (out / "status.json").write_text(json.dumps(status))
    return 0


def _analytics(name: str, bundle: Path, posted: Path, work: Path) -> bytes:
    from analytics import registry
    from analytics.card import load_product
    from analytics.errors import AnalyticsError

    model_dir = work / "tmp" / "model"
    try:
        with tarfile.open(bundle) as tar:
            tar.extractall(model_dir, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise Refused("product", f"this product's bundle is not a readable tar ({exc})") from None
    models = [p for p in model_dir.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    if len(models) != 1:
        raise Refused("product", "the product bundle must hold exactly one model file and its card")
    try:
        product = registry.get(name)
        model, card = load_product(models[0], product.name)
    except AnalyticsError as exc:
        raise Refused("product", f"this product's model was refused: {exc}") from None
    table_path = work / "tmp" / "input.csv"  # the readers go by the suffix; the work folder itself is read-only
    table_path.symlink_to(posted)
    try:
        table = product.predict(model, card, product.read(table_path))
    except AnalyticsError as exc:
        raise Refused("rejected", f"the input was rejected: {exc}") from None
    return table.to_csv(index=False).encode()


def _heatmap(settings_bytes: bytes, posted: Path, work: Path) -> bytes:
    from analytics.heatmap import HeatmapError, find_inputs, render_all

    try:
        settings = json.loads(settings_bytes or b"{}")
        period, min_count = settings.get("period", "hour"), int(settings.get("min_count", 5))
        cell_m = float(settings.get("cell_m", 250.0))
    except (ValueError, TypeError, AttributeError):
        raise Refused("product", "this heat-map product's settings are not a JSON object of period, "
                                 "min_count and cell_m") from None
    inputs = work / "tmp" / "tables"
    try:
        if zipfile.is_zipfile(posted):
            with zipfile.ZipFile(posted) as zf:
                zf.extractall(inputs)
        else:
            with tarfile.open(posted) as tar:
                tar.extractall(inputs, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError):
        raise Refused("rejected", "post a zip or tar holding readings, areas and (optionally) "
                                  "ev_sessions tables") from None
    folder = next((p.parent for p in inputs.rglob("readings.*")), inputs)
    try:
        found = find_inputs(folder)
        render_all(found["readings"], found["ev_sessions"], found["areas"], work / "tmp" / "maps",
                   period=period, min_count=min_count, cell_m=cell_m)
    except HeatmapError as exc:
        raise Refused("rejected", f"the input was rejected: {exc}") from None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((work / "tmp" / "maps").rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(work / "tmp" / "maps"))
    return buffer.getvalue()


def _public(message: str, work: Path) -> str:
    """The error text without the sandbox's work folder."""
    return message.replace(f"{work}/tmp/", "").replace(f"{work}/", "").replace(str(work), "")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
