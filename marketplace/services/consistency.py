"""`audit consistency`: replay every chain event and compare with the marketplace database.

The database is an index of the chain; this finds every way it drifted: a row the chain
does not back, a chain record the database lacks, a changed field, and usage batches whose
records no longer hash to the anchored root (a deleted or edited usage record).
Events are replayed up to the block the index says it is complete to, so a lagging index
is not reported as drift.

Every column a user sees is covered: the product fields shown in the catalogue (title,
description, tags, sharing mode, licence terms) must be those of listing metadata that
hashes to the certified metadata hash; each certificate's upload row must name its CID and
sha-256. Given the content store, the stored bytes of every certified CID are read back
(streamed, every block hash-checked) and plain bytes re-hashed against the certified
sha-256, with size and encryption checked against the upload row.
"""
from __future__ import annotations

import hashlib
import json
import math
import struct
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from ledger_node.audit import Event, Ledger, Report
from ledger_node.content import ContentStore
from ledger_node.content.cid import cid_from_bytes, parse
from ledger_node.content.encryption import HEADER_LEN, MAGIC, TAG_LEN
from ledger_node.contracts import Kind, PlanKind, Status
from ledger_node.merkle import MerkleTree, leaf_hash

from ..models import (
    Certificate,
    FlRound,
    IndexedBlock,
    Licence,
    Member,
    Plan,
    PointMovement,
    Product,
    Purchase,
    Redemption,
    Upload,
    UsageBatch,
)
from .catalogue import SHOWN, metadata_digest, shown_fields
from .indexer import hexid

Rows = dict[Any, dict[str, Any]]


def _label(value: int) -> str:
    return value.name.lower().replace("_", "-")


class Replay:
    """The tables as the chain says they should be (the fields the chain is the truth for)."""

    def __init__(self) -> None:
        self.tables: dict[str, Rows] = defaultdict(dict)
        self.redeemed_txs: set[str] = set()

    def apply(self, e: Event) -> None:
        handler = getattr(self, f"_{e.name}", None)
        if handler is not None:
            handler(e, e.args)

    def _MemberAdmitted(self, e: Event, a: dict) -> None:
        self.tables["member"][a["wallet"]] = {"name": a["name"], "identity_hash": a["identityHash"].hex(),
                                              "roles": a["roles"], "status": "active", "admitted_block": e.block}

    def _RolesChanged(self, e: Event, a: dict) -> None:
        self.tables["member"][a["wallet"]]["roles"] = a["roles"]

    def _MemberSuspended(self, e: Event, a: dict) -> None:
        self.tables["member"][a["wallet"]]["status"] = "suspended"

    def _MemberReinstated(self, e: Event, a: dict) -> None:
        self.tables["member"][a["wallet"]]["status"] = "active"

    def _Transfer(self, e: Event, a: dict) -> None:
        self.tables["point_movement"][(e.tx, e.log_index)] = {"sender": a["from"], "recipient": a["to"],
                                                                "amount": a["amount"], "block_number": e.block}

    def _CertificateRegistered(self, e: Event, a: dict) -> None:
        lst = a["listing"]
        kind = Kind(lst["kind"]).name.lower()
        self.tables["certificate"][a["id"]] = {
            "product_id": a["productId"], "version": a["version"], "previous": lst["previous"],
            "publisher": a["publisher"], "kind": kind, "cid": str(cid_from_bytes(lst["cid"])),
            "sha256": lst["sha256"].hex(), "metadata_hash": lst["metadataHash"].hex(), "status": "pending",
            "signature": a["signature"].hex(), "nonce": lst["nonce"], "block_number": e.block, "tx_hash": e.tx}
        product = self.tables["product"].setdefault(a["productId"], {"publisher": a["publisher"], "kind": kind})
        product.update(latest_certificate=a["id"], status="pending")

    def _StatusChanged(self, e: Event, a: dict) -> None:
        cert = self.tables["certificate"][a["id"]]
        cert["status"] = _label(Status(a["status"]))
        product = self.tables["product"][cert["product_id"]]
        if product["latest_certificate"] == a["id"]:
            product["status"] = cert["status"]

    def _PlanSet(self, e: Event, a: dict) -> None:
        key = (a["productId"], _label(PlanKind(a["kind"])))
        if a["price"] == 0:
            self.tables["plan"].pop(key, None)
        else:
            self.tables["plan"][key] = {"price": a["price"], "uses": a["uses"]}

    def _LicencePurchased(self, e: Event, a: dict) -> None:
        lid = hexid(a["licenceId"])
        self.tables["purchase"][(e.tx, e.log_index)] = {
            "licence_id": lid, "product_id": a["productId"], "holder": a["holder"],
            "plan": _label(PlanKind(a["kind"])), "price": a["price"], "fee": a["fee"], "block_number": e.block}
        self.tables["licence"][lid] = {"product_id": a["productId"], "holder": a["holder"],
                                       "expires_at": a["expiresAt"], "uses_left": a["usesLeft"], "revoked": False}

    def _Redeemed(self, e: Event, a: dict) -> None:
        self.tables["licence"][hexid(a["licenceId"])]["uses_left"] = a["usesLeft"]
        self.redeemed_txs.add(e.tx)

    def _LicenceRevoked(self, e: Event, a: dict) -> None:
        self.tables["licence"][hexid(a["licenceId"])].update(expires_at=0, uses_left=0, revoked=True)

    def _RoundRecorded(self, e: Event, a: dict) -> None:
        partners = [{"partner": p, "samples": n, "share_bps": b}
                    for p, n, b in zip(a["partners"], a["sampleCounts"], a["sharesBps"])]
        self.tables["fl_round"][(a["taskId"], a["round"])] = {"model_cid": str(cid_from_bytes(a["modelCid"])),
                                                             "partners": partners, "block_number": e.block}

    def _BatchAnchored(self, e: Event, a: dict) -> None:
        self.tables["usage_batch"][a["batchId"]] = {"root": a["root"].hex(), "count": a["count"],
                                                    "from_time": a["fromTime"], "to_time": a["toTime"], "tx_hash": e.tx}


