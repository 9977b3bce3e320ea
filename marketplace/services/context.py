"""Everything a request needs, built once at startup: chain, operator, store, database."""
from __future__ import annotations

from dataclasses import dataclass, field
from threading import Lock

from eth_account.signers.local import LocalAccount
from sqlalchemy.engine import Engine

from ledger_node.content import ContentStore, open_store
from ledger_node.contracts import GridMart, connect_gridmart
from ledger_node.wallets import load_wallet

from ..db import make_engine
from ..settings import MarketplaceSettings


@dataclass
class Context:
    settings: MarketplaceSettings
    engine: Engine
    operator: LocalAccount
    chain: GridMart  # signs as the operator
    store: ContentStore
    secret: bytes
    chain_lock: Lock = field(default_factory=Lock)

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
