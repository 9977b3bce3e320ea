"""Overlap disk writes and whole-file hashing with block hashing.

hashlib and file writes release the GIL on large buffers, so on two cores a
worker thread roughly doubles ingest speed. The backlog is bounded, which keeps
memory bounded too, and the first worker error is re-raised in the caller.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor


class Backlog:
    """Run tasks on ``workers`` threads, at most ``limit`` waiting at a time."""

    def __init__(self, workers: int = 1, limit: int = 8):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gridmart-content")
        self._futures: deque[Future] = deque()
        self._limit = limit

    def submit(self, fn: Callable, *args) -> None:
        while len(self._futures) >= self._limit:
            self._futures.popleft().result()
        self._futures.append(self._pool.submit(fn, *args))

    def drain(self) -> None:
        """Wait for every task; raises the first error."""
        while self._futures:
            self._futures.popleft().result()

    def close(self) -> None:
        """Stop after the running tasks, dropping queued ones and their errors."""
        for future in self._futures:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._futures.clear()
