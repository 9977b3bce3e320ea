"""`gridmart wallet new|list`: scrypt-encrypted keystores."""
from __future__ import annotations

import typer

from ledger_node.wallets import create_wallet, list_wallets

from ._common import JsonOpt, PasswordOpt, emit, password_for

app = typer.Typer(no_args_is_help=True)


@app.command()
def new(name: str = typer.Argument(..., help="keystore name, e.g. jiangsu"), password: str = PasswordOpt,
        as_json: bool = JsonOpt) -> None:
    """Create a new wallet with a fresh key."""
    info = create_wallet(name, password_for(name, password, confirm=True))
    emit({"name": info.name, "address": info.address, "path": str(info.path)}, as_json,
         f"created wallet {info.name}: {info.address} ({info.path})")


@app.command("list")
def list_(as_json: bool = JsonOpt) -> None:
    """List wallets and their addresses."""
    wallets = list_wallets()
    emit([{"name": w.name, "address": w.address} for w in wallets], as_json,
         "\n".join(f"{w.name:<20} {w.address}" for w in wallets) or "no wallets yet: `gridmart wallet new NAME`")
