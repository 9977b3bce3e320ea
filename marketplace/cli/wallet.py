"""`gridmart wallet new|list|export`: scrypt-encrypted keystores."""
from __future__ import annotations

import sys

import typer

from ledger_node.errors import GridMartError
from ledger_node.wallets import create_wallet, list_wallets

from ._common import JsonOpt, PasswordOpt, emit, password_for, signer

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


@app.command()
def export(name: str = typer.Argument(..., help="keystore name"), password: str = PasswordOpt,
           yes: bool = typer.Option(False, "--yes", help="print the key even when the output is not a terminal")) -> None:
    """Print the wallet's private key, to import it into a browser wallet (MetaMask: Import
    account). Whoever sees it controls the member's points and licences."""
    if not yes and not sys.stdout.isatty():  # before the password: a key must not land in a file or pipe unasked
        raise GridMartError("the output is not a terminal: the private key would be written to a file or pipe; "
                            "pass --yes if that is what you want")
    account = signer(name, password)
    typer.secho(f"the private key of {name} ({account.address}); anyone who sees it controls this member's points "
                "and licences:", err=True, fg=typer.colors.YELLOW)
    typer.echo(account.key.to_0x_hex())
