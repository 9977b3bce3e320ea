"""Audit a usage record: its Merkle inclusion proof against the root anchored on chain.

The input is the proof bundle the marketplace hands out (GET /usage/{id}/proof):
``{"record": "<canonical JSON>", "batch_id": n, "proof": ["<hex>", ...]}``.
"""
from __future__ import annotations

import json
from typing import Any

from .. import typed_data
from ..contracts import Voucher
from ..errors import ContractRevert
from ..merkle import leaf_hash, verify
from .ledger import Ledger, NotOnChain
from .result import Report


def audit_usage(ledger: Ledger, bundle: dict[str, Any]) -> Report:
    try:
        record_bytes = bundle["record"].encode()
        batch_id = int(bundle["batch_id"])
        proof = [bytes.fromhex(p.removeprefix("0x")) for p in bundle["proof"]]
        record = json.loads(record_bytes)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a usage proof bundle ({exc}): pass the JSON of GET /usage/<id>/proof") from None
    anchored = ledger.events("usage", "BatchAnchored", batchId=batch_id)
    if not anchored:
        raise NotOnChain(f"usage batch {batch_id} was never anchored: check the bundle's batch_id")
    a = anchored[0]
    root = a.args["root"]
    leaf = leaf_hash(record_bytes)
    r = Report(f"usage record in batch {batch_id}")
    r.check("batch anchored", True, f"root {root.hex()}, {a.args['count']} record(s), "
            f"times {a.args['fromTime']}–{a.args['toTime']}", a.tx, a.block)
    r.check("Merkle proof reaches the anchored root", verify(proof, root, leaf),
            f"leaf {leaf.hex()} with {len(proof)} sibling(s)", a.tx)
    r.check("contract's own verify() agrees", ledger.gm.usage.verify(batch_id, leaf, proof), "UsageAnchor.verify", a.tx)
    at = record.get("at")
    r.check("record time inside the batch window", isinstance(at, int) and a.args["fromTime"] <= at <= a.args["toTime"],
            f"record at {at}")
    if "signature" in record:
        _holder_signed(ledger, r, record)
    elif record.get("kind") == "redeem":  # a record the holder never signed proves nothing of the holder
        r.check("the holder signed this redemption", False,
                "the record carries no voucher signature (made before records carried one, or invented)")
    if record.get("tx"):
        _redemption(ledger, r, record)
    r.facts["record"] = record
    return r


def _holder_signed(ledger: Ledger, r: Report, record: dict[str, Any]) -> None:
    """The record carries the holder's EIP-712 voucher: it proves the holder authorised this
    redemption, not only that the operator anchored a record of it."""
    try:
        v = record["voucher"]
        voucher = Voucher(int(v["licenceId"], 16), int(v["nonce"]), int(v["deadline"]),
                          bytes.fromhex(v["purpose"].removeprefix("0x")))
        signer = typed_data.recover("Redeem", voucher.message(), bytes.fromhex(record["signature"].removeprefix("0x")),
                                    ledger.gm.w3.eth.chain_id, ledger.gm.licensing.address)
    except (KeyError, TypeError, ValueError) as exc:
        r.check("the holder signed this redemption", False, f"the record's voucher or signature is malformed ({exc})")
        return
    same = (f"0x{voucher.licence_id:064x}" == record.get("licence") and voucher.nonce == record.get("nonce"))
    r.check("the holder signed this redemption", signer == record.get("holder") and same,
            f"voucher signed by {signer}; record names holder {record.get('holder')}")
    try:
        holder = ledger.gm.licensing.licence(voucher.licence_id).holder
    except ContractRevert:
        holder = None
    r.check("the licence is the signer's", holder == signer, f"licence {record.get('licence')} held by {holder}")


def _redemption(ledger: Ledger, r: Report, record: dict[str, Any]) -> None:
    """A record naming an on-chain redemption must match that transaction's Redeemed event."""
    found = [e for e in ledger.tx_events(record["tx"]) if e.name == "Redeemed"]
    ok = any(f"0x{e.args['licenceId']:064x}" == record.get("licence") and e.args["holder"] == record.get("holder")
             and e.args["nonce"] == record.get("nonce") for e in found)
    r.check("record matches its redemption transaction", ok,
            f"licence {record.get('licence')}, holder {record.get('holder')}, nonce {record.get('nonce')}",
            record["tx"])
