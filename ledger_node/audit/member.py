"""Audit a member: admission, role and suspension history, and its points rebuilt from Transfer events."""
from __future__ import annotations

from web3 import Web3

from .ledger import Ledger, NotOnChain
from .membership import member_events, replay, role_names
from .result import Report

ADMISSION_GRANT = 500
ZERO = "0x0000000000000000000000000000000000000000"


def audit_member(ledger: Ledger, wallet: str) -> Report:
    if not Web3.is_address(wallet):
        raise ValueError(f"{wallet!r} is not an address: pass the member's 0x wallet address")
    wallet = Web3.to_checksum_address(wallet)
    events = member_events(ledger, wallet)
    if not events:
        raise NotOnChain(f"{wallet} was never admitted: check the address")
    r = Report(f"member {wallet}")
    state = replay(events)
    adm = state.admitted
    r.check("admitted", adm is not None, f"as {adm.args['name']!r} with roles {role_names(adm.args['roles'])}"
            if adm else "no MemberAdmitted event", adm.tx if adm else None, adm.block if adm else None)
    now = ledger.gm.members.member(wallet)
    same = int(now.roles) == state.roles and now.status.name.lower() == state.status
    r.check("roles and status replayed from events = contract state", same,
            f"contract: {now.status.name.lower()} {role_names(int(now.roles))}; "
            f"events: {state.status} {role_names(state.roles)}")
    r.facts["history"] = [{"event": e.name, **{k: v for k, v in e.args.items() if k != "wallet"}, **ledger.stamp(e)}
                          for e in events]
    incoming = ledger.events("points", "Transfer", to=wallet)
    outgoing = ledger.events("points", "Transfer", **{"from": wallet})
    rebuilt = sum(e.args["amount"] for e in incoming) - sum(e.args["amount"] for e in outgoing)
    balance = ledger.gm.points.balance_of(wallet)
    r.check("points balance rebuilt from Transfer events = balanceOf", rebuilt == balance,
            f"{len(incoming)} in, {len(outgoing)} out: {rebuilt}; balanceOf: {balance}")
    grants = [e for e in incoming if e.args["from"] == ZERO]
    r.check("admission grant", len(grants) == 1 and grants[0].args["amount"] == ADMISSION_GRANT,
            f"{len(grants)} grant(s) of {[g.args['amount'] for g in grants]}", grants[0].tx if grants else None)
    moves = [(e, e.args["amount"], e.args["from"]) for e in incoming] + [(e, -e.args["amount"], e.args["to"]) for e in outgoing]
    r.facts["points"] = [{"delta": delta, "counterparty": other, **ledger.stamp(e)}
                         for e, delta, other in sorted(moves, key=lambda m: m[0].position)]
    return r
