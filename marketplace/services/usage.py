"""Anchor usage records in Merkle batches on chain, without losing or duplicating any.

A batch is first fixed in the database (each record gets the batch root and its leaf
index), then anchored; if the process dies in between, the next flush finds the root on
chain (BatchAnchored is indexed by root) or anchors that same batch again.
"""
from __future__ import annotations

from sqlalchemy import bindparam, update
from sqlmodel import Session, select

from ledger_node.merkle import MerkleTree, leaf_hash

from ..models import Redemption
from .context import Context


def flush(ctx: Context, limit: int | None = None) -> int | None:
    """Anchor waiting records (one batch); returns the batch id, or None if nothing waits."""
    limit = limit or ctx.settings.anchor_batch_size
    with Session(ctx.engine) as session:
        waiting = select(Redemption.id, Redemption.record_json, Redemption.at, Redemption.batch_root).where(
            Redemption.batch_id == None)  # noqa: E711
        root = session.exec(waiting.where(Redemption.batch_root != None).limit(1)).first()  # noqa: E711
        if root is not None:  # an earlier flush fixed this batch and may have anchored it: finish it
            root = root[3]
            rows = session.exec(waiting.where(Redemption.batch_root == root).order_by(Redemption.leaf_index)).all()
        else:
            rows = session.exec(waiting.order_by(Redemption.id).limit(limit)).all()
            if not rows:
                return None
            root = MerkleTree.from_leaves([leaf_hash(r[1].encode()) for r in rows]).root.hex()
            table = Redemption.__table__
            session.connection().execute(  # one executemany, not an ORM flush of each row
                table.update().where(table.c.id == bindparam("rid")).values(batch_root=root, leaf_index=bindparam("leaf")),
                [{"rid": r[0], "leaf": i} for i, r in enumerate(rows)])
            session.commit()
        batch_id = _anchored_batch(ctx, root)
        if batch_id is None:
            times = [r[2] for r in rows]
            with ctx.chain_lock:
                batch_id, _ = ctx.chain.usage.anchor(bytes.fromhex(root), len(rows), min(times), max(times))
        session.exec(update(Redemption).where(Redemption.batch_root == root).values(batch_id=batch_id))
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
