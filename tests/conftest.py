"""Shared fixtures. Every test session gets its own data folder, so nothing touches ~/.gridmart."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="gridmart-test-"))
os.environ["GRIDMART_HOME"] = str(_SESSION_HOME)
os.environ["GRIDMART_DEPLOYMENTS_DIR"] = str(_SESSION_HOME / "deployments")
os.environ.pop("GRIDMART_RPC_URL", None)
os.environ.pop("GRIDMART_IPFS_API", None)

ARTIFACTS_DIR = Path(__file__).resolve().parent.parent / "test-artifacts"


import pytest  # noqa: E402
from eth_account import Account  # noqa: E402
from eth_account.signers.local import LocalAccount  # noqa: E402
from web3 import Web3  # noqa: E402

from ledger_node.chain import connect  # noqa: E402
from ledger_node.config import get_settings  # noqa: E402
from ledger_node.contracts import GridMart, Role  # noqa: E402
from ledger_node.deploy import deploy  # noqa: E402
from ledger_node.devnet import Devnet, free_port  # noqa: E402


@pytest.fixture(scope="session")
def devnet() -> Iterator[Devnet]:
    net = Devnet(port=free_port(), workdir=get_settings().home / "devnet-test").start()
    yield net
    net.stop()


@pytest.fixture(scope="session")
def w3(devnet: Devnet) -> Web3:
    return connect(devnet.url)


@pytest.fixture(scope="session")
def operator() -> LocalAccount:
    return Account.create()


@pytest.fixture(scope="session")
def gm(w3: Web3, operator: LocalAccount) -> GridMart:
    book, _ = deploy(w3, operator)
    return GridMart(w3, book, operator)


@pytest.fixture
def member(gm: GridMart) -> Callable[..., tuple[LocalAccount, GridMart]]:
    """Admit a fresh unit with `roles`; returns (account, GridMart signing as it)."""

    def make(roles: Role = Role.PUBLISHER | Role.SUBSCRIBER, name: str = "unit") -> tuple[LocalAccount, GridMart]:
        account = Account.create()
        gm.members.admit(account.address, name, b"\x11" * 32, roles)
        return account, gm.as_account(account)

    return make


@pytest.fixture
def snapshot(w3: Web3, gm: GridMart) -> Iterator[None]:
    """Revert the chain (state and clock) after the test, and the session operator's nonce
    with it (Hardhat refuses the now-ahead nonce and the sender resyncs by itself; anvil
    would queue the next transaction for ever)."""
    snap = w3.provider.make_request("evm_snapshot", [])["result"]
    yield
    w3.provider.make_request("evm_revert", [snap])
    gm.sender.resync()

