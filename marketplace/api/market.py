"""Publishing, catalogue, orders, licences, points, redemption and delivery."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Annotated, Literal

from annotated_types import Interval

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, or_, select

from ledger_node.content.encryption import MAGIC
from ledger_node.contracts import Role
from ledger_node.errors import IntegrityError

from ..models import Certificate, Licence, PointMovement, Purchase, Upload
from ..services import catalogue as shelf
from ..services import listings, redemption, runner, transactions, usage
from ..services.auth import Principal, require_role
from ..services.context import Context
from ..services.errors import BadRequest, Conflict, Forbidden, NotFound
from ..services.indexer import hexid
from .deps import get_ctx, get_principal, get_session, sync_index
from .params import UINT32_MAX, ChainTaskId, Nonce, Points, Price, ProductId, RecordId, Timestamp, Uses

#: a product or certificate id this listing is a new version of; 0: a new product
PreviousId = Annotated[int, Interval(ge=0, le=UINT32_MAX)]

router = APIRouter(tags=["market"])


# ----------------------------------------------------------------- publishing

@router.post("/uploads", status_code=201)
def upload(file: UploadFile = File(...), encrypt: bool = Query(False), ctx: Context = Depends(get_ctx),
           session: Session = Depends(get_session), principal: Principal = Depends(get_principal)) -> dict:
    """Stream an artifact into the content store (AES-256-GCM if `encrypt`)."""
    row = listings.upload(ctx, session, principal, file.file, encrypt)
    return {"cid": row.cid, "sha256": row.sha256, "size": row.size, "encrypted": row.encrypted}


class PrepareListing(BaseModel):
    cid: str
    #: the listing metadata, with the optional schema, sample_rows and metrics the product page shows
    metadata: shelf.PageListingMetadata
    previous: PreviousId = 0


class PublishListing(PrepareListing):
    signature: str
    nonce: Nonce
    deadline: Timestamp


@router.post("/listings/prepare")
def prepare_listing(body: PrepareListing, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
                    principal: Principal = Depends(get_principal)) -> dict:
    """The EIP-712 typed data the publisher's wallet signs."""
    return listings.prepare(ctx, session, principal, body.cid, body.metadata, body.previous)


@router.post("/listings", status_code=201)
def publish(body: PublishListing, request: Request, ctx: Context = Depends(get_ctx),
            session: Session = Depends(get_session), principal: Principal = Depends(get_principal)) -> dict:
    """Certify a signed listing on chain; it waits for the operator's approval."""
    cert_id = listings.publish(ctx, session, principal, body.cid, body.metadata, body.signature, body.nonce,
                               body.deadline, body.previous)
    sync_index(request)
    cert = session.get(Certificate, cert_id)
    return {"certificate_id": cert_id, "product_id": cert.product_id if cert else cert_id, "status": "pending"}


# ----------------------------------------------------------------- catalogue

Sort = Literal["newest", "price", "most_used"]
MAX_PER_PAGE = 100


def _publisher(publisher: str | None) -> str | None:
    if not publisher:
        return None
    try:
        return listings.checksum(publisher)
    except BadRequest:
        raise BadRequest(f"publisher {publisher!r} is not a wallet address (0x and 40 hex digits)") from None


@router.get("/products")
def catalogue(response: Response, q: str | None = None, kind: str | None = None, tag: str | None = None,
              publisher: str | None = None, on_shelf: bool = True,
              sort: Sort | None = Query(None, description="newest | price (cheapest plan first) | most_used "
                                                          "(redemptions, then licences sold); default: by id"),
              page: int | None = Query(None, ge=1, description="1-based page; with per_page (default 20)"),
              per_page: int | None = Query(None, ge=1, le=MAX_PER_PAGE, description=f"1..{MAX_PER_PAGE}"),
              ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
              _=Depends(sync_index)) -> list[dict]:
    """Products on the shelf on chain whose shown fields match their certified metadata
    (`on_shelf=false`: every product the chain has, flagged `verified: false` where the rows fail it).

    A list as before; with `page`/`per_page` one page of it, and the `X-Total-Count` header
    gives how many match in all (facet counts: `GET /products/facets`)."""
    items = shelf.catalogue(ctx, session, q=q, kind=kind, tag=tag, on_shelf=on_shelf, publisher=_publisher(publisher),
                            sort=sort or "id")
    response.headers["X-Total-Count"] = str(len(items))
    if page is None and per_page is None:
        return items
    size = per_page or 20
    start = ((page or 1) - 1) * size
    response.headers["X-Page"], response.headers["X-Per-Page"] = str(page or 1), str(size)
    return items[start:start + size]