def _db_tables(session: Session) -> dict[str, Rows]:
    def rows(model: Any, key: Any, fields: list[str]) -> Rows:
        return {key(r): {f: getattr(r, f) for f in fields} for r in session.exec(select(model))}

    tables = {
        "member": rows(Member, lambda r: r.address, ["name", "identity_hash", "roles", "status", "admitted_block"]),
        "point_movement": rows(PointMovement, lambda r: (r.tx_hash, r.log_index),
                               ["sender", "recipient", "amount", "block_number"]),
        "certificate": rows(Certificate, lambda r: r.id, ["product_id", "version", "previous", "publisher", "kind", "cid",
                                                         "sha256", "metadata_hash", "status", "signature", "nonce",
                                                         "block_number", "tx_hash"]),
        "product": rows(Product, lambda r: r.id, ["publisher", "kind", "latest_certificate", "status", *SHOWN]),
        "plan": rows(Plan, lambda r: (r.product_id, r.kind), ["price", "uses"]),
        "purchase": rows(Purchase, lambda r: (r.tx_hash, r.log_index),
                         ["licence_id", "product_id", "holder", "plan", "price", "fee", "block_number"]),
        "licence": rows(Licence, lambda r: r.id, ["product_id", "holder", "expires_at", "uses_left", "revoked"]),
        "usage_batch": rows(UsageBatch, lambda r: r.id, ["root", "count", "from_time", "to_time", "tx_hash"]),
    }
    tables["fl_round"] = {(r.task_id, r.round): {"model_cid": r.model_cid, "partners": json.loads(r.partners_json),
                                                 "block_number": r.block_number} for r in session.exec(select(FlRound))}
    return tables


def _compare(report: Report, table: str, chain: Rows, db: Rows) -> None:
    before = len(report.checks)
    for key in sorted(db.keys() - chain.keys(), key=str):
        report.check(f"{table} {_key(key)}: row not backed by the chain", False, f"database row {db[key]}")
    for key in sorted(chain.keys() - db.keys(), key=str):
        report.check(f"{table} {_key(key)}: chain record missing from the database", False, f"chain: {chain[key]}",
                     chain[key].get("tx_hash"))
    for key in sorted(chain.keys() & db.keys(), key=str):
        for field, value in chain[key].items():
            if db[key][field] != value:
                report.check(f"{table} {_key(key)}: {field} changed", False,
                             f"database {db[key][field]!r}, chain {value!r}", chain[key].get("tx_hash"))
    if len(report.checks) == before:
        report.check(f"{table}: {len(chain)} record(s) agree", True)


def _shown(replay: Replay, session: Session) -> None:
    """The product fields a user sees, as the certified listing metadata gives them (the
    indexer's rule: each version with metadata overrides them). Metadata that does not hash
    to its certificate is skipped here (its product's fields go unchecked) and reported by
    `_metadata`."""
    stored = {c.id: c.metadata_json for c in session.exec(select(Certificate))}
    for cert_id, cert in sorted(replay.tables["certificate"].items()):
        doc = stored.get(cert_id, "{}")
        if doc != "{}" and metadata_digest(doc) == cert["metadata_hash"]:
            replay.tables["product"][cert["product_id"]].update(shown_fields(json.loads(doc)))


