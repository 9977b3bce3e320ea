"""Chain events → SQL tables. Resumable, idempotent, and re-org tolerant.

The index remembers the hash of every block it processed (the last 256). Before each
pass it checks that its newest block is still on the chain; if not (a re-org), it
forgets everything derived from the chain and replays from the deployment block —
off-chain data (uploads, listing metadata, redemptions) is never touched. Rows keyed
by (transaction, log index) make replays idempotent.
"""
from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, delete, select
from web3 import Web3

from ledger_node.content.cid import cid_from_bytes
from ledger_node.contracts import Kind, PlanKind, Status, Voucher

from ..models import (Certificate, FlRound, IndexedBlock, Licence, Member, PendingListing, Plan, PointMovement,
                      Product, Purchase, Redemption, UsageBatch)
from .chain_facts import FactCache, licence_key, member_key
from .context import Context
from .recorder import MAX_NONCE
from .redemption import settle, usage_record

logger = logging.getLogger("gridmart.indexer")

CHAIN_DERIVED = (Member, Product, Certificate, Plan, Licence, Purchase, PointMovement, FlRound, UsageBatch, IndexedBlock)
KEEP_BLOCKS = 256
MAX_RANGE = 2000
_GENERATIONS = itertools.count(1)


def hexid(value: int) -> str:
    return "0x%064x" % value


