"""The compute node's HTTP API (docs/compute.md): jobs, their logs and results, datasets.

A service of its own that holds no marketplace key, only its bearer token; every bundle it
receives is unpacked and run in the sandbox (jobs.Workers), never in this process.
``python -m ledger_node.compute.node`` or `gridmart compute serve`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import tempfile
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from . import datasets, sandbox
from .jobs import DONE, FINISHED, Store, Workers
from .policy import Policy
from .settings import ComputeSettings, get_compute_settings

_HEX = r"^[0-9a-f]{64}$"


class DatasetRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cid: str = Field(min_length=10, max_length=100)
    sha256: str = Field(pattern=_HEX)


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: str = Field(min_length=1, max_length=200)
    bundle_sha256: str = Field(pattern=_HEX)
    input_sha256: str | None = Field(default=None, pattern=_HEX)
    dataset: DatasetRef | None = None
    policy: Policy | None = None


def bad(message: str, status: int = 400) -> HTTPException:
    return HTTPException(status, message)


def parse_spec(text: str) -> Spec:
    try:
        return Spec.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "spec"
        if err["type"] == "json_invalid":
            raise bad("spec is not JSON: send the job spec as a JSON text field (docs/compute.md)") from None
        raise bad(f"spec field '{field}': {err['msg']} (docs/compute.md)") from None


async def _save(upload: UploadFile, target: Path, limit: int) -> str:
    """Stream an upload to `target`; its sha-256 (hex)."""
    digest, size = hashlib.sha256(), 0
    with open(target, "wb") as fh:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise bad(f"{upload.filename or 'an upload'} is larger than the node's {limit >> 20} MiB limit", 413)
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def create_app(settings: ComputeSettings | None = None) -> FastAPI:
    settings = settings or get_compute_settings()
    token = settings.require_token().encode()
    home = settings.root
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(home, 0o700)
    (home / "jobs").mkdir(exist_ok=True)
    store = Store(home)
    workers = Workers(settings, store)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        store.recover()
        workers.start()
        yield
        workers.stop()

    def authorized(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
            raise HTTPException(401, "send Authorization: Bearer <GRIDMART_COMPUTE_TOKEN> of this node",
                                headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title="GridMart compute node", lifespan=lifespan, dependencies=[Depends(authorized)])

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        err = exc.errors()[0]
        field = str(err["loc"][-1]) if err["loc"] else "request"
        return JSONResponse({"detail": f"{field}: {err['msg']} (POST /jobs takes multipart spec, bundle, input)"}, 400)

    def job_or_404(job_id: str):
        job = store.get(job_id) if re.fullmatch(r"[0-9a-f]{32}", job_id) else None
        if job is None:
            raise bad(f"no job {job_id} on this node: check the id", 404)
        return job

    @app.get("/health")
    def health():
        return {"ok": True, "isolation": sandbox.isolation().describe(), "workers": settings.workers,
                "queued": store.count("queued")}

    @app.post("/jobs", status_code=201)
    async def submit(spec: str = Form(...), bundle: UploadFile = File(...), input: UploadFile | None = File(None)):
        job_spec = parse_spec(spec)
        existing = store.by_ref(job_spec.ref)
        if existing is not None:
            return JSONResponse({"id": existing.id, "state": existing.state}, 200)
        if (input is None) != (job_spec.input_sha256 is None):
            raise bad("send an input file exactly when spec.input_sha256 is set")
        if job_spec.dataset is not None:
            held = datasets.get(home, job_spec.dataset.cid)
            if held is None:
                raise bad(f"this node does not hold dataset {job_spec.dataset.cid}: add it with "
                          "`gridmart compute add-dataset` on the node")
            if held.sha256 != job_spec.dataset.sha256:
                raise bad(f"dataset {held.cid} has sha-256 {held.sha256}, not the spec's {job_spec.dataset.sha256}")
        staged = Path(tempfile.mkdtemp(dir=home / "jobs", prefix=".incoming-"))
        try:
            limit = settings.max_upload_mb << 20
            if await _save(bundle, staged / "bundle.tar", limit) != job_spec.bundle_sha256:
                raise bad("the bundle's sha-256 differs from spec.bundle_sha256: send the bundle again")
            if input is not None and await _save(input, staged / "input", limit) != job_spec.input_sha256:
                raise bad("the input's sha-256 differs from spec.input_sha256: send the input again")
            (staged / "log").touch()
            job, created = store.create(job_spec.model_dump(), staged)
        finally:
            if staged.exists():
                for path in staged.iterdir():
                    path.unlink()
                staged.rmdir()
        workers.notify()
        return JSONResponse({"id": job.id, "state": job.state}, 201 if created else 200)

    @app.get("/jobs/{job_id}")
    def status(job_id: str):
        return job_or_404(job_id).public()

    @app.get("/jobs/{job_id}/logs")
    def logs(job_id: str, offset: int = Query(0, ge=0)):
        job = job_or_404(job_id)
        with open(store.folder(job.id) / "log", "rb") as fh:
            fh.seek(offset)
            data = fh.read(1 << 20)
        return Response(data, media_type="text/plain; charset=utf-8",
                        headers={"X-Next-Offset": str(offset + len(data))})

    @app.post("/jobs/{job_id}/cancel")
    def cancel(job_id: str):
        job = job_or_404(job_id)
        if job.state in FINISHED:
            raise bad(f"job {job_id} has already finished ({job.state}): there is nothing to cancel", 409)
        job = workers.cancel(job.id)
        return {"id": job.id, "state": job.state}

    @app.get("/jobs/{job_id}/result")
    def result(job_id: str):
        job = job_or_404(job_id)
        if job.state != DONE:
            raise bad(f"job {job_id} is {job.state}: its result is there once it is done", 409)
        output = json.loads(job.output)
        return Response((store.folder(job.id) / "result").read_bytes(), media_type=output["media_type"],
                        headers={"X-Output-Cid": output["cid"], "X-Output-Sha256": output["sha256"]})

    @app.get("/datasets/{cid}")
    def dataset(cid: str):
        held = datasets.get(home, cid)
        if held is None:
            raise bad(f"this node does not hold dataset {cid}", 404)
        return {"cid": held.cid, "sha256": held.sha256, "size": held.size, "publisher": held.publisher}

    return app


def serve(settings: ComputeSettings | None = None) -> None:
    import uvicorn

    settings = settings or get_compute_settings()
    app = create_app(settings)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="warning")


if __name__ == "__main__":
    serve()
