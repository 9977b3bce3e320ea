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
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import func
from sqlmodel import Session, col, or_, select

from ledger_node.audit import Ledger
from ledger_node.content.cid import cid_from_bytes
from ledger_node.contracts import Kind, PlanKind, Status

from ..models import Certificate, Licence, Member, Product, Purchase, Redemption, Upload
from .context import Context
from .errors import BadRequest, NotFound
from .listings import ListingMetadata

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


# ----------------------------------------------------------------- what the pages show beside the facts

#: optional listing metadata the product page shows; certified with the rest (it is hashed)
MAX_SAMPLE_ROWS, MAX_COLUMNS, MAX_CELL, MAX_SAMPLE_BYTES = 10, 200, 200, 16_384
#: a number JSON can carry (NaN and infinities cannot be answered as JSON)
Finite = Annotated[float, Field(allow_inf_nan=False)]


class DataSchema(BaseModel):
    """What a CSV data product's columns are, declared at publish (the page reads the file's
    header in the browser, before any encryption; the server never decrypts an artifact)."""

    format: str = Field(default="csv", max_length=20)
    columns: list[str] = Field(default_factory=list, max_length=MAX_COLUMNS)

    @field_validator("columns")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if any(len(c) > MAX_CELL for c in v):
            raise ValueError(f"a column name is longer than {MAX_CELL} characters")
        return v


class PageListingMetadata(ListingMetadata):
    """Listing metadata with what the product page shows: the data's `schema`, a few
    `sample_rows` the publisher chose to show (bounded), and a tool's model-card `metrics`.
    Each is left out of the hashed document when absent, so older listings hash as before."""

    schema_: DataSchema | None = Field(default=None, alias="schema")
    sample_rows: list[list[str | int | Finite | None]] | None = Field(default=None, max_length=MAX_SAMPLE_ROWS)
    metrics: dict[str, int | Finite | str] | None = Field(default=None, max_length=20)

    model_config = {"populate_by_name": True}

    @field_validator("sample_rows")
    @classmethod
    def _rows(cls, v: list | None) -> list | None:
        if v is None:
            return v
        if any(len(r) > MAX_COLUMNS for r in v) or any(len(str(c)) > MAX_CELL for r in v for c in r):
            raise ValueError(f"sample_rows: at most {MAX_COLUMNS} cells a row, {MAX_CELL} characters a cell")
        if len(json.dumps(v)) > MAX_SAMPLE_BYTES:
            raise ValueError(f"sample_rows: at most {MAX_SAMPLE_BYTES // 1024} kB in all")
        return v

    @model_validator(mode="after")
    def _fits(self) -> "PageListingMetadata":
        if self.metrics is not None and any(len(str(k)) > 100 or len(str(v)) > MAX_CELL for k, v in self.metrics.items()):
            raise ValueError(f"metrics: names of at most 100 characters, values of at most {MAX_CELL}")
        return self

    def document(self) -> dict:
        doc = super().document()
        doc.pop("schema_", None)
        for name in ("sample_rows", "metrics"):
            if doc.get(name) is None:
                doc.pop(name, None)
        if self.schema_ is not None:
            doc["schema"] = self.schema_.model_dump()
        return doc


def member_names(session: Session, addresses: set[str]) -> dict[str, str]:
    """The Member index's names of these addresses (those it knows)."""
    wanted = {a for a in addresses if a}
    if not wanted:
        return {}
    return {m.address: m.name for m in session.exec(select(Member).where(col(Member.address).in_(wanted)))}


def usage_counts(session: Session, product_ids: set[int] | None = None) -> dict[int, dict[str, int]]:
    """{product id: {"licences_sold", "redemptions"}} from the index (settled redemptions only)."""
    lic = select(Licence.product_id, func.count()).group_by(Licence.product_id)
    red = (select(Licence.product_id, func.count(col(Redemption.id))).join(Licence, col(Licence.id) == Redemption.licence_id)
           .where(col(Redemption.pending).is_(False)).group_by(Licence.product_id))
    if product_ids is not None:
        lic, red = lic.where(col(Licence.product_id).in_(product_ids)), red.where(col(Licence.product_id).in_(product_ids))
    out: dict[int, dict[str, int]] = {}
    for pid, n in session.exec(lic).all():
        out.setdefault(pid, {"licences_sold": 0, "redemptions": 0})["licences_sold"] = n
    for pid, n in session.exec(red).all():
        out.setdefault(pid, {"licences_sold": 0, "redemptions": 0})["redemptions"] = n
    return out


