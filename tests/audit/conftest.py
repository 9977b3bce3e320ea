"""Audit tests run on the session Hardhat node (tests/conftest.py).

The consistency tests need a marketplace whose database is the only writer to its contracts
(other suites write to the session contracts directly), so they get their own deployment
on the same node and their own marketplace over HTTP, with the shared js-ipfs daemon.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from ledger_node.audit import Ledger
from ledger_node.content.ipfs_rpc import RpcStore
from ledger_node.contracts import GridMart
from ledger_node.deploy import deploy
from ledger_node.devnet import free_port
from marketplace.app import create_app
from marketplace.db import make_engine
from marketplace.services.context import Context
from marketplace.settings import MarketplaceSettings
from tests.market.conftest import ipfs, serve  # noqa: F401  (the shared IPFS daemon fixture)


@pytest.fixture(scope="session")
def ledger(gm) -> Ledger:
    """A read-only view of the session contracts built from the address book alone: no signer, no database."""
    return Ledger(gm.w3, gm.book)


@pytest.fixture(scope="session")
def own_market(w3, ipfs, tmp_path_factory) -> Iterator[dict]:  # noqa: F811
    """A marketplace on its own deployment: url, ctx, operator, address-book folder and a Ledger of it."""
    operator = Account.create()  # the devnet's gas price is 0: no funding needed
    book_dir = tmp_path_factory.mktemp("audit-book")
    book, _ = deploy(w3, operator, directory=book_dir, force=True)
    port = free_port()
    folder = tmp_path_factory.mktemp("audit-market")
    settings = MarketplaceSettings(database_url=f"sqlite:///{folder / 'market.db'}", fl_spool=str(folder / "fl-spool"), domain=f"127.0.0.1:{port}",
                                   session_secret="audit-secret", anchor_interval_seconds=0.3, max_upload_mb=5)
    ctx = Context(settings=settings, engine=make_engine(settings.resolved_database_url()), operator=operator,
                  chain=GridMart(w3, book, operator), store=RpcStore(ipfs.api()), secret=b"audit-secret")
    server, thread = serve(create_app(settings, ctx), port)
    yield {"url": f"http://127.0.0.1:{port}", "ctx": ctx, "operator": operator, "book_dir": book_dir,
           "ledger": Ledger(w3, book)}
    server.should_exit = True
    thread.join(timeout=30)
