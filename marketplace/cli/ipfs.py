"""`gridmart ipfs add / get / cat / verify / export-car / import-car`.

Thin commands over ``ledger_node.content``: the store chosen by GRIDMART_IPFS_API
(daemon) or the embedded store under GRIDMART_HOME. Progress bars go to stderr,
so ``cat`` output and ``--json`` stay clean.
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from ledger_node.content import open_store
from ledger_node.content.encryption import decrypt_stream, put_encrypted, unwrap_key, wrap_key
from ledger_node.errors import ContentError, IntegrityError, WalletError

app = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
err_console = Console(stderr=True)
BAR_FROM = 8 * 1024 * 1024  # smaller transfers finish before a bar is useful

JsonOpt = typer.Option(False, "--json", help="Print one JSON object instead of text.")
WrappedOpt = typer.Option(None, "--wrapped-key", help="Hex content key wrapped to your wallet (decrypts the artifact).")
KeyFileOpt = typer.Option(None, "--key-file", help="Your wallet: a keystore JSON (password from GRIDMART_WALLET_PASSWORD or a prompt) or a hex private key file.")


@contextmanager
def _progress(total: int, label: str, quiet: bool):
    """Yield a callback(n_bytes); draws a bar only for large transfers."""
    with Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
        console=err_console, disable=quiet or total < BAR_FROM, transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def _emit(result: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result))
    else:
        for key, value in result.items():
            typer.echo(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")


def _private_key(key_file: Path) -> bytes:
    """Read the subscriber's secp256k1 private key; it stays in memory only."""
    try:
        text = key_file.read_text().strip()
    except OSError as exc:
        raise WalletError(f"cannot read key file {key_file}: {exc.strerror}") from None
    if text.startswith("{"):
        from eth_account import Account

        password = os.environ.get("GRIDMART_WALLET_PASSWORD") or typer.prompt("keystore password", hide_input=True)
        try:
            return bytes(Account.decrypt(json.loads(text), password))
        except ValueError as exc:
            raise WalletError(f"cannot open keystore {key_file}: {exc}; check the password") from None
    try:
        return bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise WalletError(f"{key_file} is neither a keystore JSON nor a hex private key") from None


def _plaintext(store, cid: str, wrapped_key: Optional[str], key_file: Optional[Path], sha256: Optional[str],
               progress) -> Iterator[bytes]:
    pieces = _counted(store.get_stream(cid), progress)
    if wrapped_key is None:
        return pieces
    if key_file is None:
        raise ContentError("--wrapped-key needs --key-file with the wallet it was wrapped for")
    key = unwrap_key(bytes.fromhex(wrapped_key.removeprefix("0x")), _private_key(key_file))
    return decrypt_stream(pieces, key, expected_sha256=sha256)


def _counted(pieces: Iterable[bytes], progress) -> Iterator[bytes]:
    for piece in pieces:
        progress(len(piece))
        yield piece


@app.command()
def add(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="File to store."),
    cid_version: int = typer.Option(1, "--cid-version", min=0, max=1, help="1: CIDv1 raw leaves (default); 0: CIDv0."),
    encrypt: bool = typer.Option(False, "--encrypt", help="Store AES-256-GCM ciphertext under a fresh content key."),
    recipient: list[str] = typer.Option([], "--recipient", help="Wallet public key (hex) to wrap the content key for; repeatable. Include your own."),
    as_json: bool = JsonOpt,
) -> None:
    """Store a file; prints its CID, sha-256 and size (and wrapped keys with --encrypt)."""
    if encrypt and not recipient:
        raise ContentError("--encrypt needs at least one --recipient public key (yours), or the content key would be lost")
    if recipient and not encrypt:
        raise ContentError("--recipient only makes sense with --encrypt")
    store = open_store()
    total = path.stat().st_size
    with _progress(total, f"add {path.name}", as_json) as progress:
        if not encrypt:
            result = store.put_file(path, cid_version=cid_version, progress=progress)
            _emit({"cid": result.cid, "sha256": result.sha256, "size": result.size}, as_json)
            return
        with path.open("rb") as fh:
            put = put_encrypted(store, fh, cid_version=cid_version, progress=progress)
    wrapped = {pub: wrap_key(put.content_key, pub).hex() for pub in recipient}
    _emit(
        {"cid": put.stored.cid, "size": put.stored.size, "plaintext_sha256": put.plaintext_sha256,
         "plaintext_size": put.plaintext_size, "wrapped_keys": wrapped},
        as_json,
    )


