"""Anchor usage records in Merkle batches on chain, without losing or duplicating any.

A batch is first fixed in the database (each record gets the batch root and its leaf
index), then anchored; if the process dies in between, the next flush finds the root on
chain (BatchAnchored is indexed by root) or anchors that same batch again.
"""
from __future__ import annotations

from sqlmodel import Session, select

from ledger_node.merkle import MerkleTree, leaf_hash

from ..models import Redemption
from .context import Context


def flush(ctx: Context, limit: int | None = None) -> int | None:
    """Anchor waiting records (one batch); returns the batch id, or None if nothing waits."""
    limit = limit or ctx.settings.anchor_batch_size
    with Session(ctx.engine) as session:
        rows = session.exec(select(Redemption).where(Redemption.batch_id == None)  # noqa: E711
                            .order_by(Redemption.id)).all()
        if not rows:
            return None
        root = next((r.batch_root for r in rows if r.batch_root), None)
        if root:  # an earlier flush fixed this batch; finish it
            rows = [r for r in rows if r.batch_root == root]
            rows.sort(key=lambda r: r.leaf_index)
        else:
            rows = rows[:limit]
            tree = MerkleTree.from_leaves([leaf_hash(r.record_json.encode()) for r in rows])
            root = tree.root.hex()
            for i, r in enumerate(rows):
                r.batch_root, r.leaf_index = root, i
                session.add(r)
            session.commit()
        batch_id = _anchored_batch(ctx, root)
        if batch_id is None:
            times = [r.at for r in rows]
            with ctx.chain_lock:
                batch_id, _ = ctx.chain.usage.anchor(bytes.fromhex(root), len(rows), min(times), max(times))
        for r in rows:
            r.batch_id = batch_id
            session.add(r)
        session.commit()
        return batch_id


def _anchored_batch(ctx: Context, root_hex: str) -> int | None:
    logs = ctx.chain.usage.contract.events.BatchAnchored().get_logs(
        from_block=ctx.chain.book.deployed_at_block, argument_filters={"root": bytes.fromhex(root_hex)})
    return logs[0]["args"]["batchId"] if logs else None


def proof_for(session: Session, redemption_id: int) -> dict | None:
    """The record, its batch and Merkle proof (None until anchored)."""
    row = session.get(Redemption, redemption_id)
    if row is None or row.batch_id is None:
        return None
    batch = session.exec(select(Redemption).where(Redemption.batch_root == row.batch_root)
                         .order_by(Redemption.leaf_index)).all()
    tree = MerkleTree.from_leaves([leaf_hash(r.record_json.encode()) for r in batch])
    return {"record": row.record_json, "batch_id": row.batch_id, "root": tree.root.hex(), "leaf_index": row.leaf_index,
            "proof": [p.hex() for p in tree.proof(row.leaf_index)]}