class Indexer:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.w3: Web3 = ctx.chain.w3
        self._lock = threading.Lock()
        #: what the last pass saw: the chain head, its timestamp, and when (monotonic clock)
        self.head_block = -1
        self.head_time = 0
        self.observed_at = float("-inf")
        #: renewed after every commit that may change chain-derived rows, before head_block and
        #: observed_at move on: a row read from the index after reading the generation is at
        #: least as new as that generation, so caches keyed by it (services.redemption) stay
        #: correct. Drawn from one process-wide counter: never reused, even by a new Indexer.
        self.generation = next(_GENERATIONS)
        #: (number, hash) of the newest block this indexer committed (None: unknown, ask the database)
        self._newest: tuple[int, str] | None = None
        #: chain facts the redemption path decides on (licences, members) and what each product
        #: delivers; evicted here when an indexed event may change them (services.chain_facts)
        self.facts = FactCache()
        self.products = FactCache(10_000)
        self._touched: set[Any] = set()
        self._products_touched = False
        self._by_topic: dict[bytes, Any] = {}
        for client in (ctx.chain.points, ctx.chain.members, ctx.chain.products, ctx.chain.licensing,
                       ctx.chain.federated, ctx.chain.usage):
            for item in client.contract.abi:
                if item["type"] == "event":
                    event = getattr(client.contract.events, item["name"])()
                    self._by_topic[bytes.fromhex(event.topic.removeprefix("0x"))] = event
        self.addresses = [c.address for c in (ctx.chain.points, ctx.chain.members, ctx.chain.products,
                                              ctx.chain.licensing, ctx.chain.federated, ctx.chain.usage)]

    # ------------------------------------------------------------------ driving

    def head(self, session: Session) -> int:
        row = session.exec(select(IndexedBlock).order_by(IndexedBlock.number.desc()).limit(1)).first()
        return row.number if row else self.ctx.chain.book.deployed_at_block - 1

    def sync(self) -> int:
        """Index every new block; returns the block the index is complete up to."""
        with self._lock:
            # the idle pass (runs every 0.1 s): one light RPC, no database. If the newest block
            # this indexer committed is still the chain head, nothing is new and nothing re-organised
            observed = time.monotonic()
            head = self._light_head()
            if head is not None and self._newest is not None and head[:2] == self._newest:
                self.head_block, self.head_time, self.observed_at = head[0], head[2], observed
                return head[0]
            return self._sync()

    def _light_head(self) -> tuple[int, str, int] | None:
        """(number, hash, timestamp) of the chain head, without web3's formatters (~0.5 ms less)."""
        try:
            block = self.w3.provider.make_request("eth_getBlockByNumber", ["latest", False]).get("result")
            return int(block["number"], 16), block["hash"].lower(), int(block["timestamp"], 16)
        except Exception:  # noqa: BLE001 - the full pass reports what is wrong
            return None

    def _sync(self) -> int:
        with Session(self.ctx.engine) as session:
            if self._reorged(session):
                self._reset(session)
                self._newest = None
                self.facts.clear()
                self.products.clear()
                self.generation = next(_GENERATIONS)
            start = self.head(session) + 1
            observed = time.monotonic()
            latest = self.w3.eth.get_block("latest")
            tip = latest["number"]
            if start > tip:  # nothing new: remember the newest indexed block if it is the head
                row = session.exec(select(IndexedBlock).order_by(IndexedBlock.number.desc()).limit(1)).first()
                if row is not None and row.number == tip and row.hash.lower() == latest["hash"].to_0x_hex().lower():
                    self._newest = (row.number, row.hash.lower())
            while start <= tip:
                end = min(tip, start + MAX_RANGE - 1)
                logs = self.w3.eth.get_logs({"address": self.addresses, "fromBlock": start, "toBlock": end})
                # decode and ask the node first, write after: SQLite has one writer at a time, and
                # the redemptions' group commits wait while this pass holds the write lock
                events = [e for e in (self._decode(log) for log in logs) if e is not None]
                block = self.w3.eth.get_block(end)
                times: dict[int, int] = {}
                for handler, args, log in events:
                    handler(session, args, log, times)
                session.merge(IndexedBlock(number=end, hash=block["hash"].to_0x_hex()))
                session.exec(delete(IndexedBlock).where(IndexedBlock.number < end - KEEP_BLOCKS))
                session.commit()
                self._newest = (end, block["hash"].to_0x_hex().lower())
                self.generation = next(_GENERATIONS)
                # after the generation (a fact fetched from now on sees views of it) and before
                # the newer view is announced (head_block, observed_at)
                self._evict()
                start = end + 1
            self.head_block, self.head_time, self.observed_at = tip, latest["timestamp"], observed
            return tip

    def _evict(self) -> None:
        if self._touched:
            self.facts.evict(self._touched)
            self._touched = set()
        if self._products_touched:
            self.products.clear()
            self._products_touched = False

    def fresh_view(self, max_lag: float) -> int | None:
        """Estimated chain time if the index was complete up to the head seen at most
        `max_lag` seconds ago; None when the index cannot be trusted for a check."""
        age = time.monotonic() - self.observed_at
        return int(self.head_time + age) if age <= max_lag else None

    def _reorged(self, session: Session) -> bool:
        row = session.exec(select(IndexedBlock).order_by(IndexedBlock.number.desc()).limit(1)).first()
        if row is None:
            return False
        try:
            block = self.w3.eth.get_block(row.number)
        except Exception:  # noqa: BLE001 - block no longer exists
            return True
        return block["hash"].to_0x_hex() != row.hash

    def _reset(self, session: Session) -> None:
        for table in CHAIN_DERIVED:
            session.exec(delete(table))
        session.commit()

    # ------------------------------------------------------------------ events

    def _decode(self, log: Any) -> tuple[Any, dict, Any] | None:
        """(handler, event arguments, log), or None for an event the index does not keep."""
        event = self._by_topic.get(bytes(log["topics"][0]))
        if event is None:
            return None
        decoded = event.process_log(log)
        handler = getattr(self, f"_on_{decoded['event']}", None)
        return (handler, dict(decoded["args"]), log) if handler is not None else None

    def _time(self, number: int, times: dict[int, int]) -> int:
        if number not in times:
            times[number] = self.w3.eth.get_block(number)["timestamp"]
        return times[number]

    def _on_MemberAdmitted(self, s: Session, a: dict, log: Any, _t: dict) -> None:
        self._touched.add(member_key(a["wallet"]))
        s.merge(Member(address=a["wallet"], name=a["name"], identity_hash=a["identityHash"].hex(), roles=a["roles"],
                       status="active", admitted_block=log["blockNumber"]))

    def _on_RolesChanged(self, s: Session, a: dict, _l: Any, _t: dict) -> None:
        self._touched.add(member_key(a["wallet"]))
        m = s.get(Member, a["wallet"])
        if m:
            m.roles = a["roles"]
            s.add(m)

    def _on_MemberSuspended(self, s: Session, a: dict, _l: Any, _t: dict) -> None:
        self._member_status(s, a["wallet"], "suspended")

    def _on_MemberReinstated(self, s: Session, a: dict, _l: Any, _t: dict) -> None:
        self._member_status(s, a["wallet"], "active")

    def _member_status(self, s: Session, wallet: str, status: str) -> None:
        self._touched.add(member_key(wallet))
        m = s.get(Member, wallet)
        if m:
            m.status = status
            s.add(m)

    def _on_Transfer(self, s: Session, a: dict, log: Any, _t: dict) -> None:
        s.merge(PointMovement(tx_hash=log["transactionHash"].to_0x_hex(), log_index=log["logIndex"], sender=a["from"],
                              recipient=a["to"], amount=a["amount"], block_number=log["blockNumber"]))

    def _on_CertificateRegistered(self, s: Session, a: dict, log: Any, times: dict) -> None:
        self._products_touched = True
        listing = a["listing"]
        publisher = a["publisher"]
        pending = s.exec(select(PendingListing).where(PendingListing.publisher == publisher,
                                                      PendingListing.nonce == listing["nonce"])).first()
        metadata = json.loads(pending.metadata_json) if pending else {}
        kind = Kind(listing["kind"]).name.lower()
        cert = Certificate(
            id=a["id"], product_id=a["productId"], version=a["version"], previous=listing["previous"],
            publisher=publisher, kind=kind, cid=str(cid_from_bytes(listing["cid"])), sha256=listing["sha256"].hex(),
            metadata_hash=listing["metadataHash"].hex(), metadata_json=pending.metadata_json if pending else "{}",
            status="pending", signature=a["signature"].hex(), nonce=listing["nonce"], block_number=log["blockNumber"],
            block_time=self._time(log["blockNumber"], times), tx_hash=log["transactionHash"].to_0x_hex())
        s.merge(cert)
        product = s.get(Product, a["productId"]) or Product(id=a["productId"], publisher=publisher, kind=kind)
        if metadata:
            product.title = metadata.get("title", product.title)
            product.description = metadata.get("description", product.description)
            product.tags = ",".join(t.lower() for t in metadata.get("tags", []))
            product.sharing_mode = metadata.get("sharing_mode", product.sharing_mode)
            product.licence_terms = metadata.get("licence_terms", product.licence_terms)
        product.latest_certificate = a["id"]
        product.status = "pending"
        s.add(product)

    def _on_StatusChanged(self, s: Session, a: dict, _l: Any, _t: dict) -> None:
        self._products_touched = True
        cert = s.get(Certificate, a["id"])
        if cert is None:
            return
        cert.status = Status(a["status"]).name.lower().replace("_", "-")
        s.add(cert)
        product = s.get(Product, cert.product_id)
        if product and product.latest_certificate == cert.id:
            product.status = cert.status
            s.add(product)

    def _on_PlanSet(self, s: Session, a: dict, _l: Any, _t: dict) -> None:
        kind = PlanKind(a["kind"]).name.lower().replace("_", "-")
        existing = s.get(Plan, (a["productId"], kind))
        if a["price"] == 0:
            if existing:
                s.delete(existing)
            return
        s.merge(Plan(product_id=a["productId"], kind=kind, price=a["price"], uses=a["uses"]))

    def _on_LicencePurchased(self, s: Session, a: dict, log: Any, _t: dict) -> None:
        self._touched.add(licence_key(a["licenceId"]))
        lid = hexid(a["licenceId"])
        s.merge(Purchase(tx_hash=log["transactionHash"].to_0x_hex(), log_index=log["logIndex"], licence_id=lid,
                         product_id=a["productId"], holder=a["holder"],
                         plan=PlanKind(a["kind"]).name.lower().replace("_", "-"), price=a["price"], fee=a["fee"],
                         block_number=log["blockNumber"]))
        s.merge(Licence(id=lid, product_id=a["productId"], holder=a["holder"], expires_at=a["expiresAt"],
                        uses_left=a["usesLeft"], revoked=False))

    def _on_Redeemed(self, s: Session, a: dict, log: Any, times: dict) -> None:
        lic = s.get(Licence, hexid(a["licenceId"]))
        if lic:
            lic.uses_left = a["usesLeft"]
            s.add(lic)
        self._spent_on_chain(s, a, log, times)

    def _spent_on_chain(self, s: Session, a: dict, log: Any, times: dict) -> None:
        """Copy an on-chain redemption into the table of spent vouchers: settle the service's
        reservation, or (the service died between the chain and the database) write the usage
        record from the transaction itself, signature included."""
        holder, nonce, tx = a["holder"], a["nonce"], log["transactionHash"].to_0x_hex()
        if nonce > MAX_NONCE:  # the service never relays such a voucher
            logger.warning("Redeemed nonce %d of %s in %s does not fit the usage table", nonce, holder, tx)
            return
        if settle(s, holder, nonce, tx):
            return
        if s.exec(select(Redemption.id).where(Redemption.holder == holder, Redemption.nonce == nonce)).first():
            return
        call = self.ctx.chain.licensing.contract.decode_function_input(self.w3.eth.get_transaction(tx)["input"])[1]
        v = call["voucher"]
        voucher = Voucher(*(v.values() if isinstance(v, dict) else v))
        lic = s.get(Licence, hexid(a["licenceId"]))
        product = lic.product_id if lic else self.ctx.chain.licensing.licence(a["licenceId"]).product_id
        record = usage_record(voucher, bytes(call["signature"]), holder, product,
                              self._time(log["blockNumber"], times), tx)
        row = dict(licence_id=record["licence"], holder=holder, nonce=nonce, purpose=record["purpose"],
                   on_chain_tx=tx, at=record["at"], record_json=json.dumps(record, sort_keys=True, separators=(",", ":")))
        s.exec(text(f"INSERT INTO {Redemption.__tablename__} ({', '.join(row)}, pending) "
                    f"VALUES ({', '.join(':' + k for k in row)}, FALSE) ON CONFLICT (holder, nonce) DO NOTHING")
               .bindparams(**row))

    def _on_LicenceRevoked(self, s: Session, a: dict, _l: Any, _t: dict) -> None:
        self._touched.add(licence_key(a["licenceId"]))
        lic = s.get(Licence, hexid(a["licenceId"]))
        if lic:
            lic.expires_at, lic.uses_left, lic.revoked = 0, 0, True
            s.add(lic)

    def _on_RoundRecorded(self, s: Session, a: dict, log: Any, _t: dict) -> None:
        partners = [{"partner": p, "samples": n, "share_bps": b}
                    for p, n, b in zip(a["partners"], a["sampleCounts"], a["sharesBps"])]
        s.merge(FlRound(task_id=a["taskId"], round=a["round"], model_cid=str(cid_from_bytes(a["modelCid"])),
                        partners_json=json.dumps(partners), block_number=log["blockNumber"]))

    def _on_BatchAnchored(self, s: Session, a: dict, log: Any, _t: dict) -> None:
        s.merge(UsageBatch(id=a["batchId"], root=a["root"].hex(), count=a["count"], from_time=a["fromTime"],
                           to_time=a["toTime"], tx_hash=log["transactionHash"].to_0x_hex()))
