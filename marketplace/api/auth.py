"""Sign-In with Ethereum. Nonce and login are public and rate-limited per client address
(api/limits.py); /auth/me needs a session."""
from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from sqlmodel import Session

from ..services import auth
from ..services.context import Context
from ..services.listings import checksum
from .deps import get_ctx, get_principal, get_session

router = APIRouter(prefix="/auth", tags=["auth"])


class NonceRequest(BaseModel):
    address: str | None = Field(None, pattern=r"^0x[0-9a-fA-F]{40}$")


class LoginRequest(BaseModel):
    message: str = Field(max_length=8192)
    signature: str = Field(max_length=200)


@router.post("/nonce")
def nonce(body: NonceRequest, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session)) -> dict:
    """A single-use nonce; with `address`, also a ready-to-sign EIP-4361 message."""
    value = auth.new_nonce(ctx, session)
    out = {"nonce": value, "domain": ctx.settings.domain, "chain_id": ctx.chain_id}
    if body.address:
        out["message"] = auth.build_message(ctx, checksum(body.address), value)
    return out


@router.post("/login")
def login(body: LoginRequest, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session)) -> dict:
    """Verify the signed message; returns a short-lived bearer token."""
    token, principal = auth.sign_in(ctx, session, body.message, body.signature)
    return {"token": token, "address": principal.address, "is_operator": principal.is_operator,
            "expires_in": ctx.settings.session_ttl_seconds}


@router.get("/me")
def me(principal: auth.Principal = Depends(get_principal)) -> dict:
    return {"address": principal.address, "is_operator": principal.is_operator}
