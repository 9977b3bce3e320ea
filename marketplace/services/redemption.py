"""Redemption and delivery.

Where the licence check comes from, and why:

* per-use plans: from the chain, always. The operator submits the holder's signed voucher
  and Licensing decrements the uses and burns the nonce in one transaction.
* time plans (the hot path): no chain round trip, but only while the index is provably
  current: it has processed every block up to the chain head it observed at most
  GRIDMART_INDEX_MAX_LAG_SECONDS ago (0.5 s), including revocations and suspensions.
  The licence and the holder's status are still facts read from the chain (cached until
  an indexed event touches them, services.chain_facts), never database rows, which anyone
  with write access to the database could edit. Otherwise everything is read from the chain.

One record of spent vouchers: the unique (holder, nonce) row of the `redemption` table.
Both paths write it before anything else happens: the time-plan path as its usage record,
the per-use path as a reservation (``pending``) before it submits the voucher on chain
(Licensing.redeem takes vouchers from the service's relayer role only, so no voucher
reaches the chain without that row). The indexer copies every on-chain `Redeemed` event
into the same table (settling a reservation, or writing the record a crash lost), so a
voucher spent on one path is refused on the other, and every on-chain redemption has its
usage record. A reservation whose submission surely failed is removed; one whose voucher
expired without reaching the chain is removed by `settle_reservations`.

Every accepted voucher becomes a usage record holding the holder's voucher signature (so an
auditor can check the holder authorised it), committed before the answer (in groups, by
services.recorder) and later anchored in a Merkle batch (services.usage).
"""
from __future__ import annotations

import json
import logging
import time
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session, delete, select
from starlette.concurrency import run_in_threadpool
from web3 import Web3

from ledger_node import typed_data
from ledger_node.content.encryption import decrypt_stream, unwrap_key, wrap_key
from ledger_node.content.errors import ContentError
from ledger_node.contracts import Role, Voucher
from ledger_node.errors import ContractRevert

from ..models import Certificate, Redemption, Upload
from . import catalogue as shelf
from . import tokens
from .auth import member_public_key
from .chain_facts import MISSING, licence_key, member_key
from .context import Context
from .errors import BadRequest, Conflict, Forbidden, NotFound, Unavailable
from .recorder import MAX_NONCE, Replayed, UsageRow, insert_rows

log = logging.getLogger("gridmart.redemption")
REPLAYED = "this voucher was already redeemed (replayed nonce): sign a new one"

