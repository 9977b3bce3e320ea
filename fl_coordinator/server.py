"""HTTP face of the coordinator: a FastAPI app (mountable by the marketplace) and a runner.

Routers stay thin: authentication (auth.Verifier), JSON/base64 decoding and
status codes here; every rule lives in service.TaskService.
Run: python -m fl_coordinator.server --host 127.0.0.1 --port 8765 --home DIR
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import logging
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path as PathParam, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from fl_coordinator.auth import Verifier, target
from fl_coordinator.errors import FLError, Refused
from fl_coordinator.ledger import InMemoryLedger
from fl_coordinator.plot import render
from fl_coordinator.service import TaskService

TICK_SECONDS = 0.05
MAX_WAIT_SECONDS = 30.0  # the longest a long poll is held
#: request bodies are read whole (the signature covers their hash), so each route caps its size:
#: small JSON requests, a task (its weights as JSON plus the public HE context); an update's
#: bound comes from its task's size (TaskService.max_update_bytes)
MAX_JSON_BYTES = 1 << 20
MAX_CONTEXT_BYTES = 16 << 20
JSON_BYTES_PER_WEIGHT = 32
UINT16_MAX, UINT32_MAX = 2 ** 16 - 1, 2 ** 32 - 1
TaskId = Annotated[str, PathParam(pattern=r"^0[xX][0-9a-fA-F]{64}$",
                                  description="0x + the sha-256 of the task certificate")]
RoundNo = Annotated[int, PathParam(ge=1, le=UINT16_MAX)]
log = logging.getLogger(__name__)


class CreateTask(BaseModel):
    name: str
    architecture: dict
    initial_weights: list[float]
    backend: str = "ckks"
    public_context: str  # base64
    rounds: int = Field(ge=1, le=10_000)
    min_partners: int = Field(ge=1, le=10_000)
    round_seconds: float = Field(gt=0, le=30 * 86400)
    training: dict = Field(default_factory=dict)
    dp: dict | None = None
    seed: int = Field(0, ge=0, le=UINT32_MAX)
    product_id: int = Field(0, ge=0, le=UINT32_MAX, description="your tool product this trains a new version of")


class Join(BaseModel):
    public_key: str


class Keys(BaseModel):
    envelopes: dict[str, str]  # address -> base64 envelope


class Metrics(BaseModel):
    metrics: dict[str, Any]


class Finalize(BaseModel):
    certificate_id: int = Field(gt=0, le=UINT32_MAX, description="certificate of the final model's product version")


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(f"{what} is not valid base64") from None


async def _body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    too_big = Refused(f"request body over {limit} bytes: this coordinator refuses it", 413)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


async def _verified(request: Request, limit: int = MAX_JSON_BYTES) -> tuple[str, bytes]:
    """(signer, body): the wallet signature checked, on a body of at most `limit` bytes."""
    body = await _body(request, limit)
    signer = request.app.state.fl_verifier.verify(request.method, target(request.url.path, request.url.query),
                                                  body, request.headers)
    return signer, body


async def _signed(request: Request, schema: type[BaseModel] | None = None, limit: int = MAX_JSON_BYTES):
    """Verify the wallet signature; return (signer, parsed body)."""
    signer, body = await _verified(request, limit)
    return signer, (None if schema is None else _parse(body, schema))


def _parse(body: bytes, schema: type[BaseModel]):
    try:
        return schema.model_validate(json.loads(body or b"{}"))
    except (ValidationError, json.JSONDecodeError) as exc:
        first = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
        raise Refused(f"bad request body: {'.'.join(map(str, first['loc']))} {first['msg']}") from None


async def _until(service: TaskService, ready, timeout: float) -> None:
    """Return once `ready()` is true (checked after each state change) or `timeout` passes."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:  # runs in the thread that changed the state
        try:
            loop.call_soon_threadsafe(changed.set)
        except RuntimeError:  # the loop is closed (shutdown)
            pass

    stop = service.watch(wake)
    deadline = loop.time() + timeout
    try:
        while True:
            changed.clear()  # before the check: a change after it sets the event again
            if ready() or loop.time() >= deadline:
                return
            try:
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                return
    finally:
        stop()


