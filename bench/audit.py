"""Consistency-audit time for a seeded marketplace (issue #9).

Seeds a fresh Hardhat node straight through JSON-RPC — locally signed raw transactions
with fixed gas, sent in JSON-RPC batches with automine off and mined in full blocks — then
builds the marketplace database with the real indexer, adds the usage records (time-plan
redemptions, recorded off chain) and anchors them in Merkle batches of 1,000. Finally
times `audit consistency` (replay every event, compare every row, recompute every root).

Target scale: 10,000 certificates, 50,000 licences, 200,000 usage records. BENCH_SCALE
(default 1.0) scales all three. Prints a table and, last, one JSON object.
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
HOME = Path(tempfile.mkdtemp(prefix="gridmart-bench-audit-"))
os.environ.update(GRIDMART_HOME=str(HOME), GRIDMART_DEPLOYMENTS_DIR=str(HOME / "deployments"))

import requests
from eth_account import Account
from sqlalchemy import insert
from sqlmodel import Session

from ledger_node import typed_data
from ledger_node.audit import Ledger
from ledger_node.chain import connect
from ledger_node.content.cid import cid_from_bytes
from ledger_node.contracts import GridMart, Kind, Listing, PlanKind, Role
from ledger_node.deploy import deploy
from ledger_node.devnet import Devnet, free_port
from ledger_node.merkle import MerkleTree, leaf_hash
from marketplace.db import make_engine
from marketplace.models import PendingListing, Redemption, Upload
from marketplace.services.consistency import audit_consistency
from marketplace.services.context import Context
from marketplace.services.indexer import Indexer
from marketplace.services.listings import ListingMetadata
from marketplace.settings import MarketplaceSettings

SCALE = float(os.environ.get("BENCH_SCALE", "1.0"))
CERTS, LICENCES, RECORDS = (max(1, int(n * SCALE)) for n in (10_000, 50_000, 200_000))
PER_SUBSCRIBER = 50  # 50 week plans at 10 points = the 500 admission points
PER_PUBLISHER = 100
BATCH = 1000
RPC_BATCH = 500


class Seeder:
    """Raw transactions, signed here with local nonces, sent in JSON-RPC batches, mined in full blocks."""

    def __init__(self, w3, url: str):
        self.w3, self.url, self.sent = w3, url, 0
        self.http = requests.Session()
        self.chain_id = w3.eth.chain_id
        self.nonces: dict[str, int] = {}
        self.queue: list[str] = []
        self.touched: set[str] = set()

    def add(self, account, fn, gas: int) -> None:
        nonce = self.nonces.get(account.address, 0)
        self.nonces[account.address] = nonce + 1
        self.touched.add(account.address)
        tx = {"to": fn.address, "data": fn._encode_transaction_data(), "gas": gas, "gasPrice": 0, "nonce": nonce,
              "chainId": self.chain_id, "value": 0}
        self.queue.append("0x" + account.sign_transaction(tx).raw_transaction.hex().removeprefix("0x"))

    def rpc(self, method: str, params: list) -> object:
        return self.http.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()

    def flush(self) -> None:
        """Send everything queued, then mine full blocks until every sender's nonce is reached."""
        for i in range(0, len(self.queue), RPC_BATCH):
            body = [{"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [raw]}
                    for j, raw in enumerate(self.queue[i:i + RPC_BATCH])]
            answer = self.http.post(self.url, json=body).json()
            errors = [r.get("error") for r in answer if "result" not in r] if isinstance(answer, list) else [answer]
            if errors:
                raise RuntimeError(f"seeding transaction rejected: {str(errors[0])[:300]}")
        self.sent += len(self.queue)
        self.queue = []
        waiting = sorted(self.touched)
        self.touched = set()
        while waiting:
            # a block over the gas target raises the base fee above 0, and zero-price transactions
            # would be dropped: the consortium devnet keeps it at 0
            self.rpc("hardhat_setNextBlockBaseFeePerGas", ["0x0"])
            self.rpc("evm_mine", [])
            body = [{"jsonrpc": "2.0", "id": j, "method": "eth_getTransactionCount", "params": [a, "latest"]}
                    for j, a in enumerate(waiting)]
            counts = {r["id"]: int(r["result"], 16) for r in self.http.post(self.url, json=body).json()}
            still = [a for j, a in enumerate(waiting) if counts[j] < self.nonces[a]]
            if len(still) == len(waiting) and not self.rpc("eth_getBlockByNumber", ["latest", False])["result"]["transactions"]:
                raise RuntimeError(f"the node dropped transactions of {len(still)} sender(s)")
            waiting = still


def gas_of(fn, sender: str) -> int:
    return int(fn.estimate_gas({"from": sender}) * 1.3) + 20_000


def seed(w3, url: str, gm: GridMart, operator) -> dict:
    s = Seeder(w3, url)
    s.nonces[operator.address] = w3.eth.get_transaction_count(operator.address)
    publishers = [Account.create() for _ in range(max(1, -(-CERTS // PER_PUBLISHER)))]
    subscribers = [Account.create() for _ in range(max(1, -(-LICENCES // PER_SUBSCRIBER)))]
    m, p, lic, ua = gm.members.contract.functions, gm.products.contract.functions, gm.licensing.contract.functions, \
        gm.usage.contract.functions
    timings = {}

    t = time.perf_counter()
    gas = gas_of(m.admit(publishers[0].address, "unit", b"\x11" * 32, 3), operator.address)
    for i, acct in enumerate(publishers + subscribers):
        role = Role.PUBLISHER | Role.SUBSCRIBER if i < len(publishers) else Role.SUBSCRIBER
        s.add(operator, m.admit(acct.address, f"unit {i}", hashlib.sha256(acct.address.encode()).digest(), int(role)), gas)
    s.flush()
    timings["members"] = time.perf_counter() - t

    t = time.perf_counter()
    deadline = w3.eth.get_block("latest")["timestamp"] + 86_400
    listings, offchain = [], []
    for i in range(CERTS):
        pub = publishers[i // PER_PUBLISHER]
        payload = i.to_bytes(8, "big")
        metadata = ListingMetadata(title=f"product {i}", kind="data", tags=["bench"])
        listing = Listing(Kind.DATA, b"\x01\x55\x12\x20" + hashlib.sha256(payload).digest(), hashlib.sha256(payload).digest(),
                          metadata.digest(), 0, i % PER_PUBLISHER, deadline)
        sig = typed_data.sign(pub.key, "Listing", listing.message(), s.chain_id, gm.products.address)
        listings.append((listing, pub, sig))
        cid = str(cid_from_bytes(listing.cid))  # what the service writes before it submits a listing
        offchain.append((Upload(cid=cid, sha256=listing.sha256.hex(), size=len(payload), uploader=pub.address),
                         PendingListing(publisher=pub.address, nonce=listing.nonce, cid=cid,
                                        metadata_json=json.dumps(metadata.document()),
                                        metadata_hash=metadata.digest().hex())))
    gas = gas_of(p.register(listings[0][0].as_tuple(), listings[0][1].address, listings[0][2]), operator.address)
    for listing, pub, sig in listings:
        s.add(operator, p.register(listing.as_tuple(), pub.address, sig), gas)
    s.flush()
    gas = gas_of(p.approve(1), operator.address)
    for cert in range(1, CERTS + 1):
        s.add(operator, p.approve(cert), gas)
    s.flush()
    gas = gas_of(lic.setPlan(1, int(PlanKind.WEEK), 10, 0), publishers[0].address)
    for cert in range(1, CERTS + 1):
        s.add(publishers[(cert - 1) // PER_PUBLISHER], lic.setPlan(cert, int(PlanKind.WEEK), 10, 0), gas)
    s.flush()
    timings["certificates"] = time.perf_counter() - t

    t = time.perf_counter()
    gas = gas_of(lic.purchase(1, int(PlanKind.WEEK)), subscribers[0].address)
    bought = []
    for n in range(LICENCES):
        sub = subscribers[n // PER_SUBSCRIBER]
        product = (n // PER_SUBSCRIBER * 7 + n % PER_SUBSCRIBER) % CERTS + 1 if CERTS >= PER_SUBSCRIBER else 1
        s.add(sub, lic.purchase(product, int(PlanKind.WEEK)), gas)
        bought.append((sub.address, product))
    s.flush()
    timings["licences"] = time.perf_counter() - t
    return {"seeder": s, "bought": bought, "timings": timings, "anchor_fn": ua, "offchain": offchain}


def usage_records(ctx: Context, s: Seeder, operator, bought: list, anchor) -> float:
    """Time-plan redemptions are recorded off chain; anchor them in batches of 1,000."""
    t = time.perf_counter()
    now = int(time.time())
    rows, batches = [], []
    for start in range(0, RECORDS, BATCH):
        recs = []
        for n in range(start, min(RECORDS, start + BATCH)):
            holder, product = bought[n % len(bought)]
            record = {"kind": "redeem", "licence": "0x" + "00" * 32, "holder": holder, "product": product,
                      "nonce": n, "purpose": "download", "at": now}
            recs.append(json.dumps(record, sort_keys=True, separators=(",", ":")))
        root = MerkleTree.from_leaves([leaf_hash(r.encode()) for r in recs]).root
        batch_id = len(batches) + 1
        batches.append(batch_id)
        rows += [{"licence_id": "0x" + "00" * 32, "holder": json.loads(r)["holder"], "nonce": json.loads(r)["nonce"],
                  "purpose": "download", "at": now, "record_json": r, "batch_root": root.hex(), "batch_id": batch_id,
                  "leaf_index": i} for i, r in enumerate(recs)]
        s.add(operator, anchor(root, len(recs), now, now), 120_000)
    with ctx.engine.begin() as conn:
        conn.execute(insert(Redemption), rows)
    s.flush()
    return time.perf_counter() - t


def main() -> None:
    port = free_port()
    net = Devnet(port=port, workdir=HOME / "devnet").start()
    try:
        w3 = connect(net.url, timeout=300)
        operator = Account.create()
        book, _ = deploy(w3, operator)
        gm = GridMart(w3, book, operator)
        s_rpc = requests.Session()
        s_rpc.post(net.url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_setAutomine", "params": [False]})
        t0 = time.perf_counter()
        seeded = seed(w3, net.url, gm, operator)
        settings = MarketplaceSettings(database_url=f"sqlite:///{HOME / 'market.db'}")
        ctx = Context(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                      chain=gm, store=None, secret=b"bench")
        with Session(ctx.engine) as session:  # uploads and listing metadata, as publishing leaves them
            session.add_all([row for pair in seeded["offchain"] for row in pair])
            session.commit()
        usage_s = usage_records(ctx, seeded["seeder"], operator, seeded["bought"], seeded["anchor_fn"].anchor)
        seed_s = time.perf_counter() - t0
        t = time.perf_counter()
        Indexer(ctx).sync()
        index_s = time.perf_counter() - t
        t = time.perf_counter()
        report = audit_consistency(Ledger(w3, book), ctx.engine)
        audit_s = time.perf_counter() - t
        records = _count(ctx)
        tampered = tamper_and_audit(ctx, Ledger(w3, book))
    finally:
        net.stop()
    facts = report.facts["replayed"]
    out = {"scale": SCALE, "certificates": facts.get("certificate", 0), "licences": facts.get("licence", 0),
           "usage_records": records, "usage_batches": facts.get("usage_batch", 0), "events": facts["events"],
           "transactions": seeded["seeder"].sent, "seed_seconds": round(seed_s, 1),
           "seed_tx_per_second": round(seeded["seeder"].sent / seed_s, 1),
           "seed_phase_seconds": {k: round(v, 1) for k, v in {**seeded["timings"], "usage": usage_s}.items()},
           "index_seconds": round(index_s, 1), "audit_seconds": round(audit_s, 2), "audit_passed": report.passed,
           "divergences": len(report.failed()), "after_tampering": tampered}
    rows = [("certificates", out["certificates"]), ("licences", out["licences"]), ("usage records", out["usage_records"]),
            ("usage batches", out["usage_batches"]), ("chain events replayed", out["events"]),
            ("seeding transactions", out["transactions"]), ("seeding time (s)", out["seed_seconds"]),
            ("seeding throughput (tx/s)", out["seed_tx_per_second"]), ("indexer build (s)", out["index_seconds"]),
            ("consistency audit (s)", out["audit_seconds"]), ("audit passed", out["audit_passed"]),
            ("tampered: divergences named", len(tampered["named"]))]
    print(f"{'audit consistency benchmark (scale ' + str(SCALE) + ')':<40}")
    for name, value in rows:
        print(f"  {name:<30} {value:>12}")
    for c in report.failed()[:5]:
        print(f"  divergence: {c.name}: {c.detail[:200]}")
    print(json.dumps(out))


def tamper_and_audit(ctx: Context, ledger: Ledger) -> dict:
    """Delete one usage record and edit one price, then audit again: both must be named."""
    from sqlalchemy import text
    with ctx.engine.begin() as conn:
        conn.execute(text("DELETE FROM redemption WHERE id = (SELECT max(id) FROM redemption)"))
        conn.execute(text("UPDATE plan SET price = price + 1 WHERE product_id = 1"))
    t = time.perf_counter()
    report = audit_consistency(ledger, ctx.engine)
    return {"audit_seconds": round(time.perf_counter() - t, 2), "named": [c.name for c in report.failed()]}


def _count(ctx: Context) -> int:
    from sqlmodel import func, select
    with Session(ctx.engine) as session:
        return session.exec(select(func.count()).select_from(Redemption)).one()


if __name__ == "__main__":
    main()
