"""The catalogue and product pages, checked against the chain.

The database is an index anyone with write access to it can edit, so what a user is shown
is bound to ProductRegistry and Licensing: a product is on the shelf only if the chain says
its newest certificate is; its plans are the chain's; the title, description, tags, sharing
mode and licence terms shown must be those of listing metadata that hashes to the certified
metadata hash. A product whose rows fail that is flagged (`verified: false`, `problems`) and
left out of the on-shelf catalogue.

The chain facts come from a `ChainView`: every CertificateRegistered, StatusChanged and
PlanSet event, caught up block range by block range, refreshed at most once per index
generation (ctx.indexer.generation), so a catalogue request costs no RPC when nothing moved.
"""
from __future__ import annotations

import hashlib
import json
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, or_, select

from ledger_node.audit import Ledger
from ledger_node.content.cid import cid_from_bytes
from ledger_node.contracts import Kind, PlanKind, Status

from ..models import Certificate, Product
from .context import Context
from .errors import NotFound

#: certificate statuses whose bytes may be delivered (a pending new version is not)
DELIVERABLE = ("on-shelf", "off-shelf")
#: the product fields a user sees, as the indexer derives them from the listing metadata
SHOWN = ("title", "description", "tags", "sharing_mode", "licence_terms")


def _label(value: Any) -> str:
    return value.name.lower().replace("_", "-")


@dataclass
class ChainCertificate:
    id: int
    product_id: int
    version: int
    previous: int
    publisher: str
    kind: str
    cid: str
    sha256: str
    metadata_hash: str
    status: str = "pending"


@dataclass
class ChainView:
    """Certificates, newest versions and plans as the chain has them, up to `block`."""

    certificates: dict[int, ChainCertificate] = field(default_factory=dict)
    latest: dict[int, int] = field(default_factory=dict)  # product id -> newest certificate id
    plans: dict[int, dict[str, dict[str, int]]] = field(default_factory=dict)
    block: int = -1
    block_hash: str = ""
    generation: int | None = None

    def apply(self, e: Any) -> None:
        a = e.args
        if e.name == "CertificateRegistered":
            lst = a["listing"]
            self.certificates[a["id"]] = ChainCertificate(
                a["id"], a["productId"], a["version"], lst["previous"], a["publisher"], Kind(lst["kind"]).name.lower(),
                str(cid_from_bytes(lst["cid"])), lst["sha256"].hex(), lst["metadataHash"].hex())
            self.latest[a["productId"]] = a["id"]
        elif e.name == "StatusChanged" and a["id"] in self.certificates:
            self.certificates[a["id"]].status = _label(Status(a["status"]))
        elif e.name == "PlanSet":
            plans = self.plans.setdefault(a["productId"], {})
            kind = _label(PlanKind(a["kind"]))
            if a["price"] == 0:
                plans.pop(kind, None)
            else:
                plans[kind] = {"price": a["price"], "uses": a["uses"]}

    def status(self, product_id: int) -> str | None:
        """The product's status on chain (that of its newest version); None: not on chain."""
        latest = self.latest.get(product_id)
        return self.certificates[latest].status if latest else None

    def versions(self, product_id: int) -> list[ChainCertificate]:
        return sorted((c for c in self.certificates.values() if c.product_id == product_id), key=lambda c: c.version)

    def plan_list(self, product_id: int) -> list[dict]:
        return [{"kind": k, **v} for k, v in sorted(self.plans.get(product_id, {}).items(),
                                                    key=lambda kv: PlanKind[kv[0].upper().replace("-", "_")])]

    def delivered(self, product_id: int, cid: str) -> ChainCertificate | None:
        """The product's approved certificate naming `cid` (what a delivery link may serve)."""
        return next((c for c in self.versions(product_id) if c.cid == cid and c.status in DELIVERABLE), None)

    def deliverable(self, product_id: int) -> ChainCertificate | None:
        """The newest version that has been on the shelf (what redemption delivers)."""
        return next((c for c in reversed(self.versions(product_id)) if c.status in DELIVERABLE), None)


WANTED = [("products", "CertificateRegistered"), ("products", "StatusChanged"), ("licensing", "PlanSet")]


class _Views:
    """One ChainView per service context (kept beside it, released with it)."""

    def __init__(self) -> None:
        self._by_ctx: dict[int, tuple[weakref.ref, Ledger, ChainView, threading.Lock]] = {}
        self._lock = threading.Lock()

    def get(self, ctx: Context, fresh: bool) -> ChainView:
        entry = self._by_ctx.get(id(ctx))
        if entry is None or entry[0]() is not ctx:
            with self._lock:
                entry = self._by_ctx.get(id(ctx))
                if entry is None or entry[0]() is not ctx:
                    key = id(ctx)
                    ref = weakref.ref(ctx, lambda _, k=key: self._by_ctx.pop(k, None))
                    entry = (ref, Ledger(ctx.chain.w3, ctx.chain.book), ChainView(), threading.Lock())
                    self._by_ctx[key] = entry
        _, ledger, view, lock = entry
        generation = ctx.indexer.generation if ctx.indexer is not None else None
        if not fresh and generation is not None and view.generation == generation:
            return view
        with lock:
            _, _, view, _ = self._by_ctx[id(ctx)]
            if fresh or generation is None or view.generation != generation:
                view = _catch_up(ledger, view)
                view.generation = generation
                self._by_ctx[id(ctx)] = (entry[0], ledger, view, lock)
        return view


