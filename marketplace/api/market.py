"""Publishing, catalogue, orders, licences, points, redemption and delivery."""
from __future__ import annotations

import json

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlmodel import Session, col, or_, select

from ledger_node.contracts import Role

from ..models import Certificate, Licence, Plan, PointMovement, Product, Purchase, Upload
from ..services import listings, redemption, runner, transactions, usage
from ..services.auth import Principal, require_role
from ..services.context import Context
from ..services.errors import BadRequest, Forbidden, NotFound
from ..services.indexer import hexid
from .deps import get_ctx, get_principal, get_session, sync_index

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
    metadata: listings.ListingMetadata
    previous: int = 0


class PublishListing(PrepareListing):
    signature: str
    nonce: int = Field(ge=0)
    deadline: int = Field(ge=0)


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

@router.get("/products")
def catalogue(q: str | None = None, kind: str | None = None, tag: str | None = None, publisher: str | None = None,
              on_shelf: bool = True, session: Session = Depends(get_session), _=Depends(sync_index)) -> list[dict]:
    stmt = select(Product)
    if on_shelf:
        stmt = stmt.where(Product.status == "on-shelf")
    if kind:
        stmt = stmt.where(Product.kind == kind)
    if publisher:
        stmt = stmt.where(Product.publisher == listings.checksum(publisher))
    if tag:
        stmt = stmt.where(col(Product.tags).contains(tag.lower()))
    if q:
        like = f"%{q.lower()}%"
        stmt = stmt.where(or_(col(Product.title).ilike(like), col(Product.description).ilike(like)))
    products = session.exec(stmt.order_by(Product.id)).all()
    if tag:
        products = [p for p in products if tag.lower() in p.tags.split(",")]
    return [_product_summary(session, p) for p in products]


def _product_summary(session: Session, p: Product) -> dict:
    plans = session.exec(select(Plan).where(Plan.product_id == p.id)).all()
    return {**p.model_dump(), "tags": [t for t in p.tags.split(",") if t],
            "plans": [{"kind": pl.kind, "price": pl.price, "uses": pl.uses} for pl in plans]}


@router.get("/products/{product_id}")
def product_page(product_id: int, session: Session = Depends(get_session), _=Depends(sync_index)) -> dict:
    p = session.get(Product, product_id)
    if p is None:
        raise NotFound(f"unknown product {product_id}")
    versions = session.exec(select(Certificate).where(Certificate.product_id == product_id)
                            .order_by(Certificate.version)).all()
    return {**_product_summary(session, p),
            "versions": [{**c.model_dump(exclude={"metadata_json"}), "metadata": json.loads(c.metadata_json)}
                         for c in versions]}


# ----------------------------------------------------------------- orders

class PrepareTx(BaseModel):
    action: str = Field(description="purchase | set_plan | fund_task")
    product_id: int = 0
    plan: str = Field("", description="per-use | week | month | year")
    price: int = 0
    uses: int = 0
    task_id: int = Field(0, description="fund_task: the FederatedRegistry task id")
    amount: int = Field(0, description="fund_task: points added to the reward pool")


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
        if body.price < 0 or body.uses < 0:
            raise BadRequest("price and uses must be ≥ 0")
        args = [body.product_id, int(transactions.plan_kind(body.plan)), body.price, body.uses]
    elif body.action == "fund_task":
        if body.task_id <= 0 or not 0 < body.amount < 2 ** 128:
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
    return [{**lic.model_dump(), "active": not lic.revoked and (lic.expires_at > now or lic.uses_left > 0)}
            for lic in rows]


@router.get("/points")
def my_points(ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
              principal: Principal = Depends(get_principal), _=Depends(sync_index)) -> dict:
    moves = session.exec(select(PointMovement).where(or_(PointMovement.sender == principal.address,
                                                         PointMovement.recipient == principal.address))
                         .order_by(PointMovement.block_number, PointMovement.log_index)).all()
    history = [{"tx_hash": m.tx_hash, "block": m.block_number, "from": m.sender, "to": m.recipient,
                "delta": m.amount if m.recipient == principal.address else -m.amount} for m in moves]
    return {"address": principal.address, "balance": ctx.chain.points.balance_of(principal.address),
            "history": history}


@router.get("/purchases")
def my_purchases(session: Session = Depends(get_session), principal: Principal = Depends(get_principal),
                 _=Depends(sync_index)) -> list[Purchase]:
    return list(session.exec(select(Purchase).where(Purchase.holder == principal.address)))


# ----------------------------------------------------------------- redemption & delivery

class RedeemRequest(BaseModel):
    licence_id: str
    nonce: int = Field(ge=0)
    deadline: int = Field(ge=0)
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
    """Stream the artifact (ciphertext for encrypted products) behind a signed link."""
    claims = redemption.open_delivery(ctx, token)
    if claims.get("mode") == "remote-run":
        raise Forbidden("an application product runs here: POST your data to this link's /run")
    up = session.get(Upload, claims["cid"])
    size = up.size if up and not up.encrypted else None
    headers = {"X-GridMart-CID": claims["cid"], "Content-Disposition": f'attachment; filename="{claims["cid"]}"'}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(ctx.store.get_stream(claims["cid"]), media_type="application/octet-stream", headers=headers)


@router.post("/delivery/{token}/run")
def run(token: str, file: UploadFile = File(...), ctx: Context = Depends(get_ctx),
        session: Session = Depends(get_session)) -> Response:
    """Remote-run: post your data, get the product's result (a CSV table, or a zip of maps)."""
    claims = redemption.open_delivery(ctx, token)
    if claims.get("mode") != "remote-run":
        raise Forbidden("this product is not a remote-run application")
    product = session.get(Product, claims["product"])
    cert = session.get(Certificate, product.latest_certificate) if product else None
    meta = json.loads(cert.metadata_json) if cert else {}
    if not meta.get("runner"):
        raise BadRequest("this application product names no runner")
    result, media_type = runner.run(ctx, session.get(Upload, claims["cid"]), meta["runner"], file.file)
    return Response(result, media_type=media_type)


@router.get("/usage/{redemption_id}/proof")
def usage_proof(redemption_id: int, session: Session = Depends(get_session)) -> dict:
    proof = usage.proof_for(session, redemption_id)
    if proof is None:
        raise NotFound("this usage record is not anchored yet: retry after the next batch")
    return proof
