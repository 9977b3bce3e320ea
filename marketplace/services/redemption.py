"""Redemption and delivery.

Where the licence check comes from, and why:

* per-use plans: from the chain, always. The operator submits the holder's signed voucher
  and Licensing decrements the uses and burns the nonce in one transaction.
* time plans (the hot path): from the index, but only while the index is provably
  current: it has processed every block up to the chain head it observed at most
  GRIDMART_INDEX_MAX_LAG_SECONDS ago (0.5 s), including revocations and suspensions.
  Otherwise the licence, the holder's status and the nonce are read from the chain.
  The voucher's nonce is burnt by a unique (holder, nonce) row in the database.

Every accepted voucher becomes a usage record, committed before the answer (in groups, by
services.recorder) and later anchored in a Merkle batch (services.usage).
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session, select
from starlette.concurrency import run_in_threadpool

from ledger_node import typed_data
from ledger_node.content.encryption import unwrap_key, wrap_key
from ledger_node.contracts import Role, Voucher
from ledger_node.errors import ContractRevert

from ..models import Certificate, Licence, Member, Product, Upload
from . import tokens
from .auth import member_public_key
from .context import Context
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .recorder import MAX_NONCE, Replayed, UsageRow, insert_rows

DELIVERY = "delivery"
REDEEM_ERRORS = {
    "NotAuthorized": (Forbidden, "licence used up or expired: buy the plan again"),
    "NonceAlreadyUsed": (Conflict, "this voucher was already redeemed (replayed nonce): sign a new one"),
    "InvalidSignature": (BadRequest, "rejected signature: the voucher was not signed by the licence holder"),
    "ExpiredSignature": (BadRequest, "the voucher has expired: sign a new one"),
    "NotSubscriber": (Forbidden, "the holder is not an active subscriber"),
    "UnknownLicence": (NotFound, "unknown licence"),
}


UINT256 = 1 << 256


def voucher_from(body: dict[str, Any]) -> Voucher:
    try:
        purpose = body.get("purpose", "download")
        purpose_bytes = bytes.fromhex(purpose[2:]) if purpose.startswith("0x") else purpose.encode()
        if len(purpose_bytes) > 32:
            raise ValueError("purpose longer than 32 bytes")
        if b"\0" in purpose_bytes.rstrip(b"\0"):  # it is stored as text: zero bytes only as padding
            raise ValueError("purpose has a zero byte inside")
        voucher = Voucher(int(body["licence_id"], 0) if isinstance(body["licence_id"], str) else int(body["licence_id"]),
                          int(body["nonce"]), int(body["deadline"]), purpose_bytes.ljust(32, b"\0"))
    except (KeyError, ValueError, TypeError) as exc:
        raise BadRequest(f"malformed voucher ({exc}): expect licence_id, nonce, deadline, purpose") from None
    if not (0 <= voucher.licence_id < UINT256 and 0 <= voucher.deadline < UINT256):
        raise BadRequest("malformed voucher: licence_id and deadline are uint256")
    if not 0 <= voucher.nonce <= MAX_NONCE:  # the usage record keeps it in a 64-bit column
        raise BadRequest(f"malformed voucher: the nonce must be between 0 and {MAX_NONCE}")
    return voucher


def _verify(ctx: Context, voucher: Voucher, signature: str) -> tuple[bytes, str]:
    """(signature bytes, signer) of a voucher that has not expired. The signature rule is the
    contract's (OpenZeppelin ECDSA: v 27/28, low s), so both paths accept the same vouchers."""
    try:
        sig = bytes.fromhex(signature.removeprefix("0x"))
        signer = typed_data.recover("Redeem", voucher.message(), sig, ctx.chain_id, ctx.chain.licensing.address)
    except (ValueError, TypeError):
        raise BadRequest("rejected signature: malformed or not canonical (expect 65 bytes hex, v 27/28, low s)") from None
    if voucher.deadline < time.time():
        raise BadRequest("the voucher has expired: sign a new one")
    return sig, signer


