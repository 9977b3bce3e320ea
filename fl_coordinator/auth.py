"""Who is who: every state-changing request is signed by the sender's wallet (EIP-191).

The signed text binds method, request target (path and query), body hash, a nonce
and a timestamp, so a request cannot be replayed, moved to another round/task or altered. The
coordinator recovers the signer and compares it to the claimed address.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time

from eth_account import Account
from eth_account.messages import encode_defunct

from fl_coordinator.errors import Refused

HEADER_ADDRESS = "X-GM-Address"
HEADER_NONCE = "X-GM-Nonce"
HEADER_TIME = "X-GM-Timestamp"
HEADER_SIGNATURE = "X-GM-Signature"
MAX_SKEW_S = 300


def target(path: str, query: str) -> str:
    """What a signature binds besides the body: the path, and the query if there is one."""
    return f"{path}?{query}" if query else path


def message(method: str, path: str, body: bytes, nonce: str, timestamp: int) -> str:
    """The signed text; `path` is the request target (see `target`)."""
    return (f"GridMart FL request\n{method.upper()} {path}\n"
            f"body-sha256: {hashlib.sha256(body).hexdigest()}\nnonce: {nonce}\ntimestamp: {timestamp}")


def sign_request(private_key: str | bytes, method: str, path: str, body: bytes) -> dict[str, str]:
    """Headers that authenticate one request."""
    acct = Account.from_key(private_key)
    nonce, ts = secrets.token_hex(16), int(time.time())
    sig = acct.sign_message(encode_defunct(text=message(method, path, body, nonce, ts)))
    return {HEADER_ADDRESS: acct.address, HEADER_NONCE: nonce, HEADER_TIME: str(ts),
            HEADER_SIGNATURE: sig.signature.hex()}


class Verifier:
    """Checks signatures and remembers nonces (within the clock-skew window) to refuse replays."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def claimed(self, headers) -> str:
        """The address a request claims to be signed by, from its headers alone (complete and
        within the clock-skew window): what a route checks before it reads a large body. The
        signature itself is checked by `verify`, which also requires signer == this address."""
        try:
            claimed, ts = headers[HEADER_ADDRESS], int(headers[HEADER_TIME])
            headers[HEADER_NONCE], headers[HEADER_SIGNATURE]
        except (KeyError, ValueError):
            raise Refused("request is not signed; send X-GM-Address, X-GM-Nonce, X-GM-Timestamp "
                          "and X-GM-Signature (EIP-191)", 401) from None
        if abs(self.clock() - ts) > MAX_SKEW_S:
            raise Refused(f"request timestamp is more than {MAX_SKEW_S} s off the coordinator clock; "
                          "sync the clock and sign again", 401)
        return claimed

    def verify(self, method: str, path: str, body: bytes, headers) -> str:
        """Return the checksum address of the signer or raise Refused (401/409)."""
        claimed = self.claimed(headers)
        nonce, ts, sig = headers[HEADER_NONCE], int(headers[HEADER_TIME]), headers[HEADER_SIGNATURE]
        now = self.clock()
        try:
            signer = Account.recover_message(encode_defunct(text=message(method, path, body, nonce, ts)),
                                             signature=sig)
        except Exception:
            raise Refused("request signature is malformed; sign with the wallet key (EIP-191)", 401) from None
        if signer.lower() != claimed.lower():
            raise Refused("request signature does not match X-GM-Address (altered or signed by another key)", 401)
        with self._lock:
            for k in [k for k, t in self._seen.items() if now - t > 2 * MAX_SKEW_S]:
                del self._seen[k]
            key = f"{signer.lower()}:{nonce}"
            if key in self._seen:
                raise Refused("replayed request: this nonce was already used; sign a fresh request", 409)
            self._seen[key] = now
        return signer
