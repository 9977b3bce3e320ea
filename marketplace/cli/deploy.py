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
    """Deploy GridMart with WALLET as the service's operator key; idempotent per chain.

    Admin powers go to a timelock driven by a council: GRIDMART_COUNCIL (addresses),
    GRIDMART_COUNCIL_THRESHOLD and GRIDMART_ADMIN_DELAY_SECONDS; on the devnet, by default,
    keystores council-1..3 (password gridmart-dev), 2 of 3, one day.
    """
    account = signer(wallet, password)
    w3 = connect()
    book, reused = deploy_contracts(w3, account, force=force)
    lines = [f"{'reused' if reused else 'deployed'} on chain {book.chain_id} (operator {book.operator}):"]
    lines += [f"  {name:<18} {addr}" for name, addr in book.addresses.items()]
    lines.append(f"admin: {book.council_threshold} of {len(book.council)} council members, then a "
                 f"{book.admin_delay} s timelock; the operator holds no admin role")
    emit({"reused": reused, **book.__dict__}, as_json, "\n".join(lines))


app = deploy
