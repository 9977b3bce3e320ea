"""Audit a licence: every purchase with its 94/6 split as point movements, its terms, every redemption."""
from __future__ import annotations

from eth_abi import encode
from eth_utils import keccak

from ..contracts import PlanKind
from .ledger import Ledger, NotOnChain
from .result import Report


def parse_licence_id(text: str) -> int:
    return int(text, 16) if text.lower().startswith("0x") else int(text)


def audit_licence(ledger: Ledger, licence_id: int) -> Report:
    purchases = ledger.events("licensing", "LicencePurchased", licenceId=licence_id)
    if not purchases:
        raise NotOnChain(f"no licence 0x{licence_id:064x} was ever purchased: check the id "
                         "(keccak256(abi.encode(productId, holder)))")
    first = purchases[0].args
    r = Report(f"licence 0x{licence_id:064x}")
    derived = int.from_bytes(keccak(encode(["uint256", "address"], [first["productId"], first["holder"]])), "big")
    r.check("licence id = keccak256(product, holder)", derived == licence_id,
            f"product {first['productId']}, holder {first['holder']}")
    publisher = ledger.gm.products.certificate(first["productId"]).publisher
    lic = ledger.gm.licensing.contract.functions
    facts = []
    for p in purchases:
        a = p.args
        fee_due = lic.feeFor(a["price"]).call(block_identifier=p.block)
        fee_to = lic.feeRecipient().call(block_identifier=p.block)
        moves = [(e.args["from"], e.args["to"], e.args["amount"]) for e in ledger.tx_events(p.tx)
                 if e.contract == "points" and e.name == "Transfer"]
        expected = sorted([(a["holder"], publisher, a["price"] - fee_due), (a["holder"], fee_to, fee_due)])
        r.check(f"purchase at block {p.block}: {a['price']} points, {PlanKind(a['kind']).name.lower()} plan",
                a["fee"] == fee_due and sorted(moves) == expected,
                f"moved {_moves(moves)}; due: {a['price'] - fee_due} to publisher {publisher}, {fee_due} (6%) "
                f"to the operator {fee_to}", p.tx, p.block)
        facts.append({"plan": PlanKind(a["kind"]).name.lower(), "price": a["price"], "fee": a["fee"],
                      "expires_at": a["expiresAt"], "uses_left": a["usesLeft"], "movements": _moves(moves),
                      **ledger.stamp(p)})
    r.facts["purchases"] = facts
    redemptions = ledger.events("licensing", "Redeemed", licenceId=licence_id)
    revocations = ledger.events("licensing", "LicenceRevoked", licenceId=licence_id)
    nonces = [e.args["nonce"] for e in redemptions]
    r.check("every redemption used a fresh voucher nonce", len(nonces) == len(set(nonces)),
            f"{len(redemptions)} redemption(s), nonces {nonces}")
    r.facts["redemptions"] = [{"nonce": e.args["nonce"], "purpose": e.args["purpose"].rstrip(b"\0").decode(errors="replace"),
                               "uses_left": e.args["usesLeft"], **ledger.stamp(e)} for e in redemptions]
    r.facts["revocations"] = [{"reason": e.args["reason"], **ledger.stamp(e)} for e in revocations]
    _terms(ledger, r, licence_id, purchases + redemptions + revocations)
    return r


def _terms(ledger: Ledger, r: Report, licence_id: int, events: list) -> None:
    """Expiry and uses left now must be what the events, replayed in order, leave."""
    expires, uses = 0, 0
    for e in sorted(events, key=lambda e: e.position):
        if e.name == "LicencePurchased":
            expires, uses = e.args["expiresAt"], e.args["usesLeft"]
        elif e.name == "Redeemed":
            uses = e.args["usesLeft"]
        else:
            expires, uses = 0, 0
    now = ledger.gm.licensing.licence(licence_id)
    ok = (now.expires_at, now.uses_left) == (expires, uses)
    r.check("terms: expiry and uses left", ok, f"on chain: expires_at {now.expires_at}, uses_left {now.uses_left}; "
            f"replayed: expires_at {expires}, uses_left {uses}")


def _moves(moves: list[tuple[str, str, int]]) -> str:
    return "; ".join(f"{amount} {src}→{dst}" for src, dst, amount in moves)
