"""Compute jobs: start one with a redeemed licence's link, follow it, fetch its result (docs/compute.md)."""
from __future__ import annotations

from typing import Annotated

from annotated_types import Interval
from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel
from sqlmodel import Session

from ..models import ComputeJob
from ..services import jobs, listings, redemption, usage
from ..services.auth import Principal
from ..services.context import Context
from ..services.errors import NotFound
from .deps import get_ctx, get_principal, get_session
from .params import UINT32_MAX, RecordId

router = APIRouter(tags=["compute"])
JobId = RecordId
ProductRef = Annotated[int, Interval(ge=1, le=UINT32_MAX)]


class HeldData(BaseModel):
    node: str
    cid: str


@router.post("/uploads/held", status_code=201)
def register_held(body: HeldData, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
                  principal: Principal = Depends(get_principal)) -> dict:
    """Register compute-only data your compute node holds (its bytes never come here); then list it."""
    row = listings.register_held(ctx, session, principal, body.node, body.cid)
    return {"cid": row.cid, "sha256": row.sha256, "size": row.size, "held_by": row.held_by}


@router.post("/delivery/{token}/jobs", status_code=201)
def start_job(token: str, input: UploadFile | None = File(None), algorithm: UploadFile | None = File(None),
              algorithm_product: ProductRef | None = Form(None), input_cid: str | None = Form(None, max_length=128),
              ctx: Context = Depends(get_ctx), session: Session = Depends(get_session)) -> dict:
    """Start a job: an application's bundle on your input (a file, or `input_cid`: one of your
    earlier results or uploads), or (compute-only data) your algorithm on the data."""
    claims = redemption.open_delivery(ctx, token)
    job = jobs.submit(ctx, session, claims, input.file if input else None, algorithm.file if algorithm else None,
                      algorithm_product, input_cid)
    return jobs.view(job)


@router.get("/jobs")
def my_jobs(ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
            principal: Principal = Depends(get_principal)) -> list[dict]:
    """Your jobs, and requests to run on your compute-only data."""
    return [jobs.view(job, principal) for job in jobs.mine(session, principal)]


@router.get("/jobs/{job_id}")
def job_status(job_id: JobId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
               principal: Principal = Depends(get_principal)) -> dict:
    jobs.get(ctx, session, principal, job_id)
    return jobs.view(jobs.refresh(ctx, job_id), principal)


@router.get("/jobs/{job_id}/logs", response_class=PlainTextResponse)
def job_logs(job_id: JobId, offset: int = Query(0, ge=0, le=1 << 40), ctx: Context = Depends(get_ctx),
             session: Session = Depends(get_session), principal: Principal = Depends(get_principal)) -> PlainTextResponse:
    text, next_offset = jobs.logs(ctx, session, principal, job_id, offset)
    return PlainTextResponse(text, headers={"X-Next-Offset": str(next_offset)})


@router.post("/jobs/{job_id}/cancel")
def cancel_job(job_id: JobId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
               principal: Principal = Depends(get_principal)) -> dict:
    return jobs.view(jobs.cancel(ctx, session, principal, job_id), principal)


@router.post("/jobs/{job_id}/approve")
def approve_job(job_id: JobId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
                principal: Principal = Depends(get_principal)) -> dict:
    """The data owner lets this algorithm run on its compute-only data."""
    return jobs.view(jobs.decide(ctx, session, principal, job_id, approve=True), principal)


@router.post("/jobs/{job_id}/reject")
def reject_job(job_id: JobId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
               principal: Principal = Depends(get_principal)) -> dict:
    return jobs.view(jobs.decide(ctx, session, principal, job_id, approve=False), principal)


@router.get("/jobs/{job_id}/algorithm")
def requested_algorithm(job_id: JobId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
                        principal: Principal = Depends(get_principal)) -> FileResponse:
    """The data owner reads a requested algorithm (a bundle) before approving it."""
    path = jobs.algorithm_path(ctx, session, principal, job_id)
    return FileResponse(path, media_type="application/octet-stream", filename=f"job-{job_id}-algorithm.tar.gz")


@router.get("/jobs/{job_id}/result")
def job_result(job_id: JobId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
               principal: Principal = Depends(get_principal)) -> FileResponse:
    job, path = jobs.result_path(ctx, session, principal, job_id)
    return FileResponse(path, media_type=job.media_type or "application/octet-stream",
                        filename=f"job-{job_id}-result", headers={"X-GridMart-CID": job.output_cid or "",
                                                                  "X-GridMart-SHA256": job.output_sha256 or ""})


@router.get("/jobs/{job_id}/proof")
def job_proof(job_id: JobId, ctx: Context = Depends(get_ctx), session: Session = Depends(get_session),
              principal: Principal = Depends(get_principal)) -> dict:
    """The job's anchored record and its Merkle proof (`gridmart audit job`)."""
    jobs.get(ctx, session, principal, job_id)
    proof = usage.proof_for(session, job_id, ComputeJob)
    if proof is None:
        raise NotFound(f"job {job_id}'s record is not anchored yet: records are anchored in batches once the job "
                       "has ended; retry after the next one")
    return proof
