"""`POST /redeem` without FastAPI's per-request machinery.

A redemption costs ~0.2 ms of CPU in the service (signature recovery, a cached licence
check, the group-committed usage row, the delivery token); going through FastAPI's
routing, dependency solving and response handling adds ~0.15 ms more, which at the
target rate is a third of a core. This ASGI middleware answers exactly `POST /redeem` with
a JSON body that validates as `RedeemRequest` by calling the same service function, and
maps service errors through the same `error_response` as the app's exception handlers.
Every other request, and any redemption request it does not accept as is (not JSON, not
an object, failing validation, larger than 64 KiB), goes on to FastAPI unchanged (the
body is replayed), so those answers — 422s included — are exactly the documented route's
(`marketplace.api.market.redeem`, which also keeps it in the OpenAPI schema). It sits
inside Starlette's server-error middleware: an unexpected error is still a plain 500.
"""
from __future__ import annotations

import json

from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..services import redemption
from .errors import error_response
from .market import RedeemRequest

PATH = "/redeem"
MAX_BODY = 64 * 1024


class RedeemFastLane:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" or not _json(scope):
            await self.app(scope, receive, send)
            return
        messages, body = await _read(receive)
        request = _parse(body) if body is not None else None
        if request is None:  # FastAPI gives its usual answer
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            voucher = redemption.voucher_from(request.__dict__)
            response = JSONResponse(await redemption.redeem_async(scope["app"].state.ctx, voucher, request.signature))
        except Exception as exc:
            response = error_response(exc)
            if response is None:
                raise
        await response(scope, receive, send)


def _json(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            kind = value.split(b";", 1)[0].strip().lower()
            return kind == b"application/json" or (kind.startswith(b"application/") and kind.endswith(b"+json"))
    return False


async def _read(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The request's messages, and its body (None if it is over MAX_BODY or the client left)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        size += len(chunk)
        chunks.append(chunk)
        if size > MAX_BODY:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _parse(body: bytes) -> RedeemRequest | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    try:
        return RedeemRequest.model_validate(data)  # what FastAPI does with the parsed body
    except ValidationError:
        return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
