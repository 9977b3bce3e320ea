"""Request limits: per-client rates (token buckets, in process) on sign-in and writes, and a
cap on every request body.

Bodies: a JSON body may be `max_json_kb` (a declared Content-Length over it is refused at
once), any other `max_upload_mb` plus a MiB of multipart framing (a multipart upload is
spooled to disk by the form parser before the route, and its login, runs); a body is refused
as soon as it passes its cap. Routes that stream their own body with their own limit are
left to it (SELF_LIMITED).

Rates:
Sign-in (POST /auth/nonce, /auth/login) is limited per client address: each call costs a
signature check or a nonce row. Every other non-GET request, and every /audit/ read (each
replays chain events: ~0.25 s of work), is limited per signed-in member (a valid session
token) or, without one, per client address. POST /redeem is exempt: each
redemption needs a holder's signed voucher with a fresh nonce, bench/redeem.py drives it at
its target rate from one address, and a per-address bucket would throttle a whole site behind
one NAT. The client address is the connection's (uvicorn --proxy-headers makes it the
forwarded one behind a trusted proxy). A refusal is a 429 with Retry-After.
"""
from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..services import tokens
from ..services.auth import SESSION, bearer

SIGN_IN = frozenset({"/auth/nonce", "/auth/login"})
EXEMPT = frozenset({"/redeem"})
READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: reads that cost like writes
COSTLY_READS = "/audit/"
#: prefixes of routes that read and bound their body themselves
SELF_LIMITED = ("/audit/product/", "/fl/")
#: allowance for multipart boundaries and part headers on top of the upload limit
FRAMING = 1 << 20
#: buckets kept (least recently used dropped first: a dropped bucket starts full again)
MAX_KEYS = 100_000


@dataclass(frozen=True)
class Rate:
    per_second: float
    burst: int


class Buckets:
    """Token buckets by key: `burst` tokens, refilled at `per_second`; one token per request."""

    def __init__(self, rate: Rate, clock=time.monotonic):
        self.rate, self.clock = rate, clock
        self._state: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """0 if the request may go on, else the seconds until a token is back."""
        now = self.clock()
        tokens_left, at = self._state.pop(key, (float(self.rate.burst), now))
        tokens_left = min(float(self.rate.burst), tokens_left + (now - at) * self.rate.per_second)
        wait = 0.0
        if tokens_left >= 1:
            tokens_left -= 1
        else:
            wait = (1 - tokens_left) / self.rate.per_second if self.rate.per_second > 0 else math.inf
        self._state[key] = (tokens_left, now)
        if len(self._state) > MAX_KEYS:
            self._state.popitem(last=False)
        return wait


class RateLimit:
    def __init__(self, app: ASGIApp, *, sign_in: Rate, writes: Rate) -> None:
        self.app = app
        self.sign_in, self.writes = Buckets(sign_in), Buckets(writes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            client = scope["client"][0] if scope.get("client") else "unknown"
            wait, what = 0.0, ""
            if path in SIGN_IN and method == "POST":
                wait, what = self.sign_in.take(client), "sign-in attempts"
            elif (method not in READS and path not in EXEMPT) or path.startswith(COSTLY_READS):
                wait, what = self.writes.take(_member(scope) or client), "write or audit requests"
            if wait:
                retry = max(1, math.ceil(min(wait, 3600)))
                response = JSONResponse({"detail": f"too many {what} from this client: retry in {retry} s"},
                                        status_code=429, headers={"Retry-After": str(retry)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _member(scope: Scope) -> str | None:
    """The signed-in member's address, if the request carries a valid session token."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            try:
                return "member:" + tokens.verify(scope["app"].state.ctx.secret, SESSION,
                                                 bearer(value.decode("latin-1")) or "")["sub"]
            except (tokens.TokenError, AttributeError, KeyError):
                return None
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_json_bytes: int, max_other_bytes: int) -> None:
        self.app = app
        self.max_json, self.max_other = max_json_bytes, max_other_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(SELF_LIMITED):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        kind = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        is_json = kind == b"application/json" or kind.endswith(b"+json")
        limit = self.max_json if is_json else self.max_other + FRAMING
        message = (f"JSON request body over {limit // 1024} KiB (GRIDMART_MAX_JSON_KB)" if is_json
                   else f"request body over {self.max_other >> 20} MiB (GRIDMART_MAX_UPLOAD_MB)")
        declared = headers.get(b"content-length", b"")
        if is_json and declared.isdigit() and int(declared) > limit:
            await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            msg = await receive()
            seen += len(msg.get("body", b""))
            if seen > limit:
                raise HTTPException(413, message)  # FastAPI re-raises it from body parsing: a 413
            return msg

        await self.app(scope, counted, send)