def certified_products(ctx: Context, session: Session, product_ids: set[int]) -> dict[int, Product]:
    """The products among these whose rows pass the chain's checks (their titles may be shown)."""
    if not product_ids:
        return {}
    view = chain_view(ctx)
    stmt = (select(Product, Certificate).join(Certificate, Certificate.id == Product.latest_certificate, isouter=True)
            .where(col(Product.id).in_(product_ids)))
    return {p.id: p for p, row in session.exec(stmt).all() if p.id in view.latest and not problems(view, p, row)}


def _summary(view: ChainView, product: Product, latest_row: Certificate | None) -> dict:
    found = problems(view, product, latest_row)
    return {**product.model_dump(), "status": view.status(product.id) or "unknown",
            "tags": [t for t in product.tags.split(",") if t], "plans": view.plan_list(product.id),
            "verified": not found, "problems": found}


SORTS = ("id", "newest", "price", "most_used")


def _sort_key(sort: str):
    if sort == "newest":  # the newest certified version first (certificate ids grow with time)
        return lambda p: (-p["latest_certificate"], -p["id"])
    if sort == "price":  # the cheapest plan first; products without a plan last
        return lambda p: (min((pl["price"] for pl in p["plans"]), default=float("inf")), p["id"])
    if sort == "most_used":  # redemptions, then licences sold
        return lambda p: (-p["redemptions"], -p["licences_sold"], p["id"])
    return lambda p: p["id"]


def catalogue(ctx: Context, session: Session, *, q: str | None = None, kind: str | None = None,
              tag: str | None = None, publisher: str | None = None, on_shelf: bool = True,
              sort: str = "id") -> list[dict]:
    """Products matching the filters, in `sort` order (id, newest, price, most_used); with
    `on_shelf`, only those on the shelf on chain whose shown fields are certified. Each item
    names its publisher (`publisher_name`, from the member index) and its usage counts."""
    if sort not in SORTS:
        raise BadRequest(f"unknown sort {sort!r}: use newest, price or most_used")
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
    names = member_names(session, {p["publisher"] for p in out})
    usage = usage_counts(session, {p["id"] for p in out}) if out else {}
    for p in out:
        p["publisher_name"] = names.get(p["publisher"])
        p.update(usage.get(p["id"], {"licences_sold": 0, "redemptions": 0}))
    return sorted(out, key=_sort_key(sort))


def facets(items: list[dict]) -> dict[str, dict[str, int]]:
    """How many of these products there are of each kind and with each tag (most first)."""
    kinds: dict[str, int] = {}
    tags: dict[str, int] = {}
    for p in items:
        kinds[p["kind"]] = kinds.get(p["kind"], 0) + 1
        for t in p["tags"]:
            tags[t] = tags.get(t, 0) + 1
    order = lambda d: dict(sorted(d.items(), key=lambda kv: (-kv[1], kv[0])))  # noqa: E731
    return {"kind": order(kinds), "tags": order(tags)}


def browse(ctx: Context, session: Session, *, q: str | None = None, kind: str | None = None, tag: str | None = None,
           publisher: str | None = None, on_shelf: bool = True) -> dict:
    """The facet counts of a search: each facet counted over the products every other filter
    lets through (so choosing a kind still shows how many there are of the others)."""
    base = catalogue(ctx, session, q=q, publisher=publisher, on_shelf=on_shelf)
    by_kind = [p for p in base if not kind or p["kind"] == kind]
    by_tag = [p for p in base if not tag or tag.lower() in p["tags"]]
    both = [p for p in by_kind if p in by_tag]
    return {"total": len(both), "kind": facets(by_tag)["kind"], "tags": facets(by_kind)["tags"]}


