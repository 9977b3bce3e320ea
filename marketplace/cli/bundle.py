"""`gridmart bundle check|pack`: validate a product bundle and pack a folder into one (docs/compute.md).

``check`` reads an archive's manifest without extracting it (ledger_node.compute.bundle);
a bad bundle is one line naming the manifest field to fix and exit status 1.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import typer

from ledger_node.compute.bundle import (
    BundleError,
    Manifest,
    check_folder,
    read_manifest,
)
from ledger_node.compute.bundle import pack as pack_folder
from ledger_node.content.importer import compute_cid
from ledger_node.errors import GridMartError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)


class BundleRefused(GridMartError):
    """A bundle or bundle folder that cannot be used; the message names the field to fix."""


def manifest_of(path: Path) -> Manifest:
    """The manifest of a bundle folder or archive, or BundleRefused naming what to fix."""
    try:
        return check_folder(path) if path.is_dir() else read_manifest(path)
    except BundleError as exc:
        raise BundleRefused(str(exc)) from None


@app.command()
def check(path: Path = typer.Argument(..., exists=True, help="a bundle folder or archive")) -> None:
    """Validate a bundle: prints its name, version, entry point, environment hash and requirements."""
    manifest = manifest_of(path)
    typer.echo(f"{manifest.name} {manifest.version}: entry {manifest.entry_point}, env {manifest.env_hash()}")
    for line in manifest.pins():
        typer.echo(f"  {line}")


@app.command()
def pack(folder: Path = typer.Argument(..., exists=True, file_okay=False, help="the bundle folder"),
         out: Path = typer.Option(..., "-o", "--out", help="archive to write (.tar.gz)")) -> None:
    """Pack a folder into a deterministic archive; prints its CID, sha-256 and size."""
    try:
        data = pack_folder(folder)
    except BundleError as exc:
        raise BundleRefused(str(exc)) from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    typer.echo(f"{out}: CID {compute_cid(data)} sha-256 {hashlib.sha256(data).hexdigest()} size {len(data)}")
