"""Read-only audit API (prefix /audit): the same checks as `gridmart audit`, as JSON or one HTML page.

Every endpoint is public: it reads only what the chain (and the content store) publishes. The
artifact upload is hashed as it arrives, never held, and limited to audit_max_upload_mb for an
anonymous caller (max_upload_mb for a signed-in active member or the operator).

Only the chain is read (the service's own database is never consulted), except by
/audit/consistency, whose point is to compare the two; /audit/fl also fetches the task
certificate and the initial model it names from the content store.
"""
from __future__ import annotations

import json

from fastapi import APIRouter, Body, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ledger_node.audit import (
    Ledger,
    NotOnChain,
    Report,
    audit_fl,
    audit_licence,
    audit_member,
    audit_product,
    audit_usage,
    parse_licence_id,
    render,
)
from ledger_node.audit.product import Hasher
from ledger_node.contracts import Role

from ..services.auth import authenticate, bearer
from ..services.consistency import audit_consistency
from ..services.context import Context
from ..services.errors import BadRequest, Forbidden, NotFound, ServiceError
from .deps import get_ctx
from .params import CertificateId, ChainTaskId

router = APIRouter(prefix="/audit", tags=["audit"])
Format = Query("json", pattern="^(json|html)$", description="json, or html for a one-page report")
#: bytes handed to the hasher at a time (each in a worker thread, not the event loop)
HASH_BATCH = 1 << 20


class TooLarge(ServiceError):
    status_code = 413


def _ledger(ctx: Context = Depends(get_ctx)) -> Ledger:
    return Ledger(ctx.chain.w3, ctx.chain.book)


def _respond(build, fmt: str) -> Response:
    try:
        report: Report = build()
    except NotOnChain as exc:
        raise NotFound(str(exc)) from None
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    if fmt == "html":
        return HTMLResponse(render([report], "html"))
    return JSONResponse(json.loads(render([report], "json"))[0])


@router.get("/product/{cert_id}")
def product(cert_id: CertificateId, fmt: str = Format, ledger: Ledger = Depends(_ledger)) -> Response:
    return _respond(lambda: audit_product(ledger, cert_id), fmt)


@router.post("/product/{cert_id}/artifact")
async def product_artifact(cert_id: CertificateId, request: Request, fmt: str = Format,
                           ledger: Ledger = Depends(_ledger), ctx: Context = Depends(get_ctx),
                           authorization: str | None = Header(default=None)) -> Response:
    """Check the posted bytes (the raw request body) against certificate `cert_id`: hashed
    (sha-256 and CID) as they arrive, so memory stays at about one HASH_BATCH."""
    limit_mb = await run_in_threadpool(_upload_limit_mb, ctx, authorization)
    limit = limit_mb * 1024 * 1024
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(ctx, limit_mb)
    hasher, batch = Hasher(), bytearray()
    async for chunk in request.stream():
        if hasher.size + len(batch) + len(chunk) > limit:
            raise _too_large(ctx, limit_mb)
        batch += chunk
        if len(batch) >= HASH_BATCH:
            await run_in_threadpool(hasher.update, bytes(batch))
            batch.clear()
    await run_in_threadpool(hasher.update, bytes(batch))
    return await run_in_threadpool(_respond, lambda: audit_product(ledger, cert_id, digest=hasher.digest()), fmt)


def _upload_limit_mb(ctx: Context, authorization: str | None) -> int:
    """max_upload_mb for a signed-in active member (as the chain says) or the operator, else the
    anonymous audit_max_upload_mb; a bad session token is a 401, not a silent downgrade."""
    anonymous = min(ctx.settings.audit_max_upload_mb, ctx.settings.max_upload_mb)
    if not authorization:
        return anonymous
    principal = authenticate(ctx, bearer(authorization))
    if principal.is_operator or ctx.chain.members.is_active_with_role(principal.address, Role(0)):
        return ctx.settings.max_upload_mb
    return anonymous


def _too_large(ctx: Context, limit_mb: int) -> TooLarge:
    more = ("" if limit_mb >= ctx.settings.max_upload_mb
            else f"; signed-in members may post up to {ctx.settings.max_upload_mb} MiB")
    return TooLarge(f"artifact exceeds {limit_mb} MiB{more}: or audit it locally with `gridmart audit product FILE`")


@router.get("/licence/{licence_id}")
def licence(licence_id: str, fmt: str = Format, ledger: Ledger = Depends(_ledger)) -> Response:
    return _respond(lambda: audit_licence(ledger, parse_licence_id(licence_id)), fmt)


@router.post("/usage")
def usage(bundle: dict = Body(...), fmt: str = Format, ledger: Ledger = Depends(_ledger)) -> Response:
    return _respond(lambda: audit_usage(ledger, bundle), fmt)


@router.get("/member/{address}")
def member(address: str, fmt: str = Format, ledger: Ledger = Depends(_ledger)) -> Response:
    return _respond(lambda: audit_member(ledger, address), fmt)


@router.get("/fl/{task_id}")
def fl(task_id: ChainTaskId, fmt: str = Format, ledger: Ledger = Depends(_ledger), ctx: Context = Depends(get_ctx)) -> Response:
    return _respond(lambda: audit_fl(ledger, task_id, ctx.store), fmt)


@router.get("/consistency")
def consistency(fmt: str = Format, store: bool = Query(False, description="also re-hash every certified artifact in "
                                                        "the content store (the operator or an auditor; signed in)"),
                ledger: Ledger = Depends(_ledger), ctx: Context = Depends(get_ctx),
                authorization: str | None = Header(default=None)) -> Response:
    if store:  # reads every stored byte: not for anyone who asks
        principal = authenticate(ctx, bearer(authorization))
        if not (principal.is_operator or ctx.chain.members.is_active_with_role(principal.address, Role.AUDITOR)):
            raise Forbidden("re-hashing the content store is for the operator and auditors")
    return _respond(lambda: audit_consistency(ledger, ctx.engine, ctx.store if store else None), fmt)
