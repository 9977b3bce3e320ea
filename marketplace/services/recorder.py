"""Group commit of redemption rows (the usage records that also burn voucher nonces).

A redemption is acknowledged only after its row is committed, exactly as when each request
committed its own row: a crash loses no acknowledged record, and the unique (holder, nonce)
row still refuses a replayed voucher. What changes is who commits: one writer thread takes
every row waiting at that moment and inserts them with a single multi-row
``INSERT ... ON CONFLICT (holder, nonce) DO NOTHING RETURNING`` and a single commit, so at
high rates a commit serves many requests, and the event loop never waits on the database.
Rows come back by (holder, nonce): a row that did not come back collided with a voucher
already redeemed. Two rows of one batch with the same (holder, nonce) are settled before the
insert (the later one is refused). If the statement fails, nothing of the batch was
committed; its rows are then written one at a time, so a row that fails alone fails only its
own request (one bad row must not take its neighbours' redemptions down).
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from ..db import placeholder
from ..models import Redemption

log = logging.getLogger("gridmart.recorder")

#: how long a group commit keeps retrying while another connection holds SQLite's write lock
LOCK_PATIENCE = 30.0
COLUMNS = ("licence_id", "holder", "nonce", "purpose", "on_chain_tx", "at", "record_json", "pending")
#: the largest nonce a row can hold (a signed 64-bit integer in SQLite and PostgreSQL)
MAX_NONCE = (1 << 63) - 1


class Replayed(Exception):
    """The (holder, nonce) of this row is already recorded: the voucher was redeemed before."""


@dataclass(frozen=True, slots=True)
class UsageRow:
    licence_id: str
    holder: str
    nonce: int
    purpose: str
    on_chain_tx: str | None
    at: int
    record_json: str
    #: a reservation made before the voucher is submitted on chain (services.redemption)
    pending: bool = False

    def values(self) -> tuple:
        return (self.licence_id, self.holder, self.nonce, self.purpose, self.on_chain_tx, self.at, self.record_json,
                self.pending)


def insert_rows(engine: Engine, rows: list[UsageRow], conn: Any = None) -> list[int | Exception]:
    """Insert `rows` in one transaction (on `conn`, a DB-API connection of `engine`, else on one
    from its pool); for each, its new id or Replayed. Raises if the statement fails (then
    nothing was committed; a given `conn` is then unusable: the caller closes it)."""
    out: list[int | Exception | None] = [None] * len(rows)
    unique: dict[tuple[str, int], int] = {}
    for i, row in enumerate(rows):
        key = (row.holder, row.nonce)
        if key in unique:
            out[i] = Replayed()
        else:
            unique[key] = i
    todo = [rows[i] for i in unique.values()]
    mark = placeholder(engine)
    one = "(" + ",".join([mark] * len(COLUMNS)) + ")"
    sql = (f"INSERT INTO {Redemption.__tablename__} ({','.join(COLUMNS)}) VALUES {','.join([one] * len(todo))} "
           "ON CONFLICT (holder, nonce) DO NOTHING RETURNING id, holder, nonce")
    params = [v for row in todo for v in row.values()]
    own = conn is None
    if own:
        conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        try:
            cur.execute(sql, params)
            inserted = {(holder, int(nonce)): rid for rid, holder, nonce in cur.fetchall()}
        finally:
            cur.close()
        conn.commit()
    except BaseException:
        if own:
            try:
                conn.rollback()
            finally:
                conn.close()
        raise
    if own:
        conn.close()
    for key, i in unique.items():
        rid = inserted.get(key)
        out[i] = rid if rid is not None else Replayed()
    return out  # type: ignore[return-value]


class Recorder:
    """The writer thread. `record` (async) and `record_sync` (threads) return the row id or
    raise Replayed, after the commit."""

    def __init__(self, engine: Engine, max_batch: int = 256, on_written: Callable[[int], None] | None = None):
        self.engine = engine
        self.max_batch = max_batch
        self.on_written = on_written  # called (in the writer thread) with the rows of each commit
        self._queue: deque[tuple[UsageRow, Any]] = deque()
        self._gathering: dict[asyncio.AbstractEventLoop, list] = {}  # per event loop, this iteration's rows
        self._wake = threading.Condition()
        self._stopping = False
        self._exited = False  # set (under the lock) when the writer will take nothing more
        self._thread = threading.Thread(target=self._run, name="redemption-recorder", daemon=True)
        self.batches = 0  # statistics: commits made, rows written
        self.rows = 0

    def start(self) -> "Recorder":
        self._thread.start()
        return self

    def stop(self, timeout: float = 30) -> None:
        """Write what is waiting, then end the thread."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopping and not self._exited

    async def record(self, row: UsageRow) -> int:
        """From the event loop. Rows of requests handled in the same loop iteration are handed
        to the writer together (one queue operation and wake-up per iteration, not per row)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        pending = self._gathering.get(loop)
        if pending is None:
            if not self.running:
                raise RuntimeError("the redemption recorder is stopped")
            pending = self._gathering[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append((row, (loop, future)))
        return await future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        items = self._gathering.pop(loop, [])
        with self._wake:
            if self._exited:  # stopped meanwhile: nothing will write these
                _settle([(future, RuntimeError("the redemption recorder is stopped")) for _, (_, future) in items])
                return
            self._queue.extend(items)
            self._wake.notify()

    def record_sync(self, row: UsageRow) -> int:
        future: Future = Future()
        self._put(row, future)
        return future.result()

    def _put(self, row: UsageRow, waiter: Any) -> None:
        with self._wake:
            if self._stopping or self._exited or not self._thread.is_alive():
                raise RuntimeError("the redemption recorder is stopped")
            self._queue.append((row, waiter))
            self._wake.notify()

    def _run(self) -> None:
        conn = None  # the writer's own connection, kept between batches (none checked out per batch)
        try:
            while True:
                with self._wake:
                    while not self._queue and not self._stopping:
                        self._wake.wait()
                    if not self._queue:  # stopping, nothing left
                        self._exited = True
                        return
                    batch = [self._queue.popleft() for _ in range(min(len(self._queue), self.max_batch))]
                try:
                    if conn is None:
                        conn = self._connect()
                    results: list[Any] = self._insert(conn, [row for row, _ in batch])
                    self.batches += 1
                    self.rows += len(batch)
                except Exception as exc:  # noqa: BLE001
                    conn = _discard(conn)
                    if len(batch) == 1:
                        log.exception("writing a redemption row failed")
                        results = [exc]
                    else:  # one bad row must not fail the others: each alone, so only it fails
                        log.warning("writing %d redemption rows failed (%s); writing them one by one",
                                    len(batch), exc)
                        results = [self._insert_alone(row) for row, _ in batch]
                    self.batches += 1
                    self.rows += sum(1 for r in results if isinstance(r, int))
                self._after(batch, results)
        finally:
            with self._wake:
                self._exited = True
            _discard(conn)

    def _connect(self) -> Any:
        conn = self.engine.raw_connection()
        if self.engine.dialect.name == "sqlite":
            # SQLite has one writer at a time, and its own busy handler backs off in steps of up
            # to 100 ms: a commit that found the indexer or the anchoring writing would keep a
            # whole group of requests waiting that long. This connection (taken out of the
            # pool, so the setting stays with it) waits 2 ms at most, and _insert retries.
            conn.detach()
            cur = conn.cursor()
            cur.execute("PRAGMA busy_timeout = 2")
            cur.close()
        return conn

    def _insert(self, conn: Any, rows: list[UsageRow]) -> list[int | Exception]:
        deadline = time.monotonic() + LOCK_PATIENCE
        while True:
            try:
                return insert_rows(self.engine, rows, conn)
            except Exception as exc:  # noqa: BLE001
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
                conn.rollback()
                time.sleep(0.0005)

    def _insert_alone(self, row: UsageRow) -> int | Exception:
        conn = None
        try:
            conn = self._connect()
            return self._insert(conn, [row])[0]
        except Exception as exc:  # noqa: BLE001 - this row's own failure, for its own request
            log.exception("writing a redemption row failed")
            return exc
        finally:
            _discard(conn)

    def _after(self, batch: list[tuple[UsageRow, Any]], results: list[Any]) -> None:
        self._deliver(batch, results)
        if self.on_written is not None:
            try:
                self.on_written(sum(1 for r in results if isinstance(r, int)))
            except Exception:  # noqa: BLE001
                log.exception("on_written failed")

    @staticmethod
    def _deliver(batch: list[tuple[UsageRow, Any]], results: list[Any]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list] = {}
        for (_, waiter), result in zip(batch, results):
            if isinstance(waiter, Future):
                if isinstance(result, BaseException):
                    waiter.set_exception(result)
                else:
                    waiter.set_result(result)
            else:
                loop, future = waiter
                by_loop.setdefault(loop, []).append((future, result))
        for loop, items in by_loop.items():  # one wake-up of each event loop per batch
            try:
                loop.call_soon_threadsafe(_settle, items)
            except RuntimeError:  # that loop is closed: nobody waits any more
                pass


def _locked(exc: Exception) -> bool:
    """SQLite's "database is locked" (another connection is writing)."""
    return type(exc).__name__ == "OperationalError" and "locked" in str(exc)


def _discard(conn: Any) -> None:
    """Roll back and close a connection whose state is unknown (after an error, or at the end):
    an open transaction would keep SQLite's write lock."""
    if conn is not None:
        for step in (conn.rollback, conn.close):
            try:
                step()
            except Exception:  # noqa: BLE001
                log.debug("releasing the recorder's connection failed", exc_info=True)
    return None


def _settle(items: list[tuple[asyncio.Future, Any]]) -> None:
    for future, result in items:
        if future.done():  # the request was cancelled (client gone); its row stands
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
