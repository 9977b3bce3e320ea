"""Everything a request needs, built once at startup: chain, operator, store, database."""
from __future__ import annotations

from dataclasses import dataclass, field
from threading import Lock
from typing import TYPE_CHECKING

from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine

from ledger_node.content import ContentStore, open_store
from ledger_node.contracts import GridMart, connect_gridmart
from ledger_node.wallets import load_wallet

from ..db import make_engine
from ..settings import MarketplaceSettings

if TYPE_CHECKING:
    from .indexer import Indexer


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
    #: (product id, indexed block) -> what it delivers; see services.redemption
    delivery_cache: dict = field(default_factory=dict)

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
