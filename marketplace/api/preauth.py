"""Credentials checked before a multipart body is read.

FastAPI parses a form (spooling its files to disk) before any dependency runs, so the login
of `POST /uploads` and the delivery link of `POST /delivery/<token>/run` would be checked
only after an anonymous client had made the server write up to the upload limit. This
middleware checks the credential first (the same token checks the routes make; the routes
still make every other check, e.g. on-chain membership) and answers 401 / 403 at once.
"""
from __future__ import annotations

import re

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ..services.auth import authenticate
from ..services.errors import ServiceError
from ..services.redemption import open_delivery

UPLOADS = "/uploads"
RUN = re.compile(r"^/delivery/([^/]+)/run$")


class CredentialsFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def _refusal(scope: Scope) -> JSONResponse | None:
        path, ctx = scope["path"], scope["app"].state.ctx
        try:
            if path == UPLOADS:
                token = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
                authenticate(ctx, token.removeprefix("Bearer ").strip() or None)
            elif (run := RUN.match(path)) is not None:
                open_delivery(ctx, run.group(1))
        except ServiceError as exc:
            return JSONResponse({"detail": exc.message}, status_code=exc.status_code)
        return None
