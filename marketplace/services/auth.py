"""SIWE sign-in, sessions, and role checks against the chain."""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from urllib.parse import urlsplit

from sqlmodel import Session, delete, update
from web3 import Web3

from ledger_node.contracts import Role

from ..models import SiweNonce, WalletKey
from . import siwe, tokens
from .context import Context
from .errors import BadRequest, Forbidden, Unauthenticated

SESSION = "session"


@dataclass(frozen=True)
class Principal:
    address: str
    is_operator: bool


def new_nonce(ctx: Context, session: Session) -> str:
    """A fresh nonce row; expired rows go at the same time, so the table holds at most
    (sign-in rate limit x siwe_ttl_seconds) rows per client."""
    now = int(time.time())
    session.exec(delete(SiweNonce).where(SiweNonce.issued_at < now - ctx.settings.siwe_ttl_seconds))
    nonce = secrets.token_hex(12)
    session.add(SiweNonce(nonce=nonce, issued_at=now))
    session.commit()
    return nonce


def build_message(ctx: Context, address: str, nonce: str, statement: str = "Sign in to GridMart.") -> str:
    """A ready-to-sign EIP-4361 message for `address` (clients may also build their own)."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    return siwe.SiweMessage(
        domain=ctx.settings.domain, address=Web3.to_checksum_address(address), statement=statement,
        uri=f"http://{ctx.settings.domain}", chain_id=ctx.chain_id, nonce=nonce,
        issued_at=now.isoformat().replace("+00:00", "Z"),
        expiration_time=(now + timedelta(seconds=ctx.settings.siwe_ttl_seconds)).isoformat().replace("+00:00", "Z"),
    ).to_text()


def sign_in(ctx: Context, session: Session, message: str, signature: str) -> tuple[str, Principal]:
    """Verify a signed SIWE message; returns a session token."""
    try:
        msg = siwe.SiweMessage.parse(message)
        now = datetime.now(timezone.utc)
        if msg.domain != ctx.settings.domain:
            raise Unauthenticated(f"SIWE domain {msg.domain!r} is not this site ({ctx.settings.domain})")
        if not _on_site(msg.uri, ctx.settings.domain):
            raise Unauthenticated(f"SIWE URI {msg.uri!r} is not on this site ({ctx.settings.domain}): "
                                  "sign a message whose URI is this site's address")
        if msg.address != Web3.to_checksum_address(msg.address):
            raise Unauthenticated("SIWE address must be EIP-55 checksummed (EIP-4361)")
        if msg.chain_id != ctx.chain_id:
            raise Unauthenticated(f"SIWE chain id {msg.chain_id} is not this marketplace's chain ({ctx.chain_id})")
        if msg.expiration_time and siwe.parse_time(msg.expiration_time) <= now:
            raise Unauthenticated("SIWE message has expired: sign a new one")
        if msg.not_before and siwe.parse_time(msg.not_before) > now:
            raise Unauthenticated("SIWE message is not valid yet (Not Before)")
        issued = siwe.parse_time(msg.issued_at)
        if issued > now + timedelta(seconds=60) or issued < now - timedelta(seconds=ctx.settings.siwe_ttl_seconds):
            raise Unauthenticated("SIWE Issued At is too old or in the future: sign a new message")
        address, public_key = siwe.recover(message, signature)
    except siwe.SiweError as exc:
        raise Unauthenticated(str(exc)) from None
    if address != Web3.to_checksum_address(msg.address):
        raise Unauthenticated("the signature was not made by the address in the message")
    row = session.get(SiweNonce, msg.nonce)
    if row is None or row.issued_at < time.time() - ctx.settings.siwe_ttl_seconds:
        raise Unauthenticated("unknown or expired nonce: ask /auth/nonce for a new one")
    consumed = session.exec(update(SiweNonce).where(SiweNonce.nonce == msg.nonce, SiweNonce.used == False)  # noqa: E712
                            .values(used=True))
    if consumed.rowcount != 1:
        session.rollback()
        raise Unauthenticated("this nonce was already used: ask /auth/nonce for a new one")
    session.merge(WalletKey(address=address, public_key=public_key))
    session.commit()
    principal = Principal(address, address == ctx.operator.address)
    token = tokens.issue(ctx.secret, SESSION, ctx.settings.session_ttl_seconds, sub=address)
    return token, principal


def _on_site(uri: str, domain: str) -> bool:
    """EIP-4361: the URI is the resource the user signs in to; it must be on this site."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc == domain


def public_key_of(session: Session, address: str) -> str | None:
    row = session.get(WalletKey, address)
    return row.public_key if row else None


def bearer(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None when there is none)."""
    token = (authorization or "").removeprefix("Bearer ").strip()
    return token or None


def authenticate(ctx: Context, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("sign in first: POST /auth/nonce, sign the message, POST /auth/login")
    try:
        claims = tokens.verify(ctx.secret, SESSION, token)
    except tokens.TokenError as exc:
        raise Unauthenticated(f"session {exc}: sign in again") from None
    address = claims["sub"]
    return Principal(address, address == ctx.operator.address)


def require_role(ctx: Context, principal: Principal, role: Role) -> None:
    """The chain decides: the caller must be an active member holding `role` (never the Member
    table, which anyone with database access could edit; a session carries only the address)."""
    if not ctx.chain.members.is_active_with_role(principal.address, role):
        raise Forbidden(f"{principal.address} is not an active member with the {role.name.lower()} role")


def require_operator(principal: Principal) -> None:
    if not principal.is_operator:
        raise Forbidden("only the operator may do this")


def member_public_key(session: Session, address: str) -> str:
    key = public_key_of(session, address)
    if key is None:
        raise BadRequest(f"no public key known for {address}: sign in once so the service learns it")
    return key

