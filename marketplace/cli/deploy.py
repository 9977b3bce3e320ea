"""`gridmart deploy`: deploy the contracts (or reuse a live deployment)."""
from __future__ import annotations

import typer

from ledger_node.chain import connect
from ledger_node.deploy import deploy as deploy_contracts

from ._common import JsonOpt, PasswordOpt, WalletOpt, emit, signer


def deploy(
    wallet: str = WalletOpt,
    password: str = PasswordOpt,
    force: bool = typer.Option(False, "--force", help="deploy anew even if a live deployment exists"),
    as_json: bool = JsonOpt,
) -> None:
    """Deploy GridMart with WALLET as operator; idempotent per chain."""
    account = signer(wallet, password)
    w3 = connect()
    book, reused = deploy_contracts(w3, account, force=force)
    lines = [f"{'reused' if reused else 'deployed'} on chain {book.chain_id} (operator {book.operator}):"]
    lines += [f"  {name:<18} {addr}" for name, addr in book.addresses.items()]
    emit({"reused": reused, **book.__dict__}, as_json, "\n".join(lines))


app = deploy