@router.get("/products/facets")
def catalogue_facets(q: str | None = None, kind: str | None = None, tag: str | None = None,
                     publisher: str | None = None, on_shelf: bool = True, ctx: Context = Depends(get_ctx),
                     session: Session = Depends(get_session), _=Depends(sync_index)) -> dict:
    """For the same filters as `GET /products`: how many match (`total`) and the counts by
    kind and by tag, each counted over what the other filters let through."""
    return shelf.browse(ctx, session, q=q, kind=kind, tag=tag, on_shelf=on_shelf, publisher=_publisher(publisher))


@router.get("/products/{product_id}")
def product_page(product_id: ProductId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
                 _=Depends(sync_index)) -> dict:
    """A product and its versions as the chain certifies them."""
    return shelf.product_page(ctx, session, product_id)


# ----------------------------------------------------------------- orders

class PrepareTx(BaseModel):
    action: str = Field(description="purchase | set_plan | fund_task")
    product_id: ProductId = 0
    plan: str = Field("", description="per-use | week | month | year")
    price: Price = 0
    uses: Uses = 0
    task_id: ChainTaskId = Field(0, description="fund_task: the FederatedRegistry task id")
    amount: Points = Field(0, description="fund_task: points added to the reward pool")


class SubmitTx(BaseModel):
    action: str
    signed_tx: str | None = Field(None, description="the transaction from /tx/prepare, signed: relayed here")
    tx_hash: str | None = Field(None, description="or its hash, if the wallet broadcast it itself (MetaMask)")


@router.post("/tx/prepare")
def prepare_tx(body: PrepareTx, ctx: Context = Depends(get_ctx), principal: Principal = Depends(get_principal)) -> dict:
    """The unsigned transaction for your wallet (a purchase, a price plan, or an FL reward pool)."""
    if body.action == "purchase":
        require_role(ctx, principal, Role.SUBSCRIBER)
        args = [body.product_id, int(transactions.plan_kind(body.plan))]
    elif body.action == "set_plan":
        require_role(ctx, principal, Role.PUBLISHER)
        args = [body.product_id, int(transactions.plan_kind(body.plan)), body.price, body.uses]
    elif body.action == "fund_task":
        if body.task_id <= 0 or body.amount <= 0:
            raise BadRequest("fund_task needs task_id > 0 and amount > 0 points")
        args = [body.task_id, body.amount]
    else:
        raise BadRequest(f"unknown action {body.action!r}: use purchase, set_plan or fund_task")
    return transactions.prepare(ctx, principal, body.action, args)