def _catch_up(ledger: Ledger, view: ChainView) -> ChainView:
    """The view moved to the chain head: new events applied, or rebuilt after a re-org."""
    w3 = ledger.w3
    if view.block >= 0 and _hash_of(w3, view.block) != view.block_hash:
        view = ChainView()  # the block it ended on is gone: re-organised
    head = w3.eth.get_block("latest")
    if head["number"] > view.block:
        fresh = ChainView({k: ChainCertificate(**vars(c)) for k, c in view.certificates.items()},  # readers keep
                          dict(view.latest), {k: dict(v) for k, v in view.plans.items()})  # the old view intact
        for e in ledger.events_of(WANTED, view.block + 1, head["number"]):
            fresh.apply(e)
        view = fresh
    view.block, view.block_hash = head["number"], head["hash"].to_0x_hex()
    return view


def _hash_of(w3: Any, number: int) -> str | None:
    try:
        return w3.eth.get_block(number)["hash"].to_0x_hex()
    except Exception:  # noqa: BLE001 - no such block any more (a shorter chain after a re-org)
        return None


_views = _Views()


def chain_view(ctx: Context, fresh: bool = False) -> ChainView:
    """The chain's certificates and plans, refreshed at most once per index generation
    (`fresh`: caught up with the chain head now)."""
    return _views.get(ctx, fresh)


# ----------------------------------------------------------------- verification

def metadata_digest(metadata_json: str) -> str:
    """sha-256 of the canonical form of stored listing metadata (what the publisher signed)."""
    doc = json.loads(metadata_json)
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def shown_fields(metadata: dict) -> dict[str, str]:
    """The product fields a listing's metadata gives (as the indexer writes them)."""
    return {"title": metadata.get("title", ""), "description": metadata.get("description", ""),
            "tags": ",".join(t.lower() for t in metadata.get("tags", [])),
            "sharing_mode": metadata.get("sharing_mode", "download"),
            "licence_terms": metadata.get("licence_terms", "")}


def problems(view: ChainView, product: Product, latest_row: Certificate | None) -> list[str]:
    """Why this product's rows cannot be shown as certified (empty: they can)."""
    latest = view.latest.get(product.id)
    if latest is None:
        return ["the chain has no certificate for this product"]
    chain = view.certificates[latest]
    found = []
    if product.latest_certificate != latest:
        found.append(f"the index names certificate {product.latest_certificate} as newest, the chain {latest}")
    if product.publisher != chain.publisher or product.kind != chain.kind:
        found.append("publisher or kind differs from the certificate on chain")
    if latest_row is None or metadata_digest(latest_row.metadata_json) != chain.metadata_hash:
        found.append(f"the listing metadata does not hash to certificate {latest}'s certified metadata hash")
        return found
    certified = shown_fields(json.loads(latest_row.metadata_json))
    found += [f"{name.replace('_', ' ')} differs from the certified metadata"
              for name in SHOWN if getattr(product, name) != certified[name]]
    return found


def _summary(view: ChainView, product: Product, latest_row: Certificate | None) -> dict:
    found = problems(view, product, latest_row)
    return {**product.model_dump(), "status": view.status(product.id) or "unknown",
            "tags": [t for t in product.tags.split(",") if t], "plans": view.plan_list(product.id),
            "verified": not found, "problems": found}


def catalogue(ctx: Context, session: Session, *, q: str | None = None, kind: str | None = None,
              tag: str | None = None, publisher: str | None = None, on_shelf: bool = True) -> list[dict]:
    """Products matching the filters; with `on_shelf`, only those on the shelf on chain whose
    shown fields are certified."""
    view = chain_view(ctx)
    stmt = select(Product, Certificate).join(Certificate, Certificate.id == Product.latest_certificate, isouter=True)
    if kind:
        stmt = stmt.where(Product.kind == kind)
    if publisher:
        stmt = stmt.where(Product.publisher == publisher)
    if tag:
        stmt = stmt.where(col(Product.tags).contains(tag.lower()))
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(or_(col(Product.title).ilike(like), col(Product.description).ilike(like)))
    out = []
    for product, latest_row in session.exec(stmt.order_by(Product.id)).all():
        if tag and tag.lower() not in product.tags.split(","):
            continue
        if product.id not in view.latest:
            continue  # a row the chain does not back is never shown
        item = _summary(view, product, latest_row)
        if on_shelf and (item["status"] != "on-shelf" or not item["verified"]):
            continue
        out.append(item)
    return out


def product_page(ctx: Context, session: Session, product_id: int) -> dict:
    """A product's page: its summary (flagged if its rows fail the chain) and every version
    as the chain certifies it, with the stored metadata when it hashes to the certified hash."""
    view = chain_view(ctx)
    product = session.get(Product, product_id)
    if product is None or product_id not in view.latest:
        raise NotFound(f"unknown product {product_id}")
    rows = {c.id: c for c in session.exec(select(Certificate).where(Certificate.product_id == product_id))}
    versions = []
    for c in view.versions(product_id):
        row = rows.get(c.id)
        certified = row is not None and metadata_digest(row.metadata_json) == c.metadata_hash
        versions.append({**vars(c), "block_number": row.block_number if row else None, "block_time": row.block_time if row else None,
                         "tx_hash": row.tx_hash if row else None, "signature": row.signature if row else None,
                         "metadata": json.loads(row.metadata_json) if certified else None,
                         "metadata_verified": certified})
        if product.sharing_mode == "compute-only":  # its bytes are served nowhere; the page does not name them
            versions[-1].pop("cid")
    return {**_summary(view, product, rows.get(view.latest[product_id])), "versions": versions}
