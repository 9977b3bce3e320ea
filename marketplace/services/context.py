"""Everything a request needs, built once at startup: chain, operator, store, database."""
from __future__ import annotations

from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine

from ledger_node.content import ContentStore, open_store
from ledger_node.contracts import GridMart, connect_gridmart
from ledger_node.wallets import load_wallet

from ..db import make_engine
from ..settings import MarketplaceSettings

if TYPE_CHECKING:
    from .indexer import Indexer
    from .recorder import Recorder


class GenerationCache:
    """A dict valid for one index generation (see Indexer.generation): emptied when the
    generation moves on, and never filled with a value read under an older one."""

    def __init__(self, limit: int = 100_000):
        self.limit = limit
        self.generation = -1
        self._data: dict = {}
        self._lock = Lock()

    def get(self, key: Any, generation: int) -> Any:
        return self._data.get(key) if generation == self.generation else None

    def put(self, key: Any, generation: int, value: Any) -> None:
        with self._lock:
            if generation > self.generation:
                self.generation, self._data = generation, {}
            if generation == self.generation:
                if len(self._data) >= self.limit:
                    self._data.clear()
                self._data[key] = value


@dataclass
class Context:
    settings: MarketplaceSettings
    engine: Engine
    operator: LocalAccount
    chain: GridMart  # signs as the operator
    store: ContentStore
    secret: bytes
    chain_lock: Lock = field(default_factory=Lock)
    indexer: "Indexer | None" = None  # set by the app at startup
    #: writes redemption rows in groups; set by the app at startup (None: each request commits its own)
    recorder: "Recorder | None" = None
    #: product id -> what it delivers, and licence id -> (licence, holder) rows; see services.redemption
    delivery_cache: GenerationCache = field(default_factory=lambda: GenerationCache(10_000))
    licence_cache: GenerationCache = field(default_factory=GenerationCache)

    @property
    def chain_id(self) -> int:
        return self.chain.sender.chain_id

    @classmethod
    def build(cls, settings: MarketplaceSettings, operator: LocalAccount | None = None) -> "Context":
        if operator is None:
            operator = load_wallet(settings.operator_wallet, settings.wallet_password or "")
        chain = connect_gridmart(operator)
        return cls(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                   chain=chain, store=open_store(), secret=settings.resolved_secret())