def build_router() -> APIRouter:
    r = APIRouter(prefix="/fl")

    def svc(request: Request) -> TaskService:
        return request.app.state.fl_service

    @r.get("/health")
    def health():
        return {"ok": True}

    @r.get("/tasks")
    def tasks(request: Request):
        return [{"task_id": t.task_id, "name": t.name, "status": t.status}
                for t in list(svc(request).tasks.values())]  # (a C-level copy: tasks may be created meanwhile)

    @r.post("/tasks")
    async def create(request: Request):
        """Open a task: the signer must be allowed to (checked before the body is parsed) and the
        model at most the coordinator's max_weights (checked before it is built)."""
        service = svc(request)
        # the claimed signer may open tasks (on chain) before a byte of the body is read; the
        # signature then has to be that signer's
        await run_in_threadpool(service.check_owner, request.app.state.fl_verifier.claimed(request.headers))
        owner, raw = await _verified(request, MAX_CONTEXT_BYTES + JSON_BYTES_PER_WEIGHT * service.max_weights)
        body = _parse(raw, CreateTask)
        task = await run_in_threadpool(lambda: service.create_task(
            owner, name=body.name, architecture=body.architecture, initial_weights=body.initial_weights,
            backend=body.backend, public_context=_b64(body.public_context, "public_context"),
            rounds=body.rounds, min_partners=body.min_partners, round_seconds=body.round_seconds,
            training=body.training, dp=body.dp, seed=body.seed, product_id=body.product_id))
        return task.view()

    @r.get("/tasks/{task_id}")
    def show(task_id: TaskId, request: Request):
        return svc(request).task(task_id).view()

    @r.get("/tasks/{task_id}/ledger")
    def ledger(task_id: TaskId, request: Request):
        """What the contribution ledger (the chain, or memory without one) holds about the task."""
        task = svc(request).task(task_id)
        return svc(request).ledger.view(task.task_id)

    @r.get("/tasks/{task_id}/blobs/{cid}")
    def blob(task_id: TaskId, cid: str, request: Request):
        return Response(svc(request).blob(task_id, cid), media_type="application/octet-stream")

    @r.get("/tasks/{task_id}/plot.png")
    def plot(task_id: TaskId, request: Request, metric: str = "auc"):
        return Response(render(svc(request).task(task_id).view(), metric), media_type="image/png")

    @r.post("/tasks/{task_id}/join")
    async def join(task_id: TaskId, request: Request):
        caller, body = await _signed(request, Join)
        return svc(request).join(task_id, caller, body.public_key).view()

    @r.post("/tasks/{task_id}/keys")
    async def keys(task_id: TaskId, request: Request):
        caller, body = await _signed(request, Keys)
        envs = {a: _b64(e, f"envelope for {a}") for a, e in body.envelopes.items()}
        return svc(request).put_envelopes(task_id, caller, envs).view()

    @r.post("/tasks/{task_id}/key")
    async def key(task_id: TaskId, request: Request):
        caller, _ = await _signed(request)
        return {"envelope": base64.b64encode(svc(request).envelope(task_id, caller)).decode()}

    @r.post("/tasks/{task_id}/start")
    async def start(task_id: TaskId, request: Request):
        caller, _ = await _signed(request)
        return svc(request).start(task_id, caller).view()

    @r.post("/tasks/{task_id}/finalize")
    async def finalize(task_id: TaskId, request: Request):
        caller, body = await _signed(request, Finalize)
        task = await run_in_threadpool(svc(request).finalize, task_id, caller, body.certificate_id)
        return task.view()

    @r.post("/tasks/{task_id}/rounds/{round_no}/update")
    async def update(task_id: TaskId, round_no: RoundNo, request: Request,
                     n_samples: int = Query(ge=1, le=10 ** 9, description="the update's sample count")):
        """Body: the encrypted update (application/octet-stream); n_samples: its sample count."""
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/octet-stream":
            raise Refused("send the encrypted update as the raw body (Content-Type: application/octet-stream) "
                          "with ?n_samples=", 415)
        svc(request).check_partner(task_id, request.app.state.fl_verifier.claimed(request.headers))  # before the body
        caller, update = await _verified(request, svc(request).max_update_bytes(task_id))
        rnd = await run_in_threadpool(svc(request).submit, task_id, round_no, caller, update, n_samples)
        return {"accepted": True, "round": round_no, "state": rnd.state}

    @r.get("/tasks/{task_id}/rounds/{round_no}")
    async def round_view(task_id: TaskId, round_no: RoundNo, request: Request,
                         wait: float = Query(0, ge=0, le=MAX_WAIT_SECONDS,
                                             description="long poll: hold the answer up to this many seconds "
                                                         "until the round's state is no longer `seen`"),
                         seen: str = Query("", description="the state the caller knows ('': not opened yet)")):
        service = svc(request)
        task = service.task(task_id)

        def current() -> dict | None:
            rnd = task.round(round_no)
            return None if rnd is None else {**rnd.view(), "task_status": task.status}

        def moved() -> bool:
            view = current()
            return (view["state"] if view else "") != seen or task.status not in ("enrolling", "running")

        if wait > 0:
            await _until(service, moved, wait)
        view = current()
        if view is None:
            raise Refused(f"round {round_no} has not been opened (task is {task.status})", 404)
        return view

    @r.post("/tasks/{task_id}/rounds/{round_no}/metrics")
    async def metrics(task_id: TaskId, round_no: RoundNo, request: Request):
        caller, body = await _signed(request, Metrics)
        svc(request).report_metrics(task_id, round_no, caller, body.metrics)
        return {"ok": True}

    return r


