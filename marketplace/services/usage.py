"""Anchor usage records in Merkle batches on chain, without losing or duplicating any.

A batch is first fixed in the database (each record gets the batch root and its leaf
index), then anchored; if the process dies in between, the next flush finds the root on
chain (BatchAnchored is indexed by root) or anchors that same batch again. (A batch fixed by
the same call is sent without that look-up: its root did not exist before.)

Records arrive committed (services.recorder); a reservation of the per-use path (``pending``)
is anchored only once settled (services.redemption). `drain` anchors every full batch waiting, and
the app wakes it as soon as a batch is full (GRIDMART_ANCHOR_BATCH_SIZE), besides every
GRIDMART_ANCHOR_INTERVAL_SECONDS. Compute jobs' records (services.jobs) are anchored the same
way from their own table, once the job has ended (``pending`` until then).
"""
from __future__ import annotations

import threading

from sqlmodel import Session, select

from ledger_node.merkle import MerkleTree, leaf_hash

from ..db import placeholder
from ..models import ComputeJob, Redemption
from . import redemption
from .context import Context


def drain(ctx: Context, partial: bool = True, max_batches: int = 100) -> int:
    """Anchor batches while full ones wait, then (if `partial`) the rest as one smaller batch:
    at a sustained rate above batch size / interval, one batch per interval would fall ever
    further behind. Returns how many batches were anchored."""
    limit, done = ctx.settings.anchor_batch_size, 0
    redemption.settle_reservations(ctx)
    for table in RECORDS:
        for _ in range(max_batches - done):
            batch_id, count = _flush(ctx, limit, full_only=not partial, model=table)
            if batch_id is None:
                break
            done += 1
            if count < limit:
                break
    return done


#: the tables whose rows are anchored records (the same columns from `at` on)
RECORDS = (Redemption, ComputeJob)


_FLUSHING = threading.Lock()  # one flush at a time (the anchor loop, shutdown, tools)


def _flush(ctx: Context, limit: int, full_only: bool = False, model=Redemption) -> tuple[int | None, int]:
    """(batch id, records) of one anchored batch of `model`'s rows, or (None, 0). Plain SQL on
    the driver's connection: a batch is a thousand rows, and the ORM would spend ~40 ms on them."""
    table = model.__tablename__
    mark = placeholder(ctx.engine)
    with _FLUSHING, Session(ctx.engine) as session:
        cur = session.connection().connection.cursor()  # inside the session's transaction
        try:
            cur.execute(f"SELECT batch_root FROM {table} WHERE batch_id IS NULL AND batch_root IS NOT NULL LIMIT 1")
            found = cur.fetchone()
            if found is not None:  # an earlier flush fixed this batch and may have anchored it: finish it
                root = found[0]
                cur.execute(f"SELECT id, at FROM {table} WHERE batch_root = {mark} AND batch_id IS NULL "
                            "ORDER BY leaf_index", (root,))
                rows = cur.fetchall()
                batch_id = _anchored_batch(ctx, root)
            else:
                cur.execute(f"SELECT id, at, record_json FROM {table} WHERE batch_id IS NULL AND NOT pending "
                            f"ORDER BY id LIMIT {int(limit)}")
                rows = cur.fetchall()
                if not rows or (full_only and len(rows) < limit):
                    return None, 0
                root = MerkleTree.from_leaves([leaf_hash(r[2].encode()) for r in rows]).root.hex()
                cur.executemany(f"UPDATE {table} SET batch_root = {mark}, leaf_index = {mark} WHERE id = {mark}",
                                [(root, i, r[0]) for i, r in enumerate(rows)])
                session.commit()  # fixed before anything is sent: a crash from here on finishes this batch
                cur.close()
                cur = session.connection().connection.cursor()
                batch_id = None  # a root fixed just now cannot have been anchored yet
            if batch_id is None:
                times = [r[1] for r in rows]
                with ctx.chain_lock:
                    batch_id, _ = ctx.chain.usage.anchor(bytes.fromhex(root), len(rows), min(times), max(times))
            cur.execute(f"UPDATE {table} SET batch_id = {mark} WHERE batch_root = {mark}", (batch_id, root))
            session.commit()
            return batch_id, len(rows)
        finally:
            cur.close()


def _anchored_batch(ctx: Context, root_hex: str) -> int | None:
    logs = ctx.chain.usage.contract.events.BatchAnchored().get_logs(
        from_block=ctx.chain.book.deployed_at_block, argument_filters={"root": bytes.fromhex(root_hex)})
    return logs[0]["args"]["batchId"] if logs else None


def proof_for(session: Session, record_id: int, model=Redemption) -> dict | None:
    """The record, its batch and Merkle proof (None until anchored)."""
    row = session.get(model, record_id)
    if row is None or row.batch_id is None:
        return None
    batch = session.exec(select(model).where(model.batch_root == row.batch_root)
                         .order_by(model.leaf_index)).all()
    tree = MerkleTree.from_leaves([leaf_hash(r.record_json.encode()) for r in batch])
    return {"record": row.record_json, "batch_id": row.batch_id, "root": tree.root.hex(), "leaf_index": row.leaf_index,
            "proof": [p.hex() for p in tree.proof(row.leaf_index)]}