DELIVERY = "delivery"
REDEEM_ERRORS = {
    "NotAuthorized": (Forbidden, "licence used up or expired: buy the plan again"),
    "NonceAlreadyUsed": (Conflict, REPLAYED),
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


def _not_the_holder(holder: str, signer: str) -> BadRequest:
    """A voucher signed by a valid key that does not hold the licence: most often a member
    redeeming another member's licence id, so say that rather than "bad signature"."""
    return BadRequest(f"this licence is held by {holder}, not by {signer}, which signed the voucher: redeem one of "
                      "your own licences (`gridmart licences` lists them)")


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
    """`redeem` for the event loop. The hot path (time plan, current index, every fact
    cached: no chain round trip) runs inline and waits for its row's commit without blocking
    the loop; anything that needs the chain runs in a worker thread."""
    sig, signer = _verify(ctx, voucher, signature)
    fast = _time_plan_from_facts(ctx, voucher, fetch=False)
    what = _cached_deliverable(ctx, fast[1]) if isinstance(fast, tuple) else None
    if not isinstance(fast, tuple) or what is None:
        return await run_in_threadpool(_redeem_in_thread, ctx, voucher, signature, (sig, signer))
    holder, product_id = fast
    if signer != holder:
        raise _not_the_holder(holder, signer)
    row = _usage_row(voucher, sig, holder, product_id)
    try:
        if ctx.recorder is not None and ctx.recorder.running:
            record_id = await ctx.recorder.record(row)
        else:
            record_id = _write(ctx, row)
    except Replayed:
        raise Conflict(REPLAYED) from None
    return delivery_for(ctx, None, product_id, holder, record_id, what)


def _redeem_in_thread(ctx: Context, voucher: Voucher, signature: str, verified: tuple[bytes, str]) -> dict:
    with Session(ctx.engine) as session:
        return redeem(ctx, session, voucher, signature, verified)


def redeem(ctx: Context, session: Session, voucher: Voucher, signature: str,
           verified: tuple[bytes, str] | None = None) -> dict[str, Any]:
    """Check the voucher, spend it, record usage; return delivery instructions (blocking:
    may ask the chain)."""
    sig, signer = verified or _verify(ctx, voucher, signature)  # once per request, whichever path answers
    fast = _time_plan_from_facts(ctx, voucher, fetch=True)
    if isinstance(fast, tuple):
        holder, product_id = fast
        if signer != holder:
            raise _not_the_holder(holder, signer)
        what = _deliverable(ctx, session, product_id)  # before the voucher is spent: a refusal costs nothing
        return delivery_for(ctx, session, product_id, holder,
                            _record(ctx, _usage_row(voucher, sig, holder, product_id)), what)
    return _redeem_on_chain(ctx, session, voucher, sig, signer)


def _time_plan_from_facts(ctx: Context, voucher: Voucher, fetch: bool) -> tuple[str, int] | None | object:
    """(holder, product) if the index, complete up to a chain head seen within
    GRIDMART_INDEX_MAX_LAG_SECONDS, stands for a chain on which the holder is an active
    subscriber with a time plan in force; None when the chain path must decide; MISSING when
    a fact is not cached and `fetch` is false; NotFound for a licence the chain does not know.

    The licence and the holder's status are read from the chain (services.chain_facts); the
    indexer evicts them when it indexes an event that may change them, before it announces
    the view the expiry is compared with, so a cached fact is never older than that view."""
    indexer = ctx.indexer
    now = indexer.fresh_view(ctx.settings.index_max_lag_seconds) if indexer else None
    if now is None:
        return None
    facts = indexer.facts
    key = licence_key(voucher.licence_id)
    licence = facts.get(key)
    if licence is MISSING:
        if not fetch:
            return MISSING
        epoch = facts.epoch
        licence = _licence_fact(ctx, voucher.licence_id)
        if licence is None:  # unknown on chain; not cached, so made-up ids cannot crowd out real ones
            raise NotFound(f"unknown licence 0x{voucher.licence_id:064x}")
        facts.put(key, licence, epoch)
    holder, product_id, expires_at = licence
    if expires_at <= now + 1:
        return None
    active = facts.get(member_key(holder))
    if active is MISSING:
        if not fetch:
            return MISSING
        active = facts.get_or_fetch(member_key(holder),
                                    lambda: ctx.chain.members.is_active_with_role(holder, Role.SUBSCRIBER))
    return (holder, product_id) if active else None


def _licence_fact(ctx: Context, licence_id: int) -> tuple[str, int, int] | None:
    try:
        licence = ctx.chain.licensing.licence(licence_id)
    except ContractRevert:
        return None
    return licence.holder, licence.product_id, licence.expires_at


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
        raise _not_the_holder(licence.holder, signer)
    if not ctx.chain.members.is_active_with_role(licence.holder, Role.SUBSCRIBER):
        raise Forbidden("the licence holder is not an active subscriber")
    chain_now = ctx.chain.w3.eth.get_block("latest")["timestamp"]
    if licence.expires_at <= chain_now and licence.uses_left == 0:
        raise Forbidden("licence used up or expired: buy the plan again")
    what = _deliverable(ctx, session, licence.product_id)  # before a use is spent: a refusal costs nothing
    if licence.expires_at > chain_now:
        if ctx.chain.licensing.nonce_used(licence.holder, voucher.nonce):
            raise Conflict(REPLAYED)
        record_id = _record(ctx, _usage_row(voucher, sig, licence.holder, licence.product_id))
    else:
        record_id = _spend_use_on_chain(ctx, voucher, sig, licence.holder, licence.product_id)
    return delivery_for(ctx, session, licence.product_id, licence.holder, record_id, what)


def _spend_use_on_chain(ctx: Context, voucher: Voucher, sig: bytes, holder: str, product_id: int) -> int:
    """Reserve the voucher's row, then submit it on chain; the row is the spent-voucher record
    both paths check, so it exists before the chain can have seen the voucher."""
    record_id = _record(ctx, _usage_row(voucher, sig, holder, product_id, pending=True))
    try:
        with ctx.chain_lock:
            receipt = ctx.chain.licensing.redeem(voucher, sig, gas=150_000)
    except ContractRevert as exc:  # surely not spent: the reservation goes
        _drop_reservation(ctx, record_id)
        cls, message = REDEEM_ERRORS.get(exc.error_name, (BadRequest, str(exc)))
        raise cls(message) from None
    except Exception:  # noqa: BLE001 - it may have reached the chain: the indexer settles the reservation
        log.exception("submitting voucher %s/%d failed", holder, voucher.nonce)
        raise Unavailable("the chain did not confirm this redemption; it is settled once the chain answers: "
                          "check `gridmart licences` before signing a new voucher") from None
    with Session(ctx.engine) as session:
        settle(session, holder, voucher.nonce, receipt["transactionHash"].to_0x_hex())
        session.commit()
    return record_id


def settle(session: Session, holder: str, nonce: int, tx: str) -> bool:
    """Mark the reservation of (holder, nonce) as spent on chain by `tx`; its usage record then
    names the transaction. Idempotent; False if there is no such reservation."""
    row = session.exec(select(Redemption).where(Redemption.holder == holder, Redemption.nonce == nonce,
                                                Redemption.pending == True)).first()  # noqa: E712
    if row is None:
        return False
    record = json.loads(row.record_json)
    record["tx"] = tx
    row.record_json, row.on_chain_tx, row.pending = _canonical(record), tx, False
    session.add(row)
    return True


def _drop_reservation(ctx: Context, record_id: int) -> None:
    with Session(ctx.engine) as session:
        session.exec(delete(Redemption).where(Redemption.id == record_id, Redemption.pending == True))  # noqa: E712
        session.commit()


def settle_reservations(ctx: Context, older_than: float = 60.0) -> tuple[int, int]:
    """Resolve reservations a crash left behind: one whose voucher reached the chain is settled
    with its transaction; one whose voucher expired unspent can never reach it and is removed
    (its voucher was not used). Returns (settled, removed)."""
    settled = removed = 0
    with Session(ctx.engine) as session:
        rows = session.exec(select(Redemption).where(Redemption.pending == True,  # noqa: E712
                                                     Redemption.at < time.time() - older_than)).all()
        if not rows:
            return 0, 0
        chain_now = ctx.chain.w3.eth.get_block("latest")["timestamp"]
        for row in rows:
            if ctx.chain.licensing.nonce_used(row.holder, row.nonce):
                tx = _redeemed_tx(ctx, row.holder, row.nonce)
                if tx is not None and settle(session, row.holder, row.nonce, tx):
                    settled += 1
            elif json.loads(row.record_json).get("voucher", {}).get("deadline", 0) < chain_now:
                session.delete(row)
                removed += 1
        session.commit()
    return settled, removed


def _redeemed_tx(ctx: Context, holder: str, nonce: int) -> str | None:
    logs = ctx.chain.licensing.contract.events.Redeemed().get_logs(
        from_block=ctx.chain.book.deployed_at_block, argument_filters={"holder": holder})
    return next((log["transactionHash"].to_0x_hex() for log in logs if log["args"]["nonce"] == nonce), None)


def usage_record(voucher: Voucher, sig: bytes, holder: str, product_id: int, at: int, tx: str | None = None) -> dict:
    """The usage record of one redemption. It carries the voucher and the holder's signature,
    so anyone can check from the anchored batch alone that the holder authorised it."""
    record = {"kind": "redeem", "licence": f"0x{voucher.licence_id:064x}", "holder": holder, "product": product_id,
              "nonce": voucher.nonce, "purpose": voucher.purpose.rstrip(b"\0").decode(errors="replace"), "at": at,
              "voucher": {"licenceId": f"0x{voucher.licence_id:064x}", "nonce": voucher.nonce,
                          "deadline": voucher.deadline, "purpose": "0x" + voucher.purpose.hex()},
              "signature": "0x" + sig.hex()}
    if tx:
        record["tx"] = tx
    return record


def _canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def _usage_row(voucher: Voucher, sig: bytes, holder: str, product_id: int, pending: bool = False) -> UsageRow:
    record = usage_record(voucher, sig, holder, product_id, int(time.time()))
    return UsageRow(licence_id=record["licence"], holder=holder, nonce=voucher.nonce, purpose=record["purpose"],
                    on_chain_tx=None, at=record["at"], record_json=_canonical(record), pending=pending)


def _write(ctx: Context, row: UsageRow) -> int:
    """Commit one row now (no recorder running: tools and tests that use the services directly)."""
    result = insert_rows(ctx.engine, [row])[0]
    if isinstance(result, Exception):
        raise result
    return result


def _record(ctx: Context, row: UsageRow) -> int:
    """Write the usage record, committed before this returns; its (holder, nonce) uniqueness
    burns the voucher off chain."""
    try:
        if ctx.recorder is not None and ctx.recorder.running:
            return ctx.recorder.record_sync(row)
        return _write(ctx, row)
    except Replayed:
        raise Conflict(REPLAYED) from None


def delivery_for(ctx: Context, session: Session | None, product_id: int, holder: str, redemption_id: int | None,
                 what: dict[str, Any] | None = None) -> dict:
    what = what or _deliverable(ctx, session, product_id)
    if what["mode"] == "compute-only":  # nothing to fetch, and the CID is not the subscriber's to know
        token = tokens.issue(ctx.secret, DELIVERY, ctx.settings.signed_url_ttl_seconds, product=product_id,
                             holder=holder, redemption=redemption_id, mode=what["mode"])
        return {"product_id": product_id, "certificate_id": what["certificate_id"], "mode": what["mode"],
                "jobs_url": f"/delivery/{token}/jobs", "expires_in": ctx.settings.signed_url_ttl_seconds}
    token = tokens.issue(ctx.secret, DELIVERY, ctx.settings.signed_url_ttl_seconds, cid=what["cid"], product=product_id,
                         holder=holder, redemption=redemption_id, mode=what["mode"])
    out: dict[str, Any] = {"product_id": product_id, "certificate_id": what["certificate_id"], "mode": what["mode"],
                           "cid": what["cid"], "sha256": what["sha256"], "url": f"/delivery/{token}",
                           "expires_in": ctx.settings.signed_url_ttl_seconds, "encrypted": what["envelope"] is not None,
                           "size": what.get("size")}
    if what["envelope"] is not None and what["mode"] != "remote-run":  # an application's bundle stays here
        content_key = unwrap_key(bytes.fromhex(what["envelope"]), ctx.operator.key)
        with _session(ctx, session) as s:
            out["wrapped_key"] = wrap_key(content_key, _holder_public_key(s, holder)).hex()
    if what["mode"] == "remote-run" and what.get("bundle"):
        out["jobs_url"] = f"/delivery/{token}/jobs"
    elif what["mode"] == "remote-run":
        out["run_url"] = f"/delivery/{token}/run"
    return out


def _holder_public_key(session: Session, holder: str) -> str:
    """The key the content key is wrapped to: learnt at sign-in, kept in the database, so
    checked against the holder's address (a swapped row would hand the key to someone else)."""
    key = member_public_key(session, holder)
    raw = bytes.fromhex(key.removeprefix("0x"))
    raw = raw[1:] if len(raw) == 65 else raw
    if Web3.to_checksum_address(Web3.keccak(raw)[-20:]) != holder:
        raise Unavailable(f"the public key the index holds for {holder} is not that wallet's: sign in again")
    return key


def _cached_deliverable(ctx: Context, product_id: int) -> dict[str, Any] | None:
    value = ctx.indexer.products.get(product_id) if ctx.indexer else MISSING
    return None if value is MISSING else value


def _deliverable(ctx: Context, session: Session | None, product_id: int) -> dict[str, Any]:
    """What a product delivers now, read from the chain (cached until a product event)."""
    if ctx.indexer is None:
        return _deliverable_from_chain(ctx, session, product_id)
    return ctx.indexer.products.get_or_fetch(product_id, lambda: _deliverable_from_chain(ctx, session, product_id))


def _deliverable_from_chain(ctx: Context, session: Session | None, product_id: int) -> dict[str, Any]:
    """The newest version that has been on the shelf (a pending new version is not delivered):
    its CID and sha-256 from the chain (services.catalogue's view of its events); its sharing
    mode from the index's metadata, accepted only if it hashes to the certificate's on-chain
    metadata hash."""
    view = shelf.chain_view(ctx)
    if view.status(product_id) is None:
        raise NotFound(f"unknown product {product_id}")
    cert = view.deliverable(product_id)
    if cert is None:
        raise NotFound("no approved version of this product exists yet")
    with _session(ctx, session) as s:
        row = s.get(Certificate, cert.id)
        if row is None:
            raise NotFound(f"product {product_id} is not in the index yet: retry in a moment")
        if shelf.metadata_digest(row.metadata_json) != cert.metadata_hash:
            raise Unavailable(f"the index's metadata of certificate {cert.id} does not match its on-chain hash: "
                              "the operator must repair the index (gridmart audit consistency)")
        upload = s.get(Upload, cert.cid)
        envelope = upload.key_envelope if upload and upload.encrypted else None
        size = upload.size if upload else None
    if envelope is not None:
        _check_envelope(ctx, cert.id, cert.cid, envelope)
    meta = json.loads(row.metadata_json)
    mode = shelf.shown_fields(meta)["sharing_mode"]
    return {"certificate_id": cert.id, "cid": cert.cid, "sha256": cert.sha256, "mode": mode, "envelope": envelope,
            "size": size,
            # a remote-run product that names no built-in runner is a bundle: its jobs run on a compute node
            "bundle": mode == "remote-run" and not meta.get("runner"), "compute": meta.get("compute")}


def _check_envelope(ctx: Context, cert_id: int, cid: str, envelope: str) -> None:
    """The content key in the index's envelope must open this artifact: an envelope row moved
    from another product would hand that product's key to this one's buyers."""
    try:
        plain = decrypt_stream(ctx.store.get_stream(cid), unwrap_key(bytes.fromhex(envelope), ctx.operator.key))
        next(plain, None)  # the first segment authenticates the key (AES-GCM)
        plain.close()
    except (ContentError, ValueError) as exc:
        raise Unavailable(f"the index's key envelope for certificate {cert_id} does not open its artifact ({exc}): "
                          "the operator must repair the index") from None


def open_delivery(ctx: Context, token: str) -> dict[str, Any]:
    try:
        return tokens.verify(ctx.secret, DELIVERY, token)
    except tokens.TokenError as exc:
        raise Forbidden(f"delivery link {exc}: redeem the licence again") from None
