"""Read-only audit API (prefix /audit): the same checks as `gridmart audit`, as JSON or one HTML page.

Only the chain is read (the service's own database is never consulted), except by
/audit/consistency, whose point is to compare the two; /audit/fl also fetches the task
certificate and the initial model it names from the content store.
"""
from __future__ import annotations

import json

from fastapi import APIRouter, Body, Depends, Query, Request
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

from ..services.consistency import audit_consistency
from ..services.context import Context
from ..services.errors import BadRequest, NotFound
from .deps import get_ctx

router = APIRouter(prefix="/audit", tags=["audit"])
Format = Query("json", pattern="^(json|html)$", description="json, or html for a one-page report")


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
def product(cert_id: int, fmt: str = Format, ledger: Ledger = Depends(_ledger)) -> Response:
    return _respond(lambda: audit_product(ledger, cert_id), fmt)


@router.post("/product/{cert_id}/artifact")
async def product_artifact(cert_id: int, request: Request, fmt: str = Format, ledger: Ledger = Depends(_ledger),
                           ctx: Context = Depends(get_ctx)) -> Response:
    """Check the posted bytes (the raw request body) against certificate `cert_id`."""
    limit = ctx.settings.max_upload_mb * 1024 * 1024
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise BadRequest(f"artifact exceeds {ctx.settings.max_upload_mb} MiB: audit it with `gridmart audit product FILE`")
    return await run_in_threadpool(_respond, lambda: audit_product(ledger, cert_id, data=bytes(data)), fmt)


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
def fl(task_id: int, fmt: str = Format, ledger: Ledger = Depends(_ledger), ctx: Context = Depends(get_ctx)) -> Response:
    return _respond(lambda: audit_fl(ledger, task_id, ctx.store), fmt)


@router.get("/consistency")
def consistency(fmt: str = Format, ledger: Ledger = Depends(_ledger), ctx: Context = Depends(get_ctx)) -> Response:
    return _respond(lambda: audit_consistency(ledger, ctx.engine), fmt)
