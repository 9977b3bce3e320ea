"""Remote-run of application products: the subscriber posts data, the product runs in a sandbox.

The listing metadata names a runner:
* an analytics product (e.g. `theft-detection`): the artifact is a tar bundle of a model
  file and its card (as `gridmart analytics train` writes them); the input is a table
  (CSV); the result is the product's output table (CSV);
* `heatmap`: the artifact is a JSON settings file (period, min_count, cell_m); the input
  is a zip or tar of readings / ev_sessions / areas tables (CSV or Parquet); the result
  is a zip of the PNGs, the offline HTML page and the tables.
This process only fetches the artifact (decrypting it with the operator's key if needed:
decryption does not parse it) and writes it with the posted input into a work folder.
Everything that parses a bundle or an input runs in analytics.remote_run inside the
sandbox (ledger_node.compute.sandbox), which holds no key; this process reads back its result file.
"""
from __future__ import annotations

import hashlib
import json
import shutil
from typing import BinaryIO

from ledger_node.compute import sandbox
from ledger_node.content.encryption import decrypt_stream, unwrap_key

from ..models import Upload
from .context import Context
from .errors import BadRequest, ServiceError, TooLarge, Unavailable

HEATMAP = "heatmap"
WORKER = "analytics.remote_run"


class RunFailed(ServiceError):
    """The product's run stopped without a result (a limit, or a crash): not the caller's input alone."""

    status_code = 422


def runners() -> list[str]:
    from analytics import registry

    return [*registry.names(), HEATMAP]


def run(ctx: Context, upload: Upload | None, sha256: str, runner: str, data: BinaryIO,
        limits: sandbox.Limits = sandbox.Limits()) -> tuple[bytes, str]:
    """Run `runner` from the artifact `upload` (whose plaintext the chain certifies as `sha256`)
    on `data`; returns (result bytes, media type)."""
    if runner not in runners():
        raise BadRequest(f"this product names an unknown runner {runner!r}")
    if upload is None:
        raise Unavailable("the index has no upload row for this product's artifact: the operator must repair the index")
    artifact = _artifact_bytes(ctx, upload, sha256)
    work = sandbox.new_workdir()
    try:
        (work / "job.json").write_text(json.dumps({"runner": runner}))
        (work / "artifact").write_bytes(artifact)
        with open(work / "input", "wb") as fh:
            shutil.copyfileobj(data, fh, 1 << 20)
        return run_in_sandbox(work, limits)
    finally:
        sandbox.remove_workdir(work)


def run_in_sandbox(work, limits: sandbox.Limits) -> tuple[bytes, str]:
    """Start the worker on a prepared work folder and turn what it left into a result or an error."""
    try:
        sandbox.run_python(["-m", WORKER, str(work)], work, limits)
        raw = sandbox.read_output(work, "status.json", 64 << 10)
        status = json.loads(raw) if raw else None
        if not isinstance(status, dict):
            raise sandbox.SandboxError("crash", "the run ended without a status")
        if not status.get("ok"):
            message = str(status.get("message", "the run failed"))[:2000]
            if status.get("kind") == "memory":
                raise TooLarge(f"{message}: post a smaller input")
            raise BadRequest(message)
        result = sandbox.read_output(work, "result", limits.output_bytes)
        if result is None:
            raise sandbox.SandboxError("crash", "the run reported success but wrote no result")
        return result, str(status.get("media_type", "application/octet-stream"))
    except sandbox.SandboxError as exc:
        if exc.kind == "unavailable":
            raise Unavailable(exc.message) from None
        if exc.kind == "memory":
            raise TooLarge(f"{exc.message}: post a smaller input") from None
        if exc.kind == "timeout":
            raise RunFailed(f"{exc.message}: post a smaller input") from None
        raise RunFailed(f"this product could not run: {exc.message}") from None
    except ValueError:
        raise RunFailed("this product could not run: its status was not JSON") from None


def _artifact_bytes(ctx: Context, upload: Upload, sha256: str) -> bytes:
    """The artifact's plaintext, checked against the certified sha-256 (not the index's)."""
    stream = ctx.store.get_stream(upload.cid)
    if upload.encrypted:
        key = unwrap_key(bytes.fromhex(upload.key_envelope), ctx.operator.key)
        stream = decrypt_stream(stream, key, expected_sha256=sha256)
    artifact = b"".join(stream)  # artifacts of remote-run products are small (a model, a settings file)
    if hashlib.sha256(artifact).hexdigest() != sha256:
        raise Unavailable("the stored artifact does not hash to its certificate: the operator must repair the store")
    return artifact