def product_page(ctx: Context, session: Session, product_id: int) -> dict:
    """A product's page: its summary (flagged if its rows fail the chain) and every version
    as the chain certifies it, with the stored metadata when it hashes to the certified hash."""
    view = chain_view(ctx)
    product = session.get(Product, product_id)
    if product is None or product_id not in view.latest:
        raise NotFound(f"unknown product {product_id}")
    rows = {c.id: c for c in session.exec(select(Certificate).where(Certificate.product_id == product_id))}
    names = member_names(session, {product.publisher} | {c.publisher for c in view.versions(product_id)})
    versions = []
    for c in view.versions(product_id):
        row = rows.get(c.id)
        certified = row is not None and metadata_digest(row.metadata_json) == c.metadata_hash
        versions.append({**vars(c), "block_number": row.block_number if row else None, "block_time": row.block_time if row else None,
                         "tx_hash": row.tx_hash if row else None, "signature": row.signature if row else None,
                         "metadata": json.loads(row.metadata_json) if certified else None,
                         "metadata_verified": certified, "publisher_name": names.get(c.publisher)})
        if product.sharing_mode == "compute-only":  # its bytes are served nowhere; the page does not name them
            versions[-1].pop("cid")
    newest = versions[-1] if versions else {}
    meta = newest.get("metadata") or {}  # only certified metadata is shown
    up = session.get(Upload, view.certificates[view.latest[product_id]].cid)
    usage = usage_counts(session, {product_id}).get(product_id, {"licences_sold": 0, "redemptions": 0})
    return {**_summary(view, product, rows.get(view.latest[product_id])), "versions": versions,
            "publisher_name": names.get(product.publisher), **usage,
            "size": up.size if up else None, "encrypted": bool(up and up.encrypted),
            "schema": meta.get("schema"), "sample_rows": meta.get("sample_rows"),
            "metrics": meta.get("metrics") if product.kind == "tool" else None}



# ----------------------------------------------------------------- points history in words

ZERO_ADDRESS = "0x" + "0" * 40
#: block number -> timestamp, per chain (id of its ledger's web3); blocks are immutable once
#: indexed deep enough, and a re-organised block's time differs by seconds at most
_block_times: dict[tuple[int, int], int] = {}
_BLOCK_TIMES_MAX = 100_000


def block_time(ctx: Context, number: int) -> int | None:
    key = (id(ctx.chain.w3), number)
    if key not in _block_times:
        try:
            stamp = int(ctx.chain.w3.eth.get_block(number)["timestamp"])
        except Exception:  # noqa: BLE001 - the block is gone (a re-org): no time to show
            return None
        if len(_block_times) >= _BLOCK_TIMES_MAX:
            _block_times.clear()
        _block_times[key] = stamp
    return _block_times[key]


def describe_movements(ctx: Context, session: Session, me: str, history: list[dict]) -> None:
    """Add to each of `me`'s point movements its `kind` in words, its product (`product_id`,
    `product_title`) where it has one, the other party's member name and its block's `time`."""
    federated = ctx.chain.book.addresses.get("FederatedRegistry")
    purchases = {p.tx_hash: p for p in session.exec(
        select(Purchase).where(col(Purchase.tx_hash).in_({h["tx_hash"] for h in history})))} if history else {}
    ids = {p.product_id for p in purchases.values()}
    products = {p.id: p for p in session.exec(select(Product).where(col(Product.id).in_(ids)))} if ids else {}
    certified = certified_products(ctx, session, ids)  # whose titles the chain backs
    names = member_names(session, {h["from"] for h in history} | {h["to"] for h in history})
    for h in history:
        bought = purchases.get(h["tx_hash"])
        product = products.get(bought.product_id) if bought else None
        if h["from"] == ZERO_ADDRESS:
            kind = "admission grant"
        elif bought is not None:
            to_publisher = product is not None and h["to"] == product.publisher
            if h["from"] == me:
                kind = "purchase" if to_publisher else "purchase fee"
            else:
                kind = "sale income" if to_publisher else "fee income"
            if not to_publisher:
                names.setdefault(h["to"], "the marketplace's fee account")
        elif federated and h["to"] == federated:
            kind = "FL reward pool"
            names.setdefault(federated, "the FL reward pool")
        elif federated and h["from"] == federated:
            kind = "FL reward"
            names.setdefault(federated, "the FL reward pool")
        else:
            kind = "transfer"
        h.update(kind=kind, product_id=bought.product_id if bought else None,
                 product_title=certified[product.id].title if product and product.id in certified else None,
                 from_name=names.get(h["from"]), to_name=names.get(h["to"]), time=block_time(ctx, h["block"]))
