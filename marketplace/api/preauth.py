"""Credentials checked before a multipart body is read.

FastAPI parses a form (spooling its files to disk) before any dependency runs, so the login
of `POST /uploads` and the delivery link of `POST /delivery/<token>/run` (and `/jobs`) would be checked
only after an anonymous client had made the server write up to the upload limit. This
middleware checks the credential first — for an upload also the publisher role on chain,
since any wallet can sign in — with the same checks the routes make, and answers 401 / 403
at once.
"""
from __future__ import annotations

import re

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ledger_node.contracts import Role

from ..services.auth import authenticate, bearer, require_role
from ..services.errors import ServiceError
from ..services.redemption import open_delivery

UPLOADS = "/uploads"
RUN = re.compile(r"^/delivery/([^/]+)/(?:run|jobs)$")


class CredentialsFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            refusal = await self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refusal(scope: Scope) -> JSONResponse | None:
        path, ctx = scope["path"], scope["app"].state.ctx
        try:
            if path == UPLOADS:
                principal = authenticate(ctx, bearer(dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")))
                await run_in_threadpool(require_role, ctx, principal, Role.PUBLISHER)  # any wallet can sign in
            elif (run := RUN.match(path)) is not None:
                open_delivery(ctx, run.group(1))
        except ServiceError as exc:
            return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
        return None
