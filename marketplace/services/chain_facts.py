"""What the redemption and delivery paths decide on, read from the chain and kept until an
indexed event may have changed it.

The database is an index anyone with write access to it could edit; a licence's holder or
expiry, a member's status, a certificate's CID and sha-256 decide who gets which bytes, so
they come from the chain. Reading them on every request would put RPC round trips on the hot
path, so each fact is cached under a key the indexer knows how to name: when it commits a
block range it evicts the keys its events touched, before it announces the newer view the
fast path checks freshness against. A value read while an eviction was going on is not kept
(the epoch moved), so the cache never holds a fact older than the last eviction of its key.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

MISSING = object()


def licence_key(licence_id: int) -> tuple[str, int]:
    """Key of a licence's (holder, product, expiry)."""
    return ("licence", licence_id)


def member_key(address: str) -> tuple[str, str]:
    """Key of whether a member is an active subscriber."""
    return ("member", address)


class FactCache:
    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self._data: dict[Any, Any] = {}
        self._epoch = 0
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int:
        """Read before fetching a value; pass it to `put`."""
        return self._epoch

    def get(self, key: Any) -> Any:
        return self._data.get(key, MISSING)

    def put(self, key: Any, value: Any, epoch: int) -> None:
        """Keep `value` unless something was evicted since `epoch` was read."""
        with self._lock:
            if epoch != self._epoch:
                return
            if len(self._data) >= self.limit:
                self._data.clear()
            self._data[key] = value

    def get_or_fetch(self, key: Any, fetch: Callable[[], Any]) -> Any:
        value = self._data.get(key, MISSING)
        if value is MISSING:
            epoch = self._epoch
            value = fetch()
            self.put(key, value, epoch)
        return value

    def evict(self, keys: Iterable[Any]) -> None:
        with self._lock:
            self._epoch += 1
            for key in keys:
                self._data.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._epoch += 1
            self._data.clear()
