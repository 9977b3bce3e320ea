"""Remote-run of application products: the subscriber posts data, the product runs here.

The listing metadata names a runner:
* an analytics product (e.g. `theft-detection`): the artifact is a tar bundle of a model
  file and its card (as `gridmart analytics train` writes them); the input is a table
  (CSV); the result is the product's output table (CSV);
* `heatmap`: the artifact is a JSON settings file (period, min_count, cell_m); the input
  is a zip or tar of readings / ev_sessions / areas tables (CSV or Parquet); the result
  is a zip of the PNGs, the offline HTML page and the tables.
The artifact is fetched from the content store (decrypted with the operator's key if
needed); the model hash is checked against its card by analytics.
"""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from ledger_node.content.encryption import decrypt_stream, unwrap_key

from ..models import Upload
from .context import Context
from .errors import BadRequest

HEATMAP = "heatmap"


def runners() -> list[str]:
    from analytics import registry

    return [*registry.names(), HEATMAP]


def run(ctx: Context, upload: Upload, runner: str, data: BinaryIO) -> tuple[bytes, str]:
    """Run `runner` from the artifact `upload` on `data`; returns (result bytes, media type)."""
    if runner not in runners():
        raise BadRequest(f"this product names an unknown runner {runner!r}")
    artifact = _artifact_bytes(ctx, upload)
    with tempfile.TemporaryDirectory(prefix="gridmart-run-") as tmp:
        work = Path(tmp)
        posted = work / "input"
        with open(posted, "wb") as fh:
            shutil.copyfileobj(data, fh, 1 << 20)
        if runner == HEATMAP:
            return _heatmap(artifact, posted, work), "application/zip"
        return _analytics(runner, artifact, posted, work), "text/csv"


def _artifact_bytes(ctx: Context, upload: Upload) -> bytes:
    stream = ctx.store.get_stream(upload.cid)
    if upload.encrypted:
        key = unwrap_key(bytes.fromhex(upload.key_envelope), ctx.operator.key)
        stream = decrypt_stream(stream, key, expected_sha256=upload.sha256)
    return b"".join(stream)  # artifacts of remote-run products are small (a model, a settings file)


def _analytics(name: str, bundle: bytes, posted: Path, work: Path) -> bytes:
    from analytics import registry
    from analytics.errors import AnalyticsError

    model_dir = work / "model"
    with tarfile.open(fileobj=io.BytesIO(bundle)) as tar:
        tar.extractall(model_dir, filter="data")
    models = [p for p in model_dir.rglob("*") if p.is_file() and not p.name.endswith(".json")]
    if len(models) != 1:
        raise BadRequest("the product bundle must hold exactly one model file and its card")
    table_path = posted.rename(work / "input.csv")
    try:
        table = registry.predict_file(name, models[0], table_path)
    except AnalyticsError as exc:
        raise BadRequest(f"the input was rejected: {_public(exc, work)}") from None
    return table.to_csv(index=False).encode()


def _heatmap(settings_bytes: bytes, posted: Path, work: Path) -> bytes:
    from analytics.heatmap import HeatmapError, find_inputs, render_all

    try:
        settings = json.loads(settings_bytes or b"{}")
    except ValueError:
        raise BadRequest("this heat-map product's settings are not JSON") from None
    inputs = work / "tables"
    try:
        if zipfile.is_zipfile(posted):
            with zipfile.ZipFile(posted) as zf:
                zf.extractall(inputs)
        else:
            with tarfile.open(posted) as tar:
                tar.extractall(inputs, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError):
        raise BadRequest("post a zip or tar holding readings, areas and (optionally) ev_sessions tables") from None
    folder = next((p.parent for p in inputs.rglob("readings.*")), inputs)
    try:
        found = find_inputs(folder)
        render_all(found["readings"], found["ev_sessions"], found["areas"], work / "out",
                             period=settings.get("period", "hour"), min_count=int(settings.get("min_count", 5)),
                             cell_m=float(settings.get("cell_m", 250.0)))
    except HeatmapError as exc:
        raise BadRequest(f"the input was rejected: {_public(exc, work)}") from None
    buffer = io.BytesIO()
    out_dir = work / "out"
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(out_dir.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(out_dir))
    return buffer.getvalue()


def _public(exc: Exception, work: Path) -> str:
    """The error text without the server's temporary paths."""
    return str(exc).replace(f"{work}/", "").replace(str(work), "")