async def redeem_async(ctx: Context, voucher: Voucher, signature: str) -> dict[str, Any]:
    """`redeem` for the event loop. The hot path (time plan, current index: no chain round
    trip) runs inline and waits for its row's commit without blocking the loop; anything
    that needs the chain runs in a worker thread."""
    sig, signer = _verify(ctx, voucher, signature)
    fast = _time_plan_from_index(ctx, None, voucher)
    if fast is None:
        return await run_in_threadpool(_redeem_in_thread, ctx, voucher, signature, (sig, signer))
    holder, product_id = fast
    if signer != holder:
        raise BadRequest("rejected signature: the voucher was not signed by the licence holder")
    row = _usage_row(voucher, holder, product_id, tx=None)
    try:
        if ctx.recorder is not None and ctx.recorder.running:
            record_id = await ctx.recorder.record(row)
        else:
            record_id = _write(ctx, row)
    except Replayed:
        raise Conflict("this voucher was already redeemed (replayed nonce): sign a new one") from None
    return delivery_for(ctx, None, product_id, holder, record_id)


def _redeem_in_thread(ctx: Context, voucher: Voucher, signature: str, verified: tuple[bytes, str]) -> dict:
    with Session(ctx.engine) as session:
        return redeem(ctx, session, voucher, signature, verified)


def redeem(ctx: Context, session: Session, voucher: Voucher, signature: str,
           verified: tuple[bytes, str] | None = None) -> dict[str, Any]:
    """Check the voucher, spend it, record usage; return delivery instructions (blocking:
    may ask the chain)."""
    sig, signer = verified or _verify(ctx, voucher, signature)  # once per request, whichever path answers
    fast = _time_plan_from_index(ctx, session, voucher)
    if fast is not None:
        holder, product_id = fast
        if signer != holder:
            raise BadRequest("rejected signature: the voucher was not signed by the licence holder")
        return delivery_for(ctx, session, product_id, holder, _record(ctx, voucher, holder, product_id, tx=None))
    return _redeem_on_chain(ctx, session, voucher, sig, signer)


def _time_plan_from_index(ctx: Context, session: Session | None, voucher: Voucher) -> tuple[str, int] | None:
    """(holder, product) if the index, complete up to a chain head seen within
    GRIDMART_INDEX_MAX_LAG_SECONDS, shows an active subscriber with a time plan in force.

    The licence and member rows come from a cache valid for one index generation: only the
    indexer changes them, and it bumps the generation after each commit and before it
    announces a newer view, so a cached row is never older than the view it is checked
    against. The expiry is compared with the view's clock on every request."""
    indexer = ctx.indexer
    now = indexer.fresh_view(ctx.settings.index_max_lag_seconds) if indexer else None
    if now is None:
        return None
    generation = indexer.generation  # read before the rows (see GenerationCache)
    licence_hex = f"0x{voucher.licence_id:064x}"
    row = ctx.licence_cache.get(licence_hex, generation)
    if row is None:
        with _session(ctx, session) as s:
            row = s.exec(
                select(Licence.holder, Licence.product_id, Licence.expires_at, Licence.revoked, Member.status,
                       Member.roles)
                .join(Member, Member.address == Licence.holder).where(Licence.id == licence_hex)).first()
        if row is None:
            return None
        row = tuple(row)
        ctx.licence_cache.put(licence_hex, generation, row)
    holder, product_id, expires_at, revoked, status, roles = row
    if revoked or expires_at <= now + 1 or status != "active" or not roles & Role.SUBSCRIBER:
        return None
    return holder, product_id


@contextmanager
def _session(ctx: Context, session: Session | None):
    if session is not None:
        yield session
    else:
        with Session(ctx.engine) as own:
            yield own


def _redeem_on_chain(ctx: Context, session: Session, voucher: Voucher, sig: bytes, signer: str) -> dict[str, Any]:
    try:
        licence = ctx.chain.licensing.licence(voucher.licence_id)
    except ContractRevert:
        raise NotFound(f"unknown licence 0x{voucher.licence_id:064x}") from None
    if signer != licence.holder:
        raise BadRequest("rejected signature: the voucher was not signed by the licence holder")
    if not ctx.chain.members.is_active_with_role(licence.holder, Role.SUBSCRIBER):
        raise Forbidden("the licence holder is not an active subscriber")
    tx = None
    chain_now = ctx.chain.w3.eth.get_block("latest")["timestamp"]
    if licence.expires_at > chain_now:
        if ctx.chain.licensing.nonce_used(licence.holder, voucher.nonce):
            raise Conflict("this voucher was already redeemed (replayed nonce): sign a new one")
    elif licence.uses_left > 0:
        try:
            with ctx.chain_lock:
                receipt = ctx.chain.licensing.redeem(voucher, sig, gas=150_000)
        except ContractRevert as exc:
            cls, message = REDEEM_ERRORS.get(exc.error_name, (BadRequest, str(exc)))
            raise cls(message) from None
        tx = receipt["transactionHash"].to_0x_hex()
    else:
        raise Forbidden("licence used up or expired: buy the plan again")
    record_id = _record(ctx, voucher, licence.holder, licence.product_id, tx)
    return delivery_for(ctx, session, licence.product_id, licence.holder, record_id)


