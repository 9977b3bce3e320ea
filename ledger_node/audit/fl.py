"""Audit a federated-learning task: its certificate (initial model and HE context), rounds,
aggregated-model CIDs, contribution shares, rewards paid."""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from eth_utils import keccak

from ..content import ContentStore, cid_from_bytes
from .ledger import Ledger, NotOnChain
from .result import Report

TOTAL_BPS = 10_000


def audit_fl(ledger: Ledger, task_id: int, store: ContentStore | None = None) -> Report:
    """With a content store, also fetch the task certificate and the artifacts it names."""
    opened = ledger.events("federated", "TaskOpened", taskId=task_id)
    if not opened:
        raise NotOnChain(f"no federated task {task_id} on chain: check the task id")
    o = opened[0]
    funded = ledger.events("federated", "TaskFunded", taskId=task_id)
    pool = o.args["rewardPool"] + sum(e.args["amount"] for e in funded)
    r = Report(f"federated task {task_id} (product {o.args['productId'] or 'named at finalisation'})")
    r.check("task opened", True, f"by {o.args['owner']}, reward pool {o.args['rewardPool']} points "
            f"+ {len(funded)} fundings = {pool}", o.tx, o.block)
    _certificate(r, o, store)
    joined = [e.args["partner"] for e in ledger.events("federated", "PartnerJoined", taskId=task_id)]
    rounds = ledger.events("federated", "RoundRecorded", taskId=task_id)
    totals: dict[str, int] = defaultdict(int)
    facts = []
    for i, e in enumerate(rounds, start=1):
        a = e.args
        shares = sum(a["sharesBps"])
        for partner, bps in zip(a["partners"], a["sharesBps"]):
            totals[partner] += bps
        model_ok = ledger.gm.federated.round_model(task_id, a["round"]) == keccak(a["modelCid"])
        ok = a["round"] == i and shares == TOTAL_BPS and model_ok and set(a["partners"]) <= set(joined)
        cid = cid_from_bytes(a["modelCid"])
        r.check(f"round {a['round']}", ok, f"model {cid}; shares sum {shares} of {TOTAL_BPS}; "
                f"partners joined: {set(a['partners']) <= set(joined)}; stored model hash matches: {model_ok}", e.tx, e.block)
        facts.append({"round": a["round"], "model_cid": cid, "partners": [
            {"partner": p, "samples": n, "share_bps": b} for p, n, b in zip(a["partners"], a["sampleCounts"], a["sharesBps"])],
            **ledger.stamp(e)})
    r.facts["rounds"] = facts
    onchain = ledger.gm.federated.contributions(task_id)
    r.check("contribution shares replayed = contract totals", {p: b for p, b in onchain.items() if b} == dict(totals),
            f"{dict(totals)}")
    finals = ledger.events("federated", "TaskFinalized", taskId=task_id)
    if finals:
        _rewards(ledger, r, task_id, finals[0], pool, dict(totals), o.args["owner"])
    r.facts["status"] = "finalized" if finals else "open"
    return r


def _certificate(r: Report, opened, store: ContentStore | None) -> None:
    """The spec hash is the sha-256 of the task certificate emitted by CID; it names the initial
    model and the public HE context by CID and sha-256 (fl_coordinator.certificate)."""
    spec_hash, raw_cid = opened.args["specHash"], opened.args["specCid"]
    cid = cid_from_bytes(raw_cid) if raw_cid else None
    r.facts["certificate"] = {"cid": cid, "sha256": spec_hash.hex()}
    if store is None:
        return
    if cid is None:
        r.check("task certificate", False, "the task was opened without a certificate CID", opened.tx, opened.block)
        return
    try:
        doc = store.get_bytes(cid)
        digest = hashlib.sha256(doc).digest()
        artifacts = json.loads(doc)["artifacts"] if digest == spec_hash else {}
        if not isinstance(artifacts, dict):
            raise ValueError("its 'artifacts' is not an object")
    except Exception as exc:  # noqa: BLE001 - an unreadable certificate is a failed check
        r.check("task certificate", False, f"certificate {cid}: {exc}", opened.tx, opened.block)
        return
    r.check("task certificate", digest == spec_hash,
            f"sha-256 of {cid} is {digest.hex()}; on chain {spec_hash.hex()}", opened.tx, opened.block)
    for name, a in sorted(artifacts.items()):
        try:
            cid_a, want = a["cid"], a["sha256"]
            got = hashlib.sha256(store.get_bytes(cid_a)).hexdigest()
        except Exception as exc:  # noqa: BLE001 - a missing or malformed artifact is a failed check
            r.check(f"certified {name}", False, f"{a!r}: {type(exc).__name__}: {exc}")
            continue
        r.check(f"certified {name}", got == want, f"{cid_a}: sha-256 {got}, certified {want}")
    r.facts["certificate"]["artifacts"] = artifacts


def _rewards(ledger: Ledger, r: Report, task_id: int, final, pool: int, totals: dict[str, int], owner: str) -> None:
    """Each partner gets floor(pool * its bps / all bps), as a real point transfer; the rest returns to the owner."""
    all_bps = sum(totals.values())
    paid = {e.args["partner"]: e.args["amount"] for e in ledger.events("federated", "RewardPaid", taskId=task_id)}
    due = {p: pool * b // all_bps for p, b in totals.items() if pool * b // all_bps}
    moves = [(e.args["from"], e.args["to"], e.args["amount"]) for e in ledger.tx_events(final.tx)
             if e.contract == "points" and e.name == "Transfer"]
    contract = ledger.gm.federated.address
    transfers = {to: amount for src, to, amount in moves if src == contract and to in due}
    refund = sum(amount for src, to, amount in moves if src == contract and to == owner and to not in due)
    ok = paid == due and transfers == due and sum(due.values()) + refund == pool
    r.check("rewards paid pro rata", ok, f"due {due}; paid {paid}; refund to owner {refund}; pool {pool}",
            final.tx, final.block)
    cert = final.args["certificateId"]
    r.facts["final_certificate"] = cert
    bound = ledger.gm.federated.task(task_id)["product_id"]
    version = ledger.gm.products.certificate(cert)
    r.check("final model certified as a version of the task's tool product",
            version.product_id == bound and version.publisher == owner,
            f"certificate {cert}: product {version.product_id} (task's {bound}), publisher {version.publisher}",
            final.tx, final.block)
