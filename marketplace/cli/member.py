"""`gridmart member admit|suspend|reinstate|roles|show`: the operator's member console.

Changes go through the marketplace API (signed in as the operator); `show` reads the chain.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import typer
from web3 import Web3

from ledger_node.contracts import Role, connect_gridmart
from ledger_node.errors import GridMartError
from ledger_node.wallets import list_wallets

from ._common import JsonOpt, PasswordOpt, WalletOpt, emit
from .market import connect

app = typer.Typer(no_args_is_help=True)


def _address(value: str) -> str:
    """An address, or the name of a wallet in this home (its address: no password needed)."""
    if Web3.is_address(value):
        return Web3.to_checksum_address(value)
    named = {w.name: w.address for w in list_wallets()}
    if value in named:
        return named[value]
    raise GridMartError(f"{value!r} is neither an Ethereum address (0x followed by 40 hex digits) nor a wallet "
                        "of this home (`gridmart wallet list`)")


def _roles(value: str) -> Role:
    roles = Role(0)
    for part in filter(None, value.lower().split(",")):
        try:
            roles |= Role[part.strip().upper()]
        except KeyError:
            raise GridMartError(f"unknown role {part!r}: use publisher, subscriber, auditor (comma-separated)") from None
    if not roles:
        raise GridMartError("give at least one role: publisher, subscriber or auditor")
    return roles


@app.command()
def admit(
    address: str = typer.Argument(..., help="the unit's address, or the name of its wallet in this home"),
    name: str = typer.Option(..., help="the unit's name"),
    identity: Path = typer.Option(..., exists=True, dir_okay=False, help="identity document (its sha-256 goes on chain)"),
    roles: str = typer.Option("publisher,subscriber", help="comma-separated: publisher, subscriber, auditor"),
    wallet: str = WalletOpt, password: str = PasswordOpt, as_json: bool = JsonOpt,
) -> None:
    """Admit a member unit (grants 500 points)."""
    _roles(roles)  # validate before signing in
    member = _address(address)
    client = connect(wallet, password)
    out = client.admit(member, name, identity.read_bytes(), [r.strip() for r in roles.split(",") if r.strip()])
    emit({**out, "identity_sha256": hashlib.sha256(identity.read_bytes()).hexdigest()}, as_json,
         f"admitted {name} ({out['address']}) with {out['points']} points")


@app.command()
def suspend(address: str, reason: str = typer.Option(..., help="why"), wallet: str = WalletOpt,
            password: str = PasswordOpt) -> None:
    """Suspend a member: it can no longer publish, buy, redeem or train."""
    connect(wallet, password)._request("POST", f"/members/{_address(address)}/suspend", json={"reason": reason})
    typer.echo(f"suspended {_address(address)}")


@app.command()
def reinstate(address: str, wallet: str = WalletOpt, password: str = PasswordOpt) -> None:
    """Reinstate a suspended member."""
    connect(wallet, password)._request("POST", f"/members/{_address(address)}/reinstate")
    typer.echo(f"reinstated {_address(address)}")


@app.command("roles")
def set_roles(address: str, roles: str, wallet: str = WalletOpt, password: str = PasswordOpt) -> None:
    """Replace a member's roles, e.g. `publisher,subscriber`."""
    _roles(roles)
    connect(wallet, password)._request("PUT", f"/members/{_address(address)}/roles",
                                       json={"roles": [r.strip() for r in roles.split(",") if r.strip()]})
    typer.echo(f"roles of {_address(address)} set to {roles}")


@app.command()
def show(address: str, as_json: bool = JsonOpt) -> None:
    """Show a member's status, roles and points (read-only)."""
    gm = connect_gridmart()
    m = gm.members.member(_address(address))
    if m.status == 0:
        raise GridMartError(f"{_address(address)} is not a member: the operator admits it with `gridmart member admit`")
    data = {"address": _address(address), "status": m.status.name.lower(), "roles": str(m.roles.name).lower(),
            "identity_hash": m.identity_hash.hex(), "points": gm.points.balance_of(_address(address))}
    emit(data, as_json, "\n".join(f"{k:<14} {v}" for k, v in data.items()))
