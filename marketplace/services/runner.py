"""Remote-run of application products: the subscriber posts data, the product runs here.

An application product's artifact is a tar bundle of an analytics model file and its
card (as `gridmart analytics train` writes them); its listing metadata names the
analytics product in `runner`. The bundle is fetched from the content store (decrypted
with the operator's key if needed), its model hash checked against its card by
analytics, and run on the posted file.
"""
from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import BinaryIO

from ledger_node.content.encryption import decrypt_stream, unwrap_key

from ..models import Upload
from .context import Context
from .errors import BadRequest

RESULT_MEDIA_TYPE = "text/csv"


def run(ctx: Context, upload: Upload, runner: str, data: BinaryIO, suffix: str = ".csv") -> bytes:
    """Run analytics product `runner` from the bundle `upload` on `data`; returns CSV bytes."""
    from analytics import registry
    from analytics.errors import AnalyticsError

    if runner not in registry.names():
        raise BadRequest(f"this product names an unknown runner {runner!r}")
    stream = ctx.store.get_stream(upload.cid)
    if upload.encrypted:
        stream = decrypt_stream(stream, unwrap_key(bytes.fromhex(upload.key_envelope), ctx.operator.key),
                                expected_sha256=upload.sha256)
    with tempfile.TemporaryDirectory(prefix="gridmart-run-") as tmp:
        bundle = io.BytesIO(b"".join(stream))
        with tarfile.open(fileobj=bundle) as tar:
            tar.extractall(tmp, filter="data")
        models = [p for p in Path(tmp).rglob("*") if p.is_file() and not p.name.endswith(".json")]
        if len(models) != 1:
            raise BadRequest("the product bundle must hold exactly one model file and its card")
        input_path = Path(tmp) / f"input{suffix}"
        with open(input_path, "wb") as fh:
            while chunk := data.read(1 << 20):
                fh.write(chunk)
        try:
            table = registry.predict_file(runner, models[0], input_path)
        except AnalyticsError as exc:
            raise BadRequest(f"the input was rejected: {exc}") from None
        return table.to_csv(index=False).encode()
