"""The GridMart marketplace app (FastAPI): routers, error mapping, background indexer and anchoring,
and the federated-learning zone (fl_coordinator's /fl routes, recording on chain)."""
from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fl_coordinator import server as fl_server
from fl_coordinator.chain_ledger import ChainLedger
from fl_coordinator.service import TaskService
from ledger_node import typed_data
from ledger_node.errors import ChainUnavailable, GridMartError

from .api import audit, auth, market, operator
from .web import routes as web_routes
from .services import usage
from .services.context import Context
from .services.errors import ServiceError
from .services.indexer import Indexer
from .settings import MarketplaceSettings, get_settings

log = logging.getLogger("gridmart.marketplace")


class _Loop(threading.Thread):
    """Run `fn` every `interval` seconds until stopped; errors are logged, never fatal."""

    def __init__(self, name: str, fn, interval: float):
        super().__init__(name=name, daemon=True)
        self.fn, self.interval, self.stopped = fn, interval, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.fn()
            except Exception:  # noqa: BLE001
                log.exception("%s failed; retrying", self.name)


def create_app(settings: MarketplaceSettings | None = None, ctx: Context | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        context = ctx or Context.build(settings)
        indexer = Indexer(context)
        context.indexer = indexer
        indexer.sync()  # also repairs rows a crash left behind (the reconciler)
        app.state.ctx, app.state.indexer = context, indexer
        fl_ticker = fl_server.bind(app, TaskService(context.store, ChainLedger(context.chain),
                                                    settings.resolved_fl_spool(),
                                                    he_workers=settings.fl_he_workers))
        fl_ticker.start()
        loops = [_Loop("indexer", indexer.sync, settings.indexer_interval_seconds),
                 _Loop("anchor", lambda: usage.flush(context), settings.anchor_interval_seconds)]
        for loop in loops:
            loop.start()
        try:
            yield
        finally:
            fl_ticker.stop()
            for loop in loops:
                loop.stopped.set()
            for loop in loops:
                loop.join(timeout=30)
            usage.flush(context)  # anchor what is still waiting

    app = FastAPI(title="GridMart", version="0.1.0", lifespan=lifespan,
                  description="The power-grid big-data sharing marketplace, with on-chain provenance.")

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(ChainUnavailable)
    async def _chain_down(_: Request, exc: ChainUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(GridMartError)
    async def _gridmart_error(_: Request, exc: GridMartError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

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
                "contracts": c.chain.book.addresses, "eip712": typed_data.spec()}

    app.include_router(auth.router)
    app.include_router(operator.router)
    app.include_router(market.router)
    app.include_router(audit.router)
    app.include_router(web_routes.router)
    fl_server.install(app)
    return app