@app.command()
def get(
    cid: str = typer.Argument(..., help="CID to fetch."),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Where to write (default: ./<cid>)."),
    wrapped_key: Optional[str] = WrappedOpt,
    key_file: Optional[Path] = KeyFileOpt,
    sha256: Optional[str] = typer.Option(None, "--sha256", help="Expected sha-256 of the (decrypted) bytes."),
    as_json: bool = JsonOpt,
) -> None:
    """Fetch an artifact to a file, checking every block; the file appears only when complete."""
    import hashlib

    store = open_store()
    output = output or Path(cid)
    tmp = output.with_name(f".{output.name}.part")
    digest, size = hashlib.sha256(), 0
    try:
        with _progress(store.size(cid), f"get {cid[:16]}…", as_json) as progress, tmp.open("wb") as out:
            for piece in _plaintext(store, cid, wrapped_key, key_file, None, progress):
                digest.update(piece)
                size += len(piece)
                out.write(piece)
        if sha256 and digest.hexdigest() != sha256.lower():
            raise IntegrityError(f"{cid} has sha-256 {digest.hexdigest()}, not the expected {sha256}")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    _emit({"cid": cid, "path": str(output), "sha256": digest.hexdigest(), "size": size}, as_json)


@app.command()
def cat(
    cid: str = typer.Argument(..., help="CID to print."),
    wrapped_key: Optional[str] = WrappedOpt,
    key_file: Optional[Path] = KeyFileOpt,
) -> None:
    """Write an artifact's bytes to stdout (decrypted with --wrapped-key/--key-file)."""
    store = open_store()
    out = sys.stdout.buffer
    for piece in _plaintext(store, cid, wrapped_key, key_file, None, lambda n: None):
        out.write(piece)
    out.flush()


@app.command()
def verify(
    cid: str = typer.Argument(..., help="CID to check."),
    sha256: Optional[str] = typer.Option(None, "--sha256", help="Expected sha-256 (e.g. from the certificate)."),
    as_json: bool = JsonOpt,
) -> None:
    """Re-read and re-hash every block of an artifact; exit 1 on any mismatch."""
    import hashlib

    store = open_store()
    digest, size = hashlib.sha256(), 0
    with _progress(store.size(cid), f"verify {cid[:16]}…", as_json) as progress:
        for piece in _counted(store.get_stream(cid), progress):
            digest.update(piece)
            size += len(piece)
    if sha256 and digest.hexdigest() != sha256.lower():
        raise IntegrityError(f"{cid} has sha-256 {digest.hexdigest()}, not the expected {sha256}")
    _emit({"cid": cid, "ok": True, "sha256": digest.hexdigest(), "size": size}, as_json)


@app.command("export-car")
def export_car(cid: str, output: Path = typer.Argument(..., help="CAR file to write."), as_json: bool = JsonOpt) -> None:
    """Write an artifact's DAG as a CAR v1 file (`ipfs dag import` loads it into any node)."""
    store = open_store()
    tmp = output.with_name(f".{output.name}.part")
    try:
        with tmp.open("wb") as out:
            written = store.export_car(cid, out)
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    _emit({"cid": cid, "path": str(output), "bytes": written}, as_json)


@app.command("import-car")
def import_car(path: Path = typer.Argument(..., exists=True, dir_okay=False), as_json: bool = JsonOpt) -> None:
    """Load a CAR v1 file (every block re-hashed) and pin its roots."""
    with path.open("rb") as fh:
        roots = open_store().import_car(fh)
    _emit({"roots": roots}, as_json)