class DeadlineTicker:
    """Closes rounds at their deadline. A mounted sub-app gets no lifespan events,
    so a host app (the marketplace) starts and stops this in its own lifespan."""

    def __init__(self, service: TaskService, period: float = TICK_SECONDS):
        self.service, self.period = service, period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.service.tick()
            except Exception:  # keep closing other rounds; the failure is logged
                log.exception("deadline tick failed")

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fl-deadlines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=2)


async def _fl_error(request: Request, exc: FLError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=getattr(exc, "status", 400))


def install(app: FastAPI) -> None:
    """Add the coordinator's routes (under /fl) and error mapping to `app` (this one or the
    marketplace's); the owner of `app` sets it up with bind() before serving."""
    app.add_exception_handler(FLError, _fl_error)
    app.include_router(build_router())


def bind(app: FastAPI, service: TaskService, verifier: Verifier | None = None) -> DeadlineTicker:
    """Point the /fl routes of `app` at `service`; returns its (unstarted) deadline ticker."""
    app.state.fl_service = service
    app.state.fl_verifier = verifier or Verifier(clock=service.clock)
    return DeadlineTicker(service)


def create_app(service: TaskService, verifier: Verifier | None = None) -> FastAPI:
    """The stand-alone coordinator app with its deadline ticker."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        ticker.start()
        yield
        ticker.stop()

    app = FastAPI(title="GridMart FL coordinator", lifespan=lifespan)
    install(app)
    ticker = bind(app, service, verifier)
    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    from ledger_node.config import Settings
    from ledger_node.content import open_store

    p = argparse.ArgumentParser(description="GridMart FL coordinator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--home", type=Path, help="GRIDMART home (content store, spool); default from settings")
    p.add_argument("--he-workers", type=int, default=2, help="processes for large CKKS aggregations")
    args = p.parse_args(argv)
    settings = Settings(home=args.home) if args.home else Settings()
    service = TaskService(open_store(settings), InMemoryLedger(), Path(settings.home) / "fl-spool",
                          he_workers=args.he_workers)
    uvicorn.run(create_app(service), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
