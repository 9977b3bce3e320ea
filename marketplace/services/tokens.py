"""Short-lived HMAC-signed tokens: sessions and signed delivery URLs."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any


class TokenError(ValueError):
    """A token is malformed, forged, expired or for another purpose."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(secret: bytes, purpose: str, ttl_seconds: int, **claims: Any) -> str:
    payload = {"aud": purpose, "exp": int(time.time()) + ttl_seconds, **claims}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


def verify(secret: bytes, purpose: str, token: str) -> dict[str, Any]:
    try:
        body, mac = token.split(".")
        # compared as text: base64 lets several strings decode to one MAC (the last character's
        # spare bits), and a token must have exactly one spelling
        good = hmac.compare_digest(mac.encode(), _b64(hmac.new(secret, body.encode(), hashlib.sha256).digest()).encode())
        payload = json.loads(_unb64(body))
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed token") from exc
    if not good:
        raise TokenError("token signature is invalid")
    if payload.get("aud") != purpose:
        raise TokenError(f"token is not a {purpose} token")
    if payload.get("exp", 0) < time.time():
        raise TokenError("token has expired")
    return payload