@router.post("/tx")
def submit_tx(body: SubmitTx, request: Request, ctx: Context = Depends(get_ctx),
              principal: Principal = Depends(get_principal), session: Session = Depends(get_session)) -> dict:
    """Broadcast your signed transaction (or report the one your wallet sent); returns what it did."""
    if (body.signed_tx is None) == (body.tx_hash is None):
        raise BadRequest("send either signed_tx (the signed transaction) or tx_hash (if your wallet sent it)")
    if body.signed_tx is not None:
        receipt = transactions.relay(ctx, principal, body.action, body.signed_tx)
    else:
        receipt = transactions.sent(ctx, principal, body.action, body.tx_hash)
    sync_index(request)
    out = {"tx_hash": receipt["transactionHash"].to_0x_hex(), "gas_used": receipt["gasUsed"]}
    if body.action == "purchase":
        (event,) = ctx.chain.licensing.events(receipt, "LicencePurchased")
        out.update(licence_id=hexid(event["licenceId"]), price=event["price"], fee=event["fee"],
                   expires_at=event["expiresAt"], uses_left=event["usesLeft"],
                   balance=ctx.chain.points.balance_of(principal.address))
    elif body.action == "fund_task":
        (event,) = ctx.chain.federated.events(receipt, "TaskFunded")
        out.update(task_id=event["taskId"], amount=event["amount"],
                   reward_pool=ctx.chain.federated.task(event["taskId"])["reward_pool"],
                   balance=ctx.chain.points.balance_of(principal.address))
    return out


# ----------------------------------------------------------------- my account

@router.get("/licences")
def my_licences(ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
                principal: Principal = Depends(get_principal), _=Depends(sync_index)) -> list[dict]:
    rows = session.exec(select(Licence).where(Licence.holder == principal.address)).all()
    now = ctx.chain.w3.eth.get_block("latest")["timestamp"]
    products = shelf.certified_products(ctx, session, {lic.product_id for lic in rows})  # titles the chain backs
    names = shelf.member_names(session, {p.publisher for p in products.values()})
    out = []
    for lic in rows:
        product = products.get(lic.product_id)
        out.append({**lic.model_dump(), "active": not lic.revoked and (lic.expires_at > now or lic.uses_left > 0),
                    "product_title": product.title if product else None,
                    "publisher": product.publisher if product else None,
                    "publisher_name": names.get(product.publisher) if product else None})
    return out


@router.get("/points")
def my_points(ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
              principal: Principal = Depends(get_principal), _=Depends(sync_index)) -> dict:
    moves = session.exec(select(PointMovement).where(or_(PointMovement.sender == principal.address,
                                                         PointMovement.recipient == principal.address))
                         .order_by(PointMovement.block_number, PointMovement.log_index)).all()
    history = [{"tx_hash": m.tx_hash, "block": m.block_number, "from": m.sender, "to": m.recipient,
                "delta": m.amount if m.recipient == principal.address else -m.amount} for m in moves]
    shelf.describe_movements(ctx, session, principal.address, history)
    return {"address": principal.address, "balance": ctx.chain.points.balance_of(principal.address),
            "history": history}


@router.get("/purchases")
def my_purchases(session: Session = Depends(get_session), principal: Principal = Depends(get_principal),
                 _=Depends(sync_index)) -> list[Purchase]:
    return list(session.exec(select(Purchase).where(Purchase.holder == principal.address)))


# ----------------------------------------------------------------- redemption & delivery

class RedeemRequest(BaseModel):
    licence_id: str
    nonce: Nonce
    deadline: Timestamp
    purpose: str = "download"
    signature: str


@router.post("/redeem")
async def redeem(body: RedeemRequest, ctx: Context = Depends(get_ctx)) -> dict:
    """Present a signed Redeem voucher; get a short-lived delivery link (and your wrapped key).

    Valid JSON requests are answered by the fast lane (api/fastlane.py) with this same service
    call before they reach this route; it answers the rest (and documents the endpoint)."""
    voucher = redemption.voucher_from(body.model_dump())
    # the hot path is a fraction of a millisecond of CPU and no network round trip: it runs
    # inline and awaits its row's group commit; anything that needs the chain goes to a thread
    return await redemption.redeem_async(ctx, voucher, body.signature)