def _uploads(report: Report, session: Session, certificates: Rows) -> None:
    """Each certificate's upload row must name the certified CID and sha-256 (delivery reads
    its encryption flag and key envelope)."""
    uploads = {u.cid: u for u in session.exec(select(Upload))}
    bad = 0
    for cert_id, cert in sorted(certificates.items()):
        up = uploads.get(cert["cid"])
        if up is None:
            bad += 1
            report.check(f"upload of certificate {cert_id}: missing", False,
                         f"no upload row for the certified CID {cert['cid']}", cert["tx_hash"])
        elif up.sha256 != cert["sha256"]:
            bad += 1
            report.check(f"upload of certificate {cert_id}: sha256 changed", False,
                         f"database {up.sha256!r}, chain {cert['sha256']!r}", cert["tx_hash"])
    if not bad:
        report.check(f"upload rows: {len(certificates)} certificate(s) name their CID and sha-256", True)


def _store(report: Report, session: Session, store: ContentStore, certificates: Rows,
           progress: Callable[[int, int], None] | None) -> None:
    """Read back the stored bytes of every certified CID (streamed: memory stays bounded)."""
    by_cid: dict[str, list[int]] = defaultdict(list)
    for cert_id, cert in sorted(certificates.items()):
        by_cid[cert["cid"]].append(cert_id)
    uploads = {u.cid: u for u in session.exec(select(Upload).where(Upload.cid.in_(list(by_cid))))} if by_cid else {}
    held = set(store.list())  # one listing: asking a daemon for a block it lacks makes it search the network
    bad = 0
    for done, (cid, ids) in enumerate(sorted(by_cid.items()), 1):
        problem = (_stored_problem(store, cid, certificates[ids[0]]["sha256"], uploads.get(cid)) if str(parse(cid)) in held
                   else ("missing", f"the content store holds no {cid}"))
        if problem:
            bad += 1
            report.check(f"stored artifact of certificate {', '.join(map(str, ids))}: {problem[0]}", False, problem[1],
                         certificates[ids[0]]["tx_hash"])
        if progress:
            progress(done, len(by_cid))
    if not bad:
        report.check(f"content store: the bytes of {len(by_cid)} certified CID(s) read back intact", True)


def _stored_problem(store: ContentStore, cid: str, sha256: str, up: Upload | None) -> tuple[str, str] | None:
    """(what, detail) wrong with the stored bytes of `cid`, or None."""
    digest, size, head = hashlib.sha256(), 0, b""
    try:
        for piece in store.get_stream(cid):
            if len(head) < HEADER_LEN:
                head += piece[:HEADER_LEN - len(head)]
            digest.update(piece)
            size += len(piece)
    except Exception as exc:  # noqa: BLE001 - any store failure (missing, altered block) is the finding
        return "unreadable or altered", f"content store: {exc}"
    encrypted = head.startswith(MAGIC) and len(head) == HEADER_LEN
    if up is not None and up.encrypted != encrypted:
        return "encryption changed", f"upload row says encrypted={up.encrypted}, the stored bytes are " + (
            "a GridMart encrypted artifact" if encrypted else "plain")
    if not encrypted:
        if digest.hexdigest() != sha256:
            return "bytes differ from the certificate", f"stored bytes hash to {digest.hexdigest()}, certified {sha256}"
        if up is not None and up.size != size:
            return "size changed", f"upload row says {up.size} bytes, {size} stored"
    elif up is not None:
        (segment,) = struct.unpack(">I", head[len(MAGIC):len(MAGIC) + 4])
        expected = HEADER_LEN + up.size + TAG_LEN * max(1, math.ceil(up.size / segment))
        if expected != size:
            return "size changed", f"upload row says {up.size} plaintext bytes, the ciphertext holds {size} bytes"
    return None


def _key(key: Any) -> str:
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _metadata(report: Report, session: Session, certificates: Rows) -> None:
    """Off-chain listing metadata must be there and still hash to the certified metadata hash
    (the chain's): without it the shown product fields cannot be checked."""
    bad = 0
    for cert in session.exec(select(Certificate)):
        certified = certificates.get(cert.id, {}).get("metadata_hash", cert.metadata_hash)
        if cert.metadata_json == "{}":
            bad += 1
            report.check(f"certificate {cert.id}: listing metadata missing", False,
                         "no off-chain metadata for this certificate: its product's shown fields go unchecked",
                         cert.tx_hash)
            continue
        if metadata_digest(cert.metadata_json) != certified:
            bad += 1
            report.check(f"certificate {cert.id}: metadata does not match its certified hash", False,
                         f"sha-256 of the stored metadata ≠ {certified}", cert.tx_hash)
    if not bad:
        report.check("listing metadata hashes to the certified metadata hash", True)


