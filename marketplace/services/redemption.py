"""Redemption and delivery.

Licence checks come from the chain, not the index: the licence, the holder's status and
(for per-use plans) the use itself are read or spent on chain, so a stale index can never
authorize anything. Per-use: the operator submits the holder's signed voucher (Licensing
decrements the uses and burns the nonce). Time plans: the voucher is verified here and
`isAuthorized` asked by eth_call; the nonce is burnt by a unique row in the database.
Every accepted voucher becomes a usage record, later anchored in a Merkle batch.
"""
from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from ledger_node import typed_data
from ledger_node.content.encryption import unwrap_key, wrap_key
from ledger_node.contracts import Role, Voucher
from ledger_node.errors import ContractRevert

from ..models import Certificate, Product, Redemption, Upload
from . import tokens
from .auth import member_public_key
from .context import Context
from .errors import BadRequest, Conflict, Forbidden, NotFound

DELIVERY = "delivery"
REDEEM_ERRORS = {
    "NotAuthorized": (Forbidden, "licence used up or expired: buy the plan again"),
    "NonceAlreadyUsed": (Conflict, "this voucher was already redeemed (replayed nonce): sign a new one"),
    "InvalidSignature": (BadRequest, "rejected signature: the voucher was not signed by the licence holder"),
    "ExpiredSignature": (BadRequest, "the voucher has expired: sign a new one"),
    "NotSubscriber": (Forbidden, "the holder is not an active subscriber"),
    "UnknownLicence": (NotFound, "unknown licence"),
}


def voucher_from(body: dict[str, Any]) -> Voucher:
    try:
        purpose = body.get("purpose", "download")
        purpose_bytes = bytes.fromhex(purpose[2:]) if purpose.startswith("0x") else purpose.encode()
        if len(purpose_bytes) > 32:
            raise ValueError("purpose longer than 32 bytes")
        return Voucher(int(body["licence_id"], 0) if isinstance(body["licence_id"], str) else int(body["licence_id"]),
                       int(body["nonce"]), int(body["deadline"]), purpose_bytes.ljust(32, b"\0"))
    except (KeyError, ValueError, TypeError) as exc:
        raise BadRequest(f"malformed voucher ({exc}): expect licence_id, nonce, deadline, purpose") from None


def redeem(ctx: Context, session: Session, voucher: Voucher, signature: str) -> dict[str, Any]:
    """Check the voucher against the chain, spend it, record usage; return delivery instructions."""
    try:
        licence = ctx.chain.licensing.licence(voucher.licence_id)
    except ContractRevert:
        raise NotFound(f"unknown licence 0x{voucher.licence_id:064x}") from None
    try:
        sig = bytes.fromhex(signature.removeprefix("0x"))
        signer = typed_data.recover("Redeem", voucher.message(), sig, ctx.chain_id, ctx.chain.licensing.address)
    except (ValueError, TypeError):
        raise BadRequest("rejected signature: malformed (expect 65 bytes hex)") from None
    if signer != licence.holder:
        raise BadRequest("rejected signature: the voucher was not signed by the licence holder")
    if voucher.deadline < time.time():
        raise BadRequest("the voucher has expired: sign a new one")
    if not ctx.chain.members.is_active_with_role(licence.holder, Role.SUBSCRIBER):
        raise Forbidden("the licence holder is not an active subscriber")

    record = {"kind": "redeem", "licence": f"0x{voucher.licence_id:064x}", "holder": licence.holder,
              "product": licence.product_id, "nonce": voucher.nonce,
              "purpose": voucher.purpose.rstrip(b"\0").decode(errors="replace"), "at": int(time.time())}
    row = Redemption(licence_id=record["licence"], holder=licence.holder, nonce=voucher.nonce,
                     purpose=record["purpose"], at=record["at"], record_json="")
    chain_now = ctx.chain.w3.eth.get_block("latest")["timestamp"]
    if licence.expires_at > chain_now:
        if ctx.chain.licensing.nonce_used(licence.holder, voucher.nonce):
            raise Conflict("this voucher was already redeemed (replayed nonce): sign a new one")
        if not ctx.chain.licensing.is_authorized(licence.holder, licence.product_id):
            raise Forbidden("licence used up or expired: buy the plan again")
    elif licence.uses_left > 0:
        try:
            with ctx.chain_lock:
                receipt = ctx.chain.licensing.redeem(voucher, sig, gas=150_000)
        except ContractRevert as exc:
            cls, message = REDEEM_ERRORS.get(exc.error_name, (BadRequest, str(exc)))
            raise cls(message) from None
        row.on_chain_tx = receipt["transactionHash"].to_0x_hex()
        record["tx"] = row.on_chain_tx
    else:
        raise Forbidden("licence used up or expired: buy the plan again")
    row.record_json = json.dumps(record, sort_keys=True, separators=(",", ":"))
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise Conflict("this voucher was already redeemed (replayed nonce): sign a new one") from None
    return delivery_for(ctx, session, licence.product_id, licence.holder, row.id)


def delivery_for(ctx: Context, session: Session, product_id: int, holder: str, redemption_id: int | None) -> dict:
    product = session.get(Product, product_id)
    if product is None or not product.latest_certificate:
        raise NotFound(f"product {product_id} is not in the index yet: retry in a moment")
    cert = _deliverable_certificate(session, product)
    upload = session.get(Upload, cert.cid)
    token = tokens.issue(ctx.secret, DELIVERY, ctx.settings.signed_url_ttl_seconds, cid=cert.cid, product=product_id,
                         holder=holder, redemption=redemption_id, mode=product.sharing_mode)
    out: dict[str, Any] = {"product_id": product_id, "certificate_id": cert.id, "mode": product.sharing_mode,
                           "cid": cert.cid, "sha256": cert.sha256, "url": f"/delivery/{token}",
                           "expires_in": ctx.settings.signed_url_ttl_seconds, "encrypted": bool(upload and upload.encrypted)}
    if upload and upload.encrypted:
        content_key = unwrap_key(bytes.fromhex(upload.key_envelope), ctx.operator.key)
        out["wrapped_key"] = wrap_key(content_key, member_public_key(session, holder)).hex()
    if product.sharing_mode == "remote-run":
        out["run_url"] = f"/delivery/{token}/run"
    return out


def _deliverable_certificate(session: Session, product: Product) -> Certificate:
    """The newest version that has been on the shelf (a pending new version is not delivered)."""
    cert_id = product.latest_certificate
    while cert_id:
        cert = session.get(Certificate, cert_id)
        if cert is None:
            break
        if cert.status in ("on-shelf", "off-shelf"):
            return cert
        cert_id = cert.previous
    raise NotFound("no approved version of this product exists yet")


def open_delivery(ctx: Context, token: str) -> dict[str, Any]:
    try:
        return tokens.verify(ctx.secret, DELIVERY, token)
    except tokens.TokenError as exc:
        raise Forbidden(f"delivery link {exc}: redeem the licence again") from None