@router.get("/delivery/{token}")
def deliver(token: str, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session)) -> StreamingResponse:
    """Stream the artifact (ciphertext for encrypted products) behind a signed link.

    The CID must be that of an approved certificate of the product on chain, and plain bytes
    must hash to its sha-256: otherwise the response is cut short (never finished cleanly)."""
    claims = redemption.open_delivery(ctx, token)
    if claims.get("mode") == "remote-run":
        raise Forbidden("an application product runs here: POST your data to this link's /run")
    cid = claims["cid"]
    cert = _certified(ctx, claims["product"], cid)
    up = session.get(Upload, cid)
    headers = {"X-GridMart-CID": cid, "X-GridMart-Certificate": str(cert.id), "X-GridMart-SHA256": cert.sha256,
               "Content-Disposition": f'attachment; filename="{cid}"', "Content-Length": str(ctx.store.size(cid))}
    body = _checked(ctx.store.get_stream(cid), cert.sha256, encrypted=bool(up and up.encrypted))
    return StreamingResponse(body, media_type="application/octet-stream", headers=headers)


def _certified(ctx: Context, product_id: int, cid: str) -> shelf.ChainCertificate:
    """The product's approved certificate on chain that names `cid` (a link is only as good as the chain says)."""
    cert = shelf.chain_view(ctx).delivered(product_id, cid) or shelf.chain_view(ctx, fresh=True).delivered(product_id, cid)
    if cert is None:
        raise Conflict(f"the chain certifies no approved version of product {product_id} with CID {cid}: "
                       "the index disagrees with the chain; redeem again, or ask the operator to run `gridmart audit consistency`")
    return cert


def _checked(pieces: Iterator[bytes], sha256: str, encrypted: bool) -> Iterator[bytes]:
    """The pieces, one held back until the whole is checked: plain bytes against the certified
    sha-256, ciphertext by its header (the client checks the plaintext's sha-256). On a
    mismatch the last piece is never sent, so no client takes the bytes for complete."""
    digest, held, first = hashlib.sha256(), None, True
    for piece in pieces:
        if first and encrypted and not piece.startswith(MAGIC):
            raise IntegrityError("stored bytes are not a GridMart encrypted artifact: delivery aborted")
        first = False
        digest.update(piece)
        if held is not None:
            yield held
        held = piece
    if not encrypted and digest.hexdigest() != sha256:
        raise IntegrityError(f"stored bytes hash to {digest.hexdigest()}, the certificate says {sha256}: delivery aborted")
    if held is not None:
        yield held


@router.post("/delivery/{token}/run")
def run(token: str, file: UploadFile = File(...), ctx: Context = Depends(get_ctx),
        session: Session = Depends(get_session)) -> Response:
    """Remote-run: post your data, get the product's result (a CSV table, or a zip of maps)."""
    claims = redemption.open_delivery(ctx, token)
    if claims.get("mode") != "remote-run":
        raise Forbidden("this product is not a remote-run application")
    certified = _certified(ctx, claims["product"], claims["cid"])
    row = session.get(Certificate, certified.id)
    if row is None or shelf.metadata_digest(row.metadata_json) != certified.metadata_hash:
        raise Conflict(f"the index's metadata of certificate {certified.id} does not hash to its certified hash: "
                       "ask the operator to run `gridmart audit consistency`")
    meta = json.loads(row.metadata_json)
    if not meta.get("runner"):
        raise BadRequest("this application runs as compute jobs: POST your input to this link's /jobs")
    result, media_type = runner.run(ctx, session.get(Upload, claims["cid"]), certified.sha256, meta["runner"], file.file)
    return Response(result, media_type=media_type)


@router.get("/usage/{redemption_id}/proof")
def usage_proof(redemption_id: RecordId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
                principal: Principal = Depends(get_principal)) -> dict:
    """A usage record's Merkle proof: for its holder, auditors (AUDITOR role on chain) and the operator."""
    proof = usage.proof_for(session, redemption_id)
    privileged = principal.is_operator or ctx.chain.members.is_active_with_role(principal.address, Role.AUDITOR)
    if proof is None or not (privileged or json.loads(proof["record"]).get("holder") == principal.address):
        # the same answer for a record that is not yours and one not anchored: ids are sequential
        raise NotFound("no anchored usage record of yours with this id (records are anchored in batches: "
                       "retry after the next one; auditors and the operator may read every record)")
    return proof
