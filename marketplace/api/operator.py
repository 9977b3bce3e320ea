"""Operator console: members, listings approval, price bounds, fee income.

Writes and the fee income are the operator's (approve/withdraw: the operator, or withdraw by the
product's publisher: listings.set_status). The member list and a member's page are public:
they show what MemberRegistry publishes on chain (name, identity hash, roles, status, points).
"""
from __future__ import annotations

import base64
import hashlib

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import Session, func, select

from ledger_node.contracts import Role
from ledger_node.errors import ContractRevert

from ..models import Member, Purchase
from ..services import listings
from ..services.auth import Principal, require_operator
from ..services.context import Context
from ..services.errors import BadRequest, Conflict, NotFound
from .deps import get_ctx, get_principal, get_session, sync_index
from .params import UINT16_MAX, CertificateId

router = APIRouter(tags=["operator"])


class AdmitRequest(BaseModel):
    address: str = Field(max_length=42)
    name: str = Field(min_length=1, max_length=200)
    identity_document_b64: str = Field(max_length=20 << 20,
                                       description="the unit's identity document; only its sha-256 goes on chain")
    roles: list[str] = Field(default_factory=lambda: ["publisher", "subscriber"], max_length=3)


class RolesRequest(BaseModel):
    roles: list[str] = Field(max_length=3)


class SuspendRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class BoundsRequest(BaseModel):
    min_price: int = Field(ge=1, le=UINT16_MAX)
    max_price: int = Field(ge=1, le=UINT16_MAX)


def _roles(names: list[str]) -> Role:
    roles = Role(0)
    for name in names:
        try:
            roles |= Role[name.upper()]
        except KeyError:
            raise BadRequest(f"unknown role {name!r}: use publisher, subscriber, auditor") from None
    if not roles:
        raise BadRequest("give at least one role")
    return roles


def _chain(ctx: Context, fn, *args) -> None:
    try:
        with ctx.chain_lock:
            fn(*args)
    except ContractRevert as exc:
        messages = {"AlreadyMember": (Conflict, "this wallet is already a member"),
                    "NotMember": (NotFound, "this wallet is not a member"),
                    "InvalidStatus": (Conflict, "the member is not in a state that allows this"),
                    "InvalidBounds": (BadRequest, "min_price must be ≥ 1 and ≤ max_price")}
        cls, message = messages.get(exc.error_name, (BadRequest, str(exc)))
        raise cls(message) from None


@router.post("/members", status_code=201)
def admit(body: AdmitRequest, ctx: Context = Depends(get_ctx), principal: Principal = Depends(get_principal)) -> dict:
    require_operator(principal)
    try:
        document = base64.b64decode(body.identity_document_b64, validate=True)
    except ValueError:
        raise BadRequest("identity_document_b64 is not valid base64") from None
    address = listings.checksum(body.address)
    _chain(ctx, ctx.chain.members.admit, address, body.name, hashlib.sha256(document).digest(), _roles(body.roles))
    return {"address": address, "points": ctx.chain.points.balance_of(address)}


@router.put("/members/{address}/roles")
def set_roles(address: str, body: RolesRequest, ctx: Context = Depends(get_ctx),
              principal: Principal = Depends(get_principal)) -> dict:
    require_operator(principal)
    _chain(ctx, ctx.chain.members.set_roles, listings.checksum(address), _roles(body.roles))
    return {"address": listings.checksum(address), "roles": body.roles}


@router.post("/members/{address}/suspend")
def suspend(address: str, body: SuspendRequest, ctx: Context = Depends(get_ctx),
            principal: Principal = Depends(get_principal)) -> dict:
    require_operator(principal)
    _chain(ctx, ctx.chain.members.suspend, listings.checksum(address), body.reason)
    return {"address": listings.checksum(address), "status": "suspended"}


@router.post("/members/{address}/reinstate")
def reinstate(address: str, ctx: Context = Depends(get_ctx), principal: Principal = Depends(get_principal)) -> dict:
    require_operator(principal)
    _chain(ctx, ctx.chain.members.reinstate, listings.checksum(address))
    return {"address": listings.checksum(address), "status": "active"}


@router.get("/members")
def list_members(session: Session = Depends(get_session), _=Depends(sync_index)) -> list[Member]:
    return list(session.exec(select(Member).order_by(Member.name)))


@router.get("/members/{address}")
def get_member(address: str, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
               _=Depends(sync_index)) -> dict:
    member = session.get(Member, listings.checksum(address))
    if member is None:
        raise NotFound(f"{address} is not a member")
    return {**member.model_dump(), "points": ctx.chain.points.balance_of(member.address)}


@router.post("/certificates/{cert_id}/approve")
def approve(cert_id: CertificateId, ctx: Context = Depends(get_ctx), principal: Principal = Depends(get_principal)) -> dict:
    listings.set_status(ctx, principal, cert_id, approve=True)
    return {"certificate_id": cert_id, "status": "on-shelf"}


@router.post("/certificates/{cert_id}/withdraw")
def withdraw(cert_id: CertificateId, ctx: Context = Depends(get_ctx), principal: Principal = Depends(get_principal)) -> dict:
    listings.set_status(ctx, principal, cert_id, approve=False)
    return {"certificate_id": cert_id, "status": "off-shelf"}


@router.put("/operator/price-bounds")
def price_bounds(body: BoundsRequest, ctx: Context = Depends(get_ctx), principal: Principal = Depends(get_principal)) -> dict:
    require_operator(principal)
    _chain(ctx, ctx.chain.licensing.set_price_bounds, body.min_price, body.max_price)
    return {"min_price": body.min_price, "max_price": body.max_price}


@router.get("/operator/income")
def income(ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
           principal: Principal = Depends(get_principal), _=Depends(sync_index)) -> dict:
    """The operator's fee income and sales count (the operator only)."""
    require_operator(principal)
    fees, sales = session.exec(select(func.coalesce(func.sum(Purchase.fee), 0), func.count())).one()
    return {"fee_income": fees, "sales": sales, "fee_account": ctx.chain.licensing._call("feeRecipient"),
            "fee_account_balance": ctx.chain.points.balance_of(ctx.chain.licensing._call("feeRecipient")),
            "price_bounds": ctx.chain.licensing.price_bounds()}