def _usage_row(voucher: Voucher, holder: str, product_id: int, tx: str | None) -> UsageRow:
    record = {"kind": "redeem", "licence": f"0x{voucher.licence_id:064x}", "holder": holder, "product": product_id,
              "nonce": voucher.nonce, "purpose": voucher.purpose.rstrip(b"\0").decode(errors="replace"),
              "at": int(time.time())}
    if tx:
        record["tx"] = tx
    return UsageRow(licence_id=record["licence"], holder=holder, nonce=voucher.nonce, purpose=record["purpose"],
                    on_chain_tx=tx, at=record["at"], record_json=json.dumps(record, sort_keys=True, separators=(",", ":")))


def _write(ctx: Context, row: UsageRow) -> int:
    """Commit one row now (no recorder running: tools and tests that use the services directly)."""
    result = insert_rows(ctx.engine, [row])[0]
    if isinstance(result, Exception):
        raise result
    return result


def _record(ctx: Context, voucher: Voucher, holder: str, product_id: int, tx: str | None) -> int:
    """Write the usage record, committed before this returns; its (holder, nonce) uniqueness
    burns the voucher off chain."""
    row = _usage_row(voucher, holder, product_id, tx)
    try:
        if ctx.recorder is not None and ctx.recorder.running:
            return ctx.recorder.record_sync(row)
        return _write(ctx, row)
    except Replayed:
        raise Conflict("this voucher was already redeemed (replayed nonce): sign a new one") from None


def delivery_for(ctx: Context, session: Session | None, product_id: int, holder: str, redemption_id: int | None) -> dict:
    what = _deliverable(ctx, session, product_id)
    token = tokens.issue(ctx.secret, DELIVERY, ctx.settings.signed_url_ttl_seconds, cid=what["cid"], product=product_id,
                         holder=holder, redemption=redemption_id, mode=what["mode"])
    out: dict[str, Any] = {"product_id": product_id, "certificate_id": what["certificate_id"], "mode": what["mode"],
                           "cid": what["cid"], "sha256": what["sha256"], "url": f"/delivery/{token}",
                           "expires_in": ctx.settings.signed_url_ttl_seconds, "encrypted": what["envelope"] is not None}
    if what["envelope"] is not None and what["mode"] != "remote-run":  # an application's bundle stays here
        content_key = unwrap_key(bytes.fromhex(what["envelope"]), ctx.operator.key)
        with _session(ctx, session) as s:
            out["wrapped_key"] = wrap_key(content_key, member_public_key(s, holder)).hex()
    if what["mode"] == "remote-run":
        out["run_url"] = f"/delivery/{token}/run"
    return out


def _deliverable(ctx: Context, session: Session | None, product_id: int) -> dict[str, Any]:
    """What a product delivers now; cached per index generation, since only chain events change it."""
    generation = ctx.indexer.generation if ctx.indexer else -1
    if generation >= 0:
        what = ctx.delivery_cache.get(product_id, generation)
        if what is not None:
            return what
    with _session(ctx, session) as s:
        product = s.get(Product, product_id)
        if product is None or not product.latest_certificate:
            raise NotFound(f"product {product_id} is not in the index yet: retry in a moment")
        cert = _deliverable_certificate(s, product)
        upload = s.get(Upload, cert.cid)
        what = {"certificate_id": cert.id, "cid": cert.cid, "sha256": cert.sha256, "mode": product.sharing_mode,
                "envelope": upload.key_envelope if upload and upload.encrypted else None}
    if generation >= 0:
        ctx.delivery_cache.put(product_id, generation, what)
    return what


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
