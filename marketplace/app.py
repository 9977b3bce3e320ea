"""The GridMart marketplace app (FastAPI): routers, error mapping, background indexer and anchoring,
and the federated-learning zone (fl_coordinator's /fl routes, recording on chain)."""
from __future__ import annotations

import gc
import logging
import re
import threading
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi_offline import FastAPIOffline
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fl_coordinator import server as fl_server
from fl_coordinator.chain_ledger import ChainLedger
from fl_coordinator.errors import Refused
from fl_coordinator.service import TaskService
from ledger_node import typed_data
from ledger_node.contracts import Role
from ledger_node.errors import ChainUnavailable, GridMartError

from .api import audit, auth, compute, market, operator
from .api.errors import OUT_OF_RANGE, error_response
from .api.fastlane import RedeemFastLane
from .api.limits import BodyLimit, Rate, RateLimit
from .api.preauth import CredentialsFirst
from .web import routes as web_routes
from .services import chain_identity, jobs, usage
from .services.context import Context
from .services.errors import ServiceError
from .services.indexer import Indexer
from .services.recorder import Recorder
from .settings import MarketplaceSettings, get_settings

log = logging.getLogger("gridmart.marketplace")
_DELIVERY_TOKEN = re.compile(r"(/delivery/)[^/?\s]+")


class RedactDeliveryTokens(logging.Filter):
    """Access-log lines show /delivery/<redacted>: a delivery link is a bearer URL, and a log
    reader must not be able to open it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_DELIVERY_TOKEN.sub(r"\1<redacted>", a) if isinstance(a, str) else a
                                for a in record.args)
        return True


def _redact_access_log() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactDeliveryTokens) for f in access.filters):
        access.addFilter(RedactDeliveryTokens())


def _fl_opener(context: Context):
    """Who may open an FL task: an active publisher, as the chain says (asked before the
    coordinator parses, let alone builds, the model)."""

    def may_open(owner: str) -> None:
        if not context.chain.members.is_active_with_role(owner, Role.PUBLISHER):
            raise Refused(f"{owner} is not an active member with the publisher role: only publishers open FL tasks", 403)

    return may_open


class _Loop(threading.Thread):
    """Run `fn` every `interval` seconds, or at once when woken, until stopped; errors are
    logged, never fatal."""

    def __init__(self, name: str, fn, interval: float):
        super().__init__(name=name, daemon=True)
        self.fn, self.interval = fn, interval
        self.stopped, self.woken = threading.Event(), threading.Event()
        self.signalled = False

    def wake(self) -> None:
        self.woken.set()

    def stop(self) -> None:
        self.stopped.set()
        self.woken.set()

    def run(self) -> None:
        while True:
            self.signalled = self.woken.wait(self.interval)  # False: the interval has passed
            self.woken.clear()
            if self.stopped.is_set():
                return
            try:
                self.fn()
            except Exception:  # noqa: BLE001
                log.exception("%s failed; retrying", self.name)


def _local_rpc_url(ctx: Context) -> str | None:
    """The chain's JSON-RPC URL when it is a node on this machine (the devnet), for a browser
    wallet to add it; None for any other (its URL may carry a provider's key)."""
    url = getattr(ctx.chain.w3.provider, "endpoint_uri", None) or ""
    return url if urlsplit(url).hostname in ("127.0.0.1", "localhost") else None


def create_app(settings: MarketplaceSettings | None = None, ctx: Context | None = None, *,
               freeze_gc: bool = False) -> FastAPI:
    """The app. `freeze_gc` (for a process that only serves, like `gridmart serve`): after
    startup, move every object alive then out of the cyclic collector's reach (gc.freeze), so
    a full collection scans only what requests allocate — otherwise it walks web3's, pandas'
    and SQLAlchemy's heap and stalls every request for ~0.2 s."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        context = ctx
        if context is None:  # a caller that brings its own context has checked it (cli.serve)
            context = Context.build(settings)
            chain_identity.check(context.engine, context.chain, settings)
        indexer = Indexer(context)
        context.indexer = indexer
        indexer.sync()  # also repairs rows a crash left behind (the reconciler)
        # every interval: whatever waits; woken by the recorder when a batch is full: full batches only
        anchor = _Loop("anchor", lambda: usage.drain(context, partial=not anchor.signalled),
                       settings.anchor_interval_seconds)
        written = [0]

        def rows_written(count: int) -> None:  # recorder thread: wake the anchoring when a batch is full
            written[0] += count
            if written[0] >= settings.anchor_batch_size:
                written[0] = 0
                anchor.wake()

        recorder = context.recorder = Recorder(context.engine, on_written=rows_written).start()
        app.state.ctx, app.state.indexer = context, indexer
        fl_ticker = fl_server.bind(app, TaskService(context.store, ChainLedger(context.chain),
                                                    settings.resolved_fl_spool(),
                                                    he_workers=settings.fl_he_workers,
                                                    max_weights=settings.fl_max_weights,
                                                    may_open=_fl_opener(context)))
        fl_ticker.start()
        loops = [_Loop("indexer", indexer.sync, settings.indexer_interval_seconds), anchor]
        if settings.compute_nodes:  # send spooled jobs, follow running ones, record finished ones
            loops.append(_Loop("jobs", lambda: jobs.tick(context), settings.jobs_interval_seconds))
        for loop in loops:
            loop.start()
        if freeze_gc:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            fl_ticker.stop()
            for loop in loops:
                loop.stop()
            for loop in loops:
                loop.join(timeout=30)
            recorder.stop()  # commits what is queued (every request has had its answer by now)
            context.recorder = None
            usage.drain(context)  # anchor what is still waiting

    # /docs and /redoc from assets the app serves itself: an intranet has no CDN
    app = FastAPIOffline(title="GridMart", version="0.1.0", lifespan=lifespan, static_url="/docs-assets",
                         description="The power-grid big-data sharing marketplace, with on-chain provenance.")

    async def _mapped_error(_: Request, exc: Exception) -> JSONResponse:
        return error_response(exc)

    for kind in (ServiceError, ChainUnavailable, GridMartError, *OUT_OF_RANGE):
        app.add_exception_handler(kind, _mapped_error)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors())
        return JSONResponse({"detail": f"invalid request: {problems}"}, status_code=422)

    @app.get("/health", tags=["meta"])
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/config", tags=["meta"])
    def config(request: Request) -> dict:
        c: Context = request.app.state.ctx
        return {"chain_id": c.chain_id, "domain": c.settings.domain, "operator": c.operator.address,
                "contracts": c.chain.book.addresses, "eip712": typed_data.spec(),
                "local_rpc_url": _local_rpc_url(c)}

    app.add_middleware(RedeemFastLane)  # POST /redeem without FastAPI's per-request work (api/fastlane.py)
    app.add_middleware(CredentialsFirst)  # a login / delivery link checked before a form is read (api/preauth.py)
    app.add_middleware(BodyLimit, max_json_bytes=settings.max_json_kb * 1024,  # api/limits.py
                       max_other_bytes=settings.max_upload_mb * 1024 * 1024)
    app.add_middleware(RateLimit,  # outermost: a refused request costs no routing (api/limits.py)
                       sign_in=Rate(settings.rate_limit_signin_per_second, settings.rate_limit_signin_burst),
                       writes=Rate(settings.rate_limit_writes_per_second, settings.rate_limit_writes_burst))
    _redact_access_log()
    app.include_router(auth.router)
    app.include_router(operator.router)
    app.include_router(market.router)
    app.include_router(compute.router)
    app.include_router(audit.router)
    app.include_router(web_routes.router)
    fl_server.install(app)
    return app