def _usage(report: Report, session: Session, batches: Rows, redeemed_txs: set[str], ledger: Ledger, head: int) -> None:
    """Recompute each anchored batch's root from the records the database still holds.

    Records are grouped by the root fixed on them before the anchor transaction, so a
    batch in flight (anchored, batch id not yet written back) is still recomputed.
    """
    records: dict[str, list[tuple[int, str, int | None]]] = defaultdict(list)
    for root, leaf_index, record, batch_id in session.exec(select(
            Redemption.batch_root, Redemption.leaf_index, Redemption.record_json, Redemption.batch_id)
            .where(Redemption.batch_root != None)):
        records[root].append((leaf_index, record, batch_id))
    bad = 0
    for batch_id, anchored in sorted(batches.items()):
        rows = sorted(records.pop(anchored["root"], []))
        root = MerkleTree.from_leaves([leaf_hash(r[1].encode()) for r in rows]).root.hex() if rows else None
        if root != anchored["root"] or len(rows) != anchored["count"]:
            bad += 1
            report.check(f"usage batch {batch_id}: records deleted or altered", False,
                         f"{len(rows)} record(s) in the database (anchored {anchored['count']}); "
                         f"recomputed root {root} ≠ anchored {anchored['root']}", anchored["tx_hash"])
    for root, rows in sorted(records.items()):
        claimed = {r[2] for r in rows} - {None}
        if claimed and not ledger.events("usage", "BatchAnchored", to_block="latest", root=bytes.fromhex(root)):
            bad += 1
            report.check(f"usage batch {sorted(claimed)}: never anchored on chain", False,
                         f"{len(rows)} record(s) claim root {root}")
    db_txs = set(session.exec(select(Redemption.on_chain_tx).where(Redemption.on_chain_tx != None)))
    for tx in sorted(db_txs - redeemed_txs):
        if _after(ledger, tx, head):  # redeemed after the indexed head: not drift
            continue
        bad += 1
        report.check("usage record names a redemption the chain does not have", False, f"tx {tx}", tx)
    for tx in sorted(redeemed_txs - db_txs):
        bad += 1
        report.check("on-chain redemption has no usage record", False, f"tx {tx}", tx)
    if not bad:
        report.check(f"usage records: {len(batches)} anchored batch root(s) recomputed", True)


def _after(ledger: Ledger, tx: str, head: int) -> bool:
    try:
        return ledger.w3.eth.get_transaction_receipt(tx)["blockNumber"] > head
    except Exception:  # noqa: BLE001 - unknown transaction: not on chain at all
        return False


def audit_consistency(ledger: Ledger, engine: Engine, store: ContentStore | None = None,
                      progress: Callable[[int, int], None] | None = None) -> Report:
    """Every divergence between the chain (replayed) and the marketplace database, and, given
    `store`, the stored bytes (`progress(done, total)` after each certified CID)."""
    report = Report("consistency of the marketplace database with the chain")
    with Session(engine) as session:
        head = session.exec(select(func.max(IndexedBlock.number))).one()
        if head is None:
            report.check("database has been indexed", False, "no indexed block: start the marketplace (its indexer) first")
            return report
        replay = Replay()
        events = ledger.all_events(to_block=head)
        for e in events:
            replay.apply(e)
        _shown(replay, session)
        db = _db_tables(session)
        for table in db:
            _compare(report, table, replay.tables[table], db[table])
        certificates = replay.tables["certificate"]
        _metadata(report, session, certificates)
        _uploads(report, session, certificates)
        if store is not None:
            _store(report, session, store, certificates, progress)
        _usage(report, session, replay.tables["usage_batch"], replay.redeemed_txs, ledger, head)
        waiting = session.exec(select(func.count()).select_from(Redemption)
                               .where(Redemption.batch_id == None)).one()
    report.facts["replayed"] = {"events": len(events), "to_block": head, "unanchored_usage_records": waiting,
                                **{t: len(rows) for t, rows in replay.tables.items()}}
    report.facts["content_store"] = "read back" if store is not None else "not checked (no content store given)"
    return report
