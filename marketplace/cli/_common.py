"""Helpers shared by CLI commands: signing wallets, JSON output."""
from __future__ import annotations

import json
import os
from typing import Any

import typer

from ledger_node.wallets import load_wallet

WalletOpt = typer.Option("operator", "--wallet", "-w", help="keystore name of the signing wallet")
PasswordOpt = typer.Option(None, "--password", help="keystore password (default: $GRIDMART_WALLET_PASSWORD, else prompt)")
JsonOpt = typer.Option(False, "--json", help="print machine-readable JSON")


def password_for(name: str, password: str | None, confirm: bool = False) -> str:
    if password:
        return password
    env = os.environ.get("GRIDMART_WALLET_PASSWORD")
    if env:
        return env
    return typer.prompt(f"password for wallet {name!r}", hide_input=True, confirmation_prompt=confirm)


def signer(name: str, password: str | None):
    return load_wallet(name, password_for(name, password))


def emit(data: Any, as_json: bool, text: str) -> None:
    """Print `data` as JSON, or `text` for people."""
    typer.echo(json.dumps(data, default=str, indent=2) if as_json else text)
