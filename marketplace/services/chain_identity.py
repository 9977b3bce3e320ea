"""Which chain an index was made on, and refusing to serve it against another.

The database indexes one chain's events beside off-chain data that refer to them (uploads,
pending listings, redemptions, jobs), and the FL and compute spools hold tasks opened on that
chain. A devnet started without its state, another GRIDMART_RPC_URL or a fresh deployment
is a different chain: served anyway, the index would quietly lose its members and products
and the FL zone would answer 500 for tasks the chain never saw. So the first start records
the chain (chain id, genesis block hash, the address book's ProductRegistry) in the index,
and every start compares: a mismatch stops the service with one line saying what changed
and the fix (`gridmart index reset` sets the old index and spools aside; nothing is deleted).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, select

from ledger_node.config import get_settings as ledger_settings
from ledger_node.contracts import GridMart
from ledger_node.errors import ConfigError

from ..models import IndexedBlock, IndexMeta
from ..settings import MarketplaceSettings

KEY = "chain"


@dataclass(frozen=True)
class ChainIdentity:
    chain_id: int
    genesis_hash: str
    registry: str

    @classmethod
    def of(cls, chain: GridMart) -> "ChainIdentity":
        genesis = chain.w3.eth.get_block(0)["hash"]
        return cls(chain.w3.eth.chain_id, "0x" + bytes(genesis).hex(), chain.book.addresses["ProductRegistry"])

    def differences(self, now: "ChainIdentity") -> str:
        """What changed, e.g. "genesis 0xe86fd7367e… then, 0x1a5b5ef700… now"."""
        names = {"chain_id": "chain id", "genesis_hash": "genesis", "registry": "ProductRegistry"}
        short = lambda v: f"{v[:12]}…" if isinstance(v, str) and len(v) > 14 else str(v)  # noqa: E731
        return "; ".join(f"{label} {short(getattr(self, f))} then, {short(getattr(now, f))} now"
                         for f, label in names.items() if getattr(self, f) != getattr(now, f))


class ChainMismatch(ConfigError):
    """The index was made on another chain than the one the service is connected to."""


def check(engine: Engine, chain: GridMart, settings: MarketplaceSettings) -> ChainIdentity:
    """Record the chain in a new index; raise ChainMismatch if the index was made on another."""
    current = ChainIdentity.of(chain)
    with Session(engine) as session:
        row = session.get(IndexMeta, KEY)
        if row is not None:
            recorded = ChainIdentity(**json.loads(row.value))
            if recorded != current:
                raise ChainMismatch(_explain(recorded.differences(current), settings))
            return current
        # an index from before this record: its oldest remembered block must be this chain's
        oldest = session.exec(select(IndexedBlock).order_by(IndexedBlock.number).limit(1)).first()
        if oldest is not None:
            block = chain.w3.eth.get_block(oldest.number) if oldest.number <= chain.w3.eth.block_number else None
            if block is None or "0x" + bytes(block["hash"]).hex() != oldest.hash:
                raise ChainMismatch(_explain(f"it holds block {oldest.number} {oldest.hash[:12]}…, which this "
                                             "chain does not", settings))
        session.add(IndexMeta(key=KEY, value=json.dumps(asdict(current))))
        session.commit()
    return current


def _explain(what: str, settings: MarketplaceSettings) -> str:
    return (f"the index at {_shown(settings)} was made on another chain than {ledger_settings().effective_rpc_url} "
            f"({what}): a devnet restarted without its state, another GRIDMART_RPC_URL or a new deployment. "
            "`gridmart index reset` sets the old index and the FL and compute spools aside and starts afresh "
            "on this chain; or connect to the chain it was made on")


def _shown(settings: MarketplaceSettings) -> str:
    return make_url(settings.resolved_database_url()).render_as_string(hide_password=True)


def set_aside(settings: MarketplaceSettings) -> list[tuple[Path, Path]]:
    """Move the SQLite index and the FL and compute spools to `<name>.<UTC time>.old`, so the
    next start builds a new index on whatever chain it finds. Returns (from, to) pairs.
    A server database (PostgreSQL) is not ours to move: the caller is told to point
    GRIDMART_DATABASE_URL at a new one."""
    url = make_url(settings.resolved_database_url())
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise ConfigError(f"the index is in {_shown(settings)}, a database server: create a new database, point "
                          "GRIDMART_DATABASE_URL at it and start again (the old one keeps the old chain's index)")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    database = Path(url.database)
    moves = [(path, path.with_name(f"{path.name}.{stamp}.old"))
             for path in (database, database.with_name(database.name + "-wal"),
                          database.with_name(database.name + "-shm"),
                          settings.resolved_fl_spool(), settings.resolved_compute_spool())
             if path.exists()]
    for source, target in moves:
        source.rename(target)
    return moves
